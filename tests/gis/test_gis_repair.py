"""Geometry validation and repair."""

import re
import time

import numpy as np
import pytest
import shapely
from shapely import wkt

from gis.repair import MAX_AREA_CHANGE, parse_geometries, repair_geometries

BOWTIE = wkt.loads("POLYGON ((118 32, 118.2 32.2, 118.2 32, 118 32.2, 118 32))")


def _arr(*geoms):
    return np.array(list(geoms), dtype=object)


def test_missing_empty_and_wrong_type() -> None:
    geoms = _arr(
        None,
        shapely.Point(),
        shapely.Polygon([(118, 32), (118.1, 32), (118.1, 32.1)]),
        shapely.Point(118.5, 32.1),
        shapely.MultiPoint([(118.5, 32.1), (118.6, 32.2)]),
    )
    out, reasons, repaired, changes = repair_geometries(geoms, "Point")
    assert changes == [None] * 5
    assert reasons == [
        "missing geometry",
        "empty geometry",
        "geometry is Polygon but layer expects Point",
        None,
        "geometry is MultiPoint but layer expects Point",
    ]
    assert out[3].equals(shapely.Point(118.5, 32.1))
    assert [g is None for g in out] == [True, True, True, False, True]
    assert not repaired.any()


def test_polygon_promoted_to_multipolygon() -> None:
    square = shapely.box(118, 32, 118.1, 32.1)
    out, reasons, repaired, changes = repair_geometries(_arr(square, shapely.MultiPolygon([square])), "MultiPolygon")
    assert reasons == [None, None]
    assert [g.geom_type for g in out] == ["MultiPolygon", "MultiPolygon"]
    assert out[0].equals(shapely.MultiPolygon([square]))
    assert not repaired.any() and changes == [None, None]  # a lossless promotion is not a repair


def test_single_part_multis_become_single() -> None:
    line = shapely.LineString([(118, 32), (118.1, 32.1)])
    out, reasons, _, _ = repair_geometries(_arr(shapely.MultiLineString([line])), "LineString")
    assert reasons == [None] and out[0].geom_type == "LineString" and out[0].equals(line)
    out, reasons, _, _ = repair_geometries(_arr(shapely.MultiPoint([(118, 32)])), "Point")
    assert reasons == [None] and out[0].equals(shapely.Point(118, 32))


def test_multilinestring_joined_only_in_flow_direction() -> None:
    joined = shapely.MultiLineString([[(0, 0), (1, 0)], [(1, 0), (2, 1)]])
    reversed_part = shapely.MultiLineString([[(0, 0), (1, 0)], [(2, 1), (1, 0)]])
    apart = shapely.MultiLineString([[(0, 0), (1, 0)], [(5, 5), (6, 6)]])
    out, reasons, repaired, changes = repair_geometries(_arr(joined, reversed_part, apart), "LineString")
    assert reasons[0] is None and repaired[0]
    assert changes == ["2 line parts joined end to end into one line (flow direction kept)", None, None]
    assert list(out[0].coords) == [(0, 0), (1, 0), (2, 1)]  # direction kept
    assert reasons[1] == (
        "geometry is MultiLineString of 2 parts that do not join into one line but layer expects LineString"
    )
    assert reasons[2] == reasons[1]
    assert out[1] is None and out[2] is None and not repaired[1:].any()


# An inward twist of the northern edge of a ~1.1 km x 1.1 km square near Nanjing: the edges cross once,
# make_valid settles it into one polygon whose area differs by a fraction of a percent.
X, Y, D = 118.6, 32.0, 0.01
TWIST = shapely.Polygon([(X, Y), (X + D, Y), (X + D, Y + D), (X + 0.6 * D, Y + D), (X + 0.49 * D, Y + 0.97 * D),
                         (X + 0.51 * D, Y + 0.97 * D), (X + 0.4 * D, Y + D), (X, Y + D), (X, Y)])


