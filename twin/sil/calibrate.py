"""``twin calibrate``: fit the per-stage cost model of the real pipeline on this machine.

:func:`measure` runs the real pipeline on generated uploads of several sizes, with and
without padding (so that bytes and readings vary independently), records each stage's
thread CPU time and takes the median per upload shape; :func:`fit_cost_model` fits
``a + b*bytes + c*readings`` per stage by least squares, keeping coefficients non-negative
(a negative one is dropped and the rest refitted).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from meters.espi import ReadingTypeSpec
from meters.espi_upload import encode_upload
from pipeline import STAGES, Keyring, Pipeline, SiteMeta, seal
from twin.sil.service_time import AnalyticsCost, CostModel, StageCost

READINGS_PER_UPLOAD = (1, 4, 15, 60, 240, 960)
PADDING_BYTES = (0, 4000, 16000)
EPOCH_S = 1_781_913_600  # 2026-06-20T00:00:00Z
CALIBRATION_KEY = bytes(range(32))  # HMAC-SHA256 key of the calibration meters


def sample_upload(
    meter_id: str,
    n_readings: int,
    padding_bytes: int = 0,
    seq: int = 0,
    start_s: int = EPOCH_S,
) -> bytes:
    """A genuine meter upload of ``n_readings`` 1-min readings from ``start_s`` (epoch s),
    optionally padded with an XML comment after the declaration (costs parse time, carries
    no data)."""
    starts = start_s + 60 * np.arange(n_readings, dtype=np.int64)
    values = (500 + 100 * np.sin(np.arange(n_readings) / 30.0)).astype(np.int64)
    body = encode_upload(meter_id, seq, ReadingTypeSpec(), starts, values, start_s + 86400)
    if padding_bytes:
        head, sep, rest = body.partition(b"?>")
        body = head + sep + b"\n<!--" + b"p" * padding_bytes + b"-->" + rest
    return body


def _fit_nonnegative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares y ~ x @ coef with coef >= 0: the best fit over column subsets."""
    best = np.zeros(x.shape[1])
    best_err = float(np.sum(y**2))
    for k in range(1, x.shape[1] + 1):
        for cols in combinations(range(x.shape[1]), k):
            coef, *_ = np.linalg.lstsq(x[:, cols], y, rcond=None)
            if np.any(coef < 0):
                continue
            err = float(np.sum((x[:, cols] @ coef - y) ** 2))
            if err < best_err:
                best_err = err
                best = np.zeros(x.shape[1])
                best[list(cols)] = coef
    return best


