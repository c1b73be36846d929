"""Calibration: the fit recovers known cost models, measuring is deterministic under a
deterministic clock, and the CLI writes a model a scenario can name. How well the fit
explains this machine's live timings is measured in bench/test_calibration_bench.py."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from pipeline import STAGES
from twin.cli import main
from twin.sil.calibrate import (
    ANALYSIS_SHAPES,
    PADDING_BYTES,
    READINGS_PER_UPLOAD,
    CalibrationSamples,
    _fit_nonnegative,
    fit_cost_model,
    measure,
)
from twin.sil.service_time import CostModel, load_cost_model

#: A known cost model per stage (a s, b s/byte, c s/reading): one with all three terms,
#: one without a per-reading cost, one without a per-byte cost.
TRUTH = {
    "fetch": (3e-5, 2e-9, 0.0),
    "process": (1e-5, 5e-10, 7e-7),
    "store": (4e-5, 0.0, 2e-6),
    "analyze": (2e-6, 1e-10, 1e-7),
}
ANALYSIS_TRUTH = (2e-3, 4e-6)  # a s, c s/point


def _synthetic(noise: float = 0.0, seed: int = 0) -> CalibrationSamples:
    """Samples of the calibration's shapes timed by the known model, times a uniform
    relative noise in [1 - noise, 1 + noise]."""
    rng = np.random.default_rng(seed)
    shapes = [(n, 4700.0 * n / 15 + 1500.0 + pad) for n in READINGS_PER_UPLOAD
              for pad in PADDING_BYTES]  # fmt: skip
    readings = np.array([n for n, _ in shapes], dtype=float)
    size = np.array([b for _, b in shapes])
    stage_s = np.column_stack([a + b * size + c * readings for a, b, c in
                               (TRUTH[s] for s in STAGES)])  # fmt: skip
    points = np.array([m * h * 60 for m, h in ANALYSIS_SHAPES], dtype=float)
    analysis_s = ANALYSIS_TRUTH[0] + ANALYSIS_TRUTH[1] * points
    stage_s = stage_s * rng.uniform(1 - noise, 1 + noise, stage_s.shape)
    analysis_s = analysis_s * rng.uniform(1 - noise, 1 + noise, analysis_s.shape)
    return CalibrationSamples(size, readings, stage_s, points, analysis_s)


def test_fit_recovers_a_known_cost_model() -> None:
    assert set(TRUTH) == set(STAGES)
    model = fit_cost_model(_synthetic(), {"cpu": "synthetic"})
    for stage, (a, b, c) in TRUTH.items():
        cost = model.stages[stage]
        np.testing.assert_allclose(
            [cost.a_s, cost.b_s_per_byte, cost.c_s_per_reading], [a, b, c], rtol=1e-6, atol=1e-15
        )
    np.testing.assert_allclose(
        [model.analytics.a_s, model.analytics.c_s_per_point], ANALYSIS_TRUTH, rtol=1e-9
    )
    assert model.machine == {"cpu": "synthetic", "r_squared": dict.fromkeys(
        [*STAGES, "analytics"], 1.0)}  # fmt: skip
    # 5 % timing noise: least squares of the costs spread by the noise (the small shapes'
    # intercept drowns in the large shapes' noise), so the model is recovered to within the
    # noise of the largest shape, and the fit explains nearly all of the variation
    clean, noisy = _synthetic(), _synthetic(noise=0.05, seed=1)
    fitted = fit_cost_model(noisy, {})
    for j, stage in enumerate(STAGES):
        cost = fitted.stages[stage]
        predicted = cost.a_s + cost.b_s_per_byte * clean.upload_bytes + (
            cost.c_s_per_reading * clean.upload_readings
        )
        true_s = clean.stage_s[:, j]
        assert np.all(np.abs(predicted - true_s) <= 0.05 * true_s.max())
        assert fitted.machine["r_squared"][stage] > 0.98
    small, large = (fitted.stages["process"].seconds(s, n) for s, n in ((1500, 1), (60_000, 960)))
    assert 0 < small < large


def test_fit_is_least_squares_with_non_negative_costs() -> None:
    rng = np.random.default_rng(0)
    size_bytes = rng.uniform(1e3, 4e5, 40)
    readings = rng.integers(1, 1000, 40).astype(float)
    x = np.column_stack([np.ones(40), size_bytes, readings])
    truth = np.array([3e-5, 2e-9, 7e-7])
    np.testing.assert_allclose(_fit_nonnegative(x, x @ truth), truth, rtol=1e-9)
    # noisy data: the fit is the ordinary least-squares solution when that is non-negative
    noisy = x @ truth * rng.uniform(0.9, 1.1, 40)
    np.testing.assert_allclose(
        _fit_nonnegative(x, noisy), np.linalg.lstsq(x, noisy, rcond=None)[0], rtol=1e-9
    )
    # a cost that falls with the readings is not physical: that column is dropped and the
    # rest refitted by least squares
    falling = x @ np.array([3e-5, 2e-9, -1e-8])
    coef = _fit_nonnegative(x, falling)
    assert np.all(coef >= 0) and coef[2] == 0.0
    np.testing.assert_allclose(coef[:2], np.linalg.lstsq(x[:, :2], falling, rcond=None)[0])


def test_measuring_with_a_deterministic_clock_is_deterministic() -> None:
    """A clock that ticks 1 ns per reading of it: what is measured depends on the code
    alone, so two measurements agree exactly, every stage and analysis took time, and the
    shapes vary bytes and readings independently (the fit can tell them apart)."""

    def ticking() -> itertools.count[int]:
        return itertools.count(0, 1)

    first, second = (measure(repeats=2, clock=ticking().__next__) for _ in range(2))
    for name in ("upload_bytes", "upload_readings", "stage_s", "analysis_points", "analysis_s"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    n_shapes = len(READINGS_PER_UPLOAD) * len(PADDING_BYTES)
    assert first.stage_s.shape == (n_shapes, len(STAGES)) and np.all(first.stage_s > 0)
    assert np.all(first.analysis_s > 0) and np.all(first.analysis_points > 0)
    design = np.column_stack([np.ones(n_shapes), first.upload_bytes, first.upload_readings])
    assert np.linalg.matrix_rank(design) == 3
    model = fit_cost_model(first, {})
    assert set(model.stages) == set(STAGES)
    assert all(v >= 0 for cost in model.stages.values() for v in vars(cost).values())


def test_cli_writes_a_model_that_a_scenario_can_name(tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    assert main(["calibrate", "--repeats", "2", "--out", str(out)]) == 0
    model = load_cost_model(str(out))
    assert set(model.stages) == set(STAGES)
    machine = model.machine
    assert {"cpu", "cores", "platform", "python", "calibrated_at", "r_squared"} <= set(machine)
    assert machine["libraries"]["lxml"] and machine["repeats"] == 2
    again = CostModel.from_json(json.loads(out.read_text()))
    assert again.machine == machine and again.stages == model.stages
