"""Reading an upload's columns out of the tree: the compiled XPaths of an IntervalBlock's
readings (`block_strings`) and of a ReadingType's fields (`reading_type_values`), the
conversion of integer texts to int64 columns as XML Schema reads them (`xs_integer`,
`int64_columns`, with a compiled parse of the joined texts) and the ESPI ReadingQuality
column (`block_quality`, `concat_quality`).

Shared by `pipeline.process.upload` (the strict reading of meter uploads) and
`pipeline.process.greenbutton` (the tolerant reading of utility files).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import numba
import numpy as np
from lxml import etree
from numba import types as nb_types

from pipeline.espi.codes import QUALITY_MIXED
from pipeline.espi.namespaces import ESPI, NAMESPACES
from pipeline.espi.reading_type import READING_TYPE_ELEMENTS
from pipeline.process.batch import QUALITY_NONE

__all__ = [
    "DURATIONS",
    "MAX_DECIMAL_DIGITS",
    "READINGS",
    "READING_QUALITY_TAG",
    "STARTS",
    "VALUES",
    "Elements",
    "ReadingTypeValues",
    "SerializationCache",
    "String",
    "Strings",
    "block_quality",
    "block_strings",
    "concat_quality",
    "int64_columns",
    "reading_type_values",
    "xpath",
    "xs_integer",
]

_SEP = "|"
_K = TypeVar("_K", bytes, str)
_V = TypeVar("_V")
_UINT16_MAX = 2**16 - 1


#: Compiled XPaths, typed by what they return: texts, elements, one string, a number.
Strings = Callable[[etree._Element], list[str]]
Elements = Callable[[etree._Element], list[etree._Element]]
String = Callable[[etree._Element], str]
_Number = Callable[[etree._Element], float]


def xpath(expr: str) -> etree.XPath:
    """Compile with the ESPI/Atom prefixes; plain str results; no EXSLT regexp functions
    (``regexp=False`` spares their set-up on every call)."""
    return etree.XPath(expr, namespaces=NAMESPACES, smart_strings=False, regexp=False)


# Module-level compiled XPaths, typed by what they return. lxml serialises concurrent calls
# of one XPath object with a lock, so sharing them between threads is safe.

#: From a ReadingType element: every field of `READING_TYPE_ELEMENTS`, in one string.
_READING_TYPE_TEXT = cast(
    String,
    xpath(
        "concat("
        + f", '{_SEP}', ".join(f"espi:{name}" for name, _, _ in READING_TYPE_ELEMENTS)
        + ")"
    ),
)
#: From an IntervalBlock element: one string per IntervalReading, in document order.
_READING_FIELDS = (
    "espi:IntervalReading/espi:timePeriod/espi:start/text()",
    "espi:IntervalReading/espi:timePeriod/espi:duration/text()",
    "espi:IntervalReading/espi:value/text()",
)
STARTS, DURATIONS, VALUES = (cast(Strings, xpath(field)) for field in _READING_FIELDS)
#: ReadingQuality of an IntervalBlock's readings (see `block_quality`).
_N_QUALITIES = cast(_Number, xpath("count(espi:IntervalReading/espi:ReadingQuality)"))
#: The codes of the readings that carry exactly one ReadingQuality holding exactly one
#: code: n of them for n readings means one each, in reading order (a reading with two
#: codes and the next with none contribute 0, not 2 + 0).
_ONE_QUALITY_EACH = cast(
    Strings,
    xpath(
        "espi:IntervalReading[count(espi:ReadingQuality) = 1]"
        "[count(espi:ReadingQuality/espi:quality/text()) = 1]"
        "/espi:ReadingQuality/espi:quality/text()"
    ),
)
_FLAGGED_READINGS = cast(Elements, xpath("espi:IntervalReading[espi:ReadingQuality]"))
READINGS = cast(Elements, xpath("espi:IntervalReading"))
_N_READINGS = cast(_Number, xpath("count(espi:IntervalReading)"))
_QUALITY_CODES = cast(Strings, xpath("espi:ReadingQuality/espi:quality/text()"))

READING_QUALITY_TAG = ESPI + "ReadingQuality"


# --- ReadingType fields -----------------------------------------------------------------------


ReadingTypeValues = tuple[int | None, ...]


def _parse_reading_type_text(text: str) -> tuple[ReadingTypeValues | None, str | None]:
    """(values, None) or (None, reason) for the `_READING_TYPE_TEXT` of a ReadingType."""
    fields = text.split(_SEP)
    if len(fields) != len(READING_TYPE_ELEMENTS):
        return None, f"non_integer: a ReadingType field holds {_SEP!r}: {text[:120]!r}"
    values: list[int | None] = []
    for field, (name, low, high) in zip(fields, READING_TYPE_ELEMENTS, strict=True):
        if not field.strip(" \t\r\n"):  # XML white space only (not NBSP, as str.strip)
            values.append(None)
            continue
        if not _XS_INTEGER.fullmatch(field):  # not int(): it also takes "1_000", "١٢"
            return None, f"non_integer: ReadingType {name} must be an integer, got {field[:40]!r}"
        number = int(field)
        if not low <= number <= high:
            return None, f"out_of_range: ReadingType {name} = {number} is outside [{low}, {high}]"
        values.append(number)
    return tuple(values), None


class SerializationCache(dict[_K, _V]):
    """What was read from an element, by the element's serialisation: a meter sends the
    same ReadingType in every upload, so its fields are parsed once. A dict (lookups are
    `dict.get`, on the hot path), bounded by `put`: at most `MAX_ENTRIES` entries (emptied
    when full) of keys of at most `MAX_KEY_LENGTH` bytes or characters (larger elements
    are not cached)."""

    MAX_ENTRIES = 1024
    MAX_KEY_LENGTH = 4096

    def put(self, key: _K, value: _V) -> None:
        """Remember `value` for `key` within the bounds."""
        if len(key) <= self.MAX_KEY_LENGTH:
            if len(self) >= self.MAX_ENTRIES:
                self.clear()
            self[key] = value


#: Parsed ReadingTypes by their serialisation (see `reading_type_values`).
_READING_TYPE_CACHE: SerializationCache[bytes, tuple[ReadingTypeValues | None, str | None]] = (
    SerializationCache()
)


def reading_type_values(element: etree._Element) -> tuple[ReadingTypeValues | None, str | None]:
    """The fields of a ReadingType element, in the order of `READING_TYPE_ELEMENTS`.

    Returns:
        (values, None) with None for each absent or empty field, or (None, reason) when a
        field is not an integer or outside its ESPI range (reason codes ``non_integer``,
        ``out_of_range``). What an absent field means is the caller's policy.

    Cached on the element's serialisation (``etree.tostring``, cheaper than the XPath that
    reads the ten fields and their conversion): a meter sends the same ReadingType in
    every upload. Bounded: at most 1024 entries of at most 4 KB (the cache
    is emptied when full; larger elements are not cached), and reasons are cached too, so
    a repeated bad document costs no more than a good one.
    """
    key = etree.tostring(element)
    found = _READING_TYPE_CACHE.get(key)
    if found is None:
        found = _parse_reading_type_text(_READING_TYPE_TEXT(element))
        _READING_TYPE_CACHE.put(key, found)
    return found


def block_strings(block: etree._Element) -> tuple[list[str], list[str], list[str]]:
    """(starts, durations, values) texts of an IntervalBlock's readings, in document order
    (three compiled XPaths; a reading without a field contributes nothing to that list)."""
    return STARTS(block), DURATIONS(block), VALUES(block)


#: XML Schema's lexical form of an integer (xs:integer, xs:long, xs:unsignedShort...: an
#: optional sign and ASCII digits, XML Schema Part 2 §3.3.13), with the white space XML
#: may put around it (whiteSpace "collapse"; XML 1.0 production S: space, tab, CR, LF).
_XS_INTEGER = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*")
#: Comma-joined xs:integer texts (a text holds no comma, see `_xs_int64_array`).
_XS_INTEGERS = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*(?:,[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*)*")


def xs_integer(text: str) -> int:
    """The value of an xs:integer text (surrounding XML white space allowed); ValueError
    otherwise. Stricter than Python's ``int``, which also takes
    ``1_000``, non-ASCII digits (``١٢``, ``１２``) and non-ASCII white space (NBSP): none
    of them is an XML Schema integer, and reading them would invent a value the sender
    did not write."""
    if not _XS_INTEGER.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not an integer (xs:integer)")
    return int(text)


def _xs_int64_array(texts: list[str]) -> np.ndarray:
    """The integer texts as a new int64 array, read as XML Schema reads them (`xs_integer`):
    one regex match over the joined texts, then numpy's conversion (Python's ``int``, which
    on these forms gives the xs value). The slow way of `_int64_array`, for texts with
    white space, more than 18 digits or anything else.

    Raises:
        ValueError: ``non_integer: ...`` naming the first text that is not an xs:integer.
        OverflowError: a value outside int64.
    """
    joined = ",".join(texts)
    if texts and (joined.count(",") != len(texts) - 1 or not _XS_INTEGERS.fullmatch(joined)):
        for text in texts:  # the error path only: name the culprit
            if not _XS_INTEGER.fullmatch(text):
                raise ValueError(f"non_integer: {text[:40]!r} is not an integer (xs:integer)")
        raise ValueError(f"non_integer: a text holds ',': {joined[:80]!r}")
    return np.array(texts, dtype=np.int64)


#: Bytes of `_parse_decimal_ints`'s grammar.
_COMMA, _PLUS, _MINUS, _ZERO = (ord(c) for c in ",+-0")
#: Most digits `_parse_decimal_ints` reads: 10**18 - 1 < 2**63 - 1, so no int64 overflow.
MAX_DECIMAL_DIGITS = 18


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 1, "C"),
    ),
    cache=True,
    nogil=True,
)
def _parse_decimal_ints(text: bytes, out: np.ndarray) -> int:  # pragma: no cover (JIT)
    """Parse ``out.shape[0]`` comma-separated ASCII integers ``[+-]?[0-9]{1,18}`` from
    `text` into `out`; returns how many, or -1 when `text` is anything else (then `out` is
    garbage). Every accepted token means what Python's ``int`` makes of it."""
    size = len(text)
    n_out = out.shape[0]
    k = 0
    i = 0
    while True:
        negative = False
        if i < size and (text[i] == _MINUS or text[i] == _PLUS):
            negative = text[i] == _MINUS
            i += 1
        value = 0
        digits = 0
        while i < size and text[i] != _COMMA:
            digit = int(text[i]) - _ZERO
            if digit < 0 or digit > 9 or digits == MAX_DECIMAL_DIGITS:
                return -1
            value = value * 10 + digit
            digits += 1
            i += 1
        if digits == 0 or k == n_out:
            return -1
        out[k] = -value if negative else value
        k += 1
        if i == size:
            return k if k == n_out else -1
        i += 1  # the comma