def machine_description() -> dict[str, object]:
    """Where the cost model was fitted: CPU model, logical cores, OS, architecture, Python and
    the versions of the libraries the pipeline's cost depends on, and when."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "architecture": platform.machine(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in ("numpy", "numba", "lxml")},
        "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


#: Batch-analysis shapes measured: (meters, hours of 1-min readings each).
ANALYSIS_SHAPES = ((2, 6), (8, 6), (2, 24), (8, 24), (24, 24))


def _analysis_samples(
    tmp: Path, repeats: int, clock: Callable[[], int]
) -> tuple[np.ndarray, np.ndarray]:
    """(points, seconds) of ``Pipeline.analyze`` over stores holding each shape, with PV
    site metadata registered (what the twin's MDC analyses), timed with ``clock`` (ns)."""
    points, seconds = [], []
    for n_meters, hours in ANALYSIS_SHAPES:
        for r in range(max(1, repeats // 50)):
            pipeline = Pipeline(tmp / f"analysis-{n_meters}-{hours}-{r}.sqlite")
            for i in range(n_meters):
                meter_id = f"cal-{n_meters}-{hours}-{i}"
                pipeline.register_site(
                    SiteMeta(meter_id, "pv", 20_000.0, 36.1, -79.9, 270.0, 25.0, 180.0)
                )
                for hour in range(hours):
                    pipeline.handle(sample_upload(meter_id, 60, start_s=EPOCH_S + 3600 * hour))
            t0 = clock()
            outcome = pipeline.analyze(EPOCH_S + 3600 * hours)
            seconds.append((clock() - t0) * 1e-9)
            points.append(outcome.points_analysed)
            pipeline.close()
    return np.array(points, dtype=float), np.array(seconds)


@dataclass(frozen=True)
class CalibrationSamples:
    """What a calibration measured. Per upload shape: its size (bytes, envelope included),
    its readings and the median CPU time of each pipeline stage over the repeats, s
    [n_shapes, len(STAGES)]; per batch analysis: the points it analysed and its CPU time, s."""

    upload_bytes: np.ndarray
    upload_readings: np.ndarray
    stage_s: np.ndarray
    analysis_points: np.ndarray
    analysis_s: np.ndarray


def measure(
    repeats: int = 200, clock: Callable[[], int] = time.thread_time_ns
) -> CalibrationSamples:
    """Run the real pipeline on ``repeats`` sealed uploads of every shape (readings x
    padding) and on batch analyses of :data:`ANALYSIS_SHAPES`, timed with ``clock`` (ns)."""
    rows: list[tuple[int, int]] = []
    medians: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="twin-calibrate-") as tmp:
        # uploads come sealed, as in a run with pipeline.authenticate (the default): the
        # fetch stage's cost includes the HMAC check over every byte
        ids = [f"cal-{n}-{p}-{r}" for n in READINGS_PER_UPLOAD for p in PADDING_BYTES
               for r in range(repeats)]  # fmt: skip
        keys = {meter_id: CALIBRATION_KEY for meter_id in ids}
        pipeline = Pipeline(Path(tmp) / "calibrate.sqlite", keyring=Keyring(keys))
        for n in READINGS_PER_UPLOAD:
            for pad in PADDING_BYTES:
                samples = []
                for r in range(repeats):
                    meter_id = f"cal-{n}-{pad}-{r}"
                    body = seal(meter_id, 0, sample_upload(meter_id, n, pad), CALIBRATION_KEY)
                    outcome = pipeline.handle(body, clock=clock)
                    if not outcome.accepted or outcome.stage_ns is None:
                        raise RuntimeError(f"calibration upload rejected: {outcome.reason}")
                    samples.append([outcome.stage_ns[s] * 1e-9 for s in STAGES])
                rows.append((len(body), n))
                medians.append(np.median(np.array(samples), axis=0).tolist())
        pipeline.close()
        analysis_points, analysis_s = _analysis_samples(Path(tmp), repeats, clock)
    shapes = np.array(rows, dtype=float)
    return CalibrationSamples(shapes[:, 0], shapes[:, 1], np.array(medians), analysis_points,
                              analysis_s)  # fmt: skip


def _r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    """Coefficient of determination, rounded to 4 places (1 for constant data fitted)."""
    total = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return round(1.0 - float(np.sum((y - fitted) ** 2)) / total, 4)


def fit_cost_model(samples: CalibrationSamples, machine: dict[str, Any]) -> CostModel:
    """Fit ``a + b*bytes + c*readings`` per stage and ``a + c*points`` for the analysis by
    least squares with non-negative coefficients; ``machine`` gains the fit quality
    (``r_squared`` per stage and for the analysis)."""
    x = np.column_stack([np.ones(len(samples.upload_bytes)), samples.upload_bytes,
                         samples.upload_readings])  # fmt: skip
    stages = {}
    quality = {}
    for j, stage in enumerate(STAGES):
        y = samples.stage_s[:, j]
        coef = _fit_nonnegative(x, y)
        stages[stage] = StageCost(float(coef[0]), float(coef[1]), float(coef[2]))
        quality[stage] = _r_squared(y, x @ coef)
    points, analysis_s = samples.analysis_points, samples.analysis_s
    x_analysis = np.column_stack([np.ones(len(points)), points])
    a_s, c_s = _fit_nonnegative(x_analysis, analysis_s)
    quality["analytics"] = _r_squared(analysis_s, x_analysis @ np.array([a_s, c_s]))
    return CostModel(
        stages, machine | {"r_squared": quality}, AnalyticsCost(float(a_s), float(c_s))
    )


def calibrate(repeats: int = 200) -> CostModel:
    """Measure this machine's pipeline and fit its cost model; the model says where and
    how it was fitted (:func:`machine_description`, the shapes, the fit quality)."""
    machine = machine_description() | {
        "repeats": repeats,
        "readings_per_upload": list(READINGS_PER_UPLOAD),
        "padding_bytes": list(PADDING_BYTES),
    }
    return fit_cost_model(measure(repeats), machine)
