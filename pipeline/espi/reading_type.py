"""`ReadingType`: the identity of a series, the ESPI ReadingType fields that say what a
value means, and the ranges of those fields (`READING_TYPE_ELEMENTS`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["READING_TYPE_ELEMENTS", "ReadingType"]

_UINT16 = (0, 2**16 - 1)


@dataclass(frozen=True)
class ReadingType:
    """The identity of a series: the ESPI ReadingType fields that say what a value means.

    Attributes (codes of the espiDerived.xsd enumerations; 0 is ESPI "none" for the
    optional ones):
        uom: UnitSymbolKind (72 Wh, 29 V, 5 A, 38 W, 65 cosTheta, 169 therm, ...).
        power_of_ten_multiplier: UnitMultiplierKind; a value means ``value * 10**m`` uom.
        interval_length_s: intervalLength, seconds.
        flow_direction: FlowDirectionKind (1 forward/delivered, 19 reverse/received).
        kind: MeasurementKind (12 energy, 54 voltage, 4 current, ...).
        accumulation_behaviour: AccumulationKind (4 deltaData, 3 cumulative, ...).
        commodity: CommodityKind (1 electricity secondary metered, 7 natural gas, ...).
        phase: PhaseCodeKind (0 none, 769 phase A to N, ...).
        data_qualifier: DataQualifierKind (0 none, 8 maximum, 12 average, ...).

    defaultQuality is not part of the identity: it fills the quality of readings that carry
    no ReadingQuality (see `pipeline.process.columns.block_quality`).
    """

    uom: int
    power_of_ten_multiplier: int
    interval_length_s: int
    flow_direction: int
    kind: int = 0
    accumulation_behaviour: int = 0
    commodity: int = 0
    phase: int = 0
    data_qualifier: int = 0

    def values(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """The fields in declaration order (the order of `READING_TYPE_ELEMENTS`)."""
        return (
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


#: (ESPI element, lowest, highest) of each `ReadingType` field in declaration order, then
#: defaultQuality. Ranges from espiDerived.xsd: the enumerations (UnitSymbolKind,
#: FlowDirectionKind, MeasurementKind, AccumulationKind, CommodityKind, PhaseCodeKind,
#: DataQualifierKind, QualityOfReading) are unions with UInt16, UnitMultiplierKind with
#: Int16, intervalLength is UInt32 (and 0 s would be no interval at all).
READING_TYPE_ELEMENTS: tuple[tuple[str, int, int], ...] = (
    ("uom", *_UINT16),
    ("powerOfTenMultiplier", -(2**15), 2**15 - 1),
    ("intervalLength", 1, 2**32 - 1),
    ("flowDirection", *_UINT16),
    ("kind", *_UINT16),
    ("accumulationBehaviour", *_UINT16),
    ("commodity", *_UINT16),
    ("phase", *_UINT16),
    ("dataQualifier", *_UINT16),
    ("defaultQuality", *_UINT16),
)
