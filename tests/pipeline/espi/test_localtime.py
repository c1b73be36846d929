"""ESPI LocalTimeParameters: DstRuleType decoding, DST transitions and UTC offsets against the
IANA tz database (zoneinfo), and the LocalTimeParameters of every real Green Button sample.

Oracles: `zoneinfo` (the system's tz database) for transitions and offsets; the published
US rule (Energy Policy Act of 2005 §110: second Sunday of March to first Sunday of November,
02:00 local) for the hand-written 2024-2026 dates; the sample files read with plain lxml;
the NIST/GBA files' own IntervalBlocks, which start at local midnight."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from meters.espi import DstRule as EncoderDstRule
from meters.espi import LocalTimeSpec
from pipeline.espi.localtime import DST_RULE_DISABLED, DstRule, LocalTime, local_time_of
from pipeline.espi.namespaces import ATOM as A
from pipeline.espi.namespaces import ESPI as E
from pipeline.fetch.parse import parse_upload
from pipeline.ingest import INGEST_LIMITS
from pipeline.process.greenbutton import extract_series
from tests.conftest import GREENBUTTON_DIR as DATA
from tests.espi_feeds import resource as espi_resource

US_START, US_END = 0x360E2000, 0xB40E2000  # the sample files' rules
SUNDAY = 7


def rule(month: int, operator: int, dow: int = 0, dom: int = 0, hour: int = 0, s: int = 0) -> int:
    """A DstRuleType code assembled from the bit layout of espiDerived.xsd."""
    return (month << 28) | (operator << 25) | (dom << 20) | (dow << 17) | (hour << 12) | s


#: Zones and their LocalTimeParameters written by hand from each zone's law:
#: US (15 U.S.C. §260a), EU (Directive 2000/84/EC: last Sunday of March 01:00 UTC to last
#: Sunday of October 01:00 UTC), Australia/Sydney (NSW Standard Time Act 1987: first Sunday
#: of October 02:00 standard time to first Sunday of April 03:00 daylight time; the
#: southern-hemisphere case the XSD's "end after start" note leaves out).
ZONES: dict[str, LocalTime] = {
    "America/New_York": LocalTime(-18000, 3600, US_START, US_END),
    "America/Chicago": LocalTime(-21600, 3600, US_START, US_END),
    "America/Denver": LocalTime(-25200, 3600, US_START, US_END),
    "America/Los_Angeles": LocalTime(-28800, 3600, US_START, US_END),
    "America/Anchorage": LocalTime(-32400, 3600, US_START, US_END),
    "America/Phoenix": LocalTime(-25200),
    "Pacific/Honolulu": LocalTime(-36000, 0, DST_RULE_DISABLED, DST_RULE_DISABLED),
    "Europe/London": LocalTime(0, 3600, rule(3, 7, SUNDAY, hour=1), rule(10, 7, SUNDAY, hour=2)),
    "Europe/Berlin": LocalTime(3600, 3600, rule(3, 7, SUNDAY, hour=2), rule(10, 7, SUNDAY, hour=3)),
    "Europe/Athens": LocalTime(7200, 3600, rule(3, 7, SUNDAY, hour=3), rule(10, 7, SUNDAY, hour=4)),
    "Australia/Sydney": LocalTime(
        36000, 3600, rule(10, 2, SUNDAY, hour=2), rule(4, 2, SUNDAY, hour=3)
    ),
}

T_2024 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
T_2027 = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())


def zoneinfo_offsets_s(zone: str, epoch_s: np.ndarray) -> np.ndarray:
    tz = ZoneInfo(zone)
    return np.array(
        [
            int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for t in epoch_s.tolist()
        ]
    )


def zoneinfo_transitions(zone: str, year: int) -> list[int]:
    """Instants (epoch s) where the zone's UTC offset changes in `year`: a 15-minute scan,
    then bisection to the second."""
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    grid = np.arange(start, end + 1, 900)
    offsets = zoneinfo_offsets_s(zone, grid)
    found = []
    for i in np.flatnonzero(np.diff(offsets)).tolist():
        lo, hi = int(grid[i]), int(grid[i + 1])  # offset(lo) != offset(hi)
        before = offsets[i]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if zoneinfo_offsets_s(zone, np.array([mid]))[0] == before:
                lo = mid
            else:
                hi = mid
        found.append(hi)
    return found


# --- DstRuleType --------------------------------------------------------------------------


def test_sample_rules_decode_to_the_us_rules() -> None:
    start, end = DstRule.from_code(US_START), DstRule.from_code(US_END)
    assert start == DstRule(month=3, operator=3, day_of_week=SUNDAY, hour=2)
    assert end == DstRule(month=11, operator=2, day_of_week=SUNDAY, hour=2)
    assert (start.code, end.code) == (US_START, US_END)
    assert start.describe() == "second Sunday of March at 02:00:00"
    assert end.describe() == "first Sunday of November at 02:00:00"


def test_xsd_annotation_example() -> None:
    """espiDerived.xsd: "DST starts on third Friday in March at 1:45 AM" is seconds 2700,
    hours 1, day of week 5, day of month 0, operator 4, month 3."""
    code = rule(3, 4, dow=5, hour=1, s=2700)
    decoded = DstRule.from_code(code)
    assert (decoded.seconds, decoded.hour, decoded.day_of_week) == (2700, 1, 5)
    assert (decoded.day_of_month, decoded.operator, decoded.month) == (0, 4, 3)
    # third Friday of March 2024 is the 15th
    assert decoded.local_s(2024) == calendar.timegm((2024, 3, 15, 1, 45, 0))


@pytest.mark.parametrize(
    "code",
    [
        DST_RULE_DISABLED,
        rule(0, 2, SUNDAY),  # month 0
        rule(13, 2, SUNDAY),  # month 13
        rule(3, 2, SUNDAY, hour=24),
        rule(3, 2, SUNDAY, s=3600),
        rule(3, 0, dom=0),  # on the day of the month, without a day
        rule(2, 0, dom=30),  # February 30
        rule(3, 1, dow=0, dom=8),  # on or after, without a day of week
        rule(3, 3, dow=0),  # second occurrence of no day
        -1,
        2**32,
    ],
)
def test_invalid_rules_are_refused(code: int) -> None:
    with pytest.raises(ValueError):
        DstRule.from_code(code)


@settings(max_examples=200, deadline=None)
@given(
    month=st.integers(1, 12),
    operator=st.integers(0, 7),
    dom=st.integers(1, 28),
    dow=st.integers(1, 7),
    hour=st.integers(0, 23),
    seconds=st.integers(0, 3599),
    year=st.integers(1971, 2099),
)
def test_rule_days_agree_with_the_encoder_and_calendar(
    month: int, operator: int, dom: int, dow: int, hour: int, seconds: int, year: int
) -> None:
    """Every rule: same code and same wall-clock instant as the encoder's independent,
    per-year `datetime` implementation (meters/espi.py), and the day has the rule's weekday
    and position in the month (checked with `calendar`)."""
    encoder = EncoderDstRule(month, operator, dom, dow, hour, seconds)
    decoded = DstRule.from_code(encoder.code)
    assert decoded.code == encoder.code
    local = datetime(1970, 1, 1) + timedelta(seconds=int(decoded.local_s(year)))
    try:
        expected = encoder.local_datetime(year)
    except ValueError:  # past the month's end, which the encoder refuses:
        if operator == 6:  # no fifth occurrence: ours takes the last one
            expected = EncoderDstRule(month, 7, dom, dow, hour, seconds).local_datetime(year)
        else:  # "on or after" rolls into the next month (tz database "Sun>=N")
            assert operator == 1
            day = datetime(year, month, dom)
            expected = day + timedelta(days=(dow - day.isoweekday()) % 7, seconds=3600 * hour)
            expected += timedelta(seconds=seconds)
            assert expected.month != month
    assert local == expected
    if operator >= 1:
        assert local.isoweekday() == dow
    if 2 <= operator <= 5:
        assert (local.day - 1) // 7 == operator - 2  # n-th occurrence
    if operator == 7:
        assert local.day + 7 > calendar.monthrange(year, month)[1]  # last occurrence


def test_fifth_occurrence_falls_back_to_the_last() -> None:
    fifth_sunday = DstRule(month=2, operator=6, day_of_week=SUNDAY)
    # February 2024 has no fifth Sunday (4, 11, 18, 25); February 2026 neither; March 2024
    # has five (3, ..., 31)
    assert fifth_sunday.local_s(2024) == calendar.timegm((2024, 2, 25, 0, 0, 0))
    march = DstRule(month=3, operator=6, day_of_week=SUNDAY)
    assert march.local_s(2024) == calendar.timegm((2024, 3, 31, 0, 0, 0))


def test_on_or_after_rolls_into_the_next_month() -> None:
    """tz database ``Sun>=29`` semantics: Sunday on or after Feb 29, 2025 (no Feb 29; the
    day is Mar 1, a Saturday) is Sunday Mar 2."""
    sunday_after = DstRule(month=2, operator=1, day_of_month=29, day_of_week=SUNDAY)
    assert sunday_after.local_s(2025) == calendar.timegm((2025, 3, 2, 0, 0, 0))
    assert sunday_after.local_s(2032) == calendar.timegm((2032, 2, 29, 0, 0, 0))  # a Sunday


def test_local_s_is_vectorised_over_years() -> None:
    years = np.arange(1980, 2100).reshape(8, 15)
    start = DstRule.from_code(US_START)
    assert start.local_s(years).shape == (8, 15)
    assert start.local_s(years)[3, 4] == start.local_s(int(years[3, 4]))


# --- transitions and offsets against zoneinfo ---------------------------------------------


def test_us_transitions_2024_to_2026_by_hand() -> None:
    """Second Sunday of March and first Sunday of November, 02:00 local (EST then EDT)."""
    eastern = ZONES["America/New_York"]
    dates = {2024: ((3, 10), (11, 3)), 2025: ((3, 9), (11, 2)), 2026: ((3, 8), (11, 1))}
    for year, ((sm, sd), (em, ed)) in dates.items():
        assert eastern.dst_transitions_utc(year) == (
            calendar.timegm((year, sm, sd, 7, 0, 0)),  # 02:00 EST = 07:00 UTC
            calendar.timegm((year, em, ed, 6, 0, 0)),  # 02:00 EDT = 06:00 UTC
        )


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_transitions_match_zoneinfo(zone: str) -> None:
    local_time = ZONES[zone]
    for year in (2024, 2025, 2026):
        transitions = local_time.dst_transitions_utc(year)
        expected = zoneinfo_transitions(zone, year)
        if transitions is None:
            assert expected == []
        else:
            assert sorted(transitions) == expected, year


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_utc_offset_matches_zoneinfo_every_quarter_hour(zone: str) -> None:
    """2024-2026 every 15 minutes (105,216 instants), plus the second before and at each
    transition."""
    t = np.arange(T_2024, T_2027, 900, dtype=np.int64)
    edges = [x for y in (2024, 2025, 2026) for x in zoneinfo_transitions(zone, y)]
    t = np.concatenate([t, np.array(edges, dtype=np.int64) - 1, np.array(edges, np.int64)])
    got = ZONES[zone].utc_offset_s(t)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, zoneinfo_offsets_s(zone, t))


@pytest.mark.parametrize(
    "zone",
    ["America/New_York", "America/Denver", "Europe/London", "Europe/Paris", "Europe/Helsinki"],
)
def test_encoder_zones_decode_to_zoneinfo_offsets(zone: str) -> None:
    """The meter encoder's LocalTimeParameters for a zone (from the tz database's POSIX
    rules), decoded here, give zoneinfo's offsets (every hour of 2025)."""
    spec = LocalTimeSpec.for_zone(zone)
    decoded = LocalTime(spec.tz_offset_s, spec.dst_offset_s, spec.dst_start_rule, spec.dst_end_rule)
    t = np.arange(T_2024 + 366 * 86400, T_2027 - 365 * 86400, 3600, dtype=np.int64)
    np.testing.assert_array_equal(decoded.utc_offset_s(t), zoneinfo_offsets_s(zone, t))


