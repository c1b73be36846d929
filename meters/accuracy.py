"""Meter accuracy: IEC 62053 accuracy classes as an error model, and the electrical channels.

Accuracy classes (percentage error limits at reference conditions, unity power factor and at
power factor 0.5 inductive / 0.8 capacitive, as a function of the current I):

- IEC 62053-22:2003 Table 4, transformer-operated static meters, classes 0.2S and 0.5S
  (current as a fraction of the nominal current In). Starting current 0.001 In.
- IEC 62053-21:2003 Table 6, direct-connected static meters, classes 1 and 2 (current as a
  fraction of the basic current Ib). Starting current 0.004 Ib (class 1) and 0.005 Ib
  (class 2).

(The 2020 editions express the current ranges through Imin and Itr; this module keeps the
2003 tables, which state them as fractions of In and Ib.)

Below the lowest current of a table the standards set no limit (the meter must only start
registering at the starting current); this model extends the widest limit down to the
starting current. Above Imax no limit is defined either; the limit of the top range holds.

Error model (a modelling choice, stated here because the standards give limits, not a
distribution): the error of a reading, in units of its class limit ``L(I)`` (so the error
curve is widest at low current, as the limits are), is

    e / L(I) = a_m + sigma * z,   a_m ~ Uniform(-s, s) per meter,   z ~ N(0, 1) per reading

``a_m`` is the meter's calibration offset, fixed for its life; ``s`` (``systematic_share``,
default 0.5: meters leave the factory adjusted to within half their class limit, which leaves
the other half for the influence quantities of IEC 62053 such as temperature and voltage) and
``sigma = (1 - s) / z_{(1 + p)/2}`` with ``p`` the stated probability. Then for *every* meter
``P(|e| <= L(I)) >= P(|sigma z| <= 1 - s) = p``: the total error stays within the class
limits with at least probability ``p`` per reading.

No-load condition (IEC 62053-21/-22, "test of no-load condition": no more than one output
pulse with voltage applied and no current): a reading of zero energy stays exactly zero,
errors are multiplicative, so the meter never creeps. With ``no_load_cutoff`` a reading whose
current is below the starting current registers zero, as the no-load threshold of a metering
IC does (it is set at or below the starting current so that the starting test passes and
the no-load test cannot fail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: EN 50160:2010 clause 4.2.2: supply voltage variations within +-10 % of the nominal voltage
#: (for 95 % of the 10-min means of each week on LV networks); the model keeps every value in it.
EN50160_VOLTAGE_BAND = 0.10

#: Recommended maximum voltage drop from the origin of an LV installation to a load, %:
#: 3 % for lighting (IEC 60364-5-52:2009 Annex G, Table G.52.1). The default load-dependent drop
#: at rated power. A generator exporting through the service impedance RAISES the voltage
#: instead: pass a negative drop (VDE-AR-N 4105:2018 limits that rise to 3 % at the point of
#: connection).
DEFAULT_VOLTAGE_DROP_AT_RATED_PCT = 3.0

#: Spread of the voltage at the meter around nominal, as fractions of nominal: a fixed offset
#: per meter (its position on the feeder and the transformer tap; sd 2 %) and the slow variation
#: of a reading (sd 0.5 %). Model assumptions, chosen to sit well inside EN 50160's +-10 %.
DEFAULT_SITE_VOLTAGE_SD = 0.02
DEFAULT_READING_VOLTAGE_SD = 0.005

#: Meters x steps processed at a time (bounds the temporaries to a few MB).
_BLOCK_ELEMENTS = 1 << 16


@dataclass(frozen=True)
class AccuracyClass:
    """Percentage error limits of an IEC 62053 accuracy class vs the current.

    ``current_bounds[k]`` is the lower end of current range k (fraction of In or Ib,
    ascending) and ``limits_pct[k]`` its limit (+- %) at unity power factor;
    ``reduced_pf_*`` the same at power factor 0.5 inductive / 0.8 capacitive.
    """

    name: str
    standard: str
    current_bounds: tuple[float, ...]
    limits_pct: tuple[float, ...]
    reduced_pf_bounds: tuple[float, ...]
    reduced_pf_limits_pct: tuple[float, ...]
    starting_fraction: float  # starting current, fraction of In (or Ib)

    def limits_at(
        self, load_fraction: np.ndarray, power_factor: np.ndarray | float | None = None
    ) -> np.ndarray:
        """The +- limit, %, at each current (fraction of In/Ib) and power factor.

        At unity power factor (``None``) the unity table applies. Between PF 1 and 0.5 the
        limit is interpolated linearly in PF between the two tables (the standard tests
        only those two points); at PF <= 0.5 the reduced-PF table holds."""
        x = np.abs(np.asarray(load_fraction, dtype=np.float64))
        unity = _step_lookup(self.current_bounds, self.limits_pct, x)
        if power_factor is None:
            return unity
        reduced = _step_lookup(self.reduced_pf_bounds, self.reduced_pf_limits_pct, x)
        weight = np.clip((1.0 - np.abs(np.asarray(power_factor, dtype=np.float64))) / 0.5, 0, 1)
        out: np.ndarray = unity + weight * (reduced - unity)
        return out


def _step_lookup(bounds: tuple[float, ...], limits: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """``limits[k]`` for ``bounds[k] <= x < bounds[k+1]``; below ``bounds[0]``, ``limits[0]``."""
    out = np.full(x.shape, limits[0], dtype=np.float64)
    for bound, limit in zip(bounds[1:], limits[1:], strict=True):
        np.copyto(out, limit, where=x >= bound)
    return out


#: Registry of accuracy classes by name (the scenario's ``meter.accuracy_class``).
ACCURACY_CLASSES: dict[str, AccuracyClass] = {
    "0.2S": AccuracyClass(
        "0.2S",
        "IEC 62053-22:2003 Table 4 (transformer operated, fractions of In)",
        (0.01, 0.05),
        (0.4, 0.2),
        (0.02, 0.1),
        (0.5, 0.3),
        0.001,
    ),
    "0.5S": AccuracyClass(
        "0.5S",
        "IEC 62053-22:2003 Table 4 (transformer operated, fractions of In)",
        (0.01, 0.05),
        (1.0, 0.5),
        (0.02, 0.1),
        (1.0, 0.6),
        0.001,
    ),
    "1": AccuracyClass(
        "1",
        "IEC 62053-21:2003 Table 6 (direct connected, fractions of Ib)",
        (0.05, 0.1),
        (1.5, 1.0),
        (0.1, 0.2),
        (1.5, 1.0),
        0.004,
    ),
    "2": AccuracyClass(
        "2",
        "IEC 62053-21:2003 Table 6 (direct connected, fractions of Ib)",
        (0.05, 0.1),
        (2.5, 2.0),
        (0.1, 0.2),
        (2.5, 2.0),
        0.005,
    ),
}


def _accuracy_class(accuracy_class: str | AccuracyClass) -> AccuracyClass:
    if isinstance(accuracy_class, AccuracyClass):
        return accuracy_class
    try:
        return ACCURACY_CLASSES[accuracy_class]
    except KeyError:
        raise ValueError(
            f"accuracy_class={accuracy_class!r}: expected one of {sorted(ACCURACY_CLASSES)}"
        ) from None


def random_error_sd(probability: float, systematic_share: float) -> float:
    """sd of the per-reading error in units of the class limit: ``(1 - s) / z_{(1+p)/2}``,
    so that ``|a_m + sd * z| <= 1`` with probability >= ``probability`` for every meter."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability={probability}: expected 0 < probability < 1")
    if not 0.0 <= systematic_share < 1.0:
        raise ValueError(f"systematic_share={systematic_share}: expected 0 <= share < 1")
    return (1.0 - systematic_share) / NormalDist().inv_cdf(0.5 + probability / 2.0)


