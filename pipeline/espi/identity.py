"""The identity of a meter upload (DESIGN §3): every upload carries ``(meter_id,
sequence_no)`` in its feed id, ``urn:imdc:upload:{meter_id}:{sequence_no}``, and an HMAC
envelope names the same pair in its header (``docs/upload-format.md``)."""

from __future__ import annotations

__all__ = ["MAX_METER_ID_CHARS", "UPLOAD_ID_PREFIX"]

#: Feed id scheme of a meter upload: ``urn:imdc:upload:{meter_id}:{sequence_no}``.
UPLOAD_ID_PREFIX = "urn:imdc:upload:"

#: Longest meter id accepted, in characters (ids become database keys and detector state).
MAX_METER_ID_CHARS = 256
