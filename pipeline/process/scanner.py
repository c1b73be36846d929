"""The compiled scanner: the process stage's fast path for meter uploads in the format of
``docs/upload-format.md`` as libxml2 serializes it (the canonical form, see
`_scan_upload`); `pipeline.process.upload.extract_batches` reads what it finds, and its
general XPath path stays the reference and the fallback.

XPath pays a fixed cost per text node it returns and per link it reads, while a compiled
loop (numba) reads text at about a ns a byte. So an upload is read in one pass of its
bytes as received (`scan_source`: resources, feed id, links, ReadingType spans and
readings, the channels resolved by the same rules as the general path, and the nesting of
every element, which spares the fetch stage its depth XPath: `pipeline.service` scans
before it parses). What the bytes as received may hold that a serialization of their tree
would not (an XML declaration, blank text, a ``>`` in an attribute value, CR...) is read
alike or declined (see `_scan_upload`). A tree without its bytes is serialized and
scanned (`scan_feed`), and the one IntervalBlock of a single-channel upload that the whole
scan declined is scanned instead of read by three XPaths (`scan_block`): in the bytes as
received when they allow it (`block_in_source`), else in its serialization. The scanner
accepts only the canonical form and, from it, computes exactly what the general path
computes for an accepted upload; for anything else it declines and the general path runs,
so every rejection, and every document outside that form, is handled by the general path
alone.

Here: the entry points (`scan_source`, `scan_feed`, `scan_block`), the numba byte scanner
behind them (`_scan_upload` for a whole feed, `_scan_block` for one IntervalBlock) with
its per-thread scratch tables, and `block_in_source`.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numba
import numpy as np
from lxml import etree
from numba import types as nb_types

from pipeline.espi.namespaces import ATOM_NS, ESPI, ESPI_NS
from pipeline.process.columns import MAX_DECIMAL_DIGITS

__all__ = [
    "ScannedFeed",
    "block_in_source",
    "scan_block",
    "scan_feed",
    "scan_source",
    "unscanned",
]


def _ascii(text: str) -> np.ndarray:
    """A byte constant for the scanner (numba freezes global arrays into the code)."""
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()


_LT, _GT, _SLASH, _QUOTE, _EQUALS, _SPACE, _AMP, _BANG, _QUESTION = (ord(c) for c in '<>/"= &!?')
_APOSTROPHE, _TAB, _LF, _CR, _TILDE = (ord(c) for c in "'\t\n\r~")
_PLUS, _MINUS, _ZERO = (ord(c) for c in "+-0")
_FEED_OPEN = _ascii(f'<feed xmlns="{ATOM_NS}">')
_XML_DECLARATION = _ascii("<?xml ")
_ESPI_DEFAULT_NS = _ascii(f' xmlns="{ESPI_NS}"')
_N_FEED, _N_ENTRY, _N_ID, _N_LINK, _N_CONTENT, _N_REL, _N_HREF, _N_XMLNS = (
    _ascii(name) for name in ("feed", "entry", "id", "link", "content", "rel", "href", "xmlns")
)
_V_SELF, _V_UP, _V_RELATED = (_ascii(name) for name in ("self", "up", "related"))
_N_USAGE_POINT, _N_METER_READING, _N_READING_TYPE, _N_INTERVAL_BLOCK = (
    _ascii(name) for name in ("UsagePoint", "MeterReading", "ReadingType", "IntervalBlock")
)
_N_INTERVAL_READING, _N_TIME_PERIOD, _N_DURATION, _N_START, _N_VALUE, _N_READING_QUALITY = (
    _ascii(name)
    for name in (
        "IntervalReading",
        "timePeriod",
        "duration",
        "start",
        "value",
        "ReadingQuality",
    )
)
#: Resource kinds of the scanner (0: any other ESPI resource, such as LocalTimeParameters).
_K_OTHER, _K_USAGE_POINT, _K_METER_READING, _K_READING_TYPE, _K_INTERVAL_BLOCK = range(5)
#: Link rels of the scanner (0: any other or none).
_R_OTHER, _R_SELF, _R_UP, _R_RELATED = range(4)
#: Most resources, entries and links the scanner handles (more: the general path runs).
_SCAN_ITEMS = 256
#: Rows of the scanner's scratch array (one per table, `_SCAN_ITEMS` columns).
(
    _S_RES_KIND,
    _S_RES_ENTRY,
    _S_RES_FROM,
    _S_RES_TO,
    _S_RES_OFFSET,
    _S_RES_COUNT,
    _S_LINK_REL,
    _S_LINK_FROM,
    _S_LINK_TO,
    _S_ENTRY_LINKS_FROM,
    _S_ENTRY_LINKS_TO,
    _S_RT,
    _S_RT_HREF_FROM,
    _S_RT_HREF_TO,
    _S_MR,
    _S_BLOCK,
    _S_OWNER,
    _S_CLAIMED,
    _S_REG_FROM,
    _S_REG_TO,
    _S_REG_MR,
    _S_OUT_RT,
    _S_OUT_RT_FROM,
    _S_OUT_RT_TO,
    _S_OUT_OFFSET,
    _S_OUT_COUNT,
    _S_HEADER,
) = range(27)
_SCRATCH_ROWS = 27
#: `_S_HEADER` columns: the first feed id text (from, to; -1 when none), the deepest
#: element nesting of the document (the root at 1).
_H_ID_FROM, _H_ID_TO, _H_DEEPEST = 0, 1, 2
#: Fewest bytes of one IntervalReading in the canonical form (bounds the readings).
_MIN_READING_BYTES = 64
#: An IntervalReading as the upload format writes it (``docs/upload-format.md``), around its
#: duration, start and value: read by
#: comparison (`_interval_block`), the element-by-element reading being the fallback.
_READING_HEAD, _READING_DURATION_START, _READING_START_VALUE, _READING_TAIL = (
    _ascii(part)
    for part in (
        "<IntervalReading><timePeriod><duration>",
        "</duration><start>",
        "</start></timePeriod><value>",
        "</value></IntervalReading>",
    )
)

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _byte(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """``buf[i]`` for ``0 <= i < len(buf)``, which every caller checks first: read with an
    unsigned index, without the test for a negative one (Python's wrap-around) that keeps
    LLVM from unrolling and vectorising the byte loops (2-3x slower)."""
    return buf[np.uintp(i)]


@_jit
def _at(buf: bytes, i: int, const: np.ndarray) -> bool:  # pragma: no cover (JIT)
    """``buf[i : i + len(const)] == const``."""
    n = const.shape[0]
    if i < 0 or i + n > len(buf):
        return False
    k = 0
    while k < n and _byte(buf, i + k) == const[np.uintp(k)]:
        k += 1
    return k == n


@_jit
def _same(buf: bytes, a0: int, a1: int, b0: int, b1: int) -> bool:  # pragma: no cover (JIT)
    """``buf[a0:a1] == buf[b0:b1]``."""
    if a1 - a0 != b1 - b0:
        return False
    k = a1 - a0 - 1  # from the end: hrefs differ in their last segment
    while k >= 0 and buf[a0 + k] == buf[b0 + k]:
        k -= 1
    return k < 0


@_jit
def _is(buf: bytes, a: int, b: int, const: np.ndarray) -> bool:  # pragma: no cover (JIT)
    """The name ``buf[a:b]`` is `const`."""
    return b - a == const.shape[0] and _at(buf, a, const)


@_jit
def _next_tag(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """Index of the next ``<`` from `i` (>= 0) that is not the last byte (text in between
    is skipped), or -1. Sixteen bytes at a time while none is a ``<`` (LLVM compares them
    as one vector)."""
    size = len(buf) - 1  # a "<" must be followed by something
    if i < 0:
        return -1
    while i + 16 <= size:
        found = False
        for k in range(16):
            found |= _byte(buf, i + k) == _LT
        if found:
            break
        i += 16
    while i < size:
        if _byte(buf, i) == _LT:
            return i
        i += 1
    return -1


@_jit
def _name_end(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """End of the unprefixed name at `i` (ASCII letters, digits, ``_-.``), or -1 when it is
    empty or has a prefix."""
    size = len(buf)
    j = i
    while j < size:
        c = buf[j]
        if (
            (c >= 97 and c <= 122)
            or (c >= 65 and c <= 90)
            or (c >= 48 and c <= 57)
            or c == 95
            or c == 45
            or c == 46
        ):
            j += 1
        else:
            break
    if j == i or j >= size or buf[j] == 58:  # empty, truncated, or a prefix (':')
        return -1
    return j


@_jit
def _end_tag(buf: bytes, i: int, name: np.ndarray) -> int:  # pragma: no cover (JIT)
    """Index after ``</name>`` at `i`, or -1."""
    if i + 1 >= len(buf) or buf[i] != _LT or buf[i + 1] != _SLASH or not _at(buf, i + 2, name):
        return -1
    j = i + 2 + name.shape[0]
    return j + 1 if j < len(buf) and buf[j] == _GT else -1


@_jit
def _after_white_space(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """Index of the first byte from `i` (>= 0) that is not XML white space (S: space, tab,
    LF, CR), or ``len(buf)``."""
    size = len(buf)
    while i < size and _byte(buf, i) in (_SPACE, _TAB, _LF, _CR):
        i += 1
    return i


@_jit
def _tag_end(buf: bytes, j: int) -> int:  # pragma: no cover (JIT)
    """Index of the ``>`` that ends the tag `j` is in: the first one outside quoted
    attribute values (in the bytes as received a value may hold ``>``, which libxml2's
    serialization writes ``&gt;``), or -1."""
    size = len(buf)
    quote = 0
    if j < 0:
        return -1
    while j < size:
        c = _byte(buf, j)
        if quote:
            if c == quote:
                quote = 0
        elif c in (_QUOTE, _APOSTROPHE):
            quote = c
        elif c == _GT:
            return j
        j += 1
    return -1


@_jit
def _skip_element(
    buf: bytes, i: int, depth: int, deepest: np.ndarray
) -> int:  # pragma: no cover (JIT)
    """Index after the element whose start tag is at `i`, at nesting `depth` (the root is
    at 1), or -1 at a comment, processing instruction or CDATA section; ``deepest[0]``
    becomes the deepest nesting of an element in it when that is deeper. Elsewhere ``<``
    is markup (XML allows it neither in text nor in attribute values), and a tag ends at
    its first ``>`` outside quotes (`_tag_end`): tags are read as the parser reads them."""
    size = len(buf)
    outside = depth - 1  # the nesting of the element's parent
    level = outside  # the nesting of the innermost element open
    while i >= 0 and i + 1 < size:
        c = _byte(buf, i + 1)
        if c in (_BANG, _QUESTION):
            return -1
        j = _tag_end(buf, i + 1)
        if j < 0:
            return -1
        if c == _SLASH:
            level -= 1
        else:
            level += 1
            if level > deepest[0]:
                deepest[0] = level
            if _byte(buf, j - 1) == _SLASH:  # an empty element
                level -= 1
        if level == outside:
            return j + 1
        i = _next_tag(buf, j + 1)
    return -1


@_jit
def _attribute(buf: bytes, j: int) -> tuple[int, int, int, int, int]:  # pragma: no cover (JIT)
    """The attribute `` name="value"`` at `j` (a space): (name from, name to, value from,
    value to, index after it); name to -1 when it is not one (a prefixed name, for one)."""
    size = len(buf)
    a = j + 1
    b = _name_end(buf, a)
    if b < 0 or buf[b] != _EQUALS or b + 1 >= size or buf[b + 1] != _QUOTE:
        return a, -1, 0, 0, 0
    v = b + 2
    w = v
    while w < size and _byte(buf, w) != _QUOTE:
        w += 1
    if w + 1 >= size:
        return a, -1, 0, 0, 0
    return a, b, v, w, w + 1


@_jit
def _text_as_written(buf: bytes, a: int, b: int) -> bool:  # pragma: no cover (JIT)
    """The text ``buf[a:b]`` is what the parser makes of it: no character or entity
    reference and no CR (the parser reads CR LF and a lone CR as LF)."""
    for k in range(a, b):
        c = _byte(buf, k)
        if c in (_AMP, _CR):
            return False
    return True


@_jit
def _plain(buf: bytes, a: int, b: int) -> bool:  # pragma: no cover (JIT)
    """The attribute value ``buf[a:b]`` is its value as written and compares as the
    general path compares it (``str.strip()``-ed): printable ASCII only (no reference;
    no tab, LF or CR, which the parser reads as a space; no non-ASCII character, which
    may be white space to ``str.strip``) and no space at either end."""
    for k in range(a, b):
        c = _byte(buf, k)
        if c == _AMP or c < _SPACE or c > _TILDE:
            return False
    return b == a or (_byte(buf, a) != _SPACE and _byte(buf, b - 1) != _SPACE)


@_jit
def _number(buf: bytes, i: int, name: np.ndarray) -> tuple[int, int]:  # pragma: no cover (JIT)
    """At `i`, just after ``<name>``: (value, index after ``</name>``) for a decimal
    integer ``[+-]?[0-9]{1,18}`` (what Python's ``int`` reads the same), index -1 else."""
    value, i = _digits(buf, i)
    if i < 0:
        return 0, -1
    return value, _end_tag(buf, i, name)


@_jit
def _digits(buf: bytes, i: int) -> tuple[int, int]:  # pragma: no cover (JIT)
    """(value, index after it) of the decimal integer ``[+-]?[0-9]{1,18}`` at `i`, index
    -1 when there is none."""
    size = len(buf)
    negative = False
    if i < size and (buf[i] == _MINUS or buf[i] == _PLUS):
        negative = buf[i] == _MINUS
        i += 1
    value = 0
    digits = 0
    while i < size:
        digit = int(buf[i]) - _ZERO
        if digit < 0 or digit > 9:
            break
        if digits == MAX_DECIMAL_DIGITS:
            return 0, -1
        value = value * 10 + digit
        digits += 1
        i += 1
    if digits == 0:
        return 0, -1
    return (-value if negative else value), i


@_jit
def _interval_reading(
    buf: bytes, i: int, readings: np.ndarray, k: int, deepest: np.ndarray
) -> int:  # pragma: no cover (JIT)
    """At `i`, just after ``<IntervalReading>`` (at nesting 5): writes its start, duration
    and value to column `k` of `readings`; index after ``</IntervalReading>``, or -1 unless
    it has exactly one timePeriod with one duration and one start, one value (all plain
    integers) and no ReadingQuality (other children are skipped: the general path does not
    read them; their nesting goes to `deepest`, see `_skip_element`)."""
    n_periods = 0
    n_values = 0
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return -1
        if buf[i + 1] == _SLASH:
            i = _end_tag(buf, i, _N_INTERVAL_READING)
            if i < 0 or n_periods != 1 or n_values != 1:
                return -1
            return i
        b = _name_end(buf, i + 1)
        if b < 0:
            return -1
        if _is(buf, i + 1, b, _N_READING_QUALITY):
            return -1
        simple = buf[b] == _GT  # no attribute, not empty
        if _is(buf, i + 1, b, _N_TIME_PERIOD):
            if not simple or n_periods:
                return -1
            n_periods = 1
            n_starts = 0
            n_durations = 0
            i = b + 1
            while True:
                i = _next_tag(buf, i)
                if i < 0:
                    return -1
                if buf[i + 1] == _SLASH:
                    i = _end_tag(buf, i, _N_TIME_PERIOD)
                    if i < 0 or n_starts != 1 or n_durations != 1:
                        return -1
                    break
                c = _name_end(buf, i + 1)
                if c < 0:
                    return -1
                if _is(buf, i + 1, c, _N_START):
                    if buf[c] != _GT:
                        return -1
                    number, i = _number(buf, c + 1, _N_START)
                    readings[0, k] = number
                    n_starts += 1
                elif _is(buf, i + 1, c, _N_DURATION):
                    if buf[c] != _GT:
                        return -1
                    number, i = _number(buf, c + 1, _N_DURATION)
                    readings[1, k] = number
                    n_durations += 1
                else:
                    i = _skip_element(buf, i, 7, deepest)
                if i < 0:
                    return -1
        elif _is(buf, i + 1, b, _N_VALUE):
            if not simple or n_values:
                return -1
            n_values = 1
            number, i = _number(buf, b + 1, _N_VALUE)
            readings[2, k] = number
        else:
            i = _skip_element(buf, i, 6, deepest)
        if i < 0:
            return -1


@_jit
def _reading_as_written(
    buf: bytes, i: int, readings: np.ndarray, k: int
) -> int:  # pragma: no cover (JIT)
    """At `i`, an IntervalReading exactly as the upload format writes it (``_READING_*``
    around three integers): writes its start, duration and value to column `k` of
    `readings` and returns the index after it; -1 otherwise."""
    if not _at(buf, i, _READING_HEAD):
        return -1
    duration, i = _digits(buf, i + _READING_HEAD.shape[0])
    if i < 0 or not _at(buf, i, _READING_DURATION_START):
        return -1
    start, i = _digits(buf, i + _READING_DURATION_START.shape[0])
    if i < 0 or not _at(buf, i, _READING_START_VALUE):
        return -1
    value, i = _digits(buf, i + _READING_START_VALUE.shape[0])
    if i < 0 or not _at(buf, i, _READING_TAIL):
        return -1
    readings[0, k] = start
    readings[1, k] = duration
    readings[2, k] = value
    return i + _READING_TAIL.shape[0]


@_jit
def _interval_block(
    buf: bytes, i: int, readings: np.ndarray, k: int, deepest: np.ndarray
) -> tuple[int, int]:  # pragma: no cover (JIT)
    """At `i`, just after ``<IntervalBlock xmlns=ESPI>`` (at nesting 4): its
    IntervalReadings to columns `k`, `k` + 1, ... of `readings`; (index after
    ``</IntervalBlock>``, next free column), index -1 when a reading is not in the
    canonical form. The nesting of what it skips goes to `deepest` (see `_skip_element`;
    a reading read is 7 deep: IntervalReading/timePeriod/start)."""
    capacity = readings.shape[1]
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return -1, k
        if buf[i + 1] == _SLASH:
            return _end_tag(buf, i, _N_INTERVAL_BLOCK), k
        b = _name_end(buf, i + 1)
        if b < 0:
            return -1, k
        if _is(buf, i + 1, b, _N_INTERVAL_READING):
            if buf[b] != _GT or k == capacity:
                return -1, k
            j = _reading_as_written(buf, i, readings, k)
            i = _interval_reading(buf, b + 1, readings, k, deepest) if j < 0 else j
            k += 1
        else:
            i = _skip_element(buf, i, 5, deepest)
        if i < 0:
            return -1, k


@_jit
def _first_href(scratch: np.ndarray, entry: int, rel: int) -> int:  # pragma: no cover (JIT)
    """Column in the link table of the first `rel` link with an href of `entry`, or -1."""
    for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
        if scratch[_S_LINK_REL, j] == rel and scratch[_S_LINK_FROM, j] >= 0:
            return j
    return -1


@_jit
def _resolve_scanned(buf: bytes, scratch: np.ndarray, n_res: int) -> int:  # pragma: no cover (JIT)
    """`_resolve_channels` on the scanned tables, for an upload it accepts with one
    IntervalBlock per channel: writes the channels (ReadingType resource, its span, the
    block's readings) to the `_S_OUT_*` rows in MeterReading order and returns how many;
    0 when the general path would reject the upload or find a channel with several blocks
    (then it runs and says why)."""
    n_rt = 0
    n_mr = 0
    n_block = 0
    n_up = 0
    for r in range(n_res):
        kind = scratch[_S_RES_KIND, r]
        if kind == _K_READING_TYPE:
            scratch[_S_RT, n_rt] = r
            n_rt += 1
        elif kind == _K_METER_READING:
            scratch[_S_MR, n_mr] = r
            n_mr += 1
        elif kind == _K_INTERVAL_BLOCK:
            scratch[_S_BLOCK, n_block] = r
            n_block += 1
        elif kind == _K_USAGE_POINT:
            n_up += 1
    if n_up > 1 or n_rt == 0 or n_block == 0:
        return 0
    if n_rt == 1:  # the general path reads no link: every block is the one channel's
        if n_block != 1:
            return 0
        scratch[_S_OWNER, 0] = 0
        scratch[_S_OUT_RT, 0] = scratch[_S_RT, 0]
        scratch[_S_OUT_OFFSET, 0] = scratch[_S_RES_OFFSET, scratch[_S_BLOCK, 0]]
        scratch[_S_OUT_COUNT, 0] = scratch[_S_RES_COUNT, scratch[_S_BLOCK, 0]]
        rt = scratch[_S_RT, 0]
        scratch[_S_OUT_RT_FROM, 0] = scratch[_S_RES_FROM, rt]
        scratch[_S_OUT_RT_TO, 0] = scratch[_S_RES_TO, rt]
        return 1
    # each ReadingType's self href: present, non-empty, distinct
    for t in range(n_rt):
        j = _first_href(scratch, scratch[_S_RES_ENTRY, scratch[_S_RT, t]], _R_SELF)
        if j < 0 or scratch[_S_LINK_TO, j] == scratch[_S_LINK_FROM, j]:
            return 0
        a = scratch[_S_LINK_FROM, j]
        b = scratch[_S_LINK_TO, j]
        for u in range(t):
            if _same(buf, a, b, scratch[_S_RT_HREF_FROM, u], scratch[_S_RT_HREF_TO, u]):
                return 0
        scratch[_S_RT_HREF_FROM, t] = a
        scratch[_S_RT_HREF_TO, t] = b
        scratch[_S_CLAIMED, t] = 0
    # MeterReadings' related hrefs that are not ReadingTypes: owned by one MeterReading each
    n_reg = 0
    for m in range(n_mr):
        entry = scratch[_S_RES_ENTRY, scratch[_S_MR, m]]
        for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
            if scratch[_S_LINK_REL, j] != _R_RELATED or scratch[_S_LINK_FROM, j] < 0:
                continue
            a = scratch[_S_LINK_FROM, j]
            b = scratch[_S_LINK_TO, j]
            is_rt = False
            for t in range(n_rt):
                if _same(buf, a, b, scratch[_S_RT_HREF_FROM, t], scratch[_S_RT_HREF_TO, t]):
                    is_rt = True
                    break
            if is_rt:
                continue
            seen = False
            for g in range(n_reg):
                if _same(buf, a, b, scratch[_S_REG_FROM, g], scratch[_S_REG_TO, g]):
                    if scratch[_S_REG_MR, g] != m:
                        return 0  # ambiguous_meter_reading
                    seen = True
                    break
            if not seen:
                if n_reg == _SCAN_ITEMS:
                    return 0
                scratch[_S_REG_FROM, n_reg] = a
                scratch[_S_REG_TO, n_reg] = b
                scratch[_S_REG_MR, n_reg] = m
                n_reg += 1
    # each block's up href names one MeterReading's related href; one block per MeterReading
    for m in range(n_mr):
        scratch[_S_OWNER, m] = -1
    for k in range(n_block):
        j = _first_href(scratch, scratch[_S_RES_ENTRY, scratch[_S_BLOCK, k]], _R_UP)
        if j < 0:
            return 0
        owner = -1
        for g in range(n_reg):
            if _same(
                buf,
                scratch[_S_LINK_FROM, j],
                scratch[_S_LINK_TO, j],
                scratch[_S_REG_FROM, g],
                scratch[_S_REG_TO, g],
            ):
                owner = scratch[_S_REG_MR, g]
                break
        if owner < 0 or scratch[_S_OWNER, owner] >= 0:
            return 0  # unresolved_meter_reading, or a channel of several blocks
        scratch[_S_OWNER, owner] = k
    # owners in document order: exactly one ReadingType each, none named twice
    n_out = 0
    for m in range(n_mr):
        k = scratch[_S_OWNER, m]
        if k < 0:
            continue
        linked = -1
        entry = scratch[_S_RES_ENTRY, scratch[_S_MR, m]]
        for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
            if scratch[_S_LINK_REL, j] != _R_RELATED or scratch[_S_LINK_FROM, j] < 0:
                continue
            for t in range(n_rt):
                if _same(
                    buf,
                    scratch[_S_LINK_FROM, j],
                    scratch[_S_LINK_TO, j],
                    scratch[_S_RT_HREF_FROM, t],
                    scratch[_S_RT_HREF_TO, t],
                ):
                    if linked >= 0 and linked != t:
                        return 0  # names two ReadingTypes
                    linked = t
        if linked < 0 or scratch[_S_CLAIMED, linked]:
            return 0
        scratch[_S_CLAIMED, linked] = 1
        rt = scratch[_S_RT, linked]
        block = scratch[_S_BLOCK, k]
        scratch[_S_OUT_RT, n_out] = rt
        scratch[_S_OUT_RT_FROM, n_out] = scratch[_S_RES_FROM, rt]
        scratch[_S_OUT_RT_TO, n_out] = scratch[_S_RES_TO, rt]
        scratch[_S_OUT_OFFSET, n_out] = scratch[_S_RES_OFFSET, block]
        scratch[_S_OUT_COUNT, n_out] = scratch[_S_RES_COUNT, block]
        n_out += 1
    return n_out


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 2, "C"),
        nb_types.Array(nb_types.int64, 2, "C"),
    ),
    cache=True,
    nogil=True,
)
def _scan_upload(buf: bytes, readings: np.ndarray, scratch: np.ndarray) -> int:  # pragma: no cover
    """Read an upload in the canonical form: libxml2's serialization of its tree
    (`scan_feed`) or the bytes the tree was parsed from (`scan_source`). Returns the number
    of channels found (their rows ``_S_OUT_*`` of `scratch`, their readings in
    `readings`), or 0 to decline.

    The form (``etree.tostring(root)`` of an upload in the format of
    ``docs/upload-format.md``): the root is ``<feed xmlns="{Atom}">`` with no other
    attribute; its ``id`` children are plain text (the first one with text is the feed id);
    its ``entry`` children have no attribute; an entry's ``link`` children carry unprefixed
    attributes, with ``rel`` and ``href`` printable ASCII, free of character references and
    of white space at their ends; its ``content`` children hold resources
    ``<Name xmlns="{ESPI}">`` with no other attribute; an IntervalBlock's IntervalReadings
    each have one ``timePeriod`` holding one ``start`` and one ``duration``, one ``value``,
    all decimal integers of at most 18 digits written plainly, and no ReadingQuality (a
    child of that name, or any prefixed child, declines). Other elements (titles, the
    block's ``interval``, other resources) are skipped whatever they hold. Anything else (a
    prefixed name where names are read, a namespace declaration on a read element, a
    comment, processing instruction or CDATA section anywhere, a channel without readings
    or with several blocks, links that the general path would reject) declines. No names
    are prefixed where names are read, so every read element's namespace is the default
    one declared on the feed (Atom) or on the resource (ESPI), as the general path's XPaths
    require.

    The bytes as received differ from the serialization of the tree parsed from them
    (as UTF-8, by `pipeline.fetch.parse.parse_upload`) in ways that change nothing the
    scanner reads, or make it decline:

    - an XML declaration, white space before and after the root, blank text between
      elements (which the parser drops): passed over; anything else outside the root
      declines;
    - comments, CDATA sections, processing instructions: every ``<`` of the root passes
      through the scanner, which declines ``<!`` and ``<?`` wherever it meets them; so
      every ``<`` it reads opens a start or end tag (XML allows it neither in text nor in
      attribute values);
    - a ``>`` in an attribute value (libxml2 writes ``&gt;``): a tag ends at its first
      ``>`` outside quotes (`_tag_end`);
    - references, a CR (read as LF), a tab or LF in an attribute value (read as a space):
      declined in the feed id (`_text_as_written`) and in the links' rel and href
      (`_plain`); numbers are plain digits;
    - single quotes, white space inside tags, other empty-element forms: the forms libxml2
      writes are accepted where the scanner reads, others decline (skipped elements may
      take any form);
    - elements in no namespace, which a tree's serialization may not show (see
      `_SCAN_BLOCKERS`): in the bytes as received every element's namespace is as written.

    A ReadingType's span (a cache key, see `ScannedFeed`) is then a self-contained element
    in both: its own default namespace is the only declaration in scope (the feed, its
    entries and their contents declare none, nor ``xml:space``), so equal spans of one kind
    (as received, or serialized) mean equal ReadingTypes (of two kinds they need not, see
    `ScannedFeed.as_received`)."""
    size = len(buf)
    i = 0
    if _at(buf, 0, _XML_DECLARATION):  # "<?xml ": it ends at the first "?>"
        while i + 1 < size and not (_byte(buf, i) == _QUESTION and _byte(buf, i + 1) == _GT):
            i += 1
        i = _after_white_space(buf, i + 2)
    if not _at(buf, i, _FEED_OPEN):
        return 0
    scratch[_S_HEADER, _H_ID_FROM] = -1
    scratch[_S_HEADER, _H_ID_TO] = -1
    deepest = scratch[_S_HEADER, _H_DEEPEST : _H_DEEPEST + 1]
    deepest[0] = 1
    n_res = 0
    n_links = 0
    n_entries = 0
    n_readings = 0
    i += _FEED_OPEN.shape[0]
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return 0
        if buf[i + 1] == _SLASH:  # </feed>: the document's end
            i = _end_tag(buf, i, _N_FEED)
            break
        b = _name_end(buf, i + 1)
        if b < 0:
            return 0
        if _is(buf, i + 1, b, _N_ENTRY):
            if buf[b] != _GT or n_entries == _SCAN_ITEMS:
                return 0
            entry = n_entries
            n_entries += 1
            scratch[_S_ENTRY_LINKS_FROM, entry] = n_links
            i = b + 1
            while True:  # the entry's children
                i = _next_tag(buf, i)
                if i < 0:
                    return 0
                if buf[i + 1] == _SLASH:
                    i = _end_tag(buf, i, _N_ENTRY)
                    break
                c = _name_end(buf, i + 1)
                if c < 0:
                    return 0
                if _is(buf, i + 1, c, _N_LINK):
                    if n_links == _SCAN_ITEMS:
                        return 0
                    rel = _R_OTHER
                    href_from = -1
                    href_to = -1
                    j = c
                    while buf[j] == _SPACE:
                        a, name_to, v, w, j = _attribute(buf, j)
                        if name_to < 0:
                            return 0
                        if _is(buf, a, name_to, _N_XMLNS):
                            return 0
                        if _is(buf, a, name_to, _N_REL):
                            if not _plain(buf, v, w):
                                return 0
                            if _is(buf, v, w, _V_SELF):
                                rel = _R_SELF
                            elif _is(buf, v, w, _V_UP):
                                rel = _R_UP
                            elif _is(buf, v, w, _V_RELATED):
                                rel = _R_RELATED
                        elif _is(buf, a, name_to, _N_HREF):
                            if not _plain(buf, v, w):
                                return 0
                            href_from = v
                            href_to = w
                    scratch[_S_LINK_REL, n_links] = rel
                    scratch[_S_LINK_FROM, n_links] = href_from
                    scratch[_S_LINK_TO, n_links] = href_to
                    n_links += 1
                    if buf[j] == _GT:  # a link with content: skip it
                        i = _skip_element(buf, i, 3, deepest)
                    elif buf[j] == _SLASH and j + 1 < size and buf[j + 1] == _GT:
                        i = j + 2
                    else:
                        return 0
                elif _is(buf, i + 1, c, _N_CONTENT):
                    j = c
                    while buf[j] == _SPACE:  # attributes (type=...) are allowed, not xmlns
                        a, name_to, v, w, j = _attribute(buf, j)
                        if name_to < 0 or _is(buf, a, name_to, _N_XMLNS):
                            return 0
                    if buf[j] == _SLASH and j + 1 < size and buf[j + 1] == _GT:
                        i = j + 2
                        continue
                    if buf[j] != _GT:
                        return 0
                    i = j + 1
                    while True:  # the resources
                        i = _next_tag(buf, i)
                        if i < 0:
                            return 0
                        if buf[i + 1] == _SLASH:
                            i = _end_tag(buf, i, _N_CONTENT)
                            break
                        d = _name_end(buf, i + 1)
                        if d < 0 or not _at(buf, d, _ESPI_DEFAULT_NS) or n_res == _SCAN_ITEMS:
                            return 0
                        e = d + _ESPI_DEFAULT_NS.shape[0]
                        if e + 1 >= size:
                            return 0
                        empty = buf[e] == _SLASH and buf[e + 1] == _GT
                        if not empty and buf[e] != _GT:
                            return 0
                        kind = _K_OTHER
                        if _is(buf, i + 1, d, _N_INTERVAL_BLOCK):
                            kind = _K_INTERVAL_BLOCK
                        elif _is(buf, i + 1, d, _N_READING_TYPE):
                            kind = _K_READING_TYPE
                        elif _is(buf, i + 1, d, _N_METER_READING):
                            kind = _K_METER_READING
                        elif _is(buf, i + 1, d, _N_USAGE_POINT):
                            kind = _K_USAGE_POINT
                        scratch[_S_RES_KIND, n_res] = kind
                        scratch[_S_RES_ENTRY, n_res] = entry
                        scratch[_S_RES_FROM, n_res] = i
                        scratch[_S_RES_OFFSET, n_res] = n_readings
                        if empty:
                            i = e + 2
                        elif kind == _K_INTERVAL_BLOCK:
                            i, n_readings = _interval_block(
                                buf, e + 1, readings, n_readings, deepest
                            )
                        else:
                            i = _skip_element(buf, i, 4, deepest)
                        if i < 0:
                            return 0
                        scratch[_S_RES_TO, n_res] = i
                        scratch[_S_RES_COUNT, n_res] = n_readings - scratch[_S_RES_OFFSET, n_res]
                        n_res += 1
                else:
                    i = _skip_element(buf, i, 3, deepest)
                if i < 0:
                    return 0
            scratch[_S_ENTRY_LINKS_TO, entry] = n_links
        elif _is(buf, i + 1, b, _N_ID):
            if buf[b] == _SLASH and b + 1 < size and buf[b + 1] == _GT:
                i = b + 2  # <id/>: no text
            elif buf[b] == _GT:
                j = _next_tag(buf, b + 1)
                if j < 0 or not _text_as_written(buf, b + 1, j):
                    return 0
                if scratch[_S_HEADER, _H_ID_FROM] < 0 and j > b + 1:
                    scratch[_S_HEADER, _H_ID_FROM] = b + 1
                    scratch[_S_HEADER, _H_ID_TO] = j
                i = _end_tag(buf, j, _N_ID)
            else:
                return 0
        else:
            i = _skip_element(buf, i, 2, deepest)
        if i < 0:
            return 0
    if i < 0:
        return 0
    if _after_white_space(buf, i) != size:  # after "</feed>" white space only (a comment
        return 0  # or processing instruction there declines)
    # what is read nests as deep as a resource (4, always: an upload has a ReadingType),
    # a reading's timePeriod/start (7, with any reading)
    deepest[0] = max(deepest[0], 7 if n_readings else 4)
    return _resolve_scanned(buf, scratch, n_res)


