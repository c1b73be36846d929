"""Per-meter authentication of uploads (DESIGN §9): HMAC-SHA256 envelopes, a keyring and a
replay window.

Wire format, envelope version 1: one ASCII header line, then the document bytes unchanged::

    IMDC-HMAC1 <meter_id> <sequence_no> <mac_hex>\\n<body>

- ``meter_id``: 1 to 256 printable ASCII characters without space (0x21 to 0x7E), the meter
  part of the body's feed id ``urn:imdc:upload:{meter_id}:{sequence_no}``;
- ``sequence_no``: the upload's sequence number, decimal digits only, below 2**63;
- ``mac_hex``: 64 hex digits (either case), HMAC-SHA256 (RFC 2104 / FIPS 198-1 with
  SHA-256 of FIPS 180-4) under the meter's key of the signing input
  ``b"IMDC-HMAC1\\n" + meter_id + b"\\n" + sequence_no + b"\\n" + body``, the two fields
  ASCII-encoded as in the header. No field can hold a newline, so the input is unambiguous
  and a MAC over one (meter, sequence number, body) never verifies another.

`seal` writes an envelope; `Authenticator.verify` checks one, and `Authenticator.confirm`
ties it to the document's feed id and records it against replay. Rejections are
`pipeline.fetch.rejection.RejectedUpload` with reason codes:

- ``auth_bad_envelope``: no envelope header, or a malformed one (including a plain body
  when a keyring is configured);
- ``auth_unknown_meter``: no key for the meter id of the header;
- ``auth_bad_signature``: the MAC does not verify (a tampered or corrupted upload, or the
  wrong key); compared in constant time (`hmac.compare_digest`);
- ``auth_mismatch``: the envelope is genuine but names another (meter, sequence number)
  than the document's feed id;
- ``auth_replay``: a sequence number at or below the meter's highest seen minus the replay
  window, or one already seen with another body.

Replay and at-least-once delivery (DESIGN §3): a meter retransmits an upload whose
acknowledgement was lost, byte for byte. The same (meter, sequence number) with the same
body, hence the same MAC, is accepted again (the store counts its readings as duplicates);
with another body it is a replay. The MACs of the last `replay_window` sequence numbers of
each meter are kept to tell the two apart; anything older is refused. The state is in
memory: after a restart the window starts again at the first upload of each meter (the
store's idempotence still keeps a replayed old upload from counting twice).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.espi.identity import MAX_METER_ID_CHARS
from pipeline.fetch.rejection import RejectedUpload

__all__ = [
    "DEFAULT_REPLAY_WINDOW",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MIN_KEY_BYTES",
    "Authenticator",
    "Envelope",
    "Keyring",
    "mac",
    "open_envelope",
    "seal",
    "sealed_size",
]

#: First field of the header: envelope format and version.
MAGIC = b"IMDC-HMAC1"
#: Longest header line: magic, meter id, 19-digit sequence number, 64 hex digits, 3 spaces.
MAX_HEADER_BYTES = len(MAGIC) + MAX_METER_ID_CHARS + 19 + 64 + 3
#: Shortest key accepted, bytes: 128 bits, the security strength NIST SP 800-107r1 §5.3.4
#: asks of an HMAC key (RFC 2104 §3 discourages keys shorter than the 32-byte SHA-256
#: output; 32 random bytes is what `seal` users should generate).
MIN_KEY_BYTES = 16
#: Default replay window, sequence numbers: 64 uploads, 16 h of a meter that uploads every
#: 15 minutes, which covers a retransmission after any realistic run of lost
#: acknowledgements (an assumption of this project, not a standard).
DEFAULT_REPLAY_WINDOW = 64
#: Meters whose keyed HMAC state `Authenticator` keeps (about 0.5 kB each): this
#: project's choice, a large MDC's fleet; more meters only cost the key schedule again.
_KEYED_CACHE_ENTRIES = 65_536
#: SHA-256 block size (FIPS 180-4), bytes: HMAC pads the key to it (RFC 2104 §2).
_SHA256_BLOCK_BYTES = 64
#: ``bytes.translate`` tables XOR-ing each byte with HMAC's ipad (0x36) and opad (0x5C).
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))

_MAC_HEX_CHARS = 64
#: An envelope: header line (magic, meter id, sequence number, MAC in hex), then the body.
_HEADER = b"%s %s %d %s\n%s"
_NO_MAC_HEX = b"0" * _MAC_HEX_CHARS
_MAX_SEQUENCE_NO = 2**63 - 1
#: Bytes allowed in a meter id (printable ASCII without space) and in the MAC (hex digits):
#: ``field.translate(None, allowed)`` is empty exactly when every byte is allowed.
_METER_ID_BYTES = bytes(range(0x21, 0x7F))
_HEX_BYTES = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"


def _valid_meter_id(meter_id: bytes) -> bool:
    return 0 < len(meter_id) <= MAX_METER_ID_CHARS and not meter_id.translate(None, _METER_ID_BYTES)


def _signing_prefix(meter_id: str, sequence_no: int) -> bytes:
    """The signing input before the body (see the module docstring)."""
    return b"%s\n%s\n%d\n" % (MAGIC, meter_id.encode("ascii"), sequence_no)


def mac(meter_id: str, sequence_no: int, body: bytes | memoryview, key: bytes) -> bytes:
    """HMAC-SHA256 of an upload under `key` (32 bytes; see the module docstring for the
    signing input). `body` may be a memoryview (it is hashed in place, not copied)."""
    h = hmac.new(key, _signing_prefix(meter_id, sequence_no), hashlib.sha256)
    h.update(body)
    return h.digest()


def seal(meter_id: str, sequence_no: int, body: bytes, key: bytes) -> bytes:
    """The envelope of one upload: header line with the MAC, then `body` unchanged.

    Raises:
        ValueError: a meter id or sequence number the format cannot carry, or a key shorter
            than `MIN_KEY_BYTES`.
    """
    meter = _checked_header_fields(meter_id, sequence_no)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key of {len(key)} bytes is shorter than {MIN_KEY_BYTES}")
    tag = mac(meter_id, sequence_no, body, key).hex()
    return _HEADER % (MAGIC, meter, sequence_no, tag.encode("ascii"), body)


def sealed_size(meter_id: str, sequence_no: int, body_bytes: int) -> int:
    """``len(seal(meter_id, sequence_no, body, key))`` of a body of ``body_bytes`` bytes,
    without computing the MAC (its hex digits have a fixed length). Raises the ValueError
    `seal` raises for the meter id or sequence number."""
    meter = _checked_header_fields(meter_id, sequence_no)
    return len(_HEADER % (MAGIC, meter, sequence_no, _NO_MAC_HEX, b"")) + body_bytes


def _checked_header_fields(meter_id: str, sequence_no: int) -> bytes:
    """The meter id as written in the header; ValueError if the header cannot carry it or
    ``sequence_no``."""
    meter = meter_id.encode("ascii", errors="replace")
    if not _valid_meter_id(meter):
        raise ValueError(
            f"meter_id {meter_id!r:.80} must be 1-{MAX_METER_ID_CHARS} printable ASCII "
            "characters without space"
        )
    if isinstance(sequence_no, bool) or not 0 <= sequence_no <= _MAX_SEQUENCE_NO:
        raise ValueError(f"sequence_no must be an int in [0, 2**63), got {sequence_no!r}")
    return meter


class Envelope(NamedTuple):
    """A parsed envelope (not yet verified): header fields and the body. Immutable (a
    named tuple: cheaper to make than a frozen dataclass, on the hot path)."""

    meter_id: str
    sequence_no: int
    mac: bytes
    body: bytes

    def __repr__(self) -> str:  # not the MAC, nor a body of kilobytes
        return f"Envelope(meter_id={self.meter_id!r}, sequence_no={self.sequence_no})"


def open_envelope(data: bytes) -> Envelope:
    """Parse the header of an envelope (the MAC is not checked here).

    Raises:
        RejectedUpload: ``auth_bad_envelope`` with what is wrong; `meter_id` and
            `sequence_no` are filled in when they could be read.
    """
    newline = data.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    # the header line only (never a scan of the body): split, then check each field
    fields = data[:newline].split(b" ") if newline > 0 else []
    if len(fields) == 4 and fields[0] == MAGIC:
        _, meter, seq, tag = fields
        if (
            _valid_meter_id(meter)
            and 0 < len(seq) <= 19
            and not seq.translate(None, _DIGITS)
            and len(tag) == _MAC_HEX_CHARS
            and not tag.translate(None, _HEX_BYTES)
        ):
            sequence_no = int(seq)
            if sequence_no <= _MAX_SEQUENCE_NO:
                return Envelope(
                    meter.decode("ascii"), sequence_no, bytes.fromhex(tag.decode("ascii")),
                    data[newline + 1 :],
                )  # fmt: skip
    # not an envelope: say what is wrong
    if not data.startswith(MAGIC + b" ") or newline < 0:
        raise RejectedUpload(
            "auth_bad_envelope: the upload does not start with an "
            f"'{MAGIC.decode()} <meter_id> <sequence_no> <mac_hex>' line (a keyring is "
            "configured, so every upload must be sealed)"
        )
    fields = data[:newline].split(b" ")
    if len(fields) != 4:
        raise RejectedUpload(
            f"auth_bad_envelope: the header has {len(fields)} space-separated fields, not 4"
        )
    _, meter, seq, _ = fields
    meter_id = meter.decode("ascii") if _valid_meter_id(meter) else None
    sequence_no_or_none = int(seq) if seq.isdigit() and len(seq) <= 19 else None
    raise RejectedUpload(
        "auth_bad_envelope: the header needs a meter id of printable ASCII without space, a "
        f"sequence number of decimal digits below 2**63 and {_MAC_HEX_CHARS} hex digits of "
        f"MAC, got {data[:newline]!r:.200}",
        meter_id,
        sequence_no_or_none,
    )


class Keyring(Mapping[str, bytes]):
    """Per-meter HMAC keys: a read-only mapping meter id -> key bytes.

    Args:
        keys: meter id -> key, each at least `MIN_KEY_BYTES` long.

    Raises:
        ValueError: naming the meter whose id or key is unusable.
    """

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        for meter_id, key in keys.items():
            if not isinstance(meter_id, str) or not _valid_meter_id(
                meter_id.encode("ascii", errors="replace")
            ):
                raise ValueError(f"keyring: meter id {meter_id!r:.80} is not an envelope meter id")
            if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
                raise ValueError(
                    f"keyring: key of meter {meter_id!r} must be bytes of at least "
                    f"{MIN_KEY_BYTES} (got {type(key).__name__} of length {len(key)})"
                )
        self._keys = dict(keys)

    @classmethod
    def from_hex(cls, keys: Mapping[str, str]) -> Keyring:
        """A keyring from meter id -> hex-encoded key."""
        decoded: dict[str, bytes] = {}
        for meter_id, text in keys.items():
            try:
                decoded[meter_id] = bytes.fromhex(text)
            except (TypeError, ValueError):
                raise ValueError(
                    f"keyring: key of meter {meter_id!r:.80} must be a hex string"
                ) from None
        return cls(decoded)

    @classmethod
    def load(cls, path: str | Path) -> Keyring:
        """Read a keyring file: a table ``keys`` of meter id -> hex key, as JSON
        (``{"keys": {"pv-1": "9f3c..."}}``) or TOML (``[keys]`` then ``"pv-1" = "9f3c..."``),
        chosen by the suffix ``.json`` or ``.toml``.

        Raises:
            ValueError: unknown suffix, unreadable content or a bad entry, with the path.
        """
        path = Path(path)
        try:
            if path.suffix == ".json":
                document = json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".toml":
                document = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                raise ValueError(f"suffix {path.suffix!r} is not .json or .toml")
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, dict):
                raise ValueError("expected a table 'keys' of meter id -> hex key")
            return cls.from_hex(keys)
        except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"keyring file {path}: {exc}") from None

    def __getitem__(self, meter_id: str) -> bytes:
        return self._keys[meter_id]

    def get(self, meter_id: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """The key of a meter, `default` when it has none (a dict lookup: on the hot path)."""
        return self._keys.get(meter_id, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # never print keys
        return f"Keyring({len(self._keys)} meters)"


class _Seen:
    """Replay memory of one meter: the highest sequence number and the MACs of the recent
    ones."""

    __slots__ = ("highest", "macs")

    def __init__(self) -> None:
        self.highest = -1
        self.macs: dict[int, bytes] = {}


class Authenticator:
    """Verifies envelopes against a keyring and keeps the replay window.

    Args:
        keyring: the meters' keys.
        replay_window: how many sequence numbers below a meter's highest seen are still
            accepted (retransmissions and reordering); a sequence number at or below
            ``highest - replay_window`` is a replay. Must be >= 1.

    Memory: at most ``2 * replay_window`` MACs (32 bytes each, ~100 B with their dict
    entry) per meter, about 13 kB per meter with the default window.

    Use from one thread at a time.
    """

    def __init__(self, keyring: Keyring, replay_window: int = DEFAULT_REPLAY_WINDOW) -> None:
        if (
            isinstance(replay_window, bool)
            or not isinstance(replay_window, int)
            or (replay_window < 1)
        ):
            raise ValueError(f"replay_window must be an int >= 1, got {replay_window!r}")
        self.keyring = keyring
        self.replay_window = replay_window
        self._seen: dict[str, _Seen] = {}
        #: meter id -> (key, SHA-256 states after ``K0 ^ ipad`` and ``K0 ^ opad``): the
        #: keyed HMAC states (RFC 2104 §2), so that a MAC costs two state copies and the
        #: hashing of the message, not the key schedule again (``hmac.digest`` redoes it)
        self._keyed: dict[str, tuple[bytes, Any, Any]] = {}

    def _mac(self, meter_id: str, sequence_no: int, body: bytes, key: bytes) -> bytes:
        """`mac` (RFC 2104 HMAC with SHA-256: ``H((K0 ^ opad) || H((K0 ^ ipad) || m))``)
        from the meter's cached keyed states (at most `_KEYED_CACHE_ENTRIES` meters; the
        cache is emptied when full). Tests check it against `mac` (``hmac.digest``)."""
        keyed = self._keyed.get(meter_id)
        if keyed is None or keyed[0] is not key:
            if len(self._keyed) >= _KEYED_CACHE_ENTRIES:
                self._keyed.clear()
            k0 = (hashlib.sha256(key).digest() if len(key) > _SHA256_BLOCK_BYTES else key).ljust(
                _SHA256_BLOCK_BYTES, b"\0"
            )
            keyed = self._keyed[meter_id] = (
                key,
                hashlib.sha256(k0.translate(_IPAD)),
                hashlib.sha256(k0.translate(_OPAD)),
            )
        inner = keyed[1].copy()
        inner.update(_signing_prefix(meter_id, sequence_no))
        inner.update(body)
        outer = keyed[2].copy()
        outer.update(inner.digest())
        return outer.digest()

    def verify(self, data: bytes, max_body_bytes: int | None = None) -> Envelope:
        """Check an envelope: header, body size, key, MAC and replay window. Records
        nothing (see `confirm`).

        Args:
            data: the upload as received.
            max_body_bytes: largest accepted body; a larger one is refused before any MAC
                is computed (reason ``too_large``).

        Returns:
            The envelope, whose MAC verified.

        Raises:
            RejectedUpload: ``auth_bad_envelope``, ``too_large``, ``auth_unknown_meter``,
                ``auth_bad_signature`` or ``auth_replay``, with the header's meter id and
                sequence number when readable.
        """
        envelope = open_envelope(data)
        meter_id, seq = envelope.meter_id, envelope.sequence_no
        if max_body_bytes is not None and len(envelope.body) > max_body_bytes:
            raise RejectedUpload(
                f"too_large: {len(envelope.body)} bytes exceeds the limit of {max_body_bytes} "
                "bytes",
                meter_id,
                seq,
            )
        key = self.keyring.get(meter_id)
        if key is None:
            raise RejectedUpload(
                f"auth_unknown_meter: no key for meter {meter_id!r:.80}", meter_id, seq
            )
        expected = self._mac(meter_id, seq, envelope.body, key)
        if not hmac.compare_digest(expected, envelope.mac):
            raise RejectedUpload(
                "auth_bad_signature: the HMAC-SHA256 does not verify with the meter's key "
                "(tampered, corrupted, or signed with another key)",
                meter_id,
                seq,
            )
        seen = self._seen.get(meter_id)
        if seen is not None:
            if seq <= seen.highest - self.replay_window:
                raise RejectedUpload(
                    f"auth_replay: sequence number {seq} is {seen.highest - seq} below the "
                    f"highest seen, {seen.highest} (replay window {self.replay_window})",
                    meter_id,
                    seq,
                )
            earlier = seen.macs.get(seq)
            if earlier is not None and not hmac.compare_digest(earlier, envelope.mac):
                raise RejectedUpload(
                    f"auth_replay: sequence number {seq} was already received with another body",
                    meter_id,
                    seq,
                )
        return envelope

    def confirm(
        self, envelope: Envelope, feed_meter_id: str | None, feed_sequence_no: int | None
    ) -> None:
        """Tie a verified envelope to its document's feed id, then record its sequence
        number and MAC in the replay window.

        Raises:
            RejectedUpload: ``auth_mismatch`` when the feed id names another meter or
                sequence number than the envelope (nothing is recorded then).
        """
        meter_id, seq = envelope.meter_id, envelope.sequence_no
        if feed_meter_id != meter_id or feed_sequence_no != seq:
            raise RejectedUpload(
                f"auth_mismatch: the envelope is for meter {meter_id!r:.80} upload {seq}, the "
                f"document's feed id for meter {feed_meter_id!r:.80} upload {feed_sequence_no}",
                meter_id,
                seq,
            )
        seen = self._seen.get(meter_id)
        if seen is None:
            seen = self._seen[meter_id] = _Seen()
        seen.macs[seq] = envelope.mac
        if seq > seen.highest:
            seen.highest = seq
            if len(seen.macs) > 2 * self.replay_window:
                oldest_kept = seq - self.replay_window
                seen.macs = {s: m for s, m in seen.macs.items() if s > oldest_kept}
