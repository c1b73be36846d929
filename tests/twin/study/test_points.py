"""Study axes: lists and ranges as --vary/--choose/--grow take them, grid and zip, and the
loader's one-line errors for a bad key or value before anything runs."""

from __future__ import annotations

import pytest

from tests.twin.study.conftest import TINY
from twin.errors import ScenarioError
from twin.study.points import grid, parse_axis, resolve, zipped


def test_lists_ranges_and_values_with_commas() -> None:
    assert parse_axis("fleet.pv.count=5,10", "--vary").values == ("5", "10")
    counts = parse_axis("mdc.north.servers.count=1..4", "--choose")
    assert counts.values == ("1", "2", "3", "4") and counts.ranged
    assert parse_axis("fleet.pv.count=200..1000:400", "--grow").values == ("200", "600", "1000")
    tables = parse_axis("fleet.pv.capacity_kw={uniform=[5,50]},{uniform=[1,2]}", "--vary")
    assert tables.values == ("{uniform=[5,50]}", "{uniform=[1,2]}")
    assert parse_axis('scenario.name="a,b",c', "--vary").values == ('"a,b"', "c")


@pytest.mark.parametrize("text", ["fleet.pv.count=", "fleet.pv.count=8..2", "fleet.pv.count=1,,2",
                                  "=1,2", "fleet.pv.count"])  # fmt: skip
def test_empty_or_malformed_axes_are_one_error(text: str) -> None:
    with pytest.raises(ScenarioError, match="--vary"):
        parse_axis(text, "--vary")


def test_grid_and_zip() -> None:
    a, b = parse_axis("x=1,2", "--vary"), parse_axis("y=a,b,c", "--vary")
    assert grid([a, b])[:4] == [
        (("x", "1"), ("y", "a")), (("x", "1"), ("y", "b")),
        (("x", "1"), ("y", "c")), (("x", "2"), ("y", "a")),
    ]  # fmt: skip
    assert len(grid([a, b])) == 6
    assert zipped([a, parse_axis("y=a,b", "--vary")], "--zip") == [
        (("x", "1"), ("y", "a")),
        (("x", "2"), ("y", "b")),
    ]
    with pytest.raises(ScenarioError, match="equal lengths"):
        zipped([a, b], "--zip")


def test_points_resolve_with_their_values_and_bad_keys_fail_before_any_run() -> None:
    axis = parse_axis("fleet.pv.count=4,8", "--vary")
    points = resolve(TINY, ['scenario.duration="2h"'], grid([axis]), "p")
    assert [p.id for p in points] == ["p0", "p1"]
    assert [p.scenario.fleets[0].count for p in points] == [4, 8]
    assert all(p.scenario.duration_s == 7200.0 for p in points)
    assert points[1].value("fleet.pv.count") == 8 and points[1].label == "fleet.pv.count=8"
    with pytest.raises(ScenarioError, match=r"fleet\.pv\.cuont"):
        resolve(TINY, [], grid([parse_axis("fleet.pv.cuont=4,8", "--vary")]), "p")
    with pytest.raises(ScenarioError, match=r"mdc\.north\.servers\.sku"):
        resolve(TINY, [], grid([parse_axis("mdc.north.servers.sku=edge-9u", "--vary")]), "p")