_BLOCK_OPEN = _ascii(f'<IntervalBlock xmlns="{ESPI_NS}">')


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 2, "C"),
    ),
    cache=True,
    nogil=True,
)
def _scan_block(buf: bytes, readings: np.ndarray) -> int:  # pragma: no cover (JIT)
    """The readings of one serialized IntervalBlock ``<IntervalBlock xmlns="{ESPI}">...``
    in the canonical form of `_scan_upload` (start, duration and value in rows 0, 1 and 2
    of `readings`): how many, or -1 when the block is not in that form."""
    if not _at(buf, 0, _BLOCK_OPEN):
        return -1
    deepest = np.zeros(1, dtype=np.int64)  # not needed here
    i, k = _interval_block(buf, _BLOCK_OPEN.shape[0], readings, 0, deepest)
    return k if i == len(buf) else -1


_scan_state = threading.local()


def _scan_scratch() -> np.ndarray:
    """This thread's scratch tables for `_scan_upload` (27 x 256 int64, 55 KB)."""
    scratch: np.ndarray | None = getattr(_scan_state, "scratch", None)
    if scratch is None:
        scratch = np.empty((_SCRATCH_ROWS, _SCAN_ITEMS), dtype=np.int64)
        _scan_state.scratch = scratch
    return scratch


