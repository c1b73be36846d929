"""Software in the loop (DESIGN.md §4): the real pipeline on real bytes, and what it costs.

The functional outcome (stored, duplicate, rejected, alerts) always comes from the real
``pipeline``. Its cost in simulated time comes from a registry of service-time modes:
``calibrated`` (a per-stage cost model ``a + b*bytes + c*readings`` fitted by
``twin calibrate`` on this machine), ``measured`` (the call's real thread CPU time) or
``model`` (the cost model for every upload, the real pipeline on a deterministic sample of
them only, ``pipeline_sample_rate``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np

from pipeline import STAGES, AnalysisOutcome, Pipeline, UploadOutcome
from twin.errors import ScenarioError

DEFAULT_COST_MODEL = "default"
DEFAULT_COST_MODEL_PATH = Path(__file__).resolve().parents[1] / "data" / "cost_model.json"


@dataclass(frozen=True)
class StageCost:
    """Cost of one pipeline stage: ``a_s + b_s_per_byte * bytes + c_s_per_reading * n``."""

    a_s: float
    b_s_per_byte: float
    c_s_per_reading: float

    def seconds(self, size_bytes: int, n_readings: int) -> float:
        return self.a_s + self.b_s_per_byte * size_bytes + self.c_s_per_reading * n_readings


@dataclass(frozen=True)
class AnalyticsCost:
    """Cost of one batch analysis (``Pipeline.analyze``): ``a_s + c_s_per_point * points``,
    points = stored readings read, validated and run through the detectors."""

    a_s: float
    c_s_per_point: float

    def seconds(self, points: int) -> float:
        return self.a_s + self.c_s_per_point * points


@dataclass(frozen=True)
class CostModel:
    """Per-stage cost model plus a description of the machine it was fitted on."""

    stages: dict[str, StageCost]
    machine: dict[str, Any]
    analytics: AnalyticsCost = AnalyticsCost(0.0, 0.0)

    def service_s(self, outcome: UploadOutcome) -> float:
        """Service time at speed 1 of one pipeline call. A rejected document costs the
        stages up to and including the one that rejected it."""
        if outcome.accepted or outcome.rejected_stage not in STAGES:
            return self.upload_s(outcome.size_bytes, outcome.n_readings)
        stages = STAGES[: STAGES.index(outcome.rejected_stage) + 1]
        return sum(self.stages[s].seconds(outcome.size_bytes, outcome.n_readings) for s in stages)

    def upload_s(self, size_bytes: int, n_readings: int) -> float:
        """Service time at speed 1 of an accepted upload of ``size_bytes`` (envelope
        included) carrying ``n_readings`` readings, every stage: the model alone, no call.
        The stages' costs are added in their order (:data:`pipeline.STAGES`)."""
        total_s = 0.0
        for cost in self._stages_in_order:
            total_s += cost.seconds(size_bytes, n_readings)
        return total_s

    @cached_property
    def _stages_in_order(self) -> tuple[StageCost, ...]:
        """The stages' costs in :data:`pipeline.STAGES` order, looked up once: :meth:`upload_s`
        runs once per upload."""
        return tuple(self.stages[s] for s in STAGES)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": "a_s + b_s_per_byte * size_bytes + c_s_per_reading * n_readings",
            "stages": {name: vars(cost) for name, cost in self.stages.items()},
            "analytics": vars(self.analytics),
            "machine": self.machine,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostModel:
        stages = {name: StageCost(**data["stages"][name]) for name in STAGES}
        return cls(stages, dict(data.get("machine", {})), AnalyticsCost(**data["analytics"]))


def load_cost_model(name: str) -> CostModel:
    """``"default"`` is the model committed in ``twin/data/cost_model.json``; anything else
    is a path to a file written by ``twin calibrate``."""
    path = DEFAULT_COST_MODEL_PATH if name == DEFAULT_COST_MODEL else Path(name)
    try:
        model = CostModel.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(
            "pipeline.cost_model",
            name,
            f'"default" or a cost model file written by twin calibrate ({type(exc).__name__}: '
            f"{exc})",
        ) from None
    for stage, cost in [*model.stages.items(), ("analytics", model.analytics)]:
        if not all(math.isfinite(v) and v >= 0 for v in vars(cost).values()):
            raise ScenarioError(
                "pipeline.cost_model", name, f"finite, non-negative costs (stage {stage}: {cost})"
            )
    return model


class PipelineCalls(Protocol):
    """How the twin hands an upload to the run's pipeline: a :class:`pipeline.Pipeline`
    in-process or a :class:`twin.sil.pipeline_worker.PipelineWorker`."""

    def handle(self, body: bytes) -> UploadOutcome: ...


