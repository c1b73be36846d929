"""Hardened ingest: hostile and broken uploads are rejected with a reason, good ones parse."""

from __future__ import annotations

import pickle
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from meters.espi import Channel, ReadingTypeSpec
from meters.espi_upload import encode_meter_upload
from pipeline import Limits, Pipeline, RejectedUpload, Store
from pipeline.espi.namespaces import ATOM, ATOM_NS
from pipeline.fetch import parse
from pipeline.fetch.parse import new_parser, parse_upload
from pipeline.ingest import ingest_file
from tests import espi_feeds
from tests.espi_feeds import (
    BILLION_LAUGHS,
    QUADRATIC_BLOWUP,
    XML_DECLARATION,
    flood,
    nested,
    xxe,
)

FEED_TAG = ATOM + "feed"
ENTRY_TAG = ATOM + "entry"


def feed(inner: str = "", prolog: str = XML_DECLARATION) -> bytes:
    """A small meter upload's feed with `inner` as its content after the id."""
    return espi_feeds.feed(inner, feed_id="urn:imdc:upload:m-1:1", prolog=prolog)


DEFAULT_LIMITS = Limits()


def rejected(body: bytes, limits: Limits = DEFAULT_LIMITS) -> RejectedUpload:
    with pytest.raises(RejectedUpload) as info:
        parse_upload(body, limits)
    return info.value


# --- good input ---------------------------------------------------------------------------


def test_parses_a_feed_without_comments_or_pis() -> None:
    body = feed("<!-- a comment --><?pi x?><title>t</title>", prolog="<?xml-stylesheet x?>")
    root = parse_upload(body)
    assert root.tag == FEED_TAG
    assert [child.tag for child in root] == [f"{{{ATOM_NS}}}id", f"{{{ATOM_NS}}}title"]


def test_parses_a_lone_entry() -> None:
    root = parse_upload(f'<entry xmlns="{ATOM_NS}"><id>x</id></entry>'.encode())
    assert root.tag == ENTRY_TAG


def test_real_green_button_files(greenbutton_dir: Path) -> None:
    good = sorted(p for p in greenbutton_dir.glob("*.xml") if "BAD" not in p.name)
    assert len(good) >= 6
    for path in good:
        assert parse_upload(path.read_bytes()).tag == FEED_TAG, path.name
    # the SDK's negative sample is well-formed XML whose root is <xyz>
    bad = rejected((greenbutton_dir / "nist_1hrLP_32DaysM_D000_BAD.xml").read_bytes())
    assert bad.code == "bad_root"
    assert "xyz" in bad.reason


def test_depth_limit_is_inclusive() -> None:
    assert parse_upload(nested(64)).tag == FEED_TAG
    assert rejected(nested(65)).code == "too_deep"
    assert parse_upload(nested(10), Limits(max_depth=10)).tag == FEED_TAG
    assert rejected(nested(11), Limits(max_depth=10)).code == "too_deep"


def test_element_limit_is_inclusive() -> None:
    # feed + id + 98 <t/> = 100 elements; the body is over 4 * 100 bytes so they are counted
    body = feed("<t/>" * 98 + " " * 400)
    assert len(list(parse_upload(body, Limits(max_elements=100)).iter())) == 100
    reason = rejected(feed("<t/>" * 99 + " " * 400), Limits(max_elements=100)).reason
    assert reason.startswith("too_many_elements: 101 elements")


def test_a_body_small_enough_is_always_admitted_by_size_and_element_count() -> None:
    limits = Limits(max_size_bytes=1000, max_elements=100)
    # 400 bytes hold at most 100 elements of 4 bytes: never too many, nor too large
    assert limits.size_always_admitted(400) and not limits.may_hold_too_many_elements(400)
    assert not limits.size_always_admitted(401) and limits.may_hold_too_many_elements(401)
    body = feed("<t/>" * 70)  # 398 bytes, 72 elements
    assert len(body) == 398 and limits.size_always_admitted(len(body))
    assert len(list(parse_upload(body, limits).iter())) == 72
    tight = Limits(max_size_bytes=300, max_elements=100)
    assert tight.size_always_admitted(300) and not tight.size_always_admitted(len(body))
    assert rejected(body, tight).code == "too_large"


# --- hostile input ------------------------------------------------------------------------