def _parse_joined(joined: str, n: int) -> np.ndarray | None:
    """The `n` comma-joined integer texts `joined` as a new int64 array, or None when they
    are not all plain decimal integers of up to 18 digits (see `_int64_array`)."""
    if not joined.isascii():
        return None
    out = np.empty(n, dtype=np.int64)
    return out if _parse_decimal_ints(joined.encode(), out) == n else None


def _int64_array(texts: list[str]) -> np.ndarray:
    """The xs:integer texts as an int64 array (`xs_integer` for each), fast.

    numpy converts each text with Python's ``int``; here the texts are joined into one ASCII
    string and parsed by a compiled loop (`_parse_decimal_ints`, a few times faster per
    text), which accepts only plain decimal integers of up to 18 digits. Anything else
    (white space, 19 digits or more, not a number at all) goes through `_xs_int64_array`,
    which raises ValueError (``non_integer``) for what is not an XML Schema integer
    (``1_000``, non-ASCII digits or white space, which Python's ``int`` would take) and
    OverflowError beyond int64."""
    column = _parse_joined(",".join(texts), len(texts))
    return _xs_int64_array(texts) if column is None else column


def int64_columns(
    starts: list[str], durations: list[str], values: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three equally long lists of integer texts as read-only int64 columns (views of
    one buffer), in one conversion (XML Schema integers: surrounding XML white space is
    allowed; see `_int64_array`). Raises ValueError (``non_integer: ...``) or OverflowError
    on a text that is not a 64-bit xs:integer."""
    n = len(starts)
    joined = f"{','.join(starts)},{','.join(durations)},{','.join(values)}"
    columns = _parse_joined(joined, 3 * n)
    if columns is None:
        columns = _xs_int64_array(starts + durations + values)
    columns.flags.writeable = False
    return columns[:n], columns[n : 2 * n], columns[2 * n :]


def block_quality(block: etree._Element, n: int, default: int | None) -> np.ndarray | None:
    """ESPI QualityOfReading code of each of the `n` readings of an IntervalBlock.

    A reading's code is its ReadingQuality/quality; with several different ones,
    `QUALITY_MIXED`; without any, the ReadingType's defaultQuality (`default`), else
    `QUALITY_NONE`. Returns None when no reading has a code and there is no default.

    Cost: a C-level descendant walk when no reading carries a ReadingQuality (the usual
    upload); otherwise an XPath count, and two more XPaths when
    every reading carries exactly one ReadingQuality with exactly one code (then the codes
    are one per reading, in order: `_ONE_QUALITY_EACH` leaves out the readings with no code
    or several, so that a reading with two codes next to one with none is never read as
    one each); otherwise the block's IntervalReadings are
    indexed once (a dictionary of n entries) and each flagged reading costs one small XPath
    for its codes: linear in the readings, in this fallback only.

    Raises:
        ValueError: a code that is not an integer in [0, 65535], or readings that cannot be
            aligned with the columns (an IntervalReading without start, duration and value);
            the message is ``"<code>: <text>"`` with code ``non_integer``, ``out_of_range``
            or ``mismatched_counts``.
    """
    # lxml's C-level descendant walk finds none (the usual upload) faster than the count
    no_codes = next(block.iter(READING_QUALITY_TAG), None) is None
    n_codes = 0 if no_codes else int(_N_QUALITIES(block))
    if n_codes == 0:
        return None if default is None else np.full(n, default, dtype=np.int64)
    if int(_N_READINGS(block)) != n:
        raise ValueError(
            f"mismatched_counts: {int(_N_READINGS(block))} IntervalReadings, {n} of them with "
            "start, duration and value"
        )
    codes = _ONE_QUALITY_EACH(block) if n_codes == n else []
    if len(codes) == n:  # every reading has exactly one code
        quality = _quality_array(codes)
    else:
        quality = np.full(n, QUALITY_NONE if default is None else default, dtype=np.int64)
        # lxml hands out one proxy object per node while it is referenced (`readings` keeps
        # them referenced), so the ids identify the readings
        readings = READINGS(block)
        position = {id(reading): i for i, reading in enumerate(readings)}
        for reading in _FLAGGED_READINGS(block):  # one per flagged reading
            reading_codes = _quality_array(_QUALITY_CODES(reading))
            if reading_codes.shape[0]:
                first = int(reading_codes[0])
                mixed = not (reading_codes == first).all()
                quality[position[id(reading)]] = QUALITY_MIXED if mixed else first
        del readings
    quality.flags.writeable = False
    return quality


def concat_quality(parts: Sequence[np.ndarray | None], sizes: Sequence[int]) -> np.ndarray | None:
    """The quality columns of consecutive pieces of a series as one column (a None piece,
    of ``sizes[i]`` readings, is `QUALITY_NONE`); None when every piece is None."""
    if all(part is None for part in parts):
        return None
    column = np.concatenate(
        [
            np.full(size, QUALITY_NONE, dtype=np.int64) if part is None else part
            for part, size in zip(parts, sizes, strict=True)
        ]
    )
    column.flags.writeable = False
    return column


def _quality_array(codes: list[str]) -> np.ndarray:
    try:
        quality = _int64_array(codes)
    except (ValueError, OverflowError):
        raise ValueError(
            f"non_integer: ReadingQuality quality must be an integer, got {codes[:3]!r:.80}"
        ) from None
    if quality.shape[0] and (quality.min() < 0 or quality.max() > _UINT16_MAX):
        raise ValueError(f"out_of_range: ReadingQuality quality outside [0, {_UINT16_MAX}]")
    return quality
