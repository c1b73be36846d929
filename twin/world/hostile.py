"""Hostile and malformed uploads for fault injection (DESIGN.md §9).

``HOSTILE_PAYLOADS`` take the genuine upload body and return what an attacker or a broken
meter would send instead (the meter then seals it as usual); ``TAMPERED_ENVELOPES`` forge
or alter the authenticated envelope itself. The pipeline must reject all of them with a
reason, and count them.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import seal, sealed_size


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


def bad_signature(body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """The genuine envelope with one byte of the body changed in transit (a man in the
    middle rewriting a value): the MAC no longer matches."""
    envelope = bytearray(seal(meter_id, seq, body, key))
    envelope[-2] ^= 0x01  # the MAC is checked, and fails, before anything is parsed
    return bytes(envelope)


def unknown_meter(body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """A device that is not in the MDC's keyring sends the same data under its own id."""
    return seal(f"rogue-{meter_id}"[:64], seq, body, key)


def replayed_sequence(body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """A captured key used to resend sequence number 0 with other content: the feed id
    (``urn:imdc:upload:<meter>:<seq>``, docs/upload-format.md) and the envelope both say 0,
    but the MDC already accepted a different upload 0: a replay."""
    feed_id = f"urn:imdc:upload:{meter_id}:{seq}</id>".encode()
    replayed = body.replace(feed_id, f"urn:imdc:upload:{meter_id}:0</id>".encode(), 1)
    return seal(meter_id, 0, replayed, key)


TAMPERED_ENVELOPES: dict[str, Callable[[bytes, str, int, bytes], bytes]] = {
    "bad_signature": bad_signature,
    "unknown_meter": unknown_meter,
    "replayed_sequence": replayed_sequence,
}

#: (payload name, genuine body, meter id, sequence number, meter key or b"") -> the bytes
#: the meter sends instead of its genuine upload.
UploadRewrite = Callable[[str, bytes, str, int, bytes], bytes]


def sealed(body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """What a meter sends: ``body`` in its HMAC envelope (``pipeline.seal``) when it
    has a key (``b""``: none, the body goes bare)."""
    return seal(meter_id, seq, body, key) if key else body


def sealed_bytes(body_bytes: int, meter_id: str, seq: int, key: bytes) -> int:
    """``len(sealed(body, meter_id, seq, key))`` of a body of ``body_bytes`` bytes."""
    return sealed_size(meter_id, seq, body_bytes) if key else body_bytes


def malformed_upload(payload: str, body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """The document of :data:`HOSTILE_PAYLOADS` ``payload``, sealed as the meter seals."""
    return sealed(HOSTILE_PAYLOADS[payload](body), meter_id, seq, key)


def tampered_upload(payload: str, body: bytes, meter_id: str, seq: int, key: bytes) -> bytes:
    """The envelope of :data:`TAMPERED_ENVELOPES` ``payload`` around the genuine body."""
    return TAMPERED_ENVELOPES[payload](body, meter_id, seq, key)