def test_offsets_keep_the_shape_and_local_clock() -> None:
    eastern = ZONES["America/New_York"]
    switch = calendar.timegm((2024, 3, 10, 7, 0, 0))
    t = np.array([[switch - 1, switch], [switch + 3600, switch - 3600]])
    assert eastern.utc_offset_s(t).shape == (2, 2)
    local = eastern.local_s(t)
    assert [datetime.fromtimestamp(int(x), UTC).strftime("%H:%M:%S") for x in local.ravel()] == [
        "01:59:59",
        "03:00:00",
        "04:00:00",
        "01:00:00",
    ]
    assert eastern.utc_offset_s(np.array([], dtype=np.int64)).shape == (0,)


def test_no_dst_when_a_rule_is_disabled_or_the_offset_is_zero() -> None:
    t = np.array([calendar.timegm((2025, 7, 1, 0, 0, 0))])
    for local_time in (
        LocalTime(-18000, 3600, DST_RULE_DISABLED, US_END),
        LocalTime(-18000, 3600, US_START, DST_RULE_DISABLED),
        LocalTime(-18000, 0, US_START, US_END),
    ):
        assert not local_time.has_dst
        assert local_time.dst_transitions_utc(2025) is None
        assert local_time.utc_offset_s(t).tolist() == [-18000]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tz_offset_s": 86400},
        {"tz_offset_s": -86400},
        {"tz_offset_s": 0, "dst_offset_s": 90000},
        {"tz_offset_s": 0, "dst_start_rule": rule(13, 2, SUNDAY)},
        {"tz_offset_s": 1.5},
    ],
)
def test_bad_local_time_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LocalTime(**kwargs)  # type: ignore[arg-type]


