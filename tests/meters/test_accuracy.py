"""IEC 62053 accuracy classes as an error model, and the meter's electrical channels."""

from __future__ import annotations

import numpy as np
import pytest

from meters.accuracy import (
    ACCURACY_CLASSES,
    EN50160_VOLTAGE_BAND,
    apply_accuracy,
    electrical_channels,
    random_error_sd,
)


def _rngs(n: int, seed: int = 1) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, i]) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "current", "unity_pct", "reduced_pf_pct"),
    [
        # IEC 62053-22 Table 4, class 0.5S (fractions of In)
        (
            "0.5S",
            [0.01, 0.03, 0.05, 0.08, 0.1, 1.0],
            [1.0, 1.0, 0.5, 0.5, 0.5, 0.5],
            [1.0, 1.0, 1.0, 1.0, 0.6, 0.6],
        ),
        # IEC 62053-22 Table 4, class 0.2S
        (
            "0.2S",
            [0.01, 0.03, 0.05, 0.08, 0.1, 1.0],
            [0.4, 0.4, 0.2, 0.2, 0.2, 0.2],
            [0.5, 0.5, 0.5, 0.5, 0.3, 0.3],
        ),
        # IEC 62053-21 Table 6, direct connected (fractions of Ib)
        (
            "1",
            [0.05, 0.08, 0.1, 0.15, 0.2, 1.0],
            [1.5, 1.5, 1.0, 1.0, 1.0, 1.0],
            [1.5, 1.5, 1.5, 1.5, 1.0, 1.0],
        ),
        (
            "2",
            [0.05, 0.08, 0.1, 0.15, 0.2, 1.0],
            [2.5, 2.5, 2.0, 2.0, 2.0, 2.0],
            [2.5, 2.5, 2.5, 2.5, 2.0, 2.0],
        ),
    ],
)
def test_limits_are_the_published_tables(
    name: str, current: list[float], unity_pct: list[float], reduced_pf_pct: list[float]
) -> None:
    cls = ACCURACY_CLASSES[name]
    assert cls.limits_at(np.array(current)).tolist() == unity_pct
    assert cls.limits_at(np.array(current), 0.5).tolist() == reduced_pf_pct
    # half-way in PF, half-way between the two tables
    mid = cls.limits_at(np.array(current), 0.75)
    np.testing.assert_allclose(mid, (np.array(unity_pct) + np.array(reduced_pf_pct)) / 2)


def test_starting_currents_are_the_published_ones() -> None:
    starting = {name: cls.starting_fraction for name, cls in ACCURACY_CLASSES.items()}
    assert starting == {"0.2S": 0.001, "0.5S": 0.001, "1": 0.004, "2": 0.005}


@pytest.mark.parametrize("probability", [0.95, 0.99])
def test_every_meter_stays_within_its_class_at_the_stated_probability(probability: float) -> None:
    n_meters, n_steps = 300, 2000
    rng = np.random.default_rng(7)
    # loads across the whole range, the wide low-current band included
    load = rng.uniform(0.002, 1.2, size=(n_meters, n_steps))
    energy = np.full((n_meters, n_steps), 250.0)
    cls = ACCURACY_CLASSES["0.5S"]
    measured = apply_accuracy(energy, load, "0.5S", _rngs(n_meters), probability=probability)
    units = (measured / energy - 1.0) * 100.0 / cls.limits_at(load)
    within = np.mean(np.abs(units) <= 1.0, axis=1)
    # binomial standard error of one meter's fraction; 4 se below p still fails a model
    # that is off by a few tenths of a percent
    se = np.sqrt(probability * (1 - probability) / n_steps)
    assert within.min() >= probability - 4 * se
    # and the errors do use the class: total variance in limit units = s^2/3 + sd^2
    # (uniform calibration offset +-s, s = 0.5), within 12 % (about 4 se for 300 meters)
    sd = random_error_sd(probability, 0.5)
    np.testing.assert_allclose(units.var(), 0.5**2 / 3 + sd**2, rtol=0.12)
    # each meter's mean error is its calibration offset, inside +-s
    assert np.abs(units.mean(axis=1)).max() <= 0.5 + 4 * sd / np.sqrt(n_steps)


def test_class_2_is_wider_than_0_5s_by_the_ratio_of_limits() -> None:
    load = np.full((50, 500), 0.5)
    energy = np.full_like(load, 100.0)
    err_05 = apply_accuracy(energy, load, "0.5S", _rngs(50)) / energy - 1.0
    err_2 = apply_accuracy(energy, load, "2", _rngs(50)) / energy - 1.0
    # same generators, so the same draws: the error scales with the limit (2.0 % vs 0.5 %)
    np.testing.assert_allclose(err_2, 4.0 * err_05, rtol=1e-9)
    assert np.percentile(np.abs(err_2), 99) > 3.5 * np.percentile(np.abs(err_05), 99)


