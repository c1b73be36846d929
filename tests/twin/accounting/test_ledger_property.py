"""Property (hypothesis): random network settings and fault schedules (cell outages and
flapping, degraded coverage, VPN drops against small gateway buffers, MDC power losses,
hostile uploads), on one MDC or two with a backbone between them (failover) and one or
two cells per region, with the pipeline in-process or in a worker process, never unbalance
the ledger, checked every simulated minute and against the store's row count at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario, load_scenario
from twin.scenario.mdc import FailureSpec

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
HORIZON_S = 3 * 3600.0
_BASE = load_scenario(
    SCENARIOS / "baseline.toml",
    ["fleet.pv.count=3", "fleet.wind.count=1", 'scenario.duration="3h"'],
)
#: Two MDCs (north, south) joined by a backbone link, meters in both regions.
_FAILOVER = load_scenario(
    SCENARIOS / "mdc_failover.toml",
    [
        "fleet.pv.count=3",
        "fleet.pvsouth.count=1",
        "fleet.wind.count=1",
        'scenario.duration="3h"',
        'fault.0.at="1h"',  # replaced by the drawn faults
    ],
)

outages = st.builds(
    lambda at, dur: FaultSpec(kind="cell_outage", at_s=at, duration_s=dur, region="north"),
    st.floats(0.0, HORIZON_S - 60.0),
    st.floats(60.0, 4 * 3600.0),
)
flapping = st.builds(
    lambda at, dur, mtbf, mttr: FaultSpec(
        kind="cell_flapping",
        at_s=at,
        duration_s=dur,
        region="north",
        cell=0,
        params=(("mtbf_s", mtbf), ("mttr_s", mttr)),
    ),
    st.floats(0.0, HORIZON_S - 60.0),
    st.floats(60.0, 4 * 3600.0),
    st.floats(30.0, 3600.0),
    st.floats(10.0, 1800.0),
)
degraded = st.builds(
    lambda at, dur, loss: FaultSpec(
        kind="degraded_coverage",
        at_s=at,
        duration_s=dur,
        region="north",
        params=(("extra_latency_s", 2.0), ("extra_loss_probability", loss), ("rate_factor", 0.2)),
    ),
    st.floats(0.0, HORIZON_S - 60.0),
    st.floats(60.0, 4 * 3600.0),
    st.sampled_from([0.0, 0.5, 1.0]),
)
mdc_faults = st.builds(
    lambda kind, at, dur: FaultSpec(kind=kind, at_s=at, duration_s=dur, mdc="north"),
    st.sampled_from(["vpn_drop", "mdc_power_loss"]),
    st.floats(0.0, HORIZON_S - 60.0),
    st.floats(1.0, 4 * 3600.0),
)
malformed = st.builds(
    lambda at, meter, payload: FaultSpec(
        kind="malformed_upload", at_s=at, meter=meter, payload=payload
    ),
    st.floats(0.0, HORIZON_S - 60.0),
    st.sampled_from(["pv-00000", "pv-00002", "wind-00000"]),
    st.sampled_from(["billion_laughs", "external_entity", "truncated"]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    base = draw(st.sampled_from([_BASE, _FAILOVER]))
    cellular = replace(
        _BASE.cellular,
        loss_probability=draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])),
        ack_loss_probability=draw(st.sampled_from([0.0, 0.2, 0.7, 1.0])),
        max_attempts=draw(st.integers(1, 20)),
        ack_timeout_s=draw(st.sampled_from([0.001, 1.0, 30.0, 1200.0])),
        backoff_cap_s=draw(st.sampled_from([0.001, 120.0, 7200.0])),
        uplink_rate_bps=draw(st.sampled_from([100.0, 10_000.0, 187_500.0])),
    )
    buffer = draw(st.sampled_from([1, 7, 16, 40, 2880]))
    fleets = tuple(replace(f, meter=replace(f.meter, buffer_readings=buffer)) for f in base.fleets)
    ack = draw(st.sampled_from(["receipt", "commit"]))
    failures = draw(st.sampled_from([None, FailureSpec("exponential", 1800.0, 300.0, None)]))
    cores = draw(st.integers(1, 4))
    speed = draw(st.sampled_from([1e-7, 1e-3, 1.0]))
    mdcs = tuple(
        replace(m, sku=None, ack=ack, failures=failures, cores_per_server=cores, speed_factor=speed)
        for m in base.mdcs
    )
    faults = draw(
        st.lists(st.one_of(outages, flapping, degraded, mdc_faults, malformed), max_size=4)
    )
    cellular = replace(
        cellular,
        reconnect_spread=draw(st.sampled_from(["none", "uniform", "beta_3gpp"])),
        backoff_jitter=draw(st.sampled_from(["none", "full", "equal", "decorrelated"])),
    )
    network = replace(
        base.network,
        cells_per_region=draw(st.integers(1, 2)),
        vpn=replace(
            base.network.vpn,
            buffer_bytes=draw(st.sampled_from([0, 3000, 20_000, 50_000_000])),
            dynamics=replace(
                base.network.vpn.dynamics,
                drop_mtbf_s=draw(st.sampled_from([None, 600.0, 3600.0])),
                rekey_interval_s=draw(st.sampled_from([600.0, 8 * 3600.0])),
            ),
        ),
    )
    return replace(
        base,
        network=network,
        cellular=cellular,
        fleets=fleets,
        mdcs=mdcs,
        faults=tuple(faults),
        seed=draw(st.integers(0, 1000)),
    )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(), pipeline_workers=st.sampled_from([0, 1]))
def test_random_fault_schedules_never_unbalance_the_ledger(
    scenario: Scenario, pipeline_workers: int, tmp_path: Path, ledger_check: Callable[..., None]
) -> None:
    # audits raise LedgerError on imbalance; the store is replaced by each example's run;
    # with the pipeline in a worker, a wrong outcome stops the run (PipelineWorkerError)
    results = run(
        scenario, store_dir=tmp_path, audit_every_s=60.0, pipeline_workers=pipeline_workers
    )
    k = results.kpis
    assert k.readings_generated == sum(f.count for f in scenario.fleets) * 180
    ledger_check(results, tmp_path)
    rejected = sum(r.readings for r in results.rejections)
    assert k.readings_lost["rejected_invalid"] <= rejected
