"""Software in the loop (DESIGN.md §4): the real pipeline on real bytes, and what it costs.

The functional outcome (stored, duplicate, rejected, alerts) always comes from the real
``pipeline``. Its cost in simulated time comes from a registry of service-time modes:
``calibrated`` (a per-stage cost model ``a + b*bytes + c*readings`` fitted by
``twin calibrate`` on this machine) or ``measured`` (the call's real thread CPU time).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.service import STAGES, AnalysisOutcome, Pipeline, UploadOutcome
from twin.errors import ScenarioError

DEFAULT_COST_MODEL = "default"
DEFAULT_COST_MODEL_PATH = Path(__file__).parent / "data" / "cost_model.json"


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
        stages: tuple[str, ...] = STAGES
        if not outcome.accepted and outcome.rejected_stage in STAGES:
            stages = STAGES[: STAGES.index(outcome.rejected_stage) + 1]
        return sum(self.stages[s].seconds(outcome.size_bytes, outcome.n_readings) for s in stages)

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


class ServiceTime:
    """What the real pipeline did and what it cost in simulated seconds at speed 1: for an
    upload (``upload``) and for a batch analysis (``analysis``)."""

    def __init__(self, cost_model: CostModel, measured: bool) -> None:
        self.cost_model = cost_model
        self.measured = measured

    def upload(self, pipeline: Pipeline, body: bytes) -> tuple[UploadOutcome, float]:
        if not self.measured:
            outcome = pipeline.handle(body)
            return outcome, self.cost_model.service_s(outcome)
        t0 = time.thread_time_ns()
        outcome = pipeline.handle(body)
        return outcome, (time.thread_time_ns() - t0) * 1e-9

    def analysis(self, pipeline: Pipeline, now_epoch_s: int) -> tuple[AnalysisOutcome, float]:
        if not self.measured:
            outcome = pipeline.analyze(now_epoch_s)
            return outcome, self.cost_model.analytics.seconds(outcome.points_analysed)
        t0 = time.thread_time_ns()
        outcome = pipeline.analyze(now_epoch_s)
        return outcome, (time.thread_time_ns() - t0) * 1e-9

    def __call__(self, pipeline: Pipeline, body: bytes) -> tuple[UploadOutcome, float]:
        return self.upload(pipeline, body)


def calibrated_mode(cost_model: CostModel) -> ServiceTime:
    """Deterministic: the cost model of the real call's size (DESIGN.md §4)."""
    return ServiceTime(cost_model, measured=False)


def measured_mode(cost_model: CostModel) -> ServiceTime:
    """The real call's thread CPU time (``time.thread_time_ns``)."""
    return ServiceTime(cost_model, measured=True)


#: Registry of service-time modes (DESIGN.md §4).
SERVICE_TIME_MODES: dict[str, Callable[[CostModel], ServiceTime]] = {
    "calibrated": calibrated_mode,
    "measured": measured_mode,
}
