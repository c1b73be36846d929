"""ESPI (NAESB REQ.21, Green Button) vocabulary for meter uploads: the code tables, the
ReadingType (:class:`ReadingTypeSpec`), a channel's series (:class:`Channel`) and local
time (:class:`LocalTimeSpec`, DstRuleType). :mod:`meters.espi_upload` writes the upload.

Every ReadingType code is checked against the enumerations of ``espiDerived.xsd`` (version
0.7.20190210, Green Button Alliance OpenESPI-Common-java; the tables below are copied from it
and a test compares them with the schema). The schema itself declares each code type as a
union with plain UInt16, so it would accept any 0..65535; the encoder is stricter and accepts
only the enumerated codes.

DstRuleType (``espiDerived.xsd``, used by LocalTimeParameters ``dstStartRule`` and
``dstEndRule``) is a 32-bit word written as 8 hex digits (HexBinary32)::

    bits 31-28  month 1..12
    bits 27-25  operator 0..7 (see DST_RULE_OPERATORS)
    bits 24-20  day of month, 0 = not applicable, 1..31
    bits 19-17  day of week, 0 = not applicable, 1..7 (Monday = 1 ... Sunday = 7)
    bits 16-12  hour 0..23
    bits 11-0   seconds 0..3599 within the hour
    0xFFFFFFFF  rule processing / DST correction disabled

A rule gives the wall-clock time of the change in the local time in force just before it
(standard time for the start rule, daylight time for the end rule), as POSIX TZ rules do:
the US rules "second Sunday of March 02:00" and "first Sunday of November 02:00" are
``360E2000`` and ``B40E2000``, the values in the NIST, GBA and PG&E sample files.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

import numpy as np

__all__ = [
    "ATOM_NS",
    "CODE_TABLES",
    "DST_RULE_DISABLED",
    "DST_RULE_OPERATORS",
    "ESPI_NS",
    "NO_QUALITY",
    "RESOURCE_BASE",
    "UUID_NAMESPACE",
    "ZONE_POSIX_TZ",
    "Channel",
    "DstRule",
    "LocalTimeSpec",
    "ReadingTypeSpec",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
#: Resource URI prefix of the links (ESPI 1.1 REST style, relative).
RESOURCE_BASE = "/espi/1_1/resource"
#: uuid5 namespace of this project's entry ids.
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:imdc:espi")

#: Largest ESPI UInt32.
UINT32_MAX = 2**32 - 1

# --------------------------------------------------------------------------------------------
# Code tables: the enumerations of espiDerived.xsd 0.7.20190210 (code -> xs:appinfo name).
# --------------------------------------------------------------------------------------------

ACCUMULATION_KIND: Mapping[int, str] = MappingProxyType({  # AccumulationKind
    0: "none", 1: "bulkQuantity", 2: "continuousCumulative", 3: "cumulative", 4: "deltaData",
    6: "indicating", 9: "summation", 10: "timeDelay", 12: "instantaneous", 13: "latchingQuantity",
    14: "boundedQuantity",
})
COMMODITY_KIND: Mapping[int, str] = MappingProxyType({  # CommodityKind
    0: "none", 1: "electricity SecondaryMetered", 2: "electricity PrimaryMetered",
    3: "communication", 4: "air", 5: "insulativeGas", 6: "insulativeOil", 7: "naturalGas",
    8: "propane", 9: "potableWater", 10: "steam", 11: "wasteWater", 12: "heatingFluid",
    13: "coolingFluid", 14: "nonpotableWater", 15: "nox", 16: "so2", 17: "ch4", 18: "co2",
    19: "carbon", 20: "hch", 21: "pfc", 22: "sf6", 23: "tvLicence", 24: "internet", 25: "refuse",
    26: "electricity TransmissionMetered",
})
CURRENCY: Mapping[int, str] = MappingProxyType({  # Currency
    0: "other", 36: "AUD", 124: "CAD", 156: "CNY", 208: "DKK", 356: "INR", 392: "JPY", 578: "NOK",
    643: "RUB", 752: "SEK", 756: "CHF", 826: "GBP", 840: "USD", 978: "EUR",
})
DATA_QUALIFIER_KIND: Mapping[int, str] = MappingProxyType({  # DataQualifierKind
    0: "none", 2: "average", 4: "excess", 5: "highThreshold", 7: "lowThreshold", 8: "maximum",
    9: "minimum", 11: "nominal", 12: "normal", 16: "secondMaximum", 17: "secondMinimum",
    23: "thirdMaximum", 24: "fourthMaximum", 25: "fifthMaximum", 26: "sum",
})
FLOW_DIRECTION_KIND: Mapping[int, str] = MappingProxyType({  # FlowDirectionKind
    0: "none", 1: "forward", 2: "lagging", 3: "leading", 4: "net", 5: "q1plusQ2", 7: "q1plusQ3",
    8: "q1plusQ4", 9: "q1minusQ4", 10: "q2plusQ3", 11: "q2plusQ4", 12: "q2minusQ3", 13: "q3plusQ4",
    14: "q3minusQ2", 15: "quadrant1", 16: "quadrant2", 17: "quadrant3", 18: "quadrant4",
    19: "reverse", 20: "total", 21: "totalByPhase",
})
MEASUREMENT_KIND: Mapping[int, str] = MappingProxyType({  # MeasurementKind
    0: "none", 2: "apparentPowerFactor", 3: "currency", 4: "current", 5: "currentAngle",
    6: "currentImbalance", 7: "date", 8: "demand", 9: "distance", 10: "distortionVoltAmperes",
    11: "energization", 12: "energy", 13: "energizationLoadSide", 14: "fan", 15: "frequency",
    16: "Funds", 17: "ieee1366ASAI", 18: "ieee1366ASIDI", 19: "ieee1366ASIFI", 20: "ieee1366CAIDI",
    21: "ieee1366CAIFI", 22: "ieee1366CEMIn", 23: "ieee1366CEMSMIn", 24: "ieee1366CTAIDI",
    25: "ieee1366MAIFI", 26: "ieee1366MAIFIe", 27: "ieee1366SAIDI", 28: "ieee1366SAIFI",
    31: "lineLosses", 32: "losses", 33: "negativeSequence", 34: "phasorPowerFactor",
    35: "phasorReactivePower", 36: "positiveSequence", 37: "power", 38: "powerFactor",
    40: "quantityPower", 41: "sag", 42: "swell", 43: "switchPosition", 44: "tapPosition",
    45: "tariffRate", 46: "temperature", 47: "totalHarmonicDistortion", 48: "transformerLosses",
    49: "unipedeVoltageDip10to15", 50: "unipedeVoltageDip15to30", 51: "unipedeVoltageDip30to60",
    52: "unipedeVoltageDip60to90", 53: "unipedeVoltageDip90to100", 54: "voltage",
    55: "voltageAngle", 56: "voltageExcursion", 57: "voltageImbalance", 58: "volume",
    59: "zeroFlowDuration", 60: "zeroSequence", 64: "distortionPowerFactor",
    81: "frequencyExcursion", 90: "applicationContext", 91: "apTitle", 92: "assetNumber",
    93: "bandwidth", 94: "batteryVoltage", 95: "broadcastAddress", 96: "deviceAddressType1",
    97: "deviceAddressType2", 98: "deviceAddressType3", 99: "deviceAddressType4",
    100: "deviceClass", 101: "electronicSerialNumber", 102: "endDeviceID",
    103: "groupAddressType1", 104: "groupAddressType2", 105: "groupAddressType3",
    106: "groupAddressType4", 107: "ipAddress", 108: "macAddress",
    109: "mfgAssignedConfigurationID", 110: "mfgAssignedPhysicalSerialNumber",
    111: "mfgAssignedProductNumber", 112: "mfgAssignedUniqueCommunicationAddress",
    113: "multiCastAddress", 114: "oneWayAddress", 115: "signalStrength", 116: "twoWayAddress",
    117: "signaltoNoiseRatio", 118: "alarm", 119: "batteryCarryover", 120: "dataOverflowAlarm",
    121: "demandLimit", 122: "demandReset", 123: "diagnostic", 124: "emergencyLimit",
    125: "encoderTamper", 126: "ieee1366MomentaryInterruption",
    127: "ieee1366MomentaryInterruptionEvent", 128: "ieee1366SustainedInterruption",
    129: "interruptionBehaviour", 130: "inversionTamper", 131: "loadInterrupt", 132: "loadShed",
    133: "maintenance", 134: "physicalTamper", 135: "powerLossTamper", 136: "powerOutage",
    137: "powerQuality", 138: "powerRestoration", 139: "programmed", 140: "pushbutton",
    141: "relayActivation", 142: "relayCycle", 143: "removalTamper", 144: "reprogrammingTamper",
    145: "reverseRotationTamper", 146: "switchArmed", 147: "switchDisabled", 148: "tamper",
    149: "watchdogTimeout", 150: "billLastPeriod", 151: "billToDate", 152: "billCarryover",
    153: "connectionFee", 154: "audibleVolume", 155: "volumetricFlow",
})
PHASE_CODE_KIND: Mapping[int, str] = MappingProxyType({  # PhaseCodeKind
    0: "none", 16: "N", 17: "NG", 32: "C", 33: "CN", 40: "CAv", 41: "ACN", 64: "B", 65: "BN",
    66: "BC", 72: "BAv", 96: "AC", 97: "BCN", 128: "A", 129: "AN", 132: "AB", 136: "AtoAv",
    193: "ABN", 224: "ABC", 225: "ABCN", 256: "S2", 272: "S2N", 512: "S1", 528: "S1N", 768: "S12",
    769: "S12N", 784: "S12N",
})
QUALITY_OF_READING: Mapping[int, str] = MappingProxyType({  # QualityOfReading
    0: "valid", 7: "manually edited", 8: "estimated using reference day",
    9: "estimated using linear interpolation", 10: "questionable", 11: "derived",
    12: "projected (forecast)", 13: "mixed", 14: "raw", 15: "normalized for weather", 16: "other",
    17: "validated", 18: "verified", 19: "revenue-quality",
})
SERVICE_KIND: Mapping[int, str] = MappingProxyType({  # ServiceKind
    0: "electricity", 1: "gas", 2: "water", 3: "time", 4: "heat", 5: "refuse", 6: "sewerage",
    7: "rates", 8: "tvLicence", 9: "internet",
})
TIME_ATTRIBUTE_KIND: Mapping[int, str] = MappingProxyType({  # TimeAttributeKind
    0: "none", 1: "tenMinute", 2: "fifteenMinute", 3: "oneMinute", 4: "twentyfourHour",
    5: "thirtyMinute", 6: "fiveMinute", 7: "sixtyMinute", 10: "twoMinute", 14: "threeMinute",
    15: "present", 16: "previous", 31: "twentyMinute", 50: "fixedBlock60Min",
    51: "fixedBlock30Min", 52: "fixedBlock20Min", 53: "fixedBlock15Min", 54: "fixedBlock10Min",
    55: "fixedBlock5Min", 56: "fixedBlock1Min", 57: "rollingBlock60MinIntvl30MinSubIntvl",
    58: "rollingBlock60MinIntvl20MinSubIntvl", 59: "rollingBlock60MinIntvl15MinSubIntvl",
    60: "rollingBlock60MinIntvl12MinSubIntvl", 61: "rollingBlock60MinIntvl10MinSubIntvl",
    62: "rollingBlock60MinIntvl6MinSubIntvl", 63: "rollingBlock60MinIntvl5MinSubIntvl",
    64: "rollingBlock60MinIntvl4MinSubIntvl", 65: "rollingBlock30MinIntvl15MinSubIntvl",
    66: "rollingBlock30MinIntvl10MinSubIntvl", 67: "rollingBlock30MinIntvl6MinSubIntvl",
    68: "rollingBlock30MinIntvl5MinSubIntvl", 69: "rollingBlock30MinIntvl3MinSubIntvl",
    70: "rollingBlock30MinIntvl2MinSubIntvl", 71: "rollingBlock15MinIntvl5MinSubIntvl",
    72: "rollingBlock15MinIntvl3MinSubIntvl", 73: "rollingBlock15MinIntvl1MinSubIntvl",
    74: "rollingBlock10MinIntvl5MinSubIntvl", 75: "rollingBlock10MinIntvl2MinSubIntvl",
    76: "rollingBlock10MinIntvl1MinSubIntvl", 77: "rollingBlock5MinIntvl1MinSubIntvl",
})
TIME_PERIOD_OF_INTEREST: Mapping[int, str] = MappingProxyType({  # TimePeriodOfInterest
    0: "none", 8: "billingPeriod", 11: "daily", 13: "monthly", 22: "seasonal", 24: "weekly",
    32: "specifiedPeriod",
})
UNIT_MULTIPLIER_KIND: Mapping[int, str] = MappingProxyType({  # UnitMultiplierKind
    -12: "p", -9: "n", -6: "micro", -3: "m", -2: "c", -1: "d", 0: "none", 1: "da", 2: "h", 3: "k",
    6: "M", 9: "G", 12: "T",
})
UNIT_SYMBOL_KIND: Mapping[int, str] = MappingProxyType({  # UnitSymbolKind
    0: "none", 2: "m", 3: "g", 4: "revPerSec", 5: "A", 6: "K", 7: "mol", 8: "cd", 9: "deg",
    10: "rad", 11: "sr", 21: "gy", 22: "bq", 23: "degC", 24: "sv", 25: "F", 27: "sec", 28: "H",
    29: "V", 30: "ohm", 31: "J", 32: "n", 33: "Hz", 34: "lx", 35: "lm", 36: "wb", 37: "t", 38: "W",
    39: "pa", 41: "m2", 42: "m3", 43: "mPerSec", 44: "mPerSec2", 45: "m3PerSec", 46: "mPerM3",
    47: "kgM", 48: "kgPerM3", 49: "m2PerSec", 50: "wPerMK", 51: "jPerK", 53: "siemens",
    54: "radPerSec", 61: "VA", 63: "VAr", 65: "cosTheta", 66: "Vs", 67: "V2", 68: "As", 69: "A2",
    70: "A2s", 71: "VAh", 72: "Wh", 73: "VArh", 74: "VPerHz", 75: "HzPerSec", 76: "char",
    77: "charPerSec", 78: "gM2", 79: "b", 80: "money", 81: "WPerSec", 82: "litrePerSec", 100: "q",
    101: "qh", 102: "ohmM", 103: "APerM", 104: "V2h", 105: "A2h", 106: "Ah", 107: "WhPerM3",
    108: "timeStamp", 109: "status", 111: "count", 113: "bm", 114: "code", 115: "WhPerRev",
    116: "VArhPerRev", 117: "VAhPerRev", 118: "meCode", 119: "ft3", 120: "ft3compensated",
    123: "ft3compensatedPerH", 125: "m3PerH", 126: "m3compensatedPerH", 127: "m3uncompensatedPerH",
    128: "usGal", 129: "usGalPerH", 130: "imperialGal", 131: "imperialGalPerH", 132: "btu",
    133: "btuPerH", 134: "litre", 137: "litrePerH", 138: "litreCompensatedPerH",
    139: "litreUncompensatedPerH", 140: "paG", 141: "psiA", 142: "psiG", 143: "litrePerLitre",
    144: "gPerG", 145: "molPerM3", 146: "molPerMol", 147: "molPerKg", 148: "mPerM",
    149: "secPerSec", 150: "HzPerHz", 151: "VPerV", 152: "APerA", 153: "WPerVA", 154: "rev",
    155: "paA", 156: "litreUncompensated", 157: "litreCompensated", 158: "kat", 159: "min",
    160: "h", 161: "q45", 162: "q60", 163: "q45h", 164: "q60h", 165: "jPerKg",
    166: "m3uncompensated", 167: "m3compensated", 168: "WPerW", 169: "therm",
})

#: The code tables by the name of their ESPI simple type in espiDerived.xsd.
CODE_TABLES: Mapping[str, Mapping[int, str]] = MappingProxyType({
    "AccumulationKind": ACCUMULATION_KIND,
    "CommodityKind": COMMODITY_KIND,
    "Currency": CURRENCY,
    "DataQualifierKind": DATA_QUALIFIER_KIND,
    "FlowDirectionKind": FLOW_DIRECTION_KIND,
    "MeasurementKind": MEASUREMENT_KIND,
    "PhaseCodeKind": PHASE_CODE_KIND,
    "QualityOfReading": QUALITY_OF_READING,
    "ServiceKind": SERVICE_KIND,
    "TimeAttributeKind": TIME_ATTRIBUTE_KIND,
    "TimePeriodOfInterest": TIME_PERIOD_OF_INTEREST,
    "UnitMultiplierKind": UNIT_MULTIPLIER_KIND,
    "UnitSymbolKind": UNIT_SYMBOL_KIND,
})

#: Channel.quality entry meaning "no ReadingQuality element" for that reading (ESPI: quality
#: is assumed valid, or ReadingType.defaultQuality, unless stated).
NO_QUALITY = -1


def _code_check(type_name: str) -> Callable[[object], str | None]:
    table = CODE_TABLES[type_name]
    examples = ", ".join(f"{code} = {name}" for code, name in list(table.items())[:6])

    def check(value: object) -> str | None:
        if value in table:
            return None
        return (
            f"is not an ESPI {type_name} code (espiDerived.xsd enumeration of {len(table)} "
            f"codes, e.g. {examples}, ...)"
        )

    return check


def _range_check(type_name: str, low: int, high: int) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if isinstance(value, int) and low <= value <= high:
            return None
        return f"is outside {type_name} [{low}, {high}]"

    return check


def _rational_check(value: object) -> str | None:
    """RationalNumber / ReadingInterharmonic: (numerator, denominator); (0, 0) = n/a."""
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
        and (value[1] > 0 or value == (0, 0))
    ):
        return None
    return "must be a tuple (numerator, denominator) of ints, denominator > 0 (or (0, 0) = n/a)"


#: Checks by ESPI type name: None when the value is valid, else the reason.
TYPE_CHECKS: Mapping[str, Callable[[object], str | None]] = MappingProxyType(
    {name: _code_check(name) for name in CODE_TABLES}
    | {
        "Int16": _range_check("Int16", -(2**15), 2**15 - 1),
        # intervalLength is an ESPI UInt32; a length of 0 s has no meaning, so 1..2**32-1.
        "UInt32 > 0": _range_check("UInt32 > 0", 1, UINT32_MAX),
        "RationalNumber": _rational_check,
        "ReadingInterharmonic": _rational_check,
    }
)


def _int_xml(element: str, value: int | tuple[int, int]) -> str:
    return f"<{element}>{value}</{element}>"


def _rational_xml(element: str, value: int | tuple[int, int]) -> str:
    assert isinstance(value, tuple)
    return (
        f"<{element}><numerator>{value[0]}</numerator>"
        f"<denominator>{value[1]}</denominator></{element}>"
    )


#: XML writer by ESPI type name (default: an integer element).
_TYPE_XML: Mapping[str, Callable[[str, int | tuple[int, int]], str]] = MappingProxyType(
    {"RationalNumber": _rational_xml, "ReadingInterharmonic": _rational_xml}
)

#: ReadingType elements in the XSD's sequence order: (ReadingTypeSpec field, element, type).
_READING_TYPE_ELEMENTS: tuple[tuple[str, str, str], ...] = (
    ("accumulation_behaviour", "accumulationBehaviour", "AccumulationKind"),
    ("commodity", "commodity", "CommodityKind"),
    ("consumption_tier", "consumptionTier", "Int16"),
    ("currency", "currency", "Currency"),
    ("data_qualifier", "dataQualifier", "DataQualifierKind"),
    ("default_quality", "defaultQuality", "QualityOfReading"),
    ("flow_direction", "flowDirection", "FlowDirectionKind"),
    ("interval_length_s", "intervalLength", "UInt32 > 0"),
    ("kind", "kind", "MeasurementKind"),
    ("phase", "phase", "PhaseCodeKind"),
    ("power_of_ten_multiplier", "powerOfTenMultiplier", "UnitMultiplierKind"),
    ("time_attribute", "timeAttribute", "TimePeriodOfInterest"),
    ("tou", "tou", "Int16"),
    ("uom", "uom", "UnitSymbolKind"),
    ("cpp", "cpp", "Int16"),
    ("interharmonic", "interharmonic", "ReadingInterharmonic"),
    ("measuring_period", "measuringPeriod", "TimeAttributeKind"),
    ("argument", "argument", "RationalNumber"),
)


@dataclass(frozen=True)
class ReadingTypeSpec:
    """ESPI ReadingType of one channel: what its values are (codes of espiDerived.xsd).

    A value is ``value * 10**power_of_ten_multiplier`` in ``uom``. The first seven fields are
    always written; the optional ones (None = omitted) are the other ReadingType elements that
    real Green Button files carry (PG&E: dataQualifier 12, defaultQuality 17, timeAttribute 0,
    measuringPeriod 7; GBA sample: currency 840, phase 769, interharmonic, argument).
    Every code is checked against the XSD enumeration of its type on construction
    (ValueError naming the field, value and type).

    Defaults: interval energy delivered to the site, Wh, 1-min intervals. Typical channels:
    energy received from the site (flow_direction 19), voltage (uom 29 V, kind 54,
    accumulation_behaviour 12 instantaneous), current (uom 5 A, kind 4), power factor
    (uom 65 cosTheta, kind 38).

    ``service_kind`` is not a ReadingType element: it is the UsagePoint's ServiceCategory
    kind (ServiceKind, 0 electricity), used only by :func:`encode_upload`;
    :func:`encode_meter_upload` takes the service kind as its own argument.
    """

    uom: int = 72  # UnitSymbolKind 72 = Wh
    power_of_ten_multiplier: int = 0  # UnitMultiplierKind: value * 10**m uom
    interval_length_s: int = 60  # ReadingType.intervalLength, s (UInt32 > 0)
    flow_direction: int = 1  # FlowDirectionKind 1 forward (delivered), 19 reverse (received)
    accumulation_behaviour: int = 4  # AccumulationKind 4 = deltaData
    commodity: int = 1  # CommodityKind 1 = electricity SecondaryMetered
    kind: int = 12  # MeasurementKind 12 = energy
    service_kind: int = 0  # ServiceKind of the UsagePoint (encode_upload only)
    consumption_tier: int | None = None  # Int16
    currency: int | None = None  # Currency (ISO 4217 numeric, e.g. 840 USD)
    data_qualifier: int | None = None  # DataQualifierKind (12 normal, 8 maximum, ...)
    default_quality: int | None = None  # QualityOfReading (17 validated, 14 raw, ...)
    phase: int | None = None  # PhaseCodeKind (769 S12N, 225 ABCN, ...)
    time_attribute: int | None = None  # TimePeriodOfInterest (0 none, 11 daily, ...)
    tou: int | None = None  # Int16
    cpp: int | None = None  # Int16
    interharmonic: tuple[int, int] | None = None  # (numerator, denominator)
    measuring_period: int | None = None  # TimeAttributeKind (2 fifteenMinute, 7 sixtyMinute)
    argument: tuple[int, int] | None = None  # (numerator, denominator)
    #: (MeterReading title, ReadingType content XML), made once on construction.
    xml_parts: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, _, type_name in (*_READING_TYPE_ELEMENTS, ("service_kind", "", "ServiceKind")):
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_FIELDS:
                continue
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if type_name not in _TYPE_XML and not is_int:
                raise ValueError(f"ReadingTypeSpec.{name} must be an int code, got {value!r}")
            reason = TYPE_CHECKS[type_name](value)
            if reason is not None:
                raise ValueError(f"ReadingTypeSpec.{name} = {value!r} {reason}")
        object.__setattr__(self, "xml_parts", _reading_type_parts(self))


_OPTIONAL_FIELDS = frozenset(
    name for name, _, _ in _READING_TYPE_ELEMENTS if getattr(ReadingTypeSpec, name) is None
)


def _reading_type_parts(spec: ReadingTypeSpec) -> tuple[str, str]:
    """(MeterReading title, ReadingType content XML in the XSD's sequence order)."""
    elements = "".join(
        [
            _TYPE_XML.get(type_name, _int_xml)(element, value)
            for name, element, type_name in _READING_TYPE_ELEMENTS
            if (value := getattr(spec, name)) is not None
        ]
    )
    title = (
        f"{MEASUREMENT_KIND[spec.kind]} {FLOW_DIRECTION_KIND[spec.flow_direction]} "
        f"({UNIT_SYMBOL_KIND[spec.uom]})"
    )
    return title, f'<ReadingType xmlns="{ESPI_NS}">{elements}</ReadingType>'


@dataclass(frozen=True, eq=False)
class Channel:
    """One series of an upload: its ReadingType, values and optional per-reading quality.

    ``values``: 1-D integer array [n] of register values (units of
    ``10**power_of_ten_multiplier`` uom, ESPI Int48). ``quality``: None, or a 1-D integer
    array [n] of ESPI QualityOfReading codes (written as one ReadingQuality per reading), with
    :data:`NO_QUALITY` (-1) where a reading carries none. Arrays are checked when encoded.
    Compared by identity (``eq=False``: arrays have no single truth value).
    """

    reading_type: ReadingTypeSpec
    values: np.ndarray
    quality: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# Local time: ESPI LocalTimeParameters and DstRuleType.
# --------------------------------------------------------------------------------------------

#: DstRuleType value meaning "rule processing / DST correction disabled" (espiDerived.xsd).
DST_RULE_DISABLED = 0xFFFFFFFF

#: DstRuleType operators (espiDerived.xsd): operator code -> meaning.
DST_RULE_OPERATORS: Mapping[int, str] = MappingProxyType({
    0: "on the day of the month",
    1: "on the day of the week on or after the day of the month",
    2: "on the first occurrence of the day of the week in the month",
    3: "on the second occurrence of the day of the week in the month",
    4: "on the third occurrence of the day of the week in the month",
    5: "on the fourth occurrence of the day of the week in the month",
    6: "on the fifth occurrence of the day of the week in the month",
    7: "on the last occurrence of the day of the week in the month",
})

# (field, shift, bits) of the DstRuleType bit layout (module docstring).
_DST_RULE_BITS: tuple[tuple[str, int, int], ...] = (
    ("seconds", 0, 12),
    ("hour", 12, 5),
    ("day_of_week", 17, 3),
    ("day_of_month", 20, 5),
    ("operator", 25, 3),
    ("month", 28, 4),
)


def _weekday(year: int, month: int, day: int) -> int:
    """ESPI day of week (ISO 8601: Monday = 1 ... Sunday = 7)."""
    return calendar.weekday(year, month, day) + 1


def _day_of_month(year: int, rule: DstRule) -> int:
    return rule.day_of_month


def _weekday_on_or_after(year: int, rule: DstRule) -> int:
    day = rule.day_of_month
    return day + (rule.day_of_week - _weekday(year, rule.month, day)) % 7


def _nth_weekday(n: int) -> Callable[[int, DstRule], int]:
    def day(year: int, rule: DstRule) -> int:
        first = 1 + (rule.day_of_week - _weekday(year, rule.month, 1)) % 7
        return first + 7 * (n - 1)

    return day


def _last_weekday(year: int, rule: DstRule) -> int:
    last = calendar.monthrange(year, rule.month)[1]
    return last - (_weekday(year, rule.month, last) - rule.day_of_week) % 7


#: Day of the month of a rule in a year, by DstRuleType operator.
_RULE_DAY: Mapping[int, Callable[[int, DstRule], int]] = MappingProxyType(
    {0: _day_of_month, 1: _weekday_on_or_after}
    | {op: _nth_weekday(op - 1) for op in range(2, 7)}
    | {7: _last_weekday}
)


@dataclass(frozen=True)
class DstRule:
    """One ESPI DstRuleType rule (bit layout in the module docstring).

    ``month`` 1..12; ``operator`` 0..7 (:data:`DST_RULE_OPERATORS`); ``day_of_month`` 0..31
    (0 = not applicable), required (and within the month) by operators 0 and 1;
    ``day_of_week`` 0..7 (0 = not applicable, Monday = 1 ... Sunday = 7), required by
    operators 1..7; ``hour`` 0..23 and ``seconds`` 0..3599 of the wall-clock time of the
    change, in the local time in force just before it. Fields a rule's operator does not use
    are written as given and ignored when the rule is evaluated.
    """

    month: int
    operator: int
    day_of_month: int = 0
    day_of_week: int = 0
    hour: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        limits = {
            "month": (1, 12), "operator": (0, 7), "day_of_month": (0, 31),
            "day_of_week": (0, 7), "hour": (0, 23), "seconds": (0, 3599),
        }  # fmt: skip
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"DstRule.{name} must be an int in {low}..{high}, got {value!r}")
        if self.operator <= 1 and not (
            1 <= self.day_of_month <= calendar.monthrange(2000, self.month)[1]
        ):
            raise ValueError(
                f"DstRule operator {self.operator} needs a day_of_month of month {self.month}, "
                f"got {self.day_of_month}"
            )
        if self.operator >= 1 and self.day_of_week == 0:
            raise ValueError(f"DstRule operator {self.operator} needs a day_of_week 1..7")

    @property
    def code(self) -> int:
        """The 32-bit DstRuleType value."""
        return sum(getattr(self, name) << shift for name, shift, _ in _DST_RULE_BITS)

    @classmethod
    def from_code(cls, code: int) -> DstRule:
        """Decode a DstRuleType value (not :data:`DST_RULE_DISABLED`); ValueError if invalid."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < DST_RULE_DISABLED:
            raise ValueError(f"DstRuleType must be an int in 0..0xFFFFFFFE, got {code!r}")
        parts = {name: (code >> shift) & ((1 << bits) - 1) for name, shift, bits in _DST_RULE_BITS}
        try:
            return cls(**parts)
        except ValueError as error:
            raise ValueError(f"DstRuleType {code:08X} is not a valid rule: {error}") from None

    def local_datetime(self, year: int) -> datetime:
        """Wall-clock time of the change in ``year`` (naive; local time before the change).

        ValueError when the day does not exist that year (e.g. a fifth Sunday, or the
        weekday on or after the 29th running past the month's end).
        """
        day = _RULE_DAY[self.operator](year, self)
        if day > calendar.monthrange(year, self.month)[1]:
            raise ValueError(
                f"DstRule {self.code:08X} ({DST_RULE_OPERATORS[self.operator]}) has no day in "
                f"{year}-{self.month:02d}"
            )
        return datetime(year, self.month, day) + timedelta(hours=self.hour, seconds=self.seconds)


#: POSIX TZ rules (POSIX.1-2017 §8.3) of common zones: the footers of the IANA tz database's
#: TZif files (RFC 8536 §3.3), tzdata 2025b and 2026f alike. US rules since 2007 (Energy
#: Policy Act of 2005 §110), EU rules since 1996 (Directive 2000/84/EC). Other zones are read
#: from the tz database on this system (see LocalTimeSpec.for_zone).
ZONE_POSIX_TZ: Mapping[str, str] = MappingProxyType({
    "America/New_York": "EST5EDT,M3.2.0,M11.1.0",
    "America/Chicago": "CST6CDT,M3.2.0,M11.1.0",
    "America/Denver": "MST7MDT,M3.2.0,M11.1.0",
    "America/Phoenix": "MST7",
    "America/Los_Angeles": "PST8PDT,M3.2.0,M11.1.0",
    "America/Anchorage": "AKST9AKDT,M3.2.0,M11.1.0",
    "Pacific/Honolulu": "HST10",
    "Europe/London": "GMT0BST,M3.5.0/1,M10.5.0",
    "Europe/Dublin": "IST-1GMT0,M10.5.0,M3.5.0/1",
    "Europe/Lisbon": "WET0WEST,M3.5.0/1,M10.5.0",
    "Europe/Berlin": "CET-1CEST,M3.5.0,M10.5.0/3",
    "Europe/Paris": "CET-1CEST,M3.5.0,M10.5.0/3",
    "Europe/Madrid": "CET-1CEST,M3.5.0,M10.5.0/3",
    "Europe/Rome": "CET-1CEST,M3.5.0,M10.5.0/3",
    "Europe/Amsterdam": "CET-1CEST,M3.5.0,M10.5.0/3",
    "Europe/Athens": "EET-2EEST,M3.5.0/3,M10.5.0/4",
    "Europe/Helsinki": "EET-2EEST,M3.5.0/3,M10.5.0/4",
    "UTC": "UTC0",
    "Etc/UTC": "UTC0",
})

_POSIX_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)"
_POSIX_HMS = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_POSIX_DATE = r"(?:M\d{1,2}\.\d\.\d|J\d{1,3}|\d{1,3})"
_POSIX_TZ = re.compile(
    rf"(?P<std>{_POSIX_NAME})(?P<std_offset>{_POSIX_HMS})"
    rf"(?:(?P<dst>{_POSIX_NAME})(?P<dst_offset>{_POSIX_HMS})?"
    rf",(?P<start>{_POSIX_DATE})(?:/(?P<start_time>{_POSIX_HMS}))?"
    rf",(?P<end>{_POSIX_DATE})(?:/(?P<end_time>{_POSIX_HMS}))?)?"
)
_POSIX_MONTH_WEEK_DAY = re.compile(r"M(\d+)\.(\d)\.(\d)")
#: POSIX week 1..4 -> ESPI "n-th occurrence" operators 2..5; week 5 means "last" (operator 7).
_POSIX_WEEK_OPERATOR = MappingProxyType({1: 2, 2: 3, 3: 4, 4: 5, 5: 7})
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,64}(?:/[A-Za-z0-9_+-]{1,64}){0,3}")
_LOCAL_TIME_NAME = re.compile(r"[A-Za-z0-9_+./-]{0,64}")


def _hms_s(text: str) -> int:
    """Seconds of a POSIX ``[+-]hh[:mm[:ss]]``."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    return sign * sum(p * 60**i for p, i in zip(parts, (2, 1, 0), strict=False))


def _posix_rule(rule: str, time_s: int) -> DstRule:
    """One POSIX TZ transition rule (``Mm.w.d`` or ``Jn``, and a time) as a DstRule."""
    if not 0 <= time_s < 86400:
        raise ValueError(
            f"transition time {time_s} s of rule {rule!r} is outside 00:00..23:59:59 "
            "(DstRuleType hours are 0..23)"
        )
    hour, seconds = divmod(time_s, 3600)
    if match := _POSIX_MONTH_WEEK_DAY.fullmatch(rule):
        month, week, weekday = (int(g) for g in match.groups())
        if week not in _POSIX_WEEK_OPERATOR or weekday > 6:
            raise ValueError(f"bad POSIX rule {rule!r}: week 1..5, day 0..6")
        return DstRule(
            month=month, operator=_POSIX_WEEK_OPERATOR[week], day_of_week=weekday or 7,
            hour=hour, seconds=seconds,
        )  # fmt: skip
    if rule.startswith("J") and 1 <= int(rule[1:]) <= 365:
        day = date(2001, 1, 1) + timedelta(days=int(rule[1:]) - 1)  # Jn never counts Feb 29
        return DstRule(
            month=day.month, operator=0, day_of_month=day.day, hour=hour, seconds=seconds
        )
    raise ValueError(
        f"POSIX rule {rule!r} (zero-based day of year, counting Feb 29) has no DstRuleType form"
    )


def _tzdb_posix_tz(name: str) -> str:
    """POSIX TZ footer of zone ``name``'s TZif file (RFC 8536 §3.3), looked up where
    :mod:`zoneinfo` looks: ``zoneinfo.TZPATH``, then the ``tzdata`` package."""
    if not _ZONE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"time zone name {name!r} is not an IANA zone name like 'Europe/Berlin'")
    data = b""
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, *name.split("/"))
        if os.path.isfile(path):
            with open(path, "rb") as file:
                data = file.read()
            break
    else:
        with contextlib.suppress(ModuleNotFoundError, OSError):  # no tzdata package or zone
            data = resources.files("tzdata").joinpath("zoneinfo", *name.split("/")).read_bytes()
    if not data:
        raise ValueError(
            f"unknown time zone {name!r}: not in ZONE_POSIX_TZ nor in this system's tz database"
        )
    if data[:4] != b"TZif" or data[4:5] < b"2" or not data.endswith(b"\n"):
        raise ValueError(f"time zone {name!r}: TZif file without a POSIX TZ footer (version 1)")
    return data[data.rindex(b"\n", 0, len(data) - 1) + 1 : -1].decode("ascii")


