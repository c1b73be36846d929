"""Energy per sample interval and its quantisation into ESPI register values."""

from __future__ import annotations

import numpy as np

#: ESPI ``Int48`` (espiDerived.xsd; NAESB REQ.21): a signed 48-bit integer. The shipped XSD
#: allows +2**47 as its maximum (one above the 48-bit range); we keep to the true range.
INT48_MIN = -(2**47)
INT48_MAX = 2**47 - 1

_SECONDS_PER_HOUR = 3600.0


def interval_energy_wh(power_w: np.ndarray, step_s: float) -> np.ndarray:
    """Energy in each sample interval, Wh: mean power (W) times the interval length (s) / 3600.

    ``power_w`` holds interval means (as the weather and source models produce), so this
    rectangle rule is exact for them. Any shape; float64.
    """
    if not step_s > 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    return np.asarray(power_w, dtype=np.float64) * (step_s / _SECONDS_PER_HOUR)


def quantise_register(energy_wh: np.ndarray, power_of_ten_multiplier: int) -> np.ndarray:
    """Energy as ESPI IntervalReading values: int64 in units of 10**m Wh, rounded half-even.

    ``value = round(energy_wh / 10**m)`` (ESPI ReadingType.powerOfTenMultiplier m, uom Wh).
    Raises ValueError if a value is not finite or falls outside the ESPI Int48 range.
    """
    energy = np.asarray(energy_wh, dtype=np.float64)
    m = int(power_of_ten_multiplier)
    # 10.0**k is exact for 0 <= k <= 22, so divide for m >= 0 and multiply for m < 0.
    scaled = energy / 10.0**m if m >= 0 else energy * 10.0 ** (-m)
    if not np.all(np.isfinite(scaled)):
        raise ValueError("energy_wh must be finite")
    rounded = np.rint(scaled)  # IEEE round-half-to-even
    if rounded.size and (rounded.min() < INT48_MIN or rounded.max() > INT48_MAX):
        raise ValueError(
            f"register value outside the ESPI Int48 range [{INT48_MIN}, {INT48_MAX}] with "
            f"power_of_ten_multiplier={m}: use a larger multiplier"
        )
    return rounded.astype(np.int64)
