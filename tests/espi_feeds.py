"""ESPI (Green Button) documents built by hand, for the tests of every folder.

Pieces that compose any document a test needs, odd ones included: `feed`, `entry`,
`resource`, `reading_type`, `interval_reading`, `interval_readings`, `interval_block`,
`local_time_parameters`; hostile documents: `BILLION_LAUGHS`, `QUADRATIC_BLOWUP`, `xxe`,
`nested`, `flood`. `meter_upload` composes them into the meter
upload of ``docs/upload-format.md`` (the layout of ``meters.espi_upload.encode_meter_upload``):
a feed with id ``urn:imdc:upload:{meter}:{seq}``, a UsagePoint entry, an optional
LocalTimeParameters entry, and per channel a MeterReading, a ReadingType and its
IntervalBlock(s), tied together by Atom links.

Values are written as given (``str(value)``), so a test can put any text where a number
belongs. Namespaces come from `pipeline.espi.namespaces`; import them from there.

Import from a test: ``from tests.espi_feeds import meter_upload``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.espi.namespaces import ATOM_NS, ESPI_NS

__all__ = [
    "BILLION_LAUGHS",
    "QUADRATIC_BLOWUP",
    "RESOURCE_BASE",
    "SERVICE_CATEGORY",
    "XML_DECLARATION",
    "Channel",
    "entry",
    "feed",
    "flood",
    "interval_block",
    "interval_reading",
    "interval_readings",
    "local_time_parameters",
    "meter_upload",
    "nested",
    "reading_type",
    "resource",
    "xxe",
]

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: Resource URI prefix of the links (ESPI 1.1 REST style, relative), as meters write it.
RESOURCE_BASE = "/espi/1_1/resource"
#: A UsagePoint's content: ServiceCategory kind 0 (electricity).
SERVICE_CATEGORY = "<ServiceCategory><kind>0</kind></ServiceCategory>"


def feed(
    *entries: str,
    feed_id: str | None = "urn:x",
    title: str | None = None,
    prolog: str = "",
) -> bytes:
    """An Atom feed, UTF-8: `prolog` (e.g. `XML_DECLARATION`), ``<feed xmlns=Atom>``, its
    ``id`` (none when `feed_id` is None) and ``title``, then `entries` (any text)."""
    head = "" if feed_id is None else f"<id>{feed_id}</id>"
    if title is not None:
        head += f"<title>{title}</title>"
    return f'{prolog}<feed xmlns="{ATOM_NS}">{head}{"".join(entries)}</feed>'.encode()


def entry(
    content: str,
    links: Sequence[tuple[str, str]] = (),
    *,
    entry_id: str | None = None,
    title: str | None = None,
) -> str:
    """An Atom entry: its ``id``, one ``link`` per (rel, href), its ``title`` (``<title/>``
    for ""), and ``content`` holding `content`."""
    head = "" if entry_id is None else f"<id>{entry_id}</id>"
    head += "".join(f'<link rel="{rel}" href="{href}"/>' for rel, href in links)
    if title is not None:
        head += f"<title>{title}</title>" if title else "<title/>"
    return f"<entry>{head}<content>{content}</content></entry>"


def resource(name: str, inner: str = "", *, prefixed: bool = False) -> str:
    """An ESPI resource element, in the default namespace (``<Name xmlns=ESPI>``) or, with
    `prefixed`, as ``espi:Name`` (every element of `inner` prefixed too)."""
    if prefixed:
        inner = inner.replace("<", "<espi:").replace("<espi:/", "</espi:")
        if not inner:
            return f'<espi:{name} xmlns:espi="{ESPI_NS}"/>'
        return f'<espi:{name} xmlns:espi="{ESPI_NS}">{inner}</espi:{name}>'
    if not inner:
        return f'<{name} xmlns="{ESPI_NS}"/>'
    return f'<{name} xmlns="{ESPI_NS}">{inner}</{name}>'


def reading_type(fields: Mapping[str, object], *, prefixed: bool = False) -> str:
    """A ReadingType resource with one element per field (ESPI name -> value), in order."""
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return resource("ReadingType", inner, prefixed=prefixed)


def interval_reading(
    start: object | None,
    duration: object | None,
    value: object | None,
    quality: Sequence[object] = (),
) -> str:
    """An IntervalReading: one ReadingQuality per code of `quality`, then ``timePeriod``
    (duration, start; left out when `start` is None) and ``value`` (left out when None)."""
    rq = "".join(f"<ReadingQuality><quality>{code}</quality></ReadingQuality>" for code in quality)
    period = (
        ""
        if start is None
        else f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"
    )
    val = "" if value is None else f"<value>{value}</value>"
    return f"<IntervalReading>{rq}{period}{val}</IntervalReading>"


def interval_readings(
    starts: Sequence[object],
    duration_s: object | Sequence[object],
    values: Sequence[object],
    quality: Mapping[int, Sequence[object]] | None = None,
) -> str:
    """Consecutive IntervalReadings: reading i starts at ``starts[i]``, lasts `duration_s`
    (one for all, or one each) and reads ``values[i]``, with the ReadingQuality codes
    ``quality[i]``."""
    codes = quality or {}
    durations = (
        duration_s
        if isinstance(duration_s, Sequence) and not isinstance(duration_s, str)
        else [duration_s] * len(values)
    )
    return "".join(
        interval_reading(starts[i], durations[i], values[i], codes.get(i, ()))
        for i in range(len(values))
    )


def interval_block(
    readings: str, *, interval: tuple[object, object] | None = None, prefixed: bool = False
) -> str:
    """An IntervalBlock resource holding `readings`, after its ``interval`` (duration,
    start) when given."""
    head = (
        ""
        if interval is None
        else f"<interval><duration>{interval[0]}</duration><start>{interval[1]}</start></interval>"
    )
    return resource("IntervalBlock", head + readings, prefixed=prefixed)


def local_time_parameters(
    tz_offset: object = -18000,
    dst_offset: object = 3600,
    dst_start_rule: object = "360E2000",
    dst_end_rule: object = "B40E2000",
) -> str:
    """A LocalTimeParameters resource (defaults: US Eastern time, the US DST rules since
    2007, as every NIST, GBA and PG&E sample file carries)."""
    return resource(
        "LocalTimeParameters",
        f"<dstEndRule>{dst_end_rule}</dstEndRule><dstOffset>{dst_offset}</dstOffset>"
        f"<dstStartRule>{dst_start_rule}</dstStartRule><tzOffset>{tz_offset}</tzOffset>",
    )


def _span_s(first_start: object, last_start: object, last_duration: object) -> object:
    """An IntervalBlock's interval duration: from its first start to its last end (0 when
    the texts are not numbers)."""
    try:
        return int(str(last_start)) + int(str(last_duration)) - int(str(first_start))
    except ValueError:
        return 0


@dataclass(frozen=True)
class Channel:
    """One channel of a `meter_upload`: its ReadingType (ESPI element -> value, in
    order; ``intervalLength`` is the readings' duration), one value per reading, and
    ReadingQuality codes by reading index."""

    reading_type: Mapping[str, object]
    values: Sequence[object]
    quality: Mapping[int, Sequence[object]] = field(default_factory=dict)


def meter_upload(
    meter_id: str,
    sequence_no: int,
    starts: Sequence[int],
    channels: Sequence[Channel],
    *,
    duration_s: object | Sequence[object] | None = None,
    local_time: str | None = None,
    blocks: int = 1,
    hrefs: Mapping[str, str] | None = None,
    reverse_entries: bool = False,
    title: str | None = "upload",
    prolog: str = XML_DECLARATION,
) -> bytes:
    """The meter upload of ``docs/upload-format.md``: channel k = 1..K reads
    ``channels[k - 1].values`` at the interval starts `starts` (shared by every channel).

    Args:
        duration_s: the readings' duration (one for all, or one each); default the first
            channel's ``intervalLength``.
        local_time: a LocalTimeParameters resource (`local_time_parameters`): its entry, and
            the UsagePoint's ``related`` link to it.
        blocks: IntervalBlocks per channel, the readings split evenly between them in order
            (an empty share writes no block).
        hrefs: href -> the href written instead (for documents with broken links).
        reverse_entries: write the entries in reverse order.
        title: the feed's title (None: none).
        prolog: what comes before the feed element.
    """
    sub = hrefs or {}

    def links(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
        return [(rel, sub.get(href, href)) for rel, href in pairs]

    base = RESOURCE_BASE
    up = f"{base}/UsagePoint/{meter_id}"
    ltp = f"{base}/LocalTimeParameters/{meter_id}"
    up_links = [("self", up), ("up", f"{base}/UsagePoint"), ("related", f"{up}/MeterReading")]
    if local_time is not None:
        up_links.append(("related", ltp))
    entries = [
        entry(
            resource("UsagePoint", SERVICE_CATEGORY),
            links(*up_links),
            entry_id="urn:x:up",
            title=meter_id,
        )
    ]
    if local_time is not None:
        entries.append(
            entry(
                local_time,
                links(("self", ltp), ("up", f"{base}/LocalTimeParameters")),
                entry_id="urn:x:ltp",
                title="local time",
            )
        )
    n = len(starts)
    first_fields = channels[0].reading_type if channels else {}
    durations = first_fields.get("intervalLength", 0) if duration_s is None else duration_s
    cuts = [round(n * b / blocks) for b in range(blocks + 1)]
    for k, channel in enumerate(channels, 1):
        mr = f"{up}/MeterReading/{k}"
        rt = f"{base}/ReadingType/{meter_id}/{k}"
        entries.append(
            entry(
                resource("MeterReading"),
                links(
                    ("self", mr),
                    ("up", f"{up}/MeterReading"),
                    ("related", f"{mr}/IntervalBlock"),
                    ("related", rt),
                ),
                entry_id=f"urn:x:mr{k}",
                title=f"channel {k}",
            )
        )
        entries.append(
            entry(
                reading_type(channel.reading_type),
                links(("self", rt), ("up", f"{base}/ReadingType")),
                entry_id=f"urn:x:rt{k}",
                title=f"type {k}",
            )
        )
        for b in range(blocks):
            lo, hi = cuts[b], cuts[b + 1]
            if lo == hi:
                continue
            each = (
                durations
                if isinstance(durations, Sequence) and not isinstance(durations, str)
                else [durations] * n
            )
            quality = {i - lo: codes for i, codes in channel.quality.items() if lo <= i < hi}
            readings = interval_readings(
                starts[lo:hi], each[lo:hi], channel.values[lo:hi], quality
            )
            span = _span_s(starts[lo], starts[hi - 1], each[hi - 1])
            block_id = f"{sequence_no}" if blocks == 1 else f"{sequence_no}.{b}"
            entries.append(
                entry(
                    interval_block(readings, interval=(span, starts[lo])),
                    links(
                        ("self", f"{mr}/IntervalBlock/{block_id}"), ("up", f"{mr}/IntervalBlock")
                    ),
                    entry_id=f"urn:x:ib{k}.{b}",
                    title=f"upload {sequence_no}",
                )
            )
    if reverse_entries:
        entries.reverse()
    return feed(
        *entries,
        feed_id=f"urn:imdc:upload:{meter_id}:{sequence_no}",
        title=title,
        prolog=prolog,
    )


# --- hostile documents ------------------------------------------------------------------------

#: Entity expansion to 10**9 "lol"s: a feed whose id is ``&lol9;``.
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + f']>\n<feed xmlns="{ATOM_NS}"><id>&lol9;</id></feed>'.encode()
)

#: One 100 KB entity referenced 10,000 times: 1 GB if expanded.
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY a "'
    + b"x" * 100_000
    + f'">]>\n<feed xmlns="{ATOM_NS}"><id>'.encode()
    + b"&a;" * 10_000
    + b"</id></feed>"
)


def xxe(system_id: str) -> bytes:
    """A feed whose id is an external entity (XXE) at `system_id`."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "{system_id}">]>\n'
        f'<feed xmlns="{ATOM_NS}"><id>&x;</id></feed>'
    ).encode()


def nested(depth: int, prolog: str = XML_DECLARATION) -> bytes:
    """A meter upload's feed whose deepest element sits at `depth` (the feed itself is depth
    1)."""
    inner = depth - 1
    body = "<x>" * inner + "</x>" * inner if depth > 2 else ""
    return feed(body, feed_id="urn:imdc:upload:m-1:1", prolog=prolog)


def flood(n: int, comment: bool = False) -> bytes:
    """A feed of `n` tiny elements ``<a/>`` (after one comment with `comment`, which makes
    a count of start tags only a bound)."""
    return feed(("<!-- c -->" if comment else "") + "<a/>" * n, feed_id="urn:imdc:upload:m-1:1")
