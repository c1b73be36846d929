"""`RejectedUpload`: how every stage of the pipeline refuses an upload, with a reason the
ledger records (DESIGN §3: a bad upload is rejected with a reason; the run goes on)."""

from __future__ import annotations

__all__ = ["RejectedUpload"]


class RejectedUpload(Exception):  # noqa: N818 (the name is part of the contract)
    """An upload the pipeline refuses; `reason` says why.

    `reason` is ``"<code>: <human text>"``, for example
    ``"dtd_forbidden: document has a DOCTYPE (entities are not accepted)"``. The code is a
    short machine-friendly token (see `code`); the ledger records the whole reason.
    `meter_id` and `sequence_no` are filled in when the document got far enough for them
    to be known (rejections in the process or store stage), else None.
    """

    def __init__(
        self, reason: str, meter_id: str | None = None, sequence_no: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.meter_id = meter_id
        self.sequence_no = sequence_no

    @property
    def code(self) -> str:
        """The machine-friendly part of `reason`, before the first colon."""
        return self.reason.partition(":")[0]

    def __reduce__(self) -> tuple[type[RejectedUpload], tuple[str, str | None, int | None]]:
        return (type(self), (self.reason, self.meter_id, self.sequence_no))
