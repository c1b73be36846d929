"""KPI names: dotted paths into the ``kpis`` record of a run's ``results.json``.

A KPI is a number; its name is the path of keys that leads to it, joined by ``.``. The
names a run has depend on its scenario (fleets, MDCs, servers, hops, loss causes), so
:func:`kpi_patterns` lists them with placeholders, read off :class:`Kpis` itself:

- counts of readings: ``readings_generated``, ``readings_stored``, ``readings_in_flight``,
  ``duplicates_discarded``, ``readings_lost.<cause>`` and their sum ``readings_lost_total``;
- uploads: ``uploads_started``, ``uploads_delivered``, ``uploads_acknowledged``,
  ``uploads_failed``, ``uploads_rejected``, ``upload_windows_skipped``,
  ``cellular_attempts``, ``cellular_failed_attempts``;
- ``throughput_readings_per_s``; ``latency_s.{p50,p95,p99,max,mean}`` (end to end, s);
  ``hop_latency_s.<hop>.{n,mean,p50,p95,p99,max}`` (per hop, s);
- ``utilization.<mdc>/server-<i>`` (busy fraction), ``mdc_queue_peak``, ``alerts``;
- ``energy_generated_kwh.<fleet>``, ``energy_consumed_kwh.<fleet>``,
  ``energy_mdc_kwh.<mdc>`` (kWh).

``twin compare`` and its ``--fail-on`` gates take these names.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from twin.accounting.kpis import Kpis
from twin.errors import UsageError

Number = bool | int | float


def flatten(node: Any, prefix: str = "") -> dict[str, Number]:
    """The numbers under ``node`` (nested mappings) by dotted path, as they are (booleans,
    integers, floats); anything else (None, text, lists) is left out."""
    out: dict[str, Number] = {}
    if isinstance(node, Mapping):
        for key, value in node.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, bool | int | float) and prefix:
        out[prefix] = node
    return out


def kpi_values(results: Mapping[str, Any]) -> dict[str, float]:
    """The KPIs of a run's ``results.json`` content, by name, as floats (NaN ones left
    out)."""
    values = {k: float(v) for k, v in flatten(results["kpis"]).items()}
    return {k: v for k, v in values.items() if not math.isnan(v)}


def kpi_patterns() -> list[str]:
    """Every KPI name, with ``<key>`` where a scenario supplies the key (module docstring)."""
    hints = typing.get_type_hints(Kpis)
    names = []
    for f in dataclasses.fields(Kpis):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            names += [f"{f.name}.{sub.name}" for sub in dataclasses.fields(kind)]
        elif typing.get_origin(kind) is dict:
            value = typing.get_args(kind)[1]
            if dataclasses.is_dataclass(value):
                names += [f"{f.name}.<key>.{sub.name}" for sub in dataclasses.fields(value)]
            else:
                names.append(f"{f.name}.<key>")
        else:
            names.append(f.name)
    return [*names, "readings_lost_total"]


def check_kpi_name(name: str, known: Iterable[str], key: str, value: str) -> None:
    """Raise a :class:`UsageError` naming the option ``key`` and its ``value`` if ``name``
    is not in ``known``, with the closest names."""
    known = list(known)
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "twin compare --list-kpis lists them"
    raise UsageError(key, value, f"a KPI the runs report ({name!r} is none; {hint})")
