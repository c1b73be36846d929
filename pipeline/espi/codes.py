"""The ESPI codes the pipeline decides on, from the enumerations of ``espiDerived.xsd``
(NAESB REQ.21): which series are interval energy, which way energy flows, and the
QualityOfReading codes that VEE writes.

Only the codes the pipeline acts on are named here; every other code passes through as
the integer the meter sent (a ReadingType field keeps whatever UInt16 it holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ACCUMULATION_BULK_QUANTITY",
    "ACCUMULATION_CUMULATIVE",
    "FLOW_DELIVERED",
    "FLOW_NET",
    "FLOW_RECEIVED",
    "QUALITY_ESTIMATED_LINEAR",
    "QUALITY_ESTIMATED_REFERENCE_DAY",
    "QUALITY_MIXED",
    "QUALITY_OF_READING",
    "QUALITY_QUESTIONABLE",
    "QUALITY_VALID",
    "REGISTER_ACCUMULATIONS",
    "UOM_AMPERE",
    "UOM_COS_THETA",
    "UOM_VOLT",
    "UOM_WH",
]

# --- UnitSymbolKind ---------------------------------------------------------------------------

#: Watt-hours: interval energy.
UOM_WH = 72
#: Volts.
UOM_VOLT = 29
#: Amperes.
UOM_AMPERE = 5
#: cos(theta): the power factor.
UOM_COS_THETA = 65

# --- FlowDirectionKind ------------------------------------------------------------------------

#: 1 "forward": energy delivered to the site (imported from the grid).
FLOW_DELIVERED = 1
#: 19 "reverse": energy received from the site (generated, or exported).
FLOW_RECEIVED = 19
#: 4 "net": forward minus reverse in one signed register (positive: imported, negative:
#: exported), unlike the two non-negative registers 1 and 19.
FLOW_NET = 4

# --- AccumulationKind -------------------------------------------------------------------------

#: 1 "bulkQuantity" and 3 "cumulative": register readings, not interval values.
ACCUMULATION_BULK_QUANTITY = 1
ACCUMULATION_CUMULATIVE = 3
REGISTER_ACCUMULATIONS = frozenset({ACCUMULATION_BULK_QUANTITY, ACCUMULATION_CUMULATIVE})

# --- QualityOfReading -------------------------------------------------------------------------

#: QualityOfReading codes and their names, as enumerated in ``espiDerived.xsd``.
QUALITY_OF_READING: Mapping[int, str] = MappingProxyType(
    {
        0: "valid",
        7: "manually edited",
        8: "estimated using reference day",
        9: "estimated using linear interpolation",
        10: "questionable",
        11: "derived",
        12: "projected (forecast)",
        13: "mixed",
        14: "raw",
        15: "normalized for weather",
        16: "other",
        17: "validated",
        18: "verified",
        19: "revenue-quality",
    }
)
#: Passed every check ("data that has gone through all required validation checks and
#: either passed them all or has been verified").
QUALITY_VALID = 0
#: "data value was replaced by a machine computed value based on analysis of historical
#: data using the same type of measurement".
QUALITY_ESTIMATED_REFERENCE_DAY = 8
#: "data value was computed using linear interpolation based on the readings before and
#: after it".
QUALITY_ESTIMATED_LINEAR = 9
#: "data that has failed one or more checks".
QUALITY_QUESTIONABLE = 10
#: "the quality of this reading has mixed characteristics": given to a reading that
#: carries several different codes.
QUALITY_MIXED = 13
