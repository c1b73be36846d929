"""Radio parameters of LTE-M and NB-IoT: coverage classes, PRACH, power-saving wake-up.

Coverage classes follow the three coverage-enhancement (CE) levels of Rel-13 (TS 36.321
§5.1.1, TS 36.331 rsrp-ThresholdsPrachInfoList): ``normal`` (CE level 0), ``robust`` (1)
and ``extreme`` (2). A class sets how fast data moves, how long round trips, the wake-up,
random access and the RRC set-up take.

An upload attempt from power saving (``network.cellular.SharedCell``) is: wake-up (cell
re-synchronisation and the MIB: ``wake_psm_s``, or ``wake_edrx_s`` when camped), the wait
for the class's next PRACH opportunity, random access up to contention resolution (Msg1 to
Msg4: ``PrachConfig.outcome_delay_s``), the rest of the RRC/NAS set-up before user data
(security and data bearer: the profile's log-normal set-up latency times ``rrc_factor``),
the transport's round trips, the bytes at the class's rates, half a round trip to the core.

Sources of the defaults. The 3GPP-style evaluations count wake-up, random access and the
message at the radio; field tests count what a device does from a send command. The
validation suite (tests/network/test_published_latency.py, table in
docs/network-validation.md) reproduces each figure the way it was counted.

- [TR36888] 3GPP TR 36.888 V12.0.0 (2013), low-cost MTC on LTE: 140.7 dB FDD LTE
  reference MCL, 155.7 dB Rel-13 target (15 dB enhancement), §5.5 and §9.
- [TR45820] 3GPP TR 45.820 V13.1.0 (2015), cellular IoT: 144 dB GPRS reference MCL, 164 dB
  target (+20 dB) with at least 160 bit/s at layer 3, exception report within 10 s at
  164 dB (§5).
- [WP17] "Coverage Analysis of LTE-M Category-M1", industry white paper V1.0, January
  2017: 21 dB of coverage gain (164 dB MCL with a 23 dBm device and TR 45.820 noise
  figures) at 1400 bit/s downlink and 250 bit/s uplink.
- [WP18] "Evaluation of LTE-M towards 5G IoT requirements", industry white paper V1.1,
  March 2018: message latency 6.2 s at 164 dB, 0.1 s at the edge of normal coverage.
- [Huang12] J. Huang et al., "A close examination of performance and power
  characteristics of 4G LTE networks", ACM MobiSys 2012: promotion from RRC_IDLE to
  RRC_CONNECTED on a commercial LTE network, about 260 ms.
- [Robinson19] D. Robinson, "LTE Cat-NB (Narrowband) Performance Evaluation", MEng
  thesis, Stellenbosch University, 2019: mean time to send a 128-byte UDP datagram on a
  commercial NB-IoT network (Vodacom, Huawei RAN): 0.55 s in ECL 0, 2.91 s in ECL 1.
- [Ugwuanyi21] S. Ugwuanyi, G. Paul, J. Irvine, "Survey of IoT for developing countries:
  performance analysis of LoRaWAN and cellular NB-IoT networks", Electronics 10(18), 2224,
  2021: NB-IoT latency 837 ms.
- Frame timing: LTE PSS/SSS every 5 ms and the MIB on the PBCH in a 40 ms TTI (TS 36.211
  §6.6, §6.11); NB-IoT NPSS every 10 ms, NSSS every 20 ms, MIB-NB in eight 80 ms blocks of
  a 640 ms TTI (TS 36.211 §10.2).

Values marked "assumed" have no single published figure; they lie within the ranges of
TS 36.331 (prach-ConfigIndex / nprach-Periodicity {40..2560} ms, nprach-NumSubcarriers
{12, 24, 36, 48}, numRepetitionsPerPreambleAttempt {1..128}, preambleTransMax {3..200}) and
TS 36.321 Tables 7.2-1/7.2-2 (backoff parameter values), and scenarios override them.
Power-saving modes: TS 23.682 §4.5.4 (PSM), TS 36.304 §7.3 (eDRX).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

COVERAGE_NAMES = ("normal", "robust", "extreme")


@dataclass(frozen=True)
class CoverageClass:
    """One coverage-enhancement level as the cell treats a meter in it (see module doc).

    ``max_mcl_db``: deepest coupling loss of the class, dB; ``repetitions``: of each
    uplink transmission; ``uplink_rate_factor`` / ``downlink_rate_factor``: times the
    profile's rates; ``rtt_s``: round trip meter <-> core once connected; ``wake_psm_s``:
    re-synchronisation and MIB after PSM; ``wake_edrx_s``: re-synchronisation when camped
    (eDRX); ``rrc_factor``: times the profile's RRC/NAS set-up latency;
    ``uplink_channels_used``: channels (narrowbands / tones) one upload occupies;
    ``share``: default fraction of meters in the class (assumed).
    """

    name: str
    ce_level: int
    max_mcl_db: float
    repetitions: int
    uplink_rate_factor: float
    downlink_rate_factor: float
    rtt_s: float
    wake_psm_s: float
    wake_edrx_s: float
    rrc_factor: float
    uplink_channels_used: int = 1
    share: float = 0.0


@dataclass(frozen=True)
class PrachConfig:
    """Random-access resources of one coverage class: one opportunity every ``period_s``,
    ``n_preambles`` contention preambles (NB-IoT: subcarriers), ``repetitions`` of a
    preamble, ``outcome_delay_s`` from the opportunity until the device knows success
    (Msg4, contention resolution) or collision, ``max_preamble_tx`` (preambleTransMax-CE)
    and the backoff indicator ``backoff_indicator_s`` (retry after uniform [0, BI],
    TS 36.321 §5.1.4)."""

    period_s: float
    n_preambles: int
    repetitions: int
    outcome_delay_s: float
    max_preamble_tx: int
    backoff_indicator_s: float


#: LTE-M (Cat-M1) coverage classes.
#: normal (CE mode A, no repetition): up to the LTE reference MCL [TR36888]; full profile
#: rates; RTT 0.1 s (assumed: a commercial LTE round trip of tens of ms [Huang12] plus
#: narrowband scheduling); wake from PSM 0.03 s (re-acquire PSS/SSS and one 40 ms MIB TTI,
#: TS 36.211 §6.6, §6.11), with the PRACH below it reproduces the 0.1 s of [WP18] at the
#: edge of normal coverage; from eDRX 0.01 s (assumed).
#: robust (CE mode A, 8 repetitions of the 32 allowed, TS 36.213 §8.0): up to the Rel-13
#: target [TR36888]; rates 1/8; RTT 0.3 s, wake 0.2 / 0.05 s, RRC x2 (assumed).
#: extreme (CE mode B): up to 164 dB [WP17]; downlink 1400 bit/s [WP17]; uplink 800 bit/s,
#: the rate at which this class reproduces the 6.2 s of [WP18] for a 200-byte message at
#: 164 dB after its 3.3 s of wake-up and random access (the 250 bit/s of [WP17] is the
#: throughput at the very edge, where that message alone would take 6.4 s on the air);
#: RTT 0.6 s, wake 1.3 / 0.3 s, RRC x3 (assumed).
LTE_M_COVERAGE: tuple[CoverageClass, ...] = (
    CoverageClass(
        "normal", 0, max_mcl_db=140.7, repetitions=1, uplink_rate_factor=1.0,
        downlink_rate_factor=1.0, rtt_s=0.10, wake_psm_s=0.03, wake_edrx_s=0.01,
        rrc_factor=1.0, share=0.85,
    ),
    CoverageClass(
        "robust", 1, max_mcl_db=155.7, repetitions=8, uplink_rate_factor=1 / 8,
        downlink_rate_factor=1 / 8, rtt_s=0.3, wake_psm_s=0.2, wake_edrx_s=0.05,
        rrc_factor=2.0, share=0.12,
    ),
    CoverageClass(
        "extreme", 2, max_mcl_db=164.0, repetitions=256,
        uplink_rate_factor=800.0 / 187_500.0, downlink_rate_factor=1_400.0 / 150_000.0,
        rtt_s=0.6, wake_psm_s=1.3, wake_edrx_s=0.3, rrc_factor=3.0, share=0.03,
    ),
)  # fmt: skip

#: LTE-M PRACH per class (assumed, TS 36.331 ranges): one opportunity per 10 ms frame and
#: contention resolved in 50 ms (RAR window, Msg3, Msg4 without repetition) in normal
#: coverage; 20 ms and 0.2 s with 8 repetitions; 40 ms and 2.0 s with CE mode B
#: repetitions of every message of the procedure.
LTE_M_PRACH: tuple[PrachConfig, ...] = (
    PrachConfig(0.010, 40, 1, 0.05, 10, 0.16),
    PrachConfig(0.020, 8, 8, 0.20, 10, 0.32),
    PrachConfig(0.040, 6, 32, 2.0, 10, 0.96),
)

#: NB-IoT (Cat-NB1) coverage classes.
#: normal: up to the GPRS reference MCL [TR45820]; multi-tone on the profile's 12 tones;
#: RTT 0.8 s (the 837 ms of [Ugwuanyi21]); wake from PSM 0.3 s (NPSS/NSSS and a few 80 ms
#: MIB-NB blocks, TS 36.211 §10.2), from eDRX 0.05 s: with the PRACH below and the
#: profile's RRC set-up it reproduces the 0.55 s of [Robinson19] in ECL 0.
#: robust: up to 154 dB (the middle of the 144-164 dB range); single tone, about 2 kbit/s
#: up and 5 kbit/s down; RTT 2 s; wake 1.0 / 0.2 s; RRC x5: reproduces the 2.91 s of
#: [Robinson19] in ECL 1 (assumed otherwise).
#: extreme: up to 164 dB [TR45820]; uplink 600 bit/s, above the 160 bit/s floor of
#: [TR45820] at 164 dB and set so that a 200-byte meter upload from PSM stays within its
#: 10 s; downlink 1 kbit/s; RTT 1.5 s, wake 1.2 / 0.5 s, RRC x6 (assumed).
NB_IOT_COVERAGE: tuple[CoverageClass, ...] = (
    CoverageClass(
        "normal", 0, max_mcl_db=144.0, repetitions=1, uplink_rate_factor=1.0,
        downlink_rate_factor=1.0, rtt_s=0.8, wake_psm_s=0.3, wake_edrx_s=0.05,
        rrc_factor=1.0, uplink_channels_used=12, share=0.80,
    ),
    CoverageClass(
        "robust", 1, max_mcl_db=154.0, repetitions=8, uplink_rate_factor=0.10,
        downlink_rate_factor=0.25, rtt_s=2.0, wake_psm_s=1.0, wake_edrx_s=0.2,
        rrc_factor=5.0, share=0.15,
    ),
    CoverageClass(
        "extreme", 2, max_mcl_db=164.0, repetitions=64, uplink_rate_factor=0.03,
        downlink_rate_factor=0.05, rtt_s=1.5, wake_psm_s=1.2, wake_edrx_s=0.5,
        rrc_factor=6.0, share=0.05,
    ),
)  # fmt: skip

#: NB-IoT NPRACH per class (assumed, TS 36.331 ranges): periodicity 160 / 320 / 640 ms,
#: 48 / 24 / 12 subcarriers, 2 / 8 / 32 repetitions; contention resolved in 0.15 s,
#: 1.0 s and 1.8 s (NPDCCH and NPDSCH/NPUSCH repetitions of Msg2 to Msg4).
NB_IOT_PRACH: tuple[PrachConfig, ...] = (
    PrachConfig(0.16, 48, 2, 0.15, 10, 0.256),
    PrachConfig(0.32, 24, 8, 1.0, 10, 1.024),
    PrachConfig(0.64, 12, 32, 1.8, 10, 4.096),
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
