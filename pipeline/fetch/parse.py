"""Fetch stage: hardened ingest of one uploaded ESPI (Green Button) XML document.

Uploads from the field are hostile until proven otherwise (DESIGN §9). `parse_upload` turns
the raw bytes of one upload into an lxml element tree, or raises `RejectedUpload` with a
reason that names the cause. The checks, cheapest first:

1. empty body, size over `Limits.max_size_bytes` (before any parsing);
2. a UTF-16 or UTF-32 byte order mark or NUL bytes in the first four bytes
   (``unsupported_encoding``, before any parsing);
3. any DOCTYPE in the prolog (which is where ENTITY declarations live), whatever its case
   (``<!doctype`` is not XML, but it is rejected as a DOCTYPE, not as a syntax error),
   after any comments and processing instructions: billion laughs, quadratic blow-up and
   XXE (``file://`` or ``http://``) are rejected before libxml2 sees the document. The
   byte scan is sound because the parser is forced to UTF-8, where every markup character
   is its ASCII byte: markup hidden in another encoding (UTF-16 after an ASCII declaration
   that names UTF-16, UTF-7, EBCDIC) is not markup to the parser either, and fails to
   parse (``unsupported_encoding`` for NUL bytes and invalid UTF-8, else ``malformed``).
   The parser is also configured so that it could not expand or fetch entities if one
   slipped through (``resolve_entities=False``, ``load_dtd=False``, ``no_network=True``,
   ``huge_tree=False``);
4. the parse itself (a per-thread parser, see `_parser`): truncated or malformed XML is
   rejected with lxml's message. The body goes to the parser in pieces of at most
   `_FEED_CHUNK_BYTES`: libxml2 without ``huge_tree`` refuses to buffer more than
   10,000,000 bytes of input at once ("Buffer size limit exceeded"), so a valid file of
   tens of MB (within the size limit) parses only when fed in pieces. When the body could
   hold more elements than `Limits.max_elements` (its count of start-tag ``<`` bytes says
   so), it is rejected without parsing if that count is exact (no comment, CDATA or
   processing instruction besides the XML declaration), else the parse counts elements as
   it goes and stops at the limit: a flood of tiny elements never costs more than
   `Limits.max_elements` tree nodes of memory;
5. the root must be ``atom:feed`` or ``atom:entry``;
6. element count and depth (see `Limits`; the depth is an XPath on the tree, or a count
   made in the bytes that the caller passes in, see `parse_upload`).

Without a DTD nothing can be referenced, so a "quadratic blow-up" without one is a document
that really is as large as what it holds (one long text or attribute repeated): the size
limit bounds it, and libxml2 parses it in linear time.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from lxml import etree

from pipeline.espi.namespaces import ATOM, ATOM_NS
from pipeline.fetch.limits import Limits
from pipeline.fetch.rejection import RejectedUpload

__all__ = ["new_parser", "parse_upload"]

_ROOT_TAGS = frozenset({ATOM + "feed", ATOM + "entry"})


#: libxml2 refuses documents nested deeper than this without XML_PARSE_HUGE (huge_tree).
_LIBXML2_MAX_DEPTH = 256


_DEFAULT_LIMITS = Limits()

#: Largest piece of a body handed to the parser in one ``feed`` call, bytes: well below the
#: 10,000,000 bytes of unparsed input libxml2 buffers at most without ``huge_tree``; a
#: meter upload (at most 4 MB) takes one to four calls.
_FEED_CHUNK_BYTES = 1 << 20

# --- parser -----------------------------------------------------------------------------------

_thread_state = threading.local()


def new_parser() -> etree.XMLParser:
    """A hardened parser. Options and why:

    - ``encoding="utf-8"``: ignore the declared encoding; ESPI uploads are UTF-8, and a
      forced single-byte-markup encoding is what makes the byte-level DOCTYPE scan sound
      (a UTF-16 or UTF-7 document fails to parse instead of hiding markup from the scan);
    - ``resolve_entities=False``, ``load_dtd=False``, ``dtd_validation=False``,
      ``no_network=True``: never expand, load or fetch anything;
    - ``huge_tree=False``: keep libxml2's own safety limits (depth 256, text node size,
      entity amplification);
    - ``remove_comments``, ``remove_pis``: not needed downstream; dropping comments also
      merges text split by them (the NIST sample has comments inside ``timePeriod``);
    - ``remove_blank_text``: indentation is not data; fewer nodes for the XPaths to skip
      (and a few % faster to parse than keeping it);
    - ``collect_ids=False``: no xml:id hash table;
    - ``recover=False``: broken XML is an error, not something to guess at.
    """
    return etree.XMLParser(**_PARSER_OPTIONS)


#: Options of every parser of this module (see `new_parser` for why).
_PARSER_OPTIONS: dict[str, Any] = {
    "encoding": "utf-8",
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "remove_blank_text": True,
    "collect_ids": False,
    "recover": False,
    "attribute_defaults": False,
}


def _parser() -> etree.XMLParser:
    """This thread's parser, created on first use.

    The document goes through the parser's push interface (``feed`` then ``close``), which
    is cheaper than ``etree.fromstring`` on an upload. Between ``feed``
    and ``close`` the parser holds that document's state, so: one parser per thread (lxml
    parsers must not be shared by concurrent threads), the whole body in one ``feed``, and
    a parser whose parse failed is dropped, never reused (`parse_upload`). After a
    successful ``close`` the parser holds nothing of the document."""
    parser: etree.XMLParser | None = getattr(_thread_state, "parser", None)
    if parser is None:
        parser = new_parser()
        _thread_state.parser = parser
    return parser


@lru_cache(maxsize=16)
def _too_deep_xpath(max_depth: int) -> etree.XPath:
    """Compiled XPath: true when some element sits deeper than `max_depth` (root = 1)."""
    return etree.XPath("boolean(/*" + "/*" * max_depth + ")", regexp=False)


# --- checks -----------------------------------------------------------------------------------

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _check_encoding(body: bytes) -> None:
    head = body[:4]
    if head.startswith(_UTF16_32_BOMS) or b"\x00" in head:
        raise RejectedUpload(
            "unsupported_encoding: document looks like UTF-16 or UTF-32 (byte order mark or "
            "NUL bytes at its start); uploads must be UTF-8"
        )


def _check_prolog(body: bytes) -> None:
    """Reject a DOCTYPE. XML allows it only in the prolog (before the root element, among
    the XML declaration, processing instructions, comments and white space), and ENTITY
    declarations only inside it, so the scan stops at the root element's ``<``: a few
    ``bytes.find`` calls, whatever the size of the document."""
    pos = 0
    while True:
        lt = body.find(b"<", pos)
        if lt < 0:
            return  # no element at all: the parser reports it
        marker = body[lt + 1 : lt + 2]
        if marker == b"?":  # XML declaration or processing instruction
            end = body.find(b"?>", lt + 2)
            if end < 0:
                return
            pos = end + 2
        elif marker == b"!":
            if body.startswith(b"<!--", lt):
                end = body.find(b"-->", lt + 4)
                if end < 0:
                    return
                pos = end + 3
            elif body[lt : lt + 9].upper() == b"<!DOCTYPE":
                if b"<!ENTITY" in body:
                    raise RejectedUpload(
                        "dtd_forbidden: document has a DOCTYPE with ENTITY declarations "
                        "(entities are not accepted)"
                    )
                raise RejectedUpload(
                    "dtd_forbidden: document has a DOCTYPE (entities are not accepted)"
                )
            else:
                return  # not well-formed: the parser reports it
        else:
            return  # the root element starts here


def _syntax_reason(exc: etree.XMLSyntaxError, body: bytes) -> str:
    message = str(exc)
    if message.startswith("no element found"):
        # The push parser reported only that no tree came out (for example after an
        # undefined entity); a memory parse of the same, DTD-free bytes names the cause.
        try:
            etree.fromstring(body, new_parser())
        except etree.XMLSyntaxError as detailed:
            message = str(detailed)
    if "Excessive depth" in message:
        return f"too_deep: nesting beyond libxml2's limit of {_LIBXML2_MAX_DEPTH} ({message})"
    if "amplification" in message:
        return f"dtd_forbidden: entity expansion refused ({message})"
    if any(text in message for text in _NOT_UTF8_MESSAGES):
        return f"unsupported_encoding: the document is not valid UTF-8 ({message})"
    return f"malformed: {message}"


#: libxml2 messages for bytes that are not UTF-8 (invalid sequences, a NUL byte).
_NOT_UTF8_MESSAGES = (
    "Invalid bytes in character encoding",
    "not proper UTF-8",
    "Char 0x0 out of allowed range",
)

#: Bytes fed to the counting parser at a time (see `_parse_counting`).
_COUNT_CHUNK_BYTES = 1 << 16


def _start_tag_bound(body: bytes, max_elements: int) -> tuple[int, bool]:
    """(bound, exact): an upper bound on the number of elements of a document, its ``<``
    bytes that open neither an end tag, a comment, CDATA, a DOCTYPE nor a processing
    instruction; and whether it is exact for a well-formed document. It is when the body
    has no ``<!`` at all and at most one ``<?`` (the XML declaration): a ``<`` may then
    appear only as markup (XML 1.0 §2.4 and §3.1 forbid it in text and attribute values).
    A ``<`` inside a comment, CDATA section or processing instruction counts too, which only
    loosens the bound. Two ``bytes.count`` passes when the first bound is within
    `max_elements` (a genuine upload), four otherwise."""
    bound = body.count(b"<") - body.count(b"</")
    if bound <= max_elements:
        return bound, False
    n_bang = body.count(b"<!")
    n_pi = body.count(b"<?")
    return bound - n_bang - n_pi, n_bang == 0 and n_pi <= 1


def _chunks(body: bytes, size_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(offset, piece): `body` in consecutive pieces of at most `size_bytes` (a body that
    fits is the one piece, not a copy)."""
    for offset in range(0, len(body), size_bytes):
        yield offset, body[offset : offset + size_bytes]