def test_zero_stays_zero_and_below_starting_current_registers_nothing() -> None:
    energy = np.array([[0.0, 0.0, 5.0, 5.0, 5.0]])
    load = np.array([[0.0, 0.5, 0.0005, 0.002, 0.5]])
    out = apply_accuracy(energy, load, "0.5S", _rngs(1))
    assert out[0, 0] == 0.0 and out[0, 1] == 0.0  # no creep (IEC 62053 no-load condition)
    assert out[0, 2] == 0.0  # below 0.001 In: the no-load threshold
    assert out[0, 3] != 5.0 and abs(out[0, 3] / 5.0 - 1) < 0.01 * 3  # registers, with error
    kept = apply_accuracy(energy, load, "0.5S", _rngs(1), no_load_cutoff=False)
    assert kept[0, 2] != 0.0 and kept[0, 0] == 0.0


def test_a_meters_errors_depend_only_on_its_own_generator() -> None:
    energy = np.full((3, 100), 10.0)
    load = np.full_like(energy, 0.3)
    three = apply_accuracy(energy, load, "1", _rngs(3))
    alone = apply_accuracy(energy[1:2], load[1:2], "1", _rngs(3)[1:2])
    assert three[1].tobytes() == alone[0].tobytes()


def test_bad_arguments_name_what_was_expected() -> None:
    energy = np.ones((1, 3))
    with pytest.raises(ValueError, match=r"accuracy_class='3'.*expected one of"):
        apply_accuracy(energy, energy, "3", _rngs(1))
    with pytest.raises(ValueError, match="rngs: got 2 generators for 1 meters"):
        apply_accuracy(energy, energy, "1", _rngs(2))
    with pytest.raises(ValueError, match=r"probability=1\.5"):
        apply_accuracy(energy, energy, "1", _rngs(1), probability=1.5)
    with pytest.raises(ValueError, match="phases=2: expected 1 or 3"):
        electrical_channels(energy, 230.0, 1.0, _rngs(1), phases=2)
    with pytest.raises(ValueError, match=r"power_factor=0\.0"):
        electrical_channels(energy, 230.0, 0.0, _rngs(1))


@pytest.mark.parametrize("phases", [1, 3])
def test_current_is_power_over_voltage_and_power_factor(phases: int) -> None:
    rng = np.random.default_rng(3)
    power = rng.uniform(0.0, 20_000.0, size=(20, 300))
    pf = rng.uniform(0.8, 1.0, size=20)
    voltage, current, pf_out = electrical_channels(power, 230.0, pf, _rngs(20), phases=phases)
    assert voltage.shape == current.shape == pf_out.shape == power.shape
    np.testing.assert_allclose(pf_out, np.broadcast_to(pf[:, None], power.shape))
    # P = V I PF per phase; three phase balanced: P = 3 V_ph I PF = sqrt(3) V_LL I PF
    np.testing.assert_allclose(phases * voltage * current * pf_out, power, rtol=1e-12)
    if phases == 3:
        np.testing.assert_allclose(np.sqrt(3) * (np.sqrt(3) * voltage) * current * pf_out, power)


def test_voltage_stays_in_the_en50160_band_and_drops_with_load() -> None:
    power = np.tile(np.linspace(0.0, 10_000.0, 101), (200, 1))
    # an extreme spread and drop: the +-10 % band still holds
    v_wild, _, _ = electrical_channels(
        power, 230.0, 1.0, _rngs(200), site_voltage_sd=0.08, voltage_drop_at_rated_pct=8.0
    )
    assert v_wild.min() >= 230.0 * (1 - EN50160_VOLTAGE_BAND) - 1e-9
    assert v_wild.max() <= 230.0 * (1 + EN50160_VOLTAGE_BAND) + 1e-9
    # without noise the drop is exactly drop% x P / P_rated (IEC 60364-5-52: 3 %)
    v_clean, _, _ = electrical_channels(
        power[:1], 230.0, 1.0, _rngs(1), site_voltage_sd=0.0, reading_voltage_sd=0.0
    )
    np.testing.assert_allclose(v_clean[0], 230.0 * (1 - 0.03 * np.linspace(0, 1, 101)))
    # a generator's voltage rise: a negative drop
    v_rise, _, _ = electrical_channels(
        power[:1],
        230.0,
        1.0,
        _rngs(1),
        site_voltage_sd=0.0,
        reading_voltage_sd=0.0,
        voltage_drop_at_rated_pct=-3.0,
        rated_power_w=np.array([20_000.0]),
    )
    np.testing.assert_allclose(v_rise[0, -1], 230.0 * 1.015)
    # default noise: sd of the voltage about sqrt(2 %^2 + 0.5 %^2) of nominal at zero load
    v, _, _ = electrical_channels(np.zeros((2000, 5)), 230.0, 1.0, _rngs(2000))
    np.testing.assert_allclose(v.std() / 230.0, np.hypot(0.02, 0.005), rtol=0.08)