@dataclass(frozen=True)
class LocalTimeSpec:
    """ESPI LocalTimeParameters (TimeConfiguration): the meter's local time rules.

    ``tz_offset_s``: standard time offset from UTC, s, east positive (ESPI tzOffset, e.g.
    -18000 for US Eastern). ``dst_offset_s``: daylight saving offset from standard time, s
    (ESPI dstOffset, 3600; 0 without DST). ``dst_start_rule`` / ``dst_end_rule``: DstRuleType
    codes (see :class:`DstRule`), both :data:`DST_RULE_DISABLED` when there is no DST.
    ``name``: the zone name, shown in the entry title (letters, digits, ``_+./-``).

    As the XSD requires, the end rule's result must come after the start rule's in the
    year: southern-hemisphere DST (start in October, end in April) cannot be expressed and
    is rejected.
    """

    tz_offset_s: int
    dst_offset_s: int = 0
    dst_start_rule: int = DST_RULE_DISABLED
    dst_end_rule: int = DST_RULE_DISABLED
    name: str = ""

    def __post_init__(self) -> None:
        for field_name in ("tz_offset_s", "dst_offset_s", "dst_start_rule", "dst_end_rule"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"LocalTimeSpec.{field_name} must be an int, got {value!r}")
        if not -86400 < self.tz_offset_s < 86400:
            raise ValueError(f"tz_offset_s must be within +-1 day, got {self.tz_offset_s}")
        if not 0 <= self.dst_offset_s < 86400:
            raise ValueError(f"dst_offset_s must be in 0..86399, got {self.dst_offset_s}")
        if not isinstance(self.name, str) or not _LOCAL_TIME_NAME.fullmatch(self.name):
            raise ValueError(
                f"LocalTimeSpec.name {self.name!r} must be up to 64 letters, digits, '_+./-'"
            )
        disabled = {rule == DST_RULE_DISABLED for rule in (self.dst_start_rule, self.dst_end_rule)}
        if disabled == {True}:
            return
        if len(disabled) == 2:
            raise ValueError("dst_start_rule and dst_end_rule must both be set or both disabled")
        start, end = DstRule.from_code(self.dst_start_rule), DstRule.from_code(self.dst_end_rule)
        if self.dst_offset_s == 0:
            raise ValueError("DST rules are set but dst_offset_s is 0")
        for year in range(2001, 2029):  # every weekday/leap-year pattern of 1901..2099
            try:
                ordered = start.local_datetime(year) < end.local_datetime(year)
            except ValueError:
                continue  # a fifth weekday that does not exist this year
            if not ordered:
                raise ValueError(
                    f"dstEndRule {self.dst_end_rule:08X} must fall after dstStartRule "
                    f"{self.dst_start_rule:08X} in the year (espiDerived.xsd), not so in {year}"
                    " (southern-hemisphere DST cannot be expressed)"
                )

    @classmethod
    def for_zone(cls, name: str) -> LocalTimeSpec:
        """The LocalTimeParameters of IANA zone ``name`` (current rules).

        Zones of :data:`ZONE_POSIX_TZ` use those fixed strings (identical bytes on every
        machine); any other zone reads the POSIX TZ footer of its TZif file from this system's
        tz database. ValueError for unknown zones or rules DstRuleType cannot express.
        """
        if not isinstance(name, str):
            raise ValueError(f"time zone name must be a str, got {name!r}")
        return _local_time_for_zone(name)

    @classmethod
    def from_posix_tz(cls, tz: str, name: str = "") -> LocalTimeSpec:
        """From a POSIX TZ string with explicit rules, e.g. ``"EST5EDT,M3.2.0,M11.1.0"``.

        POSIX offsets count west-positive, so tzOffset = -std offset; the DST offset defaults
        to one hour ahead of standard time; rule times default to 02:00 and are in the local
        time in force before the change, as DstRuleType's. A negative-DST zone (Europe/Dublin:
        standard time in summer) is written with the winter time as standard time and the
        rules swapped, which gives the same local times. ValueError on anything DstRuleType
        cannot express (rule times outside 0..24 h, zero-based day-of-year rules,
        southern-hemisphere DST).
        """
        match = _POSIX_TZ.fullmatch(tz) if isinstance(tz, str) else None
        if match is None:
            raise ValueError(
                f"{tz!r} is not a POSIX TZ string with explicit DST rules "
                "(POSIX.1-2017 §8.3, e.g. 'EST5EDT,M3.2.0,M11.1.0' or 'UTC0')"
            )
        std_s = -_hms_s(match["std_offset"])
        if match["dst"] is None:
            return cls(tz_offset_s=std_s, name=name)
        dst_s = -_hms_s(match["dst_offset"]) if match["dst_offset"] else std_s + 3600
        start = _posix_rule(match["start"], _hms_s(match["start_time"] or "2"))
        end = _posix_rule(match["end"], _hms_s(match["end_time"] or "2"))
        if dst_s < std_s:  # negative DST: the "DST" period is the winter
            std_s, dst_s, start, end = dst_s, std_s, end, start
        return cls(
            tz_offset_s=std_s,
            dst_offset_s=dst_s - std_s,
            dst_start_rule=start.code,
            dst_end_rule=end.code,
            name=name,
        )

    def dst_transitions_utc(self, year: int) -> tuple[int, int] | None:
        """Epoch seconds (UTC) of the start and end of DST in ``year``; None without DST."""
        if self.dst_start_rule == DST_RULE_DISABLED:
            return None
        start = DstRule.from_code(self.dst_start_rule).local_datetime(year)
        end = DstRule.from_code(self.dst_end_rule).local_datetime(year)
        return (
            calendar.timegm(start.timetuple()) - self.tz_offset_s,
            calendar.timegm(end.timetuple()) - self.tz_offset_s - self.dst_offset_s,
        )

    def utc_offset_s(self, epoch_s: np.ndarray) -> np.ndarray:
        """Local time minus UTC, s (int64, shape of ``epoch_s``), at epoch seconds ``epoch_s``.

        Vectorised over readings; the rules are evaluated once per distinct year.
        """
        t = np.asarray(epoch_s, dtype=np.int64)
        offset = np.full(t.shape, self.tz_offset_s, dtype=np.int64)
        if self.dst_start_rule == DST_RULE_DISABLED:
            return offset
        years = (t + self.tz_offset_s).astype("datetime64[s]").astype("datetime64[Y]")
        years = years.astype(np.int64) + 1970
        for year in np.unique(years).tolist():
            transitions = self.dst_transitions_utc(int(year))
            assert transitions is not None
            in_dst = (years == year) & (t >= transitions[0]) & (t < transitions[1])
            offset[in_dst] += self.dst_offset_s
        return offset


@lru_cache(maxsize=256)
def _local_time_for_zone(name: str) -> LocalTimeSpec:
    posix = ZONE_POSIX_TZ.get(name) or _tzdb_posix_tz(name)
    try:
        return LocalTimeSpec.from_posix_tz(posix, name=name)
    except ValueError as error:
        raise ValueError(f"time zone {name!r} ({posix}): {error}") from None