def _parse_counting(body: bytes, max_elements: int) -> etree._Element:
    """Parse with a pull parser that counts start-element events and stops at once when
    there are more than `max_elements` (the tree then never holds many more nodes than
    the limit). Raises `RejectedUpload` (``too_many_elements``) or XMLSyntaxError."""
    parser = etree.XMLPullParser(events=("start",), **_PARSER_OPTIONS)
    count = 0
    for offset, piece in _chunks(body, _COUNT_CHUNK_BYTES):
        parser.feed(piece)
        for _ in parser.read_events():
            count += 1
        if count > max_elements:
            read = offset + _COUNT_CHUNK_BYTES
            where = "" if read >= len(body) else f"in the first {read} bytes "
            raise RejectedUpload(
                f"too_many_elements: {count} elements {where}exceeds the limit of "
                f"{max_elements}"
            )
    root: etree._Element = parser.close()
    return root


def parse_upload(
    body: bytes, limits: Limits = _DEFAULT_LIMITS, *, nesting: int | None = None
) -> etree._Element:
    """Parse one upload into its root element, or raise `RejectedUpload`.

    Args:
        body: the document exactly as received, UTF-8 encoded bytes.
        limits: size, depth and element-count bounds (see `Limits`).
        nesting: the deepest element nesting of `body` (the root at 1) when the caller has
            counted it in these bytes already, exactly for a well-formed document (the
            process stage's scanner does, `pipeline.process.scanner.scan_source`): then
            it is compared with ``limits.max_depth`` (once the parse has shown the document
            well-formed) instead of walking the tree with the depth XPath.

    Returns:
        The root element, ``atom:feed`` or ``atom:entry``, of a tree without comments,
        processing instructions or ignorable white space.

    Raises:
        RejectedUpload: with reason code ``empty_body``, ``too_large``,
            ``unsupported_encoding``, ``dtd_forbidden``, ``malformed``, ``bad_root``,
            ``too_many_elements`` or ``too_deep``.
    """
    size_bytes = len(body)
    if size_bytes == 0:
        raise RejectedUpload("empty_body: the upload has no bytes")
    if size_bytes > limits.max_size_bytes:
        raise RejectedUpload(
            f"too_large: {size_bytes} bytes exceeds the limit of {limits.max_size_bytes} bytes"
        )
    _check_encoding(body)
    _check_prolog(body)
    counting = False
    if limits.may_hold_too_many_elements(size_bytes):
        bound, exact = _start_tag_bound(body, limits.max_elements)
        if bound > limits.max_elements:
            if exact:  # a flood of elements: rejected without parsing
                raise RejectedUpload(
                    f"too_many_elements: {bound} elements exceeds the limit of "
                    f"{limits.max_elements}"
                )
            counting = True
    if counting:
        try:
            root = _parse_counting(body, limits.max_elements)
        except etree.XMLSyntaxError as exc:
            raise RejectedUpload(_syntax_reason(exc, body)) from None
    else:
        parser = _parser()
        parsed = False
        try:
            if size_bytes <= _FEED_CHUNK_BYTES:  # an upload: one piece, without a generator
                parser.feed(body)
            else:
                for _, piece in _chunks(body, _FEED_CHUNK_BYTES):
                    parser.feed(piece)
            root = parser.close()
            parsed = True
        except etree.XMLSyntaxError as exc:
            raise RejectedUpload(_syntax_reason(exc, body)) from None
        finally:
            if not parsed:  # a failed push parse may leave state behind: never reuse it
                _thread_state.parser = None
    tag = root.tag
    if tag not in _ROOT_TAGS:
        raise RejectedUpload(
            f"bad_root: root element is {tag!r}, expected atom:feed or atom:entry "
            f"in namespace {ATOM_NS}"
        )
    if nesting is None:
        too_deep = bool(_too_deep_xpath(limits.max_depth)(root))
    else:
        too_deep = nesting > limits.max_depth
    if too_deep:
        raise RejectedUpload(
            f"too_deep: elements nested deeper than the limit of {limits.max_depth} levels"
        )
    return root
