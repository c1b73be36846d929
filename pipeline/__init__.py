"""The processing pipeline of a micro data center: meter uploads (ESPI XML) in, validated
and analysed readings, alerts and forecasts out.

Stages, in data-flow order, one subpackage each (a stage imports only the ones before it):
`pipeline.espi` (the format) → `pipeline.fetch` (hardened parse, HMAC envelopes) →
`pipeline.process` (uploads and Green Button files to column batches) → `pipeline.store`
(SQLite schema and repositories) → `pipeline.analyze` (VEE, detectors, forecasts,
recommendations) → `pipeline.sinks` (alerts out); `pipeline.service` chains them and
`pipeline.ingest` stores Green Button files (``python -m pipeline ingest``). The meter
upload format is ``docs/upload-format.md``.

The names below are the pipeline's public API.
"""

from pipeline.analyze.batch import ANALYSIS_STAGES, AnalysisOutcome, BatchAnalysis
from pipeline.analyze.faults import DetectorParams
from pipeline.analyze.forecast import ForecastRecord
from pipeline.analyze.recommendations import Recommendation
from pipeline.espi.reading_type import ReadingType
from pipeline.fetch.auth import Keyring, seal, sealed_size
from pipeline.fetch.limits import Limits
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.batch import ReadingBatch
from pipeline.service import STAGES, Pipeline, UploadOutcome, UploadService
from pipeline.sinks.webhook import WebhookSink
from pipeline.store.alerts import Detection
from pipeline.store.sites import SiteMeta
from pipeline.store.store import Store

__all__ = [
    "ANALYSIS_STAGES",
    "STAGES",
    "AnalysisOutcome",
    "BatchAnalysis",
    "Detection",
    "DetectorParams",
    "ForecastRecord",
    "Keyring",
    "Limits",
    "Pipeline",
    "ReadingBatch",
    "ReadingType",
    "Recommendation",
    "RejectedUpload",
    "SiteMeta",
    "Store",
    "UploadOutcome",
    "UploadService",
    "WebhookSink",
    "seal",
    "sealed_size",
]