def test_billion_laughs_is_rejected() -> None:
    error = rejected(BILLION_LAUGHS)
    assert error.code == "dtd_forbidden"
    assert "ENTITY" in error.reason


def test_quadratic_blowup_is_rejected() -> None:
    assert len(QUADRATIC_BLOWUP) < Limits().max_size_bytes  # not caught by size
    assert rejected(QUADRATIC_BLOWUP).code == "dtd_forbidden"


@pytest.mark.parametrize("system_id", ["file:///etc/passwd", "http://127.0.0.1:9/x"])
def test_external_entities_are_rejected(system_id: str) -> None:
    assert rejected(xxe(system_id)).code == "dtd_forbidden"


@pytest.mark.parametrize(
    "prolog",
    [
        '<?xml version="1.0"?><!-- <feed> in a comment --><?pi <x>?>\n<!DOCTYPE feed>',
        "<!DOCTYPE feed SYSTEM 'http://127.0.0.1:9/feed.dtd'>",
        "\ufeff<!DOCTYPE feed>",
    ],
)
def test_any_doctype_is_rejected(prolog: str) -> None:
    assert rejected(feed(prolog=prolog)).code == "dtd_forbidden"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, QUADRATIC_BLOWUP, xxe("file:///etc/passwd")])
def test_parser_itself_never_expands_or_loads_entities(body: bytes) -> None:
    """Defence in depth: even past the DOCTYPE check the parser expands and fetches nothing."""
    parser = new_parser()
    try:
        parser.feed(body)
        root = parser.close()
    except etree.XMLSyntaxError:
        return  # libxml2's own entity amplification guard refused it: also fine
    text = etree.tostring(root)
    assert len(text) < len(body)
    assert b"root:" not in text


def test_10000_deep_nesting_is_rejected() -> None:
    error = rejected(nested(10_000))
    assert error.code == "too_deep"


def test_too_large_is_checked_before_parsing() -> None:
    assert rejected(b"x" * 4_000_001).code == "too_large"  # garbage, but never parsed
    body = feed("<title>" + "y" * 2_000 + "</title>")
    assert rejected(body, Limits(max_size_bytes=len(body) - 1)).code == "too_large"
    assert parse_upload(body, Limits(max_size_bytes=len(body))).tag == FEED_TAG


# --- broken input -------------------------------------------------------------------------


def test_empty_body() -> None:
    assert rejected(b"").code == "empty_body"


def test_truncated_upload_gives_lxml_message() -> None:
    body = feed("<entry><title>t</title></entry>")
    error = rejected(body[: body.index(b"</title>") + len(b"</title>")])
    assert error.code == "malformed"
    assert "Premature end of data" in error.reason


def test_undefined_entity_names_the_entity() -> None:
    error = rejected(feed("<title>&foo;</title>"))
    assert error.code == "malformed"
    assert "foo" in error.reason


@pytest.mark.parametrize(
    "body",
    [b"<xyz/>", b"<feed><id>x</id></feed>", b'<feed xmlns="http://example.com/other"/>'],
)
def test_root_must_be_atom_feed_or_entry(body: bytes) -> None:
    assert rejected(body).code == "bad_root"


def test_utf16_is_rejected_as_unsupported_encoding() -> None:
    body = feed(prolog='<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
    assert rejected(body).code == "unsupported_encoding"


def test_a_bad_upload_does_not_disturb_the_next() -> None:
    for bad in (feed()[:-5], nested(300), b"<a>&x;</a>"):
        rejected(bad)
        assert parse_upload(feed()).tag == FEED_TAG


def test_threads_parse_independently() -> None:
    good, bad = feed("<title>ok</title>"), feed()[:-3]
    failures: list[str] = []

    def work() -> None:
        for i in range(300):
            if i % 3 == 0:
                try:
                    parse_upload(bad)
                    failures.append("bad accepted")
                except RejectedUpload:
                    pass
            elif parse_upload(good).findtext(f"{{{ATOM_NS}}}title") != "ok":
                failures.append("good misparsed")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --- types --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_size_bytes", "max_depth", "max_elements"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_rejected_upload_pickles_with_its_details() -> None:
    error = RejectedUpload("bad_root: nope", "m-1", 7)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.meter_id, copy.sequence_no, copy.code) == (
        "bad_root: nope",
        "m-1",
        7,
        "bad_root",
    )