def upload_key(meter_id: str, sequence_no: int) -> str:
    """The key that samples an upload in ``model`` mode (:class:`ServiceTime`)."""
    return f"{meter_id}/{sequence_no}"


class ServiceTime:
    """What the real pipeline did and what it cost in simulated seconds at speed 1: for an
    upload (``upload``) and for a batch analysis (``analysis``).

    ``mode`` is a key of :data:`SERVICE_TIME_MODES`. In ``model`` mode the real pipeline runs
    on a deterministic sample of the uploads only: an upload is sampled when its uniform
    draw is below ``sample_rate``, and the other uploads are modelled from their size and
    readings, with no pipeline call. An upload's draw is a keyed hash of its ``key`` (the
    twin passes :func:`upload_key`; the hash key is taken once from ``rng``), so
    it depends on that upload alone (DESIGN §3: adding a meter changes no other meter's
    sample, and a re-sent copy is sampled as its original was); without a key, the next
    value of ``rng``'s stream.
    """

    def __init__(
        self,
        cost_model: CostModel,
        measured: bool = False,
        *,
        mode: str | None = None,
        sample_rate: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"pipeline_sample_rate must be in (0, 1], got {sample_rate!r}")
        if sample_rate < 1.0 and rng is None:
            raise ValueError("sampling the pipeline (rate < 1) needs a numpy Generator")
        self.cost_model = cost_model
        self.measured = measured
        self.mode = mode or ("measured" if measured else "calibrated")
        self.sample_rate = sample_rate
        self._rng = rng
        self._hash_key = rng.bytes(16) if rng is not None and sample_rate < 1.0 else b""
        self._draws = np.zeros(0)
        self._next_draw = 0
        #: Uploads the real pipeline ran, and uploads whose service time was modelled only.
        self.uploads_run = 0
        self.uploads_modelled = 0

    def _sampled(self, key: str | None = None) -> bool:
        """Whether the upload of ``key`` is sampled (a keyed BLAKE2b hash of the key as a
        uniform value in [0, 1)); without a key, the next draw of the stream (drawn in
        blocks)."""
        if self.sample_rate >= 1.0 or self._rng is None:
            return True
        if key is not None:
            digest = hashlib.blake2b(key.encode(), key=self._hash_key, digest_size=8).digest()
            return int.from_bytes(digest, "little") < self.sample_rate * 2.0**64
        if self._next_draw == len(self._draws):
            self._draws = self._rng.random(_DRAW_BLOCK)
            self._next_draw = 0
        draw = self._draws[self._next_draw]
        self._next_draw += 1
        return bool(draw < self.sample_rate)

    @overload
    def upload(
        self,
        pipeline: PipelineCalls,
        body: bytes,
        n_readings: None = None,
        force: bool = False,
        key: str | None = None,
    ) -> tuple[UploadOutcome, float]: ...

    @overload
    def upload(
        self,
        pipeline: PipelineCalls,
        body: bytes,
        n_readings: int,
        force: bool = False,
        key: str | None = None,
    ) -> tuple[UploadOutcome | None, float]: ...

    def upload(
        self,
        pipeline: PipelineCalls,
        body: bytes,
        n_readings: int | None = None,
        force: bool = False,
        key: str | None = None,
    ) -> tuple[UploadOutcome | None, float]:
        """Service time of one upload at speed 1, and the pipeline's outcome (None: not run,
        modelled). Only in ``model`` mode, with ``n_readings`` given (the readings in the
        upload, all channels) and ``force`` false, may an upload go unsampled; ``force``
        always runs the real pipeline (hostile or faulty uploads, whose outcome matters).
        ``key`` identifies the upload for sampling (see the class docstring)."""
        sampled = self._sampled(key)
        if not (sampled or force or n_readings is None):
            return None, self.modelled_upload(len(body), n_readings)
        self.uploads_run += 1
        if not self.measured:
            outcome = pipeline.handle(body)
            return outcome, self.cost_model.service_s(outcome)
        t0 = time.thread_time_ns()
        outcome = pipeline.handle(body)
        return outcome, (time.thread_time_ns() - t0) * 1e-9

    def needs_bytes(self, key: str) -> bool:
        """Whether a genuine upload of ``key`` (:func:`upload_key`) runs the real pipeline,
        so that its bytes are needed: always but in ``model`` mode, where an upload the
        sample leaves out is costed from its size (:meth:`modelled_upload`)."""
        return self._sampled(key)

    def modelled_upload(self, size_bytes: int, n_readings: int) -> float:
        """Service time at speed 1 of an upload ``model`` mode leaves out of its sample: the
        cost model's of an upload of ``size_bytes`` bytes and ``n_readings`` readings."""
        self.uploads_modelled += 1
        return self.cost_model.upload_s(size_bytes, n_readings)

    def known_upload(self, size_bytes: int, n_readings: int) -> float:
        """Service time at speed 1 of an upload the pipeline runs later whose outcome is
        known (accepted, ``n_readings`` readings; see :mod:`twin.sil.pipeline_worker`):
        the cost :meth:`upload` gives that outcome in the cost model's modes, ``calibrated``
        and ``model`` (an upload of the sample), counted as run."""
        self._needs_cost_model("outcomes are known in advance")
        self.uploads_run += 1
        return self.cost_model.upload_s(size_bytes, n_readings)

    def known_analysis(self, points_analysed: int) -> float:
        """Service time at speed 1 of a batch analysis of ``points_analysed`` points whose
        outcome comes later (:mod:`twin.sil.pipeline_worker`): the cost :meth:`analysis`
        gives it in the cost model's modes, ``calibrated`` and ``model``."""
        self._needs_cost_model("outcomes come later")
        return self.cost_model.analytics.seconds(points_analysed)

    @property
    def costs_by_model(self) -> bool:
        """Whether service times come from the cost model alone (``calibrated``, ``model``),
        not from measuring the calls: then a call's cost is known before it runs."""
        return not self.measured

    def _needs_cost_model(self, what: str) -> None:
        if not self.costs_by_model:
            raise ValueError(f"{what} in the cost model's modes only, not {self.mode!r}")

    def analysis(
        self, pipeline: Pipeline | None, now_epoch_s: int
    ) -> tuple[AnalysisOutcome, float]:
        """Always the real batch analysis (its detections are functional outcomes), of the
        run's ``pipeline`` (None only in a live run, whose service analyses: see
        :class:`twin.sil.live.LiveServiceTime`)."""
        if pipeline is None:
            raise ValueError(f"service-time mode {self.mode!r} needs the run's pipeline")
        if not self.measured:
            outcome = pipeline.analyze(now_epoch_s)
            return outcome, self.cost_model.analytics.seconds(outcome.points_analysed)
        t0 = time.thread_time_ns()
        outcome = pipeline.analyze(now_epoch_s)
        return outcome, (time.thread_time_ns() - t0) * 1e-9

    def __call__(self, pipeline: PipelineCalls, body: bytes) -> tuple[UploadOutcome, float]:
        return self.upload(pipeline, body)


