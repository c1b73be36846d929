"""The MDC service's Prometheus metrics (`prometheus_client`), in a registry of their own
per app (so that two apps in one process, as in tests, never share counters).

Names follow the Prometheus conventions (base units, ``_total`` for counters, ``_seconds``
for durations). Every metric is updated from the event loop or the writer thread;
`prometheus_client` metrics are thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

#: Request latency buckets, s: from a sub-millisecond answer to the 30 s a meter's
#: acknowledgement timer waits (LTE-M default of `network.cellular`, DESIGN §1).
_LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip
#: Batch analysis duration buckets, s: a few series to a large MDC's hourly run.
_ANALYSIS_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Uploads per commit.
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    """Every metric of one service app, registered in `registry`.

    Attributes:
        uploads: ``mdc_uploads_total{outcome}``: uploads answered, by outcome: ``stored``
            (new readings), ``conflicting`` (no new reading, some with other values than the
            stored ones), ``duplicate`` (all readings already stored), ``rejected`` (a 4xx
            naming the reason), ``refused`` (503: queue full or shutting down).
        rejections: ``mdc_upload_rejections_total{reason}``: rejected uploads by reason code.
        request_latency: ``mdc_http_request_duration_seconds{route}``: request latency, from
            the request's start to the end of the answer.
        readings_stored, readings_duplicate, readings_conflicting:
            ``mdc_readings_stored_total``, ``mdc_readings_duplicate_total``,
            ``mdc_readings_conflicting_total`` (another version of a stored reading,
            recorded beside it, `pipeline.store.readings`).
        commits, commit_group: ``mdc_commits_total`` and ``mdc_commit_group_uploads``
            (uploads per commit).
        uncommitted: ``mdc_uncommitted_uploads``: accepted uploads not committed yet.
        analysis_duration: ``mdc_analysis_duration_seconds``: wall time of each batch
            analysis.
        analysis_failures: ``mdc_analysis_failures_total``.
        alerts_raised: ``mdc_alerts_raised_total``: new detections stored by the analysis.
        store_errors: ``mdc_store_errors_total``: groups rolled back by a storage error.
    """

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.uploads = Counter(
            "mdc_uploads", "Uploads answered, by outcome", ["outcome"], registry=r
        )
        self.rejections = Counter(
            "mdc_upload_rejections", "Rejected uploads, by reason code", ["reason"], registry=r
        )
        self.request_latency = Histogram(
            "mdc_http_request_duration_seconds",
            "HTTP request latency, s",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.readings_stored = Counter("mdc_readings_stored", "Readings newly stored", registry=r)
        self.readings_duplicate = Counter(
            "mdc_readings_duplicate", "Readings received again (not stored twice)", registry=r
        )
        self.readings_conflicting = Counter(
            "mdc_readings_conflicting",
            "Readings of stored intervals with other values (recorded as revisions)",
            registry=r,
        )
        self.commits = Counter("mdc_commits", "Database commits of upload groups", registry=r)
        self.commit_group = Histogram(
            "mdc_commit_group_uploads", "Uploads per commit", buckets=_GROUP_BUCKETS, registry=r
        )
        self.uncommitted = Gauge(
            "mdc_uncommitted_uploads", "Accepted uploads not committed yet", registry=r
        )
        self.queue_depth = Gauge(
            "mdc_ingest_queue_depth", "Jobs waiting for the writer thread", registry=r
        )
        self.queue_depth.set_function(queue_depth)
        self.analysis_duration = Histogram(
            "mdc_analysis_duration_seconds",
            "Batch analysis wall time, s",
            buckets=_ANALYSIS_BUCKETS_S,
            registry=r,
        )
        self.analysis_failures = Counter(
            "mdc_analysis_failures", "Batch analyses that raised", registry=r
        )
        self.alerts_raised = Counter(
            "mdc_alerts_raised", "New detections stored by the batch analysis", registry=r
        )
        self.store_errors = Counter(
            "mdc_store_errors", "Upload groups rolled back by a storage error", registry=r
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