#: lxml's tag filter for elements in no namespace.
_NO_NAMESPACE = "{}*"
#: `scan_feed` and `scan_block` leave to the general path any tree with
#: - an element in no namespace: libxml2 writes it without ``xmlns=""`` inside a default
#:   namespace, so the text would not say what it is (only a tree built or changed through
#:   the API can have one; a parsed one has ``xmlns=""`` written where it matters);
#: - a ReadingQuality: `block_quality` reads those (the scanner would decline them anyway,
#:   but only after a serialization; the C-level walk finds one without it).
_SCAN_BLOCKERS = (_NO_NAMESPACE, ESPI + "ReadingQuality")


_BLOCK_OPEN_BYTES = _BLOCK_OPEN.tobytes()
_BLOCK_CLOSE_BYTES = b"</IntervalBlock>"


def _after_declaration(source: bytes) -> int:
    """Offset after the XML declaration of `source` (0 without one) when every ``<`` after
    it opens a start or end tag, else -1: without ``<!`` (no comment, CDATA section or
    DOCTYPE) and without ``<?`` after the declaration, the only ``<`` of well-formed XML
    are tags (XML 1.0 §2.4 and §3.1 forbid it in text and attribute values).

    Cost: byte searches, ``!`` and ``?`` first (single bytes, which CPython finds with
    memchr, where the two-byte ``<!`` is a slower search)."""
    if source.startswith(b"<?"):
        if not source.startswith(b"<?xml "):
            return -1  # a processing instruction at the start, not the XML declaration
        after = source.find(b"?>") + 2
    else:
        after = 0
    if source.find(b"?", after) >= 0 and source.find(b"<?", after) >= 0:
        return -1
    if b"!" in source and b"<!" in source:
        return -1
    return after


