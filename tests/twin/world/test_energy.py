"""A PV site's daily energy, as stored by the real pipeline, against pvlib called directly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

from twin.runner import run
from twin.scenario.loader import load_scenario
from twin.world.fleet import build_fleets, load_weather

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear")
def test_stored_daily_pv_energy_within_1pct_of_pvlib(tmp_path: Path) -> None:
    scenario = load_scenario(BASELINE, ["fleet.pv.count=3", "fleet.wind.count=0"])
    results = run(scenario, store_dir=tmp_path)
    assert results.kpis.readings_lost_total == 0
    pv = build_fleets(scenario)[0]
    weather = load_weather(scenario, 60.0)
    frame = pd.DataFrame(
        {k: getattr(weather, k)[0] for k in ("ghi", "dni", "dhi", "temp_air", "wind_speed")},
        index=weather.times_utc,
    )
    location = Location(
        weather.latitude_deg, weather.longitude_deg, tz="UTC", altitude=weather.altitude_m
    )
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        for i, meter_id in enumerate(pv.meter_ids):
            (stored_wh,) = db.execute(
                "SELECT SUM(value) FROM readings WHERE meter_id = ?", (meter_id,)
            ).fetchone()
            p = {k: float(v[i]) for k, v in pv.params.items()}
            ac_nameplate_w = p["capacity_kw"] * 1000 / p["dc_ac_ratio"]
            system = PVSystem(
                surface_tilt=p["tilt_deg"],
                surface_azimuth=p["azimuth_deg"],
                module_parameters={"pdc0": p["capacity_kw"] * 1000, "gamma_pdc": -0.0035},
                inverter_parameters={"pdc0": ac_nameplate_w / 0.96, "eta_inv_nom": 0.96},
                temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][
                    "open_rack_glass_polymer"
                ],
            )
            chain = ModelChain.with_pvwatts(system, location, transposition_model="isotropic")
            chain.run_model(frame)
            pvlib_wh = float(np.sum(chain.results.ac.to_numpy()) * 60 / 3600)
            # the day starts and ends at local midnight: what is still in flight is night
            assert stored_wh == pytest.approx(pvlib_wh, rel=0.01)
            assert pvlib_wh > p["capacity_kw"] * 1000 * 2  # a real summer day, > 2 kWh/kWp