def apply_accuracy(
    energy_wh: np.ndarray,
    load_fraction: np.ndarray,
    accuracy_class: str | AccuracyClass,
    rngs: Sequence[np.random.Generator],
    *,
    power_factor: np.ndarray | float | None = None,
    probability: float = 0.99,
    systematic_share: float = 0.5,
    no_load_cutoff: bool = True,
) -> np.ndarray:
    """Energy as the meters register it: true ``energy_wh`` [n_meters, n_steps] with the
    class error model of this module, float64 of the same shape.

    ``load_fraction`` [n_meters, n_steps] (or broadcastable) is the current as a fraction of
    the meter's In (0.2S, 0.5S) or Ib (1, 2): ``P / P_rated`` at nominal voltage and power
    factor. ``rngs[i]`` is meter i's own generator: it draws the meter's calibration offset
    (one uniform), then one normal per step, so a meter's errors depend on nothing else.
    Zero energy stays zero (no creep); with ``no_load_cutoff`` readings below the starting
    current register zero. Sources and the proof of the probability bound: module docstring.
    """
    cls = _accuracy_class(accuracy_class)
    energy = np.atleast_2d(np.asarray(energy_wh, dtype=np.float64))
    n_meters, n_steps = energy.shape
    if len(rngs) != n_meters:
        raise ValueError(f"rngs: got {len(rngs)} generators for {n_meters} meters")
    sd = random_error_sd(probability, systematic_share)
    load = np.broadcast_to(np.asarray(load_fraction, dtype=np.float64), energy.shape)
    pf = None if power_factor is None else np.broadcast_to(power_factor, energy.shape)
    out = np.empty_like(energy)
    # Blocks of meters keep the temporaries in cache (fresh 20 MB arrays cost more in page
    # faults than the arithmetic).
    rows = max(1, _BLOCK_ELEMENTS // max(n_steps, 1))
    units = np.empty((min(rows, n_meters), n_steps))  # error in units of the class limit
    for b0 in range(0, n_meters, rows):
        b1 = min(b0 + rows, n_meters)
        block = units[: b1 - b0]
        offsets = np.empty((b1 - b0, 1))
        for i in range(b0, b1):
            offsets[i - b0] = rngs[i].uniform(-systematic_share, systematic_share)
            rngs[i].standard_normal(out=block[i - b0])
        block *= sd
        block += offsets
        block *= cls.limits_at(load[b0:b1], None if pf is None else pf[b0:b1])
        block *= 0.01
        block += 1.0
        np.multiply(energy[b0:b1], block, out=out[b0:b1])
        if no_load_cutoff:
            out[b0:b1][np.abs(load[b0:b1]) < cls.starting_fraction] = 0.0
    return out


def electrical_channels(
    power_w: np.ndarray,
    nominal_voltage_v: float | np.ndarray,
    power_factor: float | np.ndarray,
    rngs: Sequence[np.random.Generator],
    phases: int = 1,
    *,
    rated_power_w: np.ndarray | None = None,
    voltage_drop_at_rated_pct: float = DEFAULT_VOLTAGE_DROP_AT_RATED_PCT,
    site_voltage_sd: float = DEFAULT_SITE_VOLTAGE_SD,
    reading_voltage_sd: float = DEFAULT_READING_VOLTAGE_SD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voltage (V), current (A) and power factor a meter records, each [n_meters, n_steps].

    ``power_w`` [n_meters, n_steps] is the active power through the meter; ``nominal_voltage_v``
    the nominal PHASE-TO-NEUTRAL voltage (IEC 60038: 230 V of a 230/400 V system), scalar or
    [n_meters]; ``power_factor`` in (0, 1], scalar, [n_meters] or [n_meters, n_steps].

    Voltage: ``V = Vn (1 + u_m + u_t - d |P| / P_rated)`` clipped to EN 50160's +-10 % band,
    with ``u_m ~ N(0, site_voltage_sd)`` per meter, ``u_t ~ N(0, reading_voltage_sd)`` per
    reading (independent), ``d = voltage_drop_at_rated_pct / 100`` (IEC 60364-5-52 Annex G;
    negative for a generator's voltage rise) and ``P_rated = rated_power_w`` (default: each
    meter's peak ``|P|``). ``rngs[i]`` draws meter i's ``u_m`` then its ``u_t``.

    Current: ``I = |P| / (V PF)`` single phase; three phase balanced
    ``I = |P| / (3 V PF) = |P| / (sqrt(3) V_LL PF)`` with ``V_LL = sqrt(3) V`` (the per-phase
    line current). The power factor channel is the given PF (a PF is undefined at zero
    current; the meter keeps reporting the configured one).
    """
    if phases not in (1, 3):
        raise ValueError(f"phases={phases}: expected 1 or 3")
    power = np.atleast_2d(np.asarray(power_w, dtype=np.float64))
    n_meters, n_steps = power.shape
    if len(rngs) != n_meters:
        raise ValueError(f"rngs: got {len(rngs)} generators for {n_meters} meters")
    nominal = _per_meter(nominal_voltage_v, n_meters, "nominal_voltage_v")
    if np.any(nominal <= 0):
        raise ValueError(f"nominal_voltage_v={nominal_voltage_v}: expected > 0")
    pf = np.asarray(power_factor, dtype=np.float64)
    if pf.ndim == 1:
        pf = pf[:, None]
    if np.any(pf <= 0) or np.any(pf > 1):
        raise ValueError(f"power_factor={power_factor}: expected 0 < power_factor <= 1")
    pf_out = np.broadcast_to(pf, power.shape).astype(np.float64)
    rated = (
        np.abs(power).max(axis=1, initial=0.0)
        if rated_power_w is None
        else _per_meter(rated_power_w, n_meters, "rated_power_w")
    )
    # relative drop per W of each meter (0 for a meter with no rated power)
    drop_per_w = np.divide(
        voltage_drop_at_rated_pct / 100.0, rated, out=np.zeros(n_meters), where=rated > 0
    )
    voltage_v = np.empty_like(power)
    current_a = np.empty_like(power)
    rows = max(1, _BLOCK_ELEMENTS // max(n_steps, 1))  # blocks of meters, as in apply_accuracy
    magnitude = np.empty((min(rows, n_meters), n_steps))
    for b0 in range(0, n_meters, rows):
        b1 = min(b0 + rows, n_meters)
        relative = voltage_v[b0:b1]
        site = np.empty((b1 - b0, 1))
        for i in range(b0, b1):
            site[i - b0] = rngs[i].standard_normal()
            rngs[i].standard_normal(out=relative[i - b0])
        mag = np.abs(power[b0:b1], out=magnitude[: b1 - b0])
        relative *= reading_voltage_sd
        relative += site_voltage_sd * site
        relative -= drop_per_w[b0:b1, None] * mag
        np.clip(relative, -EN50160_VOLTAGE_BAND, EN50160_VOLTAGE_BAND, out=relative)
        relative += 1.0
        relative *= nominal[b0:b1, None]  # now the voltage, V
        cur = current_a[b0:b1]
        np.multiply(relative, pf_out[b0:b1], out=cur)
        cur *= phases
        np.divide(mag, cur, out=cur)
    return voltage_v, current_a, pf_out


def _per_meter(value: float | np.ndarray, n: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {array.shape}")
    return array
