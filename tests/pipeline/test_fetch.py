"""Hardened ingest: hostile and broken uploads are rejected with a reason, good ones parse."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest
from lxml import etree

from pipeline.fetch import ATOM_NS, Limits, RejectedUpload, _new_parser, parse_upload

FEED_TAG = f"{{{ATOM_NS}}}feed"
ENTRY_TAG = f"{{{ATOM_NS}}}entry"


def feed(inner: str = "", prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    """A small Atom feed with `inner` as its content after the id."""
    return f'{prolog}<feed xmlns="{ATOM_NS}"><id>urn:imdc:upload:m-1:1</id>{inner}</feed>'.encode()


def nested(depth: int) -> bytes:
    """A feed whose deepest element sits at `depth` (the feed itself is depth 1)."""
    inner = depth - 1
    return feed("<x>" * inner + "</x>" * inner) if depth > 2 else feed()


DEFAULT_LIMITS = Limits()


def rejected(body: bytes, limits: Limits = DEFAULT_LIMITS) -> RejectedUpload:
    with pytest.raises(RejectedUpload) as info:
        parse_upload(body, limits)
    return info.value


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + f']>\n<feed xmlns="{ATOM_NS}"><id>&lol9;</id></feed>'.encode()
)

# one 100 KB entity referenced 10,000 times: 1 GB if expanded
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY a "'
    + b"x" * 100_000
    + f'">]>\n<feed xmlns="{ATOM_NS}"><id>'.encode()
    + b"&a;" * 10_000
    + b"</id></feed>"
)


def xxe(system_id: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "{system_id}">]>\n'
        f'<feed xmlns="{ATOM_NS}"><id>&x;</id></feed>'
    ).encode()


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
    assert len(parse_upload(body, Limits(max_elements=100)).xpath("//*")) == 100
    reason = rejected(feed("<t/>" * 99 + " " * 400), Limits(max_elements=100)).reason
    assert reason.startswith("too_many_elements: 101 elements")


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
    parser = _new_parser()
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