def test_small_self_intersection_repaired_and_described() -> None:
    out, reasons, repaired, changes = repair_geometries(_arr(TWIST, shapely.box(X, Y, X + D, Y + D)), "MultiPolygon")
    assert reasons == [None, None]
    assert repaired.tolist() == [True, False]
    assert out[0].geom_type == "MultiPolygon" and out[0].is_valid and len(out[0].geoms) == 1
    assert changes[1] is None
    assert changes[0].startswith(f"self-intersection at ({X + 0.5 * D:g}, ")
    assert " fixed by make_valid: area " in changes[0]
    # a sliver of 0.0027 % moves: both areas are shown to as many digits as it takes to tell them apart
    assert re.search(r"area 1\.04\d+ km² -> 1\.04\d+ km² \(-0\.00\d\d%\)$", changes[0]), changes[0]
    a, b = re.findall(r"(1\.04\d+) km²", changes[0])
    assert a != b


def test_duplicate_vertices_removed_by_a_repair_are_named() -> None:
    coords = list(TWIST.exterior.coords)
    doubled = shapely.Polygon(coords[:2] + [coords[1]] + coords[2:])
    _, reasons, repaired, changes = repair_geometries(_arr(doubled), "MultiPolygon")
    assert reasons == [None] and repaired[0]
    assert "fixed by make_valid" in changes[0] and changes[0].endswith("; duplicate vertices removed")


def test_bowtie_rejected_because_the_repair_splits_it() -> None:
    out, reasons, repaired, changes = repair_geometries(_arr(BOWTIE, shapely.box(0, 0, 1, 1)), "MultiPolygon")
    assert out[0] is None and not repaired[0] and changes[0] is None
    assert reasons[0] == (
        "invalid geometry (Self-intersection[118.1 32.1]): make_valid would turn its 1 part into 2; "
        "fix the geometry at the source"
    )
    assert reasons[1] is None and out[1] is not None


def test_hole_outside_its_shell_is_rejected_not_made_a_second_part() -> None:
    poly = wkt.loads("POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0), (5 5, 6 5, 6 6, 5 6, 5 5))")
    out, reasons, repaired, changes = repair_geometries(_arr(poly), "MultiPolygon")
    assert out[0] is None and not repaired[0] and changes[0] is None
    assert reasons[0] == (
        "hole outside its shell at (5, 5): a digitising error that make_valid would turn into another "
        "polygon part; fix the ring at the source"
    )


def test_hole_crossing_its_shell_rejected_for_the_area_it_would_change() -> None:
    # make_valid subtracts the hole from the shell: a quarter of the square would silently vanish
    poly = shapely.Polygon(
        [(X, Y), (X + 2 * D, Y), (X + 2 * D, Y + 2 * D), (X, Y + 2 * D)],
        [[(X + D, Y + D), (X + 3 * D, Y + D), (X + 3 * D, Y + 3 * D), (X + D, Y + 3 * D)]])
    out, reasons, repaired, _ = repair_geometries(_arr(poly), "MultiPolygon")
    assert out[0] is None and not repaired[0]
    assert reasons[0].startswith("invalid geometry (Self-intersection[")
    # the ring's signed areas cancel (shell 4.9 km², hole 4.9 km²); make_valid keeps three quarters of the shell
    assert re.search(r"make_valid would change its area from 0\.000\d+ km² to 3\.14\d km² \(\+\d+\.\d%\)",
                     reasons[0]), reasons[0]
    assert reasons[0].endswith(f"more than the {100 * MAX_AREA_CHANGE:g}% a repair may change; "
                               "fix the geometry at the source")


def test_area_tolerance_is_a_parameter() -> None:
    _, reasons, repaired, _ = repair_geometries(_arr(TWIST), "MultiPolygon", max_area_change=1e-6)
    assert not repaired[0] and "make_valid would change its area from 1.0" in reasons[0]
    assert "more than the 0.0001% a repair may change" in reasons[0]


