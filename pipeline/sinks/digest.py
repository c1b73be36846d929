"""The fleet's daily digest out (`send_digest`): the day's `pipeline.analyze.digest.FleetDigest`
as one record of kind `DIGEST_KIND` through the alert sink (`pipeline.sinks.webhook`), so a
receiver that posts alerts to a channel or a social feed posts the day's summary too.

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

from pipeline.analyze.digest import FleetDigest
from pipeline.sinks.webhook import AlertSink
from pipeline.store.alerts import Detection

__all__ = ["DIGEST_KIND", "digest_record", "send_digest"]

#: Kind of the record that carries a digest (never a detector's kind).
DIGEST_KIND = "fleet_digest"


def digest_record(digest: FleetDigest) -> Detection:
    """The digest as one sink record: series ``fleet``, the day as its span, confidence 1,
    magnitude the open alerts' cost so far, the digest's text as its message."""
    return Detection(
        kind=DIGEST_KIND,
        series_id="fleet",
        start_s=digest.day_start_s,
        end_s=digest.day_end_s,
        detected_s=digest.day_end_s,
        confidence=1.0,
        magnitude=sum(r.cost for r in digest.recommendations),
        message=digest.text,
    )


def send_digest(sink: AlertSink, digest: FleetDigest) -> int:
    """Hand the digest to the sink; 1 when accepted."""
    return sink.submit([digest_record(digest)])
