"""Radio parameters of LTE-M and NB-IoT: coverage classes, PRACH, power-saving wake-up.

Coverage classes follow the three coverage-enhancement (CE) levels of Rel-13 (TS 36.321
§5.1.1, TS 36.331 rsrp-ThresholdsPrachInfoList): ``normal`` (CE level 0), ``robust`` (1)
and ``extreme`` (2). A class sets how many times each transmission is repeated and so how
much slower data moves and how long round trips take.

Maximum coupling loss (MCL) bounds, used by ``ce_level_from_mcl``:
- LTE-M: 140.7 dB is the FDD LTE reference MCL and 155.7 dB the Rel-13 target with
  15 dB of enhancement (3GPP TR 36.888 §5.5 and §9); 164 dB is what CE mode B reaches
  with a 23 dBm device ("Coverage Analysis of LTE-M Category-M1", white paper by Altair,
  Ericsson, Nokia, Sequans, Sierra Wireless, Verizon et al., January 2017).
- NB-IoT: 144 dB is the GPRS reference MCL, 164 dB the target (+20 dB) of 3GPP TR 45.820
  §5.1 (clean-slate cellular IoT study); 154 dB splits the range in two equal halves.

Data rates per class (``uplink_rate_factor`` times the profile's ``uplink_rate_bps``):
- LTE-M normal: the profile's sustained HD-FDD rate (TS 36.306 Cat-M1, 1000-bit TBS);
  robust: CE mode A with 8 repetitions (mode A allows up to 32, TS 36.213 §8.0 /
  TS 36.331 pusch-maxNumRepetitionCEmodeA) -> 1/8; extreme: CE mode B, 250 bit/s uplink and
  1400 bit/s downlink at 21 dB of coverage gain (the 2017 white paper above).
- NB-IoT normal: sustained multi-tone rate of the profile (Cat-NB1 peak 62.5 kbit/s uplink,
  TS 36.306); robust: single tone with 8 repetitions, about 2 kbit/s; extreme: single tone
  with up to 128 repetitions (TS 36.211 §10.1.3), a few hundred bit/s at 164 dB MCL (3GPP TR
  45.820 §7.3 NB-IoT coverage and data-rate evaluation; R. Ratasuk et al., "NB-IoT system
  for M2M communication", IEEE WCNC Workshops 2016) -> 300 bit/s.

Round trips and wake-up times per class: LTE-M tens to hundreds of ms in normal coverage,
NB-IoT about 0.5-1 s (measured on commercial networks: B. Martinez et al., "Exploring the
performance boundaries of NB-IoT", IEEE IoT Journal 6(3), 2019; S. Ugwuanyi et al.,
Electronics 10, 2224, 2021: 837 ms), growing with repetitions up to the TR 45.820 budget of
10 s for an exception report at 164 dB (TR 45.820 §5.4). Waking from PSM requires cell
re-synchronisation and system information (PSS/SSS, MIB, SIB1-NB: seconds in deep
coverage, M. Lauridsen et al., "An empirical NB-IoT power consumption model for battery
lifetime estimation", IEEE VTC-Spring 2018); from eDRX idle the device is still camped and
re-syncs faster. These values and the class shares are defaults of this model (marked
"assumed" where no single published figure exists); scenarios override them.

PRACH (random access) per class: opportunity period, contention preambles, repetitions,
time until the outcome is known, preambleTransMax and backoff indicator, all within the
ranges of TS 36.331 (prach-ConfigIndex / nprach-Periodicity {40..2560} ms,
nprach-NumSubcarriers {12, 24, 36, 48}, numRepetitionsPerPreambleAttempt {1..128},
preambleTransMax {3..200}) and TS 36.321 Table 7.2-1/7.2-2 (backoff parameter values).
Power-saving modes: TS 23.682 §4.5.4 (PSM), TS 36.304 §7.3 (eDRX).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

COVERAGE_NAMES = ("normal", "robust", "extreme")


@dataclass(frozen=True)
class CoverageClass:
    """One coverage-enhancement level as the cell treats a meter in it (see module doc)."""

    name: str
    ce_level: int
    max_mcl_db: float
    repetitions: int
    uplink_rate_factor: float  # x profile.uplink_rate_bps
    downlink_rate_factor: float  # x profile.downlink_rate_bps
    rtt_s: float  # round trip meter <-> core once connected
    wake_psm_s: float  # re-sync + system information after PSM
    wake_edrx_s: float  # re-sync after an eDRX sleep
    rrc_factor: float  # x the profile's RRC set-up latency (repeated signalling)
    uplink_channels_used: int = 1  # channels (narrowbands / tones) one upload occupies
    share: float = 0.0  # default fraction of meters in this class (assumed)


@dataclass(frozen=True)
class PrachConfig:
    """Random-access resources of one coverage class (see module docstring)."""

    period_s: float  # one PRACH opportunity every period_s
    n_preambles: int  # contention-based preambles (NB-IoT: subcarriers)
    repetitions: int
    outcome_delay_s: float  # opportunity -> the device knows success (Msg4) or collision
    max_preamble_tx: int  # preambleTransMax(-CE)
    backoff_indicator_s: float  # retry after uniform [0, BI] (TS 36.321 §5.1.4)


LTE_M_COVERAGE: tuple[CoverageClass, ...] = (
    CoverageClass("normal", 0, 140.7, 1, 1.0, 1.0, 0.10, 0.3, 0.1, 1.0, 1, 0.85),
    CoverageClass("robust", 1, 155.7, 8, 1 / 8, 1 / 8, 0.4, 0.6, 0.2, 2.0, 1, 0.12),
    CoverageClass(
        "extreme",
        2,
        164.0,
        256,
        250.0 / 187_500.0,
        1_400.0 / 150_000.0,
        2.0,
        1.5,
        0.5,
        5.0,
        1,
        0.03,
    ),
)

LTE_M_PRACH: tuple[PrachConfig, ...] = (
    PrachConfig(0.010, 40, 1, 0.05, 10, 0.16),
    PrachConfig(0.020, 8, 8, 0.20, 10, 0.32),
    PrachConfig(0.040, 6, 32, 1.00, 10, 0.96),
)

NB_IOT_COVERAGE: tuple[CoverageClass, ...] = (
    CoverageClass("normal", 0, 144.0, 1, 1.0, 1.0, 0.8, 1.0, 0.3, 1.0, 12, 0.80),
    CoverageClass("robust", 1, 154.0, 8, 0.10, 0.25, 2.0, 2.0, 0.6, 2.0, 1, 0.15),
    CoverageClass("extreme", 2, 164.0, 64, 300.0 / 20_000.0, 0.05, 6.0, 4.0, 1.0, 5.0, 1, 0.05),
)

NB_IOT_PRACH: tuple[PrachConfig, ...] = (
    PrachConfig(0.16, 48, 2, 0.3, 10, 0.256),
    PrachConfig(0.32, 24, 8, 1.0, 10, 1.024),
    PrachConfig(0.64, 12, 32, 3.0, 10, 4.096),
)


@dataclass(frozen=True)
class PowerSavingMode:
    """How a meter waits between uploads, and what that costs when it wants to send.

    ``psm``: Power Saving Mode (TS 23.682 §4.5.4): radio off, still registered; a
    mobile-originated upload needs cell re-sync and random access. ``edrx``: extended
    idle-mode DRX (TS 36.304 §7.3): camped, pages only in paging windows; an upload needs a
    short re-sync and random access. ``connected``: stays RRC-connected (mains powered):
    no wake-up, no random access, no RRC set-up.
    """

    name: str
    wake_s: Callable[[CoverageClass], float]
    random_access: bool


POWER_SAVING_MODES: dict[str, PowerSavingMode] = {
    "psm": PowerSavingMode("psm", lambda c: c.wake_psm_s, True),
    "edrx": PowerSavingMode("edrx", lambda c: c.wake_edrx_s, True),
    "connected": PowerSavingMode("connected", lambda c: 0.0, False),
}


def paging_delay_s(edrx_cycle_s: float, rng: np.random.Generator) -> float:
    """Mobile-terminated reachability delay under eDRX: the wait for the next paging time
    window, uniform over one cycle (TS 36.304 §7.3; LTE-M cycles 5.12 s to 43.69 min,
    NB-IoT up to 2.91 h, TS 24.008 §10.5.5.32). Not on the upload path; for commands."""
    return edrx_cycle_s * float(rng.random())


def ce_level_from_mcl(mcl_db: np.ndarray, classes: Sequence[CoverageClass]) -> np.ndarray:
    """CE level (0..n-1) of each coupling loss, dB; -1 where beyond the last class (no
    service). Vectorised."""
    bounds = np.array([c.max_mcl_db for c in classes])
    level = np.searchsorted(bounds, np.asarray(mcl_db, dtype=np.float64), side="left")
    return np.where(level >= len(classes), -1, level).astype(np.int8)


def assign_coverage(
    n_meters: int, classes: Sequence[CoverageClass], rng: np.random.Generator
) -> np.ndarray:
    """A CE level per meter drawn with the classes' ``share`` (int8 array)."""
    shares = np.array([c.share for c in classes], dtype=np.float64)
    if shares.sum() <= 0:
        return np.zeros(n_meters, dtype=np.int8)
    return rng.choice(len(classes), size=n_meters, p=shares / shares.sum()).astype(np.int8)
