"""The catalog of MDC hardware: server SKUs and accelerators, from ``catalog.toml``.

``load_catalog()`` reads the catalog shipped inside the package (``catalog.toml`` next to
this module, package data of the wheel) or any TOML file of the same shape, and validates
it into frozen dataclasses. A mistake raises one :class:`CatalogError` that names the
file, the key, the value and what was expected.
Where each figure comes from is written next to it in ``catalog.toml``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The catalog shipped with the package (listed as package data of ``hw_models``).
CATALOG_PATH = Path(__file__).with_name("catalog.toml")

#: Bytes in one MB of a disk datasheet (SI megabyte) and in one GB of RAM (SI gigabyte).
BYTES_PER_MB = 1_000_000
BYTES_PER_GB = 1_000_000_000


class CatalogError(ValueError):
    """A catalog entry is wrong: names the file, the key, the value and what was expected."""

    def __init__(self, source: str, key: str, value: Any, expected: str) -> None:
        self.source = source
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"{source}: {key} = {value!r}: expected {expected}")


@dataclass(frozen=True)
class ServerSku:
    """One server model.

    ``speed_factor`` scales service times (a job of ``s`` seconds on the calibration
    machine takes ``s / speed_factor``); ``idle_w`` and ``max_w`` are wall power at
    active idle and at 100 % load (SPECpower_ssj2008 definitions).
    """

    name: str
    description: str
    cores: int
    speed_factor: float
    ram_gb: float
    disk_write_mb_s: float
    idle_w: float
    max_w: float
    price_usd: float

    @property
    def ram_bytes(self) -> int:
        return int(self.ram_gb * BYTES_PER_GB)

    @property
    def disk_write_bps(self) -> float:
        """Sequential write throughput, bytes per second."""
        return self.disk_write_mb_s * BYTES_PER_MB


@dataclass(frozen=True)
class AcceleratorSku:
    """A GPU that runs the analytics stage on batches of readings.

    Batch latency is linear in the batch size, ``a + b * items``; power is ``idle_w``
    while no batch runs and ``max_w`` while one does.
    """

    name: str
    description: str
    idle_w: float
    max_w: float
    batch_latency_a_s: float
    batch_latency_b_s_per_item: float
    max_batch_items: int
    price_usd: float

    def batch_latency_s(self, items: int) -> float:
        """Time to run one batch of ``items`` readings, s."""
        return self.batch_latency_a_s + self.batch_latency_b_s_per_item * items


@dataclass(frozen=True)
class Catalog:
    servers: dict[str, ServerSku]
    accelerators: dict[str, AcceleratorSku]
    source: str

    def server(self, name: str) -> ServerSku:
        """The server SKU called ``name``; a CatalogError lists the known names."""
        return _lookup(self.servers, "server", name, self.source)

    def accelerator(self, name: str) -> AcceleratorSku:
        return _lookup(self.accelerators, "accelerator", name, self.source)


def _lookup(table: Mapping[str, Any], kind: str, name: str, source: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise CatalogError(
            source, f"{kind}.{name}", name, f"one of {', '.join(sorted(table))}"
        ) from None


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def _text(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(source, key, value, "a non-empty string")
    return value


def _integer(source: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatalogError(source, key, value, "an integer >= 1")
    return value


def _positive(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(source, key, value, "a number > 0")
    if not (math.isfinite(value) and value > 0):
        raise CatalogError(source, key, value, "a finite number > 0")
    return float(value)


def _non_negative(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(source, key, value, "a number >= 0")
    if not (math.isfinite(value) and value >= 0):
        raise CatalogError(source, key, value, "a finite number >= 0")
    return float(value)


_Parser = Callable[[str, str, Any], Any]

_SERVER_FIELDS: dict[str, _Parser] = {
    "description": _text,
    "cores": _integer,
    "speed_factor": _positive,
    "ram_gb": _positive,
    "disk_write_mb_s": _positive,
    "idle_w": _non_negative,
    "max_w": _positive,
    "price_usd": _non_negative,
}

_ACCELERATOR_FIELDS: dict[str, _Parser] = {
    "description": _text,
    "idle_w": _non_negative,
    "max_w": _positive,
    "batch_latency_a_s": _non_negative,
    "batch_latency_b_s_per_item": _non_negative,
    "max_batch_items": _integer,
    "price_usd": _non_negative,
}


def _entry(
    source: str, prefix: str, name: str, raw: Any, parsers: dict[str, _Parser]
) -> dict[str, Any]:
    key = f"{prefix}.{name}"
    if not isinstance(raw, dict):
        raise CatalogError(source, key, raw, "a table")
    unknown = sorted(set(raw) - set(parsers))
    if unknown:
        known = ", ".join(parsers)
        raise CatalogError(
            source, f"{key}.{unknown[0]}", raw[unknown[0]], f"no such key (known: {known})"
        )
    values: dict[str, Any] = {"name": name}
    for field_name, parse in parsers.items():
        if field_name not in raw:
            raise CatalogError(source, f"{key}.{field_name}", None, "a value (the key is missing)")
        values[field_name] = parse(source, f"{key}.{field_name}", raw[field_name])
    if values["max_w"] < values["idle_w"]:
        raise CatalogError(
            source, f"{key}.max_w", values["max_w"], f">= idle_w ({values['idle_w']})"
        )
    return values


def parse_catalog(data: Mapping[str, Any], source: str = "<catalog>") -> Catalog:
    """Validate a parsed catalog document (the dict ``tomllib`` returns)."""
    unknown = sorted(set(data) - {"server", "accelerator"})
    if unknown:
        raise CatalogError(
            source, unknown[0], data[unknown[0]], "a [server.*] or [accelerator.*] table"
        )
    servers_raw = data.get("server", {})
    accelerators_raw = data.get("accelerator", {})
    if not isinstance(servers_raw, dict) or not servers_raw:
        raise CatalogError(source, "server", servers_raw, "at least one [server.NAME] table")
    if not isinstance(accelerators_raw, dict):
        raise CatalogError(source, "accelerator", accelerators_raw, "[accelerator.NAME] tables")
    servers = {
        name: ServerSku(**_entry(source, "server", name, raw, _SERVER_FIELDS))
        for name, raw in servers_raw.items()
    }
    accelerators = {
        name: AcceleratorSku(**_entry(source, "accelerator", name, raw, _ACCELERATOR_FIELDS))
        for name, raw in accelerators_raw.items()
    }
    return Catalog(servers, accelerators, source)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The shipped catalog (``hw_models/catalog.toml``), or the TOML file at ``path``."""
    if path is None:
        source, text = "hw_models/catalog.toml", CATALOG_PATH.read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(source, "<file>", source, f"a readable file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(source, "<file>", source, f"valid TOML ({exc})") from None
    return parse_catalog(data, source)


__all__ = [
    "BYTES_PER_GB",
    "BYTES_PER_MB",
    "AcceleratorSku",
    "Catalog",
    "CatalogError",
    "ServerSku",
    "load_catalog",
    "parse_catalog",
]