# --- the XML resource ---------------------------------------------------------------------


def ltp(inner: str) -> etree._Element:
    return etree.fromstring(espi_resource("LocalTimeParameters", inner))


def test_resource_fields_in_any_order_and_case() -> None:
    element = ltp(
        "<tzOffset> 3600 </tzOffset><dstStartRule>\n3e0e2000 </dstStartRule>"
        "<dstOffset>3600</dstOffset><dstEndRule>ae0e3000</dstEndRule>"
    )
    assert local_time_of(element) == ZONES["Europe/Berlin"]


def test_resource_without_dst_fields_has_no_dst() -> None:
    assert local_time_of(ltp("<tzOffset>-25200</tzOffset>")) == LocalTime(-25200)
    disabled = "<dstStartRule>FFFFFFFF</dstStartRule><dstEndRule>ffffffff</dstEndRule>"
    assert not local_time_of(ltp(f"<tzOffset>0</tzOffset>{disabled}")).has_dst


@pytest.mark.parametrize(
    "inner",
    [
        "<dstOffset>3600</dstOffset>",  # no tzOffset
        "<tzOffset>-5h</tzOffset>",
        "<tzOffset>1_000</tzOffset>",
        "<tzOffset>100000</tzOffset>",
        "<tzOffset>0</tzOffset><dstStartRule>360E20001</dstStartRule>",  # 9 hex digits
        "<tzOffset>0</tzOffset><dstStartRule>0x360E2000</dstStartRule>",
        "<tzOffset>0</tzOffset><dstStartRule>D60E2000</dstStartRule>",  # month 13
    ],
)
def test_bad_resource_is_refused_with_a_reason(inner: str) -> None:
    with pytest.raises(ValueError, match=r"^bad_local_time: "):
        local_time_of(ltp(inner))