def block_in_source(source: bytes, block: etree._Element) -> bytes | None:
    """The bytes of `block` in the document `source` it was parsed from (as UTF-8, as
    `pipeline.fetch.parse.parse_upload` does), when they can stand for its serialization in
    `_scan_block`; None otherwise (then the block is serialized).

    Sound because every ``<`` after the XML declaration opens a tag (`_after_declaration`)
    and the scanner ends a tag where the parser does (`_tag_end`). `block` is written
    without a prefix (``block.prefix``, as parsed), so its start tag is an occurrence of
    ``<IntervalBlock``. The region runs from the first occurrence, which must be the start
    tag ``<IntervalBlock xmlns="{ESPI}">``, to the last ``</IntervalBlock>``, and
    `_scan_block` accepts it only as one element that ends exactly there. That element is
    `block`: another element X named so (unprefixed) that came first would have to contain
    `block` to end after it, and cannot (`block` is a child of an Atom content of an Atom
    entry of the root); any X after the block's start is either inside it (skipped, as the
    general path ignores it) or after its end (then the scanned element ends before the
    region does: declined). (The first *full* start tag would not do: after a `block`
    written otherwise, it could be an X after it.) That start tag puts every unprefixed
    descendant the scanner reads (which may carry no attribute, so no ``xmlns``) in the
    ESPI namespace. What the parser would change inside (references, CR LF, white space
    around numbers) makes the scanner decline, as it does for anything outside the
    canonical form.
    """
    if block.prefix is not None or _after_declaration(source) < 0:
        return None
    i = source.find(b"<IntervalBlock")  # the first (not the first full start tag below)
    if i < 0 or not source.startswith(_BLOCK_OPEN_BYTES, i):
        return None
    j = source.rfind(_BLOCK_CLOSE_BYTES)
    if j < i:
        return None
    region = source[i : j + len(_BLOCK_CLOSE_BYTES)]
    return region if region.isascii() else None


