"""Software in the loop: the service-time modes run the real pipeline and cost it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import twin.world.world as world_module
from meters.espi_upload import encode_meter_upload
from pipeline import Keyring, Pipeline, seal
from twin.errors import ScenarioError
from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario
from twin.sil.calibrate import CALIBRATION_KEY, sample_upload
from twin.sil.service_time import SERVICE_TIME_MODES, ServiceTime, load_cost_model

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
SMALL = ["fleet.pv.count=10", "fleet.wind.count=2", 'scenario.duration="3h"']


def _results_text(results: Any) -> str:
    data = results.to_json()
    del data["wall_time_s"], data["store_path"]
    return json.dumps(data, sort_keys=True)


def test_committed_default_model_is_sane() -> None:
    model = load_cost_model("default")
    per_upload_s = sum(c.seconds(len(sample_upload("m", 15)), 15) for c in model.stages.values())
    assert 20e-6 < per_upload_s < 5e-3  # tens to hundreds of microseconds per upload


def test_measured_mode_uses_real_cpu_time_and_stores_the_same_readings(
    tmp_path: Path, ledger_check: Callable[..., None]
) -> None:
    calibrated = run(load_scenario(BASELINE, SMALL))
    scenario = load_scenario(BASELINE, [*SMALL, 'pipeline.service_time="measured"'])
    measured = run(scenario, store_dir=tmp_path)
    assert measured.service_time.mode == "measured"
    ledger_check(measured, tmp_path)
    # service times differ in the microseconds, far below the network's timescales, so
    # the functional outcome is the same readings stored
    assert measured.kpis.readings_stored == calibrated.kpis.readings_stored
    assert 0 < measured.kpis.utilization["north/server-0"] < 1


def test_unknown_cost_model_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"pipeline\.cost_model"):
        load_scenario(BASELINE, [*SMALL, f'pipeline.cost_model="{tmp_path}/none.json"'])


def _sealed_uploads(count: int) -> tuple[Keyring, list[tuple[bytes, int]]]:
    """Sealed uploads of a few sizes and their readings, meters cal-0, cal-1, ..."""
    sizes = (1, 15, 60, 240)
    ids = [f"cal-{i}" for i in range(count)]
    uploads = []
    for i, meter_id in enumerate(ids):
        n = sizes[i % len(sizes)]
        uploads.append((seal(meter_id, 0, sample_upload(meter_id, n), CALIBRATION_KEY), n))
    return Keyring({m: CALIBRATION_KEY for m in ids}), uploads


def test_model_mode_runs_the_pipeline_on_a_deterministic_sample(tmp_path: Path) -> None:
    model = load_cost_model("default")
    keyring, uploads = _sealed_uploads(400)
    calibrated = SERVICE_TIME_MODES["calibrated"](model)
    pipeline = Pipeline(tmp_path / "calibrated.sqlite", keyring=keyring)
    reference = [calibrated.upload(pipeline, body, n) for body, n in uploads]
    assert all(outcome is not None for outcome, _ in reference)  # calibrated: always run
    runs = []
    for name in ("a", "b"):
        sampled = SERVICE_TIME_MODES["model"](model, 0.25, np.random.default_rng(9))
        store = Pipeline(tmp_path / f"model-{name}.sqlite", keyring=keyring)
        runs.append([sampled.upload(store, body, n) for body, n in uploads])
        assert sampled.uploads_run + sampled.uploads_modelled == len(uploads)
        assert store.store.readings.count() == sum(
            n for (o, _), (_, n) in zip(runs[-1], uploads, strict=True) if o is not None
        )
    ran = [outcome is not None for outcome, _ in runs[0]]
    # deterministic: the same Generator seed samples the same uploads
    assert ran == [outcome is not None for outcome, _ in runs[1]]
    # a binomial(400, 0.25) sample: 100 +- 3.3 sigma (sigma = 8.7)
    assert 71 <= sum(ran) <= 129
    # an accepted upload costs the same whether the pipeline ran or the model alone
    assert [s for _, s in runs[0]] == pytest.approx([s for _, s in reference], rel=1e-12)


def test_a_keyed_upload_is_sampled_by_its_key_alone() -> None:
    """DESIGN §3: adding a meter changes no other meter's sample. With keys, an upload's
    decision does not depend on the order of calls or on other uploads; the share is the
    rate; and another run seed draws another sample."""
    model = load_cost_model("default")
    keys = [f"pv-{m:05d}/{seq}" for m in range(200) for seq in range(20)]

    def decisions(order: list[str], seed: int = 9) -> dict[str, bool]:
        sampled = SERVICE_TIME_MODES["model"](model, 0.1, np.random.default_rng(seed))
        return {k: sampled._sampled(k) for k in order}

    base = decisions(keys)
    # more meters, uploads interleaved differently: the first 200 meters' decisions stand
    more = [f"pv-{m:05d}/{seq}" for m in range(300) for seq in range(20)]
    shuffled = decisions(list(np.random.default_rng(1).permutation(more)))
    assert {k: shuffled[k] for k in keys} == base
    # binomial(4000, 0.1): 400 +- 3.3 sigma (sigma = 19)
    assert 337 <= sum(base.values()) <= 463
    assert decisions(keys, seed=10) != base


def test_model_mode_writes_only_the_uploads_the_pipeline_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The uploads model mode leaves out of its sample are not encoded nor sealed: their
    size is computed. The run equals, byte for byte, one that writes every upload (so every
    size was exact, and nothing else read the bytes), and writes only the sample's."""
    base = load_scenario(
        BASELINE,
        [
            "fleet.pv.count=40",
            "fleet.wind.count=4",
            'scenario.duration="8h"',
            'pipeline.service_time="model"',
            "pipeline.pipeline_sample_rate=0.1",
        ],
    )
    hostile = FaultSpec(
        kind="malformed_upload", at_s=3600.0, meter="pv-00001", payload="billion_laughs"
    )
    scenario = replace(base, faults=(hostile,))  # forced through the pipeline: written
    encoded: list[int] = []

    def counting_encoder(*args: Any) -> bytes:
        encoded.append(1)
        return encode_meter_upload(*args)

    monkeypatch.setattr(world_module, "encode_meter_upload", counting_encoder)
    sized = run(scenario)
    written_by_sized = len(encoded)
    encoded.clear()
    monkeypatch.setattr(ServiceTime, "needs_bytes", lambda self, key: True)
    written = run(scenario)
    assert sized.kpis.uploads_delivered > 1000
    assert len(sized.rejections) == 1
    assert len(encoded) == written.kpis.uploads_started  # every upload written
    # only the sampled ones (a retry re-sends the bytes written once)
    assert written_by_sized < 0.2 * len(encoded)
    assert sized.service_time.uploads_run > 0
    assert _results_text(sized) == _results_text(written)


