"""Per-meter authentication: the envelope format, the keyring, every rejection reason and
its counter, retransmission versus replay, tampering anywhere, constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline import Pipeline, RejectedUpload
from pipeline.espi.identity import MAX_METER_ID_CHARS
from pipeline.fetch import auth
from pipeline.fetch.auth import (
    MAX_HEADER_BYTES,
    Authenticator,
    Keyring,
    mac,
    open_envelope,
    seal,
    sealed_size,
)
from tests.espi_feeds import Channel, meter_upload

T0 = 1_782_000_000
KEYS = {"pv-1": bytes(range(32)), "pv-2": bytes(range(100, 132))}


def document(meter_id: str = "pv-1", seq: int = 0, n: int = 15, value0: int = 500) -> bytes:
    """A single-channel upload of n 60-s readings from T0 + 60 n seq."""
    fields = {"flowDirection": 19, "intervalLength": 60, "uom": 72}
    values = [value0 + i % 3 for i in range(n)]
    starts = [T0 + 60 * (n * seq + i) for i in range(n)]
    return meter_upload(meter_id, seq, starts, [Channel(fields, values)])


def sealed(meter_id: str = "pv-1", seq: int = 0, **kwargs: int) -> bytes:
    return seal(meter_id, seq, document(meter_id, seq, **kwargs), KEYS[meter_id])


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    with Pipeline(tmp_path / "mdc.sqlite", keyring=Keyring(KEYS), replay_window=8) as opened:
        yield opened


# --- format -----------------------------------------------------------------------------------


def test_envelope_wire_format() -> None:
    body = document()
    envelope = seal("pv-1", 0, body, KEYS["pv-1"])
    header, _, rest = envelope.partition(b"\n")
    assert rest == body
    magic, meter, seq, tag = header.split(b" ")
    assert (magic, meter, seq) == (b"IMDC-HMAC1", b"pv-1", b"0")
    # independent construction of the signing input (RFC 2104 HMAC with SHA-256)
    expected = hmac.new(KEYS["pv-1"], b"IMDC-HMAC1\npv-1\n0\n" + body, hashlib.sha256)
    assert tag == expected.hexdigest().encode()
    assert mac("pv-1", 0, body, KEYS["pv-1"]) == expected.digest()
    opened = open_envelope(envelope)
    assert (opened.meter_id, opened.sequence_no, opened.mac, opened.body) == (
        "pv-1",
        0,
        expected.digest(),
        body,
    )
    assert len(header) <= MAX_HEADER_BYTES


def test_the_mac_binds_meter_sequence_number_and_body() -> None:
    key, body = KEYS["pv-1"], document()
    tags = {
        mac("pv-1", 0, body, key),
        mac("pv-2", 0, body, key),
        mac("pv-1", 1, body, key),
        mac("pv-1", 0, body + b" ", key),
        mac("pv-1", 10, body[1:], key),  # "0\n" + "<?xml" vs "10\n" + "?xml": no ambiguity
        mac("pv-1", 0, body, KEYS["pv-2"]),
    }
    assert len(tags) == 6


@pytest.mark.parametrize(
    ("meter_id", "seq", "key"),
    [
        ("pv 1", 0, KEYS["pv-1"]),
        ("", 0, KEYS["pv-1"]),
        ("pv-1", -1, KEYS["pv-1"]),
        ("pv-1", 2**63, KEYS["pv-1"]),
        ("pv-1", 0, b"short"),
    ],
)
def test_seal_refuses_what_the_format_cannot_carry(meter_id: str, seq: int, key: bytes) -> None:
    with pytest.raises(ValueError):
        seal(meter_id, seq, b"<feed/>", key)
    if len(key) >= auth.MIN_KEY_BYTES:  # the size of what cannot be sealed is refused alike
        with pytest.raises(ValueError):
            sealed_size(meter_id, seq, 7)


@pytest.mark.parametrize("meter_id", ["m", "pv-1", "x" * MAX_METER_ID_CHARS])
@pytest.mark.parametrize("seq", [0, 9, 10, 12_345, 2**63 - 1])
@pytest.mark.parametrize("body", [b"", b"<feed/>", bytes(5000)])
def test_sealed_size_is_the_length_of_the_envelope(meter_id: str, seq: int, body: bytes) -> None:
    assert sealed_size(meter_id, seq, len(body)) == len(seal(meter_id, seq, body, KEYS["pv-1"]))


# --- keyring ----------------------------------------------------------------------------------


def test_keyring_files(tmp_path: Path) -> None:
    hex_keys = {m: k.hex() for m, k in KEYS.items()}
    (tmp_path / "keys.json").write_text(json.dumps({"keys": hex_keys}))
    (tmp_path / "keys.toml").write_text(
        "[keys]\n" + "".join(f'"{m}" = "{k}"\n' for m, k in hex_keys.items())
    )
    for name in ("keys.json", "keys.toml"):
        keyring = Keyring.load(tmp_path / name)
        assert dict(keyring) == KEYS
        assert KEYS["pv-1"].hex() not in repr(keyring)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("k.json", '{"keys": {"pv-1": "zz"}}', "pv-1"),
        ("k.json", '{"keys": {"pv-1": "00ff"}}', "at least 16"),
        ("k.json", '{"pv-1": "00"}', "table 'keys'"),
        ("k.toml", "[keys]\npv-1 = ", "k.toml"),
        ("k.yaml", "keys: {}", "suffix"),
    ],
)
def test_bad_keyring_files_name_the_problem(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=match):
        Keyring.load(tmp_path / name)


# --- the pipeline with a keyring --------------------------------------------------------------


def test_sealed_upload_is_accepted(pipe: Pipeline) -> None:
    body = sealed()
    outcome = pipe.handle(body)
    assert outcome.accepted, outcome.reason
    assert (outcome.meter_id, outcome.sequence_no, outcome.inserted) == ("pv-1", 0, 15)
    assert outcome.size_bytes == len(body)
    assert pipe.uploads.rejections == {}


def rejection(pipe: Pipeline, body: bytes, code: str) -> None:
    before = pipe.store.readings.count()
    outcome = pipe.handle(body)
    assert not outcome.accepted
    assert outcome.reason_code == code, outcome.reason
    assert outcome.rejected_stage == "fetch"
    assert (outcome.n_readings, outcome.inserted) == (0, 0)
    assert pipe.store.readings.count() == before


def test_every_rejection_reason_is_counted(pipe: Pipeline) -> None:
    # a plain document when envelopes are required
    rejection(pipe, document(), "auth_bad_envelope")
    # a meter without a key
    rejection(pipe, seal("pv-9", 0, document("pv-9"), KEYS["pv-1"]), "auth_unknown_meter")
    # the right meter, the wrong key
    rejection(pipe, seal("pv-1", 0, document(), KEYS["pv-2"]), "auth_bad_signature")
    # a genuine envelope of pv-2 around a document of pv-1, and one with another seq
    rejection(pipe, seal("pv-2", 0, document("pv-1"), KEYS["pv-2"]), "auth_mismatch")
    rejection(pipe, seal("pv-1", 5, document("pv-1", 4), KEYS["pv-1"]), "auth_mismatch")
    # sequence number 3 again with another body
    assert pipe.handle(sealed(seq=3)).accepted
    rejection(pipe, sealed(seq=3, value0=900), "auth_replay")
    assert pipe.uploads.rejections == {
        "auth_bad_envelope": 1,
        "auth_unknown_meter": 1,
        "auth_bad_signature": 1,
        "auth_mismatch": 2,
        "auth_replay": 1,
    }
    assert pipe.store.readings.count() == 15


def test_rejected_uploads_name_the_claimed_meter(pipe: Pipeline) -> None:
    outcome = pipe.handle(seal("pv-1", 7, document(), KEYS["pv-2"]))
    assert (outcome.meter_id, outcome.sequence_no) == ("pv-1", 7)


def test_retransmission_is_accepted_idempotently(pipe: Pipeline) -> None:
    body = sealed(seq=2)
    first = pipe.handle(body)
    again = pipe.handle(body)
    assert first.accepted and again.accepted
    assert (first.inserted, first.duplicates) == (15, 0)
    assert (again.inserted, again.duplicates) == (0, 15)
    assert pipe.uploads.rejections == {}
    assert pipe.store.readings.count() == 15


def test_replay_window(pipe: Pipeline) -> None:
    """Window 8: with 20 the highest seen, 13..19 are still accepted (late or out of order),
    12 and below are replays; a retransmission inside the window is accepted."""
    for seq in (0, 20):
        assert pipe.handle(sealed(seq=seq)).accepted
    assert pipe.handle(sealed(seq=13)).accepted  # late, never seen: accepted
    rejection(pipe, sealed(seq=12), "auth_replay")
    rejection(pipe, sealed(seq=0), "auth_replay")  # seen, but now outside the window
    assert pipe.handle(sealed(seq=13)).duplicates == 15  # retransmission
    # windows are per meter
    assert pipe.handle(sealed("pv-2", seq=1)).accepted
    assert pipe.uploads.rejections == {"auth_replay": 2}


def test_replay_memory_is_bounded() -> None:
    authenticator = Authenticator(Keyring(KEYS), replay_window=4)
    for seq in range(100):
        envelope = authenticator.verify(sealed(seq=seq, n=1))
        authenticator.confirm(envelope, "pv-1", seq)
    seen = authenticator._seen["pv-1"]
    assert seen.highest == 99
    assert len(seen.macs) <= 2 * 4
    assert set(range(96, 100)) <= set(seen.macs)


def test_a_flipped_bit_anywhere_is_rejected(tmp_path: Path) -> None:
    """Every byte of a sealed upload (header and body), one at a time: never accepted,
    always rejected in fetch with an authentication reason, and counted."""
    body = sealed(n=2)
    with Pipeline(tmp_path / "t.sqlite", keyring=Keyring(KEYS)) as pipe:
        for i in range(len(body)):
            tampered = bytearray(body)
            tampered[i] ^= 0x01
            outcome = pipe.handle(bytes(tampered))
            assert not outcome.accepted, i
            assert outcome.rejected_stage == "fetch", (i, outcome.reason)
            assert outcome.reason_code is not None and outcome.reason_code.startswith("auth_")
        assert sum(pipe.uploads.rejections.values()) == len(body)
        assert pipe.uploads.rejections["auth_bad_signature"] > len(body) // 2
        assert pipe.store.readings.count() == 0
        assert pipe.handle(body).accepted  # the genuine upload still goes through


def test_macs_are_compared_in_constant_time(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    body = document()
    good_tag = mac("pv-1", 0, body, KEYS["pv-1"])
    forged = seal("pv-1", 0, body, KEYS["pv-2"])
    rejection(pipe, forged, "auth_bad_signature")
    assert calls == [(good_tag, open_envelope(forged).mac)]
    calls.clear()
    assert pipe.handle(sealed(seq=0)).accepted
    assert pipe.handle(sealed(seq=0)).accepted  # retransmission: MAC vs the remembered one
    assert calls == [(good_tag, good_tag)] * 3


def test_without_a_keyring_plain_documents_are_accepted(tmp_path: Path) -> None:
    with Pipeline(tmp_path / "plain.sqlite") as pipe:
        assert pipe.uploads.authenticator is None
        assert pipe.handle(document()).accepted
        # an envelope is not XML: a pipeline without keys does not unwrap it
        assert pipe.handle(sealed(seq=1)).reason_code == "malformed"


def test_the_size_limit_applies_before_the_mac(tmp_path: Path) -> None:
    from pipeline import Limits

    with Pipeline(
        tmp_path / "s.sqlite", Limits(max_size_bytes=1000), keyring=Keyring(KEYS)
    ) as pipe:
        outcome = pipe.handle(sealed(n=40))
        assert outcome.reason_code == "too_large"
        assert (outcome.meter_id, outcome.rejected_stage) == ("pv-1", "fetch")


@pytest.mark.parametrize(
    "header",
    [
        b"IMDC-HMAC1 pv-1 0\n",
        b"IMDC-HMAC1 pv-1 x " + b"0" * 64 + b"\n",
        b"IMDC-HMAC1 pv-1 0 " + b"g" * 64 + b"\n",
        b"IMDC-HMAC2 pv-1 0 " + b"0" * 64 + b"\n",
        b"IMDC-HMAC1 pv-1 0 " + b"0" * 64,
    ],
)
def test_malformed_headers(header: bytes) -> None:
    with pytest.raises(RejectedUpload) as info:
        open_envelope(header + document() if header.endswith(b"\n") else header)
    assert info.value.code == "auth_bad_envelope"


@pytest.mark.parametrize("key_bytes", [16, 32, 64, 65, 100])
def test_cached_keyed_hmac_is_rfc_2104_hmac(key_bytes: int) -> None:
    """`Authenticator` MACs from cached keyed SHA-256 states; they equal the standard
    library's HMAC-SHA256 (`mac`) for keys shorter than, equal to and longer than the
    64-byte block (longer keys are hashed first, RFC 2104 §2), and a changed key is used
    at once (the cache is keyed by the key object)."""
    rng = np.random.default_rng(key_bytes)
    key = rng.bytes(key_bytes)
    auth = Authenticator(Keyring({"m-1": key}))
    for body in (b"", b"<feed/>", rng.bytes(5000)):
        assert auth._mac("m-1", 42, body, key) == mac("m-1", 42, body, key)
    other = rng.bytes(32)
    assert auth._mac("m-1", 42, b"x", other) == mac("m-1", 42, b"x", other)
    assert auth._mac("m-1", 43, b"x", other) != mac("m-1", 42, b"x", other)
