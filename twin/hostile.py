"""Hostile and malformed upload bodies for fault injection (DESIGN.md §9).

Each builder takes the genuine upload body and returns what an attacker or a broken meter
would send instead; the pipeline must reject all of them with a reason.
"""

from __future__ import annotations

from collections.abc import Callable


def billion_laughs(body: bytes) -> bytes:
    """The classic exponential entity expansion (10 levels x 10 references = 10**9 'lol')."""
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    dtd = "<!DOCTYPE feed [" + "".join(levels) + "]>"
    return (
        f'<?xml version="1.0"?>{dtd}<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>&lol9;</title></feed>"
    ).encode()


def external_entity(body: bytes) -> bytes:
    """XXE: an external entity that would read a local file into the document."""
    return (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title></feed>'
    )


def truncated(body: bytes) -> bytes:
    """The genuine document cut in the middle, as a dropped connection leaves it."""
    return body[: len(body) // 2]


HOSTILE_PAYLOADS: dict[str, Callable[[bytes], bytes]] = {
    "billion_laughs": billion_laughs,
    "external_entity": external_entity,
    "truncated": truncated,
}