def test_model_mode_forces_hostile_uploads_and_needs_readings_to_skip(tmp_path: Path) -> None:
    model = load_cost_model("default")
    keyring, uploads = _sealed_uploads(50)
    pipeline = Pipeline(tmp_path / "p.sqlite", keyring=keyring)
    sampled = SERVICE_TIME_MODES["model"](model, 0.01, np.random.default_rng(1))
    forced = [sampled.upload(pipeline, body, n, force=True)[0] for body, n in uploads[:25]]
    unknown = [sampled.upload(pipeline, body)[0] for body, _ in uploads[25:]]
    assert all(o is not None and o.accepted for o in forced + unknown)
    outcome, service_s = sampled.upload(pipeline, b"<not xml", 15, force=True)
    assert outcome is not None and not outcome.accepted and service_s > 0


@pytest.mark.parametrize(
    ("mode", "rate", "rng", "match"),
    [
        ("model", 0.0, np.random.default_rng(0), r"\(0, 1\]"),
        ("model", 1.5, np.random.default_rng(0), r"\(0, 1\]"),
        ("model", 0.5, None, "Generator"),
        ("calibrated", 0.5, np.random.default_rng(0), "'model' only"),
        ("measured", 0.5, np.random.default_rng(0), "'model' only"),
    ],
)
def test_sample_rate_is_checked(
    mode: str, rate: float, rng: np.random.Generator | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        SERVICE_TIME_MODES[mode](load_cost_model("default"), rate, rng)