#: Uniform draws of the sampling stream taken from the Generator at a time.
_DRAW_BLOCK = 4096


class ServiceTimeFactory(Protocol):
    """A service-time mode: ``(cost_model, sample_rate, rng) -> ServiceTime``."""

    def __call__(
        self,
        cost_model: CostModel,
        sample_rate: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> ServiceTime: ...


def _whole_pipeline(mode: str, sample_rate: float) -> None:
    if sample_rate != 1.0:
        raise ValueError(f"pipeline_sample_rate applies to mode 'model' only, not {mode!r}")


def calibrated_mode(
    cost_model: CostModel, sample_rate: float = 1.0, rng: np.random.Generator | None = None
) -> ServiceTime:
    """Deterministic: the cost model of the real call's size (DESIGN.md §4)."""
    _whole_pipeline("calibrated", sample_rate)
    return ServiceTime(cost_model, measured=False, mode="calibrated")


def measured_mode(
    cost_model: CostModel, sample_rate: float = 1.0, rng: np.random.Generator | None = None
) -> ServiceTime:
    """The real call's thread CPU time (``time.thread_time_ns``)."""
    _whole_pipeline("measured", sample_rate)
    return ServiceTime(cost_model, measured=True, mode="measured")


def model_mode(
    cost_model: CostModel, sample_rate: float = 1.0, rng: np.random.Generator | None = None
) -> ServiceTime:
    """Deterministic: the cost model for every upload; the real pipeline runs on a sample of
    ``sample_rate`` of them, drawn from ``rng`` (DESIGN.md §4). Rate 1 is ``calibrated``."""
    return ServiceTime(cost_model, measured=False, mode="model", sample_rate=sample_rate, rng=rng)


#: Registry of service-time modes (DESIGN.md §4).
SERVICE_TIME_MODES: dict[str, ServiceTimeFactory] = {
    "calibrated": calibrated_mode,
    "measured": measured_mode,
    "model": model_mode,
}