def scan_block(
    block: etree._Element, source: bytes | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(start, duration, value) read-only int64 columns of an IntervalBlock in the
    canonical form, from its serialization (`_scan_block`): what
    `pipeline.process.columns.block_strings` and `pipeline.process.columns.int64_columns`
    give; None when the block is not in that form or has no reading (the XPaths then run).
    With the `source` bytes of the document, the block is read from them when
    `block_in_source` allows it (no serialization)."""
    buf = None if source is None else block_in_source(source, block)
    if buf is None:
        if next(block.iter(*_SCAN_BLOCKERS), None) is not None:
            return None  # see `_SCAN_BLOCKERS`
        text = etree.tostring(block, encoding="unicode", with_tail=False)
        if not text.isascii():
            return None
        buf = text.encode()
    readings = np.empty((3, len(buf) // _MIN_READING_BYTES + 1), dtype=np.int64)
    n = _scan_block(buf, readings)
    if n <= 0:
        return None
    readings.flags.writeable = False
    return readings[0, :n], readings[1, :n], readings[2, :n]


class ScannedFeed(NamedTuple):
    """What `scan_feed` or `scan_source` read from a feed.

    Attributes:
        document: the bytes scanned: the document as received, or the tree's
            serialization (``etree.tostring(root)``).
        as_received: whether `document` is the document as received (`scan_source`), not
            a serialization (`scan_feed`). Spans of the two kinds do not mean the same: a
            blank text written as a reference (``&#32;``) is kept by the parser, and the
            serialization writes it as the plain white space that a parse of other bytes
            drops, so a serialized span may equal another document's span as received
            and hold another ReadingType. Cache them apart.
        feed_id: the first ``atom:id`` text of the feed, None when it has none.
        readings: read-only int64 [3, capacity]: start, duration and value (rows) of every
            reading of every channel, channel after channel.
        channels: per channel, in MeterReading order: (the index of its ReadingType among
            the feed's resources ``atom:entry/atom:content/*``, the span of that
            ReadingType element in `document` (from, to: a self-contained element, a cache
            key), its readings' columns in `readings` (first, count)). Empty when the
            scanner declined the document (not in the canonical form, or the general path
            could find fault with its links, or would find a channel with several blocks:
            then the general path runs).
        nesting: the deepest element nesting of the document, the root at 1, when the
            scanner read it (it passes every tag: exact for a well-formed document); None
            when it declined.
    """

    document: bytes
    as_received: bool
    feed_id: str | None
    readings: np.ndarray
    channels: list[list[int]]
    nesting: int | None


def scan_feed(root: etree._Element) -> ScannedFeed:
    """Scan a feed (``atom:feed`` root) in the canonical form, in its serialization: its
    channels, resolved by the rules of the general path, one IntervalBlock each, and their
    readings (see `ScannedFeed`, whose channels are empty when the scanner declines)."""
    if next(root.iter(*_SCAN_BLOCKERS), None) is not None:
        return _without_channels(b"", as_received=False)  # see `_SCAN_BLOCKERS`
    return _scanned(etree.tostring(root), as_received=False)


def scan_source(source: bytes) -> ScannedFeed:
    """`scan_feed` of the tree parsed from `source` (as UTF-8, by
    `pipeline.fetch.parse.parse_upload`), read in these bytes as received: no tree needed,
    no serialization (see `_scan_upload` for why the result is the same). The result
    holds for the tree once the parse has succeeded (the scanner does not check that the
    document is well-formed)."""
    return _scanned(source, as_received=True)


def unscanned(source: bytes) -> ScannedFeed:
    """The bytes as received, not scanned (no channels: `extract_batches` takes the tree's
    paths, and reads a single channel's block in these bytes when they allow it)."""
    return _without_channels(source, as_received=True)


#: `ScannedFeed.readings` of a document declined or not scanned.
_NO_READINGS = np.empty((3, 0), dtype=np.int64)
_NO_READINGS.flags.writeable = False


def _without_channels(buf: bytes, *, as_received: bool) -> ScannedFeed:
    """A `ScannedFeed` of `buf` without channels: declined, or not scanned."""
    return ScannedFeed(buf, as_received, None, _NO_READINGS, [], None)


def _scanned(buf: bytes, *, as_received: bool) -> ScannedFeed:
    """`_scan_upload` of `buf` as a `ScannedFeed`."""
    readings = np.empty((3, len(buf) // _MIN_READING_BYTES + 1), dtype=np.int64)
    scratch = _scan_scratch()
    n_channels = _scan_upload(buf, readings, scratch)
    if n_channels == 0:
        return _without_channels(buf, as_received=as_received)
    readings.flags.writeable = False
    id_from, id_to, nesting = scratch[_S_HEADER, :3].tolist()
    return ScannedFeed(
        buf,
        as_received,
        # bytes that are not UTF-8 fail the parse, which the result waits for
        buf[id_from:id_to].decode(errors="replace") if id_from >= 0 else None,
        readings,
        scratch[_S_OUT_RT : _S_OUT_COUNT + 1, :n_channels].T.tolist(),
        nesting,
    )