def test_overlapping_parts_rejected_when_the_repair_merges_them() -> None:
    both = shapely.MultiPolygon([shapely.box(X, Y, X + 2 * D, Y + 2 * D),
                                 shapely.box(X + D, Y + D, X + 3 * D, Y + 3 * D)])
    out, reasons, _, _ = repair_geometries(_arr(both), "MultiPolygon")
    assert out[0] is None and "make_valid would turn its 2 parts into 1" in reasons[0]


def test_collapsed_polygon_rejected_with_reason() -> None:
    flat = wkt.loads("POLYGON ((118.1 32, 118.2 32, 118.3 32, 118.1 32))")
    out, reasons, repaired, _ = repair_geometries(_arr(flat), "MultiPolygon")
    assert out[0] is None and not repaired[0]
    assert reasons[0] == (
        "invalid geometry (Self-intersection[118.2 32]) could not be repaired into a MultiPolygon"
    )


def test_invalid_points_and_lines_rejected() -> None:
    geoms = _arr(shapely.Point(np.nan, 32.0), shapely.Point(118.0, 32.0))
    out, reasons, _, _ = repair_geometries(geoms, "Point")
    assert reasons[0].startswith("invalid geometry (Invalid Coordinate[nan 32]")
    assert reasons[0].endswith("could not be repaired into a Point")
    assert reasons[1] is None
    line = shapely.LineString([(118, 32), (118, 32)])
    out, reasons, _, _ = repair_geometries(_arr(line), "LineString")
    assert out[0] is None and reasons[0].startswith("invalid geometry (Too few points")


def test_bad_expected_type() -> None:
    with pytest.raises(ValueError, match="expected must be one of"):
        repair_geometries(_arr(shapely.Point(0, 0)), "Polygon")  # type: ignore[arg-type]


def test_mixed_batch_keeps_row_alignment() -> None:
    rng = np.random.default_rng(1)
    pts = shapely.points(rng.uniform(118, 120, (1000, 2)))
    geoms = pts.astype(object)
    geoms[10] = None
    geoms[500] = shapely.box(0, 0, 1, 1)
    out, reasons, repaired, _ = repair_geometries(geoms, "Point")
    bad = [i for i, r in enumerate(reasons) if r is not None]
    assert bad == [10, 500]
    assert all(out[i] is pts[i] or out[i].equals(pts[i]) for i in range(1000) if i not in bad)


def test_million_points_under_a_second() -> None:
    pts = shapely.points(np.random.default_rng(0).uniform(118, 120, (1_000_000, 2)))
    repair_geometries(pts[:1000], "Point")  # warm up
    start = time.perf_counter()
    out, reasons, repaired, changes = repair_geometries(pts, "Point")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s for 1M points"
    assert len(out) == 1_000_000 and reasons.count(None) == 1_000_000 and not repaired.any()
    assert changes.count(None) == 1_000_000


def test_open_rings_are_closed_and_flagged_when_parsed() -> None:
    open_wkt = "POLYGON ((118 32, 118.1 32, 118.1 32.1, 118 32.1))"
    closed_wkt = "POLYGON ((118 32, 118.1 32, 118.1 32.1, 118 32.1, 118 32))"
    geoms, closed = parse_geometries(np.array([open_wkt, closed_wkt, "POINT (1", None], dtype=object), "wkt")
    assert closed.tolist() == [True, False, False, False]
    assert geoms[0].equals(wkt.loads(closed_wkt)) and geoms[1].equals(geoms[0])
    assert geoms[2] is None and geoms[3] is None
    # the same through WKB as GDAL hands it over for a GeoJSON ring left open
    ring = np.array([[118, 32], [118.1, 32], [118.1, 32.1], [118, 32.1]], dtype="<f8")
    open_wkb = (b"\x01" + (3).to_bytes(4, "little") + (1).to_bytes(4, "little") + (4).to_bytes(4, "little")
                + ring.tobytes())
    geoms, closed = parse_geometries(np.array([open_wkb, None], dtype=object), "wkb")
    assert closed.tolist() == [True, False] and geoms[0].equals(wkt.loads(closed_wkt)) and geoms[1] is None
