"""`ReadingBatch`: the interval readings of one series of one upload, as int64 columns, the
output of the process stage and the input of the store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.espi.reading_type import ReadingType

__all__ = ["QUALITY_NONE", "ReadingBatch"]

#: `ReadingBatch.quality` of a reading that carries no ReadingQuality, in a document whose
#: ReadingType has no defaultQuality (not an ESPI code: those are UInt16). Stored as NULL.
QUALITY_NONE = -1


@dataclass(frozen=True)
class ReadingBatch:
    """The interval readings of one series of one upload, as columns (one element per
    IntervalReading).

    Attributes:
        meter_id: the meter part of the feed id ``urn:imdc:upload:{meter_id}:{sequence_no}``
            (the upload identity of DESIGN §3, which per-meter authentication keys on);
            for documents without such an id (a utility's Green Button download), the last
            path segment of the UsagePoint entry's ``self`` link (ESPI resource URI
            ``.../UsagePoint/{meter_id}``). The link is not read when the feed id names the
            meter: skipping that XPath keeps fetch+process inside its 2x budget (DESIGN §7).
        sequence_no: upload sequence number from the feed id, None when the feed id is not
            of that form (for example a utility's Green Button download).
        uom, power_of_ten_multiplier, interval_length_s, flow_direction, kind,
            accumulation_behaviour, commodity, phase, data_qualifier: the series'
            ReadingType (see `ReadingType`; `reading_type` returns them as one value).
        start_s: int64 epoch seconds (UTC) of each interval's start (timePeriod/start).
        duration_s: int64 length of each interval, seconds (timePeriod/duration).
        value: int64 raw register value; the quantity is
            ``value * 10**power_of_ten_multiplier`` in `uom`.
        quality: int64 ESPI QualityOfReading code of each reading (`QUALITY_NONE` where the
            document gives none), or None when no reading of the series has one.

    The arrays are read-only.
    """

    meter_id: str
    sequence_no: int | None
    uom: int
    power_of_ten_multiplier: int
    interval_length_s: int
    flow_direction: int
    start_s: np.ndarray
    duration_s: np.ndarray
    value: np.ndarray
    kind: int = 0
    accumulation_behaviour: int = 0
    commodity: int = 0
    phase: int = 0
    data_qualifier: int = 0
    quality: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        meter_id: str,
        sequence_no: int | None,
        reading_type: ReadingType,
        start_s: np.ndarray,
        duration_s: np.ndarray,
        value: np.ndarray,
        quality: np.ndarray | None = None,
    ) -> ReadingBatch:
        """A batch of the series (`meter_id`, `reading_type`).

        Fills the instance dict in one update instead of the generated frozen ``__init__``
        (one ``object.__setattr__`` per field, several times slower, on the hot path of
        every upload); the result is the same frozen dataclass, `reading_type` included.
        """
        rt = reading_type
        batch = object.__new__(cls)
        batch.__dict__.update(
            meter_id=meter_id,
            sequence_no=sequence_no,
            uom=rt.uom,
            power_of_ten_multiplier=rt.power_of_ten_multiplier,
            interval_length_s=rt.interval_length_s,
            flow_direction=rt.flow_direction,
            start_s=start_s,
            duration_s=duration_s,
            value=value,
            kind=rt.kind,
            accumulation_behaviour=rt.accumulation_behaviour,
            commodity=rt.commodity,
            phase=rt.phase,
            data_qualifier=rt.data_qualifier,
            quality=quality,
            reading_type=rt,
        )
        return batch

    @cached_property
    def reading_type(self) -> ReadingType:
        """The series' identity besides the meter."""
        return ReadingType(
            self.uom,
            self.power_of_ten_multiplier,
            self.interval_length_s,
            self.flow_direction,
            self.kind,
            self.accumulation_behaviour,
            self.commodity,
            self.phase,
            self.data_qualifier,
        )

    @property
    def n_readings(self) -> int:
        """Number of interval readings in the batch."""
        return int(self.start_s.shape[0])

    @property
    def total(self) -> float:
        """Sum of the values in `uom` (powerOfTenMultiplier applied), from the exact
        integer sum (off the hot path: for reports)."""
        raw = sum(self.value.tolist())
        p10 = self.power_of_ten_multiplier
        return float(raw * 10**p10) if p10 >= 0 else raw / 10 ** (-p10)