# --- hardening: every attack is rejected with a reason, most before any parsing -------------
#
# How fast is measured in bench/test_pipeline_bench.py (ratios to parsing a normal upload of
# the same size, in the same run); here what makes it fast: which attacks never reach a
# parser, and how much of a document the parser sees.


def normal_upload(approx_bytes: int) -> bytes:
    """A genuine one-channel meter upload (the meter encoder's) of 90 % to 100 % of
    `approx_bytes` (at least about 2 KB)."""

    def upload(n: int) -> bytes:
        return encode_meter_upload(
            "m-1",
            1,
            1_700_000_000 + 60 * np.arange(n),
            [Channel(ReadingTypeSpec(), np.arange(n) % 1000)],
            1_700_000_000,
        )

    per_reading = (len(upload(1001)) - len(upload(1))) / 1000
    body = upload(max(1, int((0.95 * approx_bytes - len(upload(1))) / per_reading)))
    assert len(body) <= max(approx_bytes, 3_000)
    return body


@pytest.fixture
def parser_input(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the documents `parse_upload` hands to a parser (its push parser, in
    pieces, or the counting pull parser), in order: empty for a document rejected before
    any parsing."""
    fed: list[int] = []
    counting = parse._parse_counting

    class PushParser:
        def __init__(self) -> None:
            self.parser = new_parser()
            self.document = len(fed)
            fed.append(0)

        def feed(self, data: bytes) -> None:
            fed[self.document] += len(data)
            self.parser.feed(data)

        def close(self) -> etree._Element:
            root: etree._Element = self.parser.close()
            return root

    def count_then_parse(body: bytes, max_elements: int) -> etree._Element:
        fed.append(len(body))
        return counting(body, max_elements)

    monkeypatch.setattr(parse, "_parser", PushParser)
    monkeypatch.setattr(parse, "_parse_counting", count_then_parse)
    return fed


#: A meter upload's feed up to its id (the element flood attacks write after it).
ATOM_FEED_OPEN = feed(prolog="").removesuffix(b"</feed>")
_UTF16_DECLARED = b'<?xml version="1.0" encoding="UTF-16"?>'
_TEXT_FEED = feed().decode()

#: (name, body, reason code, whether a parser sees it): a DOCTYPE, a byte order mark, a
#: size over the limit or more start tags than elements allowed are refused before parsing;
#: markup in another encoding and invalid UTF-8 are not markup to the UTF-8 parser, which
#: fails on them; libxml2 itself aborts at depth 256 (its limit without ``huge_tree``), so a
#: deep document never becomes a deep tree.
ATTACKS: list[tuple[str, bytes, str, bool]] = [
    ("billion laughs", BILLION_LAUGHS, "dtd_forbidden", False),
    ("quadratic blow-up", QUADRATIC_BLOWUP, "dtd_forbidden", False),
    ("xxe file", xxe("file:///etc/passwd"), "dtd_forbidden", False),
    ("xxe http", xxe("http://127.0.0.1:9/x"), "dtd_forbidden", False),
    ("lower-case doctype", feed(prolog="<!doctype feed>"), "dtd_forbidden", False),
    (
        "odd-case doctype and entity",
        feed(prolog="<?xml version='1.0'?><!DocType feed [<!eNtItY a 'b'>]>"),
        "dtd_forbidden",
        False,
    ),
    (
        "doctype after comments and PIs",
        feed(prolog="<!--a--><?p q?><!-- <feed> --><!DOCTYPE feed>"),
        "dtd_forbidden",
        False,
    ),
    (
        "utf-16 doctype",
        (_UTF16_DECLARED.decode() + "<!DOCTYPE feed>" + _TEXT_FEED).encode("utf-16"),
        "unsupported_encoding",
        False,
    ),
    (
        "utf-16le doctype without BOM",
        ("<!DOCTYPE feed>" + _TEXT_FEED).encode("utf-16-le"),
        "unsupported_encoding",
        False,
    ),
    (
        "utf-32 doctype",
        ("<!DOCTYPE feed>" + _TEXT_FEED).encode("utf-32"),
        "unsupported_encoding",
        False,
    ),
    (
        "utf-16 doctype after an ASCII declaration naming UTF-16",
        _UTF16_DECLARED + ("<!DOCTYPE f [<!ENTITY x 'y'>]>" + _TEXT_FEED).encode("utf-16-le"),
        "unsupported_encoding",
        True,
    ),
    ("10,000-deep", nested(10_000), "too_deep", True),
    (
        "40,000-deep",
        ATOM_FEED_OPEN + b"<a>" * 40_000 + b"</a>" * 40_000 + b"</feed>",
        "too_deep",
        True,
    ),
    ("element flood", flood(990_000), "too_many_elements", False),
    ("oversized", b"<" * 4_000_001, "too_large", False),
    (
        "invalid UTF-8",
        feed("<title>caf\xe9</title>").replace(b"caf\xc3\xa9", b"caf\xe9"),
        "unsupported_encoding",
        True,
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "code", "parsed"), ATTACKS, ids=[attack[0] for attack in ATTACKS]
)
def test_attack_is_rejected_with_a_reason(
    name: str, body: bytes, code: str, parsed: bool, parser_input: list[int]
) -> None:
    reason = rejected(body).reason
    assert reason.startswith(f"{code}: "), reason
    if not parsed:
        assert parser_input == []
    if code == "too_deep":
        assert "libxml2's limit of 256" in reason  # the parse stopped at depth 256


def test_element_flood_behind_a_comment_stops_at_the_limit() -> None:
    """With a comment the start-tag count is only a bound, so the parse counts elements and
    stops at the limit, having read a part of the body proportional to the limit (a full
    parse of this 3.6 MB body takes about 3.5 normal parses)."""
    body = flood(900_000, comment=True)
    for max_elements in (10_000, DEFAULT_LIMITS.max_elements):
        reason = rejected(body, Limits(max_elements=max_elements)).reason
        match = re.fullmatch(
            r"too_many_elements: (\d+) elements in the first (\d+) bytes exceeds the limit of "
            + str(max_elements),
            reason,
        )
        assert match is not None, reason
        n_counted, n_read = int(match[1]), int(match[2])
        assert max_elements < n_counted <= max_elements + 65_536 // 4
        assert n_read <= 4 * n_counted + 65_536 < len(body)


def test_loose_bound_from_markup_in_comments_still_accepts() -> None:
    """300,000 ``<a/>`` inside a comment are no elements: counted, then accepted."""
    body = ATOM_FEED_OPEN + b"<!--" + b"<a/>" * 300_000 + b"--><title/></feed>"
    root = parse_upload(body, Limits(max_elements=10))
    assert len(root) == 2


@pytest.mark.parametrize(
    "variant",
    ["long text repeated", "long attribute repeated", "many attributes", "many namespaces"],
)
def test_quadratic_blowup_without_a_dtd_is_bounded_by_the_size_limit(
    variant: str, parser_input: list[int]
) -> None:
    """Without a DTD nothing can be referenced: a "blow-up" is as big as it looks. Just under
    the size limit it parses into a tree that holds no more text than the body; one more
    repetition is over the limit and rejected before parsing."""
    limit = DEFAULT_LIMITS.max_size_bytes
    chunk = 100_000
    if variant == "long text repeated":
        piece = b"<title>" + b"x" * chunk + b"</title>"
    elif variant == "long attribute repeated":
        piece = b'<title a="' + b"x" * chunk + b'"/>'
    elif variant == "many attributes":
        piece = b"<t " + b" ".join(b'a%d="x"' % i for i in range(chunk // 8)) + b"/>"
    else:
        piece = b"<t " + b" ".join(b'xmlns:p%d="u:%d"' % (i, i) for i in range(chunk // 16)) + b"/>"
    repeats = (limit - 100) // len(piece)
    body = ATOM_FEED_OPEN + piece * repeats + b"</feed>"
    assert len(body) <= limit
    root = parse_upload(body)
    held = sum(
        len(element.text or "") + sum(len(k) + len(v) for k, v in element.attrib.items())
        for element in root.iter()
    )
    assert held <= len(body)
    assert parser_input == [len(body)]
    bigger = ATOM_FEED_OPEN + piece * (repeats + 1) + b"</feed>"
    assert rejected(bigger).code == "too_large"
    assert parser_input == [len(body)]  # the bigger one never reached the parser


def test_every_truncation_of_an_upload_is_rejected() -> None:
    body = normal_upload(2_000)
    end = body.rindex(b"</feed>") + len(b"</feed>")
    for cut in range(1, end):
        error = rejected(body[:cut])
        assert error.code in ("malformed", "empty_body"), (cut, error.reason)
    assert parse_upload(body[:end]).tag == FEED_TAG


def test_random_garbage_is_rejected_with_a_reason() -> None:
    rng = np.random.default_rng(20_240_611)
    body = normal_upload(2_000)
    for _ in range(300):
        garbage = rng.integers(0, 256, int(rng.integers(1, 5_000)), dtype=np.uint8).tobytes()
        assert rejected(garbage).code in ("malformed", "unsupported_encoding", "bad_root")
        # garbage overwriting part of a genuine upload
        at = int(rng.integers(0, len(body) - 8))
        mangled = body[:at] + bytes(rng.integers(128, 256, 8, dtype=np.uint8)) + body[at + 8 :]
        assert rejected(mangled).code in ("malformed", "unsupported_encoding")


def test_declared_encoding_is_ignored_for_utf8_bytes() -> None:
    """The parser is forced to UTF-8: a declaration naming another encoding does not change
    how the bytes are read (so the byte-level DOCTYPE scan sees what the parser sees)."""
    root = parse_upload(feed("<title>ok</title>", prolog='<?xml version="1.0" encoding="UTF-16"?>'))
    assert root.findtext(f"{{{ATOM_NS}}}title") == "ok"


# --- no network, no file access --------------------------------------------------------------


class Listener:
    """A TCP listener on 127.0.0.1 that records whether anything connected."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]

    def connections(self, wait_s: float = 0.3) -> int:
        self.socket.settimeout(wait_s)
        count = 0
        while True:
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def network_attacks(port: int) -> list[bytes]:
    url = f"http://127.0.0.1:{port}"
    atom = f'<feed xmlns="{ATOM_NS}"><id>urn:imdc:upload:m-1:1</id>'
    return [
        xxe(f"{url}/entity"),
        f'<?xml version="1.0"?><!DOCTYPE feed SYSTEM "{url}/feed.dtd">{atom}</feed>'.encode(),
        f'<!DOCTYPE feed [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>{atom}</feed>'.encode(),
        f'<!doctype feed PUBLIC "-//x//y" "{url}/public.dtd">{atom}</feed>'.encode(),
        (
            f'{atom}<x:include xmlns:x="http://www.w3.org/2001/XInclude" href="{url}/xi.xml"/>'
            f'<t xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="http://naesb.org/espi {url}/espi.xsd"/></feed>'
        ).encode(),
    ]


def test_listener_sees_a_real_connection(listener: Listener) -> None:
    """Control: the listener does notice a connection."""
    with socket.create_connection(("127.0.0.1", listener.port), timeout=1):
        pass
    assert listener.connections() == 1


def test_no_network_access_while_parsing(listener: Listener, tmp_path: Path) -> None:
    """Through parse_upload, through the hardened parser itself (past the DOCTYPE check),
    through the service and through file ingest: no connection to the URL in the document."""
    bodies = network_attacks(listener.port)
    with Pipeline(tmp_path / "p.sqlite") as pipe, Store(tmp_path / "i.sqlite") as store:
        for i, body in enumerate(bodies):
            if b"DOCTYPE" in body.upper():
                assert rejected(body).code == "dtd_forbidden"
            else:  # XInclude and schemaLocation are not processed: a plain (useless) feed
                assert parse_upload(body).tag == FEED_TAG
            parser = new_parser()
            try:
                parser.feed(body)
                parser.close()
            except etree.XMLSyntaxError:
                pass
            outcome = pipe.handle(body)
            assert not outcome.accepted and outcome.reason
            path = tmp_path / f"attack{i}.xml"
            path.write_bytes(body)
            assert ingest_file(path, store).status == "rejected"
        assert pipe.store.readings.count() == store.readings.count() == 0
    assert listener.connections() == 0


def test_no_local_file_is_read(tmp_path: Path) -> None:
    """An XXE naming a local file: rejected, and the hardened parser on its own (past the
    DOCTYPE check) does not read the file either. Control: a permissive lxml parser does."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    body = xxe(secret.as_uri())
    assert rejected(body).code == "dtd_forbidden"
    parser = new_parser()
    try:
        parser.feed(body)
        leaked = etree.tostring(parser.close())
    except etree.XMLSyntaxError:
        leaked = b""
    assert b"TOP-SECRET" not in leaked
    permissive = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True)
    assert b"TOP-SECRET" in etree.tostring(etree.fromstring(body, permissive))
