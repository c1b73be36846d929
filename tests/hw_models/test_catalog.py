"""The hardware catalog: the shipped file loads and is plausible; mistakes are named."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hw_models.catalog import (
    _ACCELERATOR_FIELDS,
    _SERVER_FIELDS,
    CATALOG_PATH,
    AcceleratorSku,
    CatalogError,
    ServerSku,
    load_catalog,
    parse_catalog,
)


def shipped() -> dict[str, Any]:
    text = CATALOG_PATH.read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_shipped_catalog_has_edge_skus_and_an_accelerator() -> None:
    catalog = load_catalog()
    assert len(catalog.servers) >= 4
    assert {s.cores for s in catalog.servers.values()} >= {4, 8, 32}
    for sku in catalog.servers.values():
        assert isinstance(sku, ServerSku)
        assert 0 < sku.idle_w < sku.max_w
        # every SPECpower result in the catalog idles at 15-45 % of its full-load power; a
        # slipped digit or swapped column lands outside the band
        assert 0.15 <= sku.idle_w / sku.max_w <= 0.45, sku.name
        assert 0.3 <= sku.speed_factor <= 3.0
        assert sku.ram_bytes == int(sku.ram_gb * 1e9)
        assert sku.disk_write_bps == sku.disk_write_mb_s * 1e6
    gpu = catalog.accelerator("t4")
    assert isinstance(gpu, AcceleratorSku)
    assert gpu.max_w == 70.0  # NVIDIA T4 board power
    assert gpu.batch_latency_s(0) == gpu.batch_latency_a_s
    assert gpu.batch_latency_s(1000) == pytest.approx(
        gpu.batch_latency_a_s + 1000 * gpu.batch_latency_b_s_per_item
    )


def test_every_figure_in_the_shipped_file_has_a_source_comment() -> None:
    # Each numeric key line of a [server.*] entry is preceded by, or carries, a comment.
    text = CATALOG_PATH.read_text(encoding="utf-8")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if key in {"speed_factor", "disk_write_mb_s", "idle_w", "max_w", "price_usd"}:
            assert "#" in line or lines[i - 1].lstrip().startswith("#"), line


def test_dataclasses_and_parsers_cover_the_same_keys() -> None:
    assert {f.name for f in dataclasses.fields(ServerSku)} - {"name"} == set(_SERVER_FIELDS)
    assert {f.name for f in dataclasses.fields(AcceleratorSku)} - {"name"} == set(
        _ACCELERATOR_FIELDS
    )


def test_loads_a_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        "[server.box]\ndescription = 'x'\ncores = 2\nspeed_factor = 0.5\nram_gb = 4\n"
        "disk_write_mb_s = 100\nidle_w = 5\nmax_w = 15\nprice_usd = 300\n",
        encoding="utf-8",
    )
    catalog = load_catalog(path)
    assert catalog.server("box").cores == 2
    assert catalog.accelerators == {}


def _broken(section: str, name: str, key: str, value: Any) -> dict[str, Any]:
    data = shipped()
    if value is None:
        del data[section][name][key]
    else:
        data[section][name][key] = value
    return data


@pytest.mark.parametrize(
    ("section", "name", "key", "value", "message"),
    [
        ("server", "edge-1u-8c", "cores", 0, "server.edge-1u-8c.cores = 0: expected an integer"),
        ("server", "edge-1u-8c", "cores", 8.5, "server.edge-1u-8c.cores = 8.5"),
        ("server", "edge-1u-8c", "cores", True, "server.edge-1u-8c.cores = True"),
        ("server", "edge-1u-8c", "speed_factor", -1.0, "server.edge-1u-8c.speed_factor = -1.0"),
        ("server", "edge-1u-8c", "idle_w", "16", "server.edge-1u-8c.idle_w = '16'"),
        ("server", "edge-1u-8c", "max_w", 10.0, "server.edge-1u-8c.max_w = 10.0: expected >="),
        ("server", "edge-1u-8c", "ram_gb", None, "server.edge-1u-8c.ram_gb = None: expected a"),
        ("server", "edge-1u-8c", "colour", "red", "server.edge-1u-8c.colour = 'red': expected no"),
        ("accelerator", "t4", "max_batch_items", 0, "accelerator.t4.max_batch_items = 0"),
        ("accelerator", "t4", "batch_latency_a_s", float("nan"), "batch_latency_a_s = nan"),
    ],
)
def test_a_bad_entry_names_the_key_and_value(
    section: str, name: str, key: str, value: Any, message: str
) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(_broken(section, name, key, value), "test.toml")
    assert str(info.value).startswith("test.toml: ")
    assert message in str(info.value)
    assert info.value.key == f"{section}.{name}.{key}"


def test_unknown_sections_and_names_are_reported() -> None:
    data = shipped()
    data["servers"] = {}
    with pytest.raises(CatalogError, match=r"servers = \{\}: expected a \[server"):
        parse_catalog(data)
    with pytest.raises(CatalogError, match="expected at least one"):
        parse_catalog({"accelerator": {}})
    known = r"server\.edge-9u = 'edge-9u': expected one of .*edge-1u-8c"
    with pytest.raises(CatalogError, match=known):
        load_catalog().server("edge-9u")


def test_unreadable_or_invalid_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="a readable file"):
        load_catalog(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server.x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="valid TOML"):
        load_catalog(bad)
