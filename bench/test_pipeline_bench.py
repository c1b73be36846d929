"""The pipeline on a typical meter upload beside a bare ``lxml.etree.fromstring`` of the same
bytes (DESIGN.md §7 budget: fetch+process at most 2x the bare parse)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from lxml import etree

from pipeline.fetch import parse_upload
from pipeline.process import extract_readings
from pipeline.service import Pipeline
from twin.calibrate import sample_upload

UPLOAD = sample_upload("pv-00042", 15)  # one 15-minute window of 1-min readings


def test_bare_fromstring(benchmark: Any, record_median: Any) -> None:
    record_median("bare_fromstring")
    root = benchmark(etree.fromstring, UPLOAD)
    assert root.tag.endswith("feed")


def test_fetch_process(benchmark: Any, record_median: Any) -> None:
    record_median("fetch_process")
    batch = benchmark(lambda: extract_readings(parse_upload(UPLOAD)))
    assert len(batch.value) == 15


def test_pipeline_handle(benchmark: Any, record_median: Any, tmp_path: Path) -> None:
    record_median("pipeline_handle")
    pipeline = Pipeline(tmp_path / "bench.sqlite")
    seq = itertools.count()
    # distinct meters so that every call really inserts (no duplicate short-cut)
    bodies = [sample_upload(f"m-{i}", 15) for i in range(20_000)]
    outcome = benchmark(lambda: pipeline.handle(bodies[next(seq) % len(bodies)]))
    pipeline.close()
    assert outcome.accepted
    benchmark.extra_info["size_bytes"] = len(UPLOAD)