# --- the real files -----------------------------------------------------------------------

GOOD_FILES = sorted(p.name for p in DATA.glob("*.xml") if "BAD" not in p.name)


def file_ltps(name: str) -> list[dict[str, str]]:
    """The LocalTimeParameters of a sample, read with plain lxml: self href and fields."""
    root = etree.parse(str(DATA / name)).getroot()
    found = []
    for entry in root.iter(f"{A}entry"):
        for resource in entry.iterfind(f"{A}content/{E}LocalTimeParameters"):
            fields = {child.tag.split("}")[1]: (child.text or "").strip() for child in resource}
            fields["self"] = next(
                (link.get("href", "") for link in entry.iterfind(f"{A}link[@rel='self']")), ""
            )
            found.append(fields)
    return found


@pytest.mark.parametrize("name", GOOD_FILES)
def test_each_sample_local_time_decodes_sensibly(name: str) -> None:
    """Eastern (NIST, GBA) or Pacific (PG&E) standard time, DST of one hour, the US rules
    (the NIST five-UsagePoint sample numbers its five copies in the seconds field, 0..4 s),
    and transitions within those seconds of zoneinfo's in 2024-2026."""
    ltps = file_ltps(name)
    assert ltps, name
    for fields in ltps:
        local_time = LocalTime(
            int(fields["tzOffset"]),
            int(fields["dstOffset"]),
            int(fields["dstStartRule"], 16),
            int(fields["dstEndRule"], 16),
        )
        zone = {-18000: "America/New_York", -28800: "America/Los_Angeles"}[local_time.tz_offset_s]
        assert local_time.dst_offset_s == 3600
        start, end = local_time.start_rule, local_time.end_rule
        assert start is not None and end is not None
        assert (start.month, start.operator, start.day_of_week, start.hour) == (3, 3, 7, 2)
        assert (end.month, end.operator, end.day_of_week, end.hour) == (11, 2, 7, 2)
        assert start.seconds == end.seconds <= 4
        for year in (2024, 2025, 2026):
            transitions = local_time.dst_transitions_utc(year)
            assert transitions is not None
            deltas = np.subtract(transitions, zoneinfo_transitions(zone, year))
            assert (deltas == start.seconds).all()


@pytest.mark.parametrize("name", GOOD_FILES)
def test_extraction_attaches_each_usage_points_own_local_time(name: str) -> None:
    """Oracle: per UsagePoint entry, its related link that names a LocalTimeParameters self
    href (every sample has one), read with plain lxml."""
    root = etree.parse(str(DATA / name)).getroot()
    ltps = {f["self"]: f for f in file_ltps(name)}
    expected: dict[str, int] = {}
    for entry in root.iter(f"{A}entry"):
        if entry.find(f"{A}content/{E}UsagePoint") is None:
            continue
        links: dict[str, list[str]] = {"self": [], "related": []}
        for link in entry.iterfind(f"{A}link"):
            links.setdefault(link.get("rel", ""), []).append(link.get("href", ""))
        [named] = [h for h in links["related"] if h in ltps]
        expected[links["self"][0]] = int(ltps[named]["dstStartRule"], 16)
    extraction = extract_series(parse_upload((DATA / name).read_bytes(), INGEST_LIMITS))
    assert extraction.rejected == []
    assert {up: lt.dst_start_rule for up, lt in extraction.local_times.items()} == expected
    for series in extraction.series:
        assert series.local_time == extraction.local_times[series.usage_point]
    if name == "nist_1hrLP_32DaysFiveUsagePoints_M.xml":
        assert sorted(v & 0xFFF for v in expected.values()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "name",
    ["gba_test_usage_data.xml", "nist_15minLP_15Days.xml", "nist_MonthlyOnlyElectricData.xml"],
)
def test_interval_blocks_start_at_local_midnight(name: str) -> None:
    """Real data: these files hold one IntervalBlock per local day (or month) across a DST
    change. With the decoded local time every block starts at 00:00 local; in UTC they do
    not all start at the same time of day, so the DST rule is what makes them agree."""
    root = etree.parse(str(DATA / name)).getroot()
    texts = root.findall(f".//{E}IntervalBlock/{E}interval/{E}start")
    starts = np.array([int(element.text or "x") for element in texts])
    [series] = extract_series(parse_upload((DATA / name).read_bytes(), INGEST_LIMITS)).series
    assert series.local_time is not None
    assert (series.local_time.local_s(starts) % 86400 == 0).all()
    assert len(set((starts % 86400).tolist())) == 2  # EST and EDT midnights in UTC


def test_pge_gas_days_start_at_local_midnight() -> None:
    """PG&E daily gas readings (March 2012, Pacific daylight time) start 1 s after local
    midnight under the decoded rules: 07:00:01 UTC."""
    body = (DATA / "pge_gas_daily_redacted.xml").read_bytes()
    [series] = extract_series(parse_upload(body, INGEST_LIMITS)).series
    assert series.local_time is not None
    assert (series.local_time.local_s(series.batch.start_s) % 86400).tolist() == [1, 1]
    assert (series.batch.start_s % 86400).tolist() == [25201, 25201]
