"""Geometry validation and repair."""

import time

import numpy as np
import pytest
import shapely
from shapely import wkt

from gis.repair import repair_geometries

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
    out, reasons, repaired = repair_geometries(geoms, "Point")
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
    out, reasons, repaired = repair_geometries(_arr(square, shapely.MultiPolygon([square])), "MultiPolygon")
    assert reasons == [None, None]
    assert [g.geom_type for g in out] == ["MultiPolygon", "MultiPolygon"]
    assert out[0].equals(shapely.MultiPolygon([square]))
    assert not repaired.any()  # a lossless promotion is not a repair


def test_single_part_multis_become_single() -> None:
    line = shapely.LineString([(118, 32), (118.1, 32.1)])
    out, reasons, _ = repair_geometries(_arr(shapely.MultiLineString([line])), "LineString")
    assert reasons == [None] and out[0].geom_type == "LineString" and out[0].equals(line)
    out, reasons, _ = repair_geometries(_arr(shapely.MultiPoint([(118, 32)])), "Point")
    assert reasons == [None] and out[0].equals(shapely.Point(118, 32))


def test_multilinestring_joined_only_in_flow_direction() -> None:
    joined = shapely.MultiLineString([[(0, 0), (1, 0)], [(1, 0), (2, 1)]])
    reversed_part = shapely.MultiLineString([[(0, 0), (1, 0)], [(2, 1), (1, 0)]])
    apart = shapely.MultiLineString([[(0, 0), (1, 0)], [(5, 5), (6, 6)]])
    out, reasons, repaired = repair_geometries(_arr(joined, reversed_part, apart), "LineString")
    assert reasons[0] is None and repaired[0]
    assert list(out[0].coords) == [(0, 0), (1, 0), (2, 1)]  # direction kept
    assert reasons[1] == (
        "geometry is MultiLineString of 2 parts that do not join into one line but layer expects LineString"
    )
    assert reasons[2] == reasons[1]
    assert out[1] is None and out[2] is None and not repaired[1:].any()


def test_invalid_polygon_repaired() -> None:
    out, reasons, repaired = repair_geometries(_arr(BOWTIE, shapely.box(0, 0, 1, 1)), "MultiPolygon")
    assert reasons == [None, None]
    assert repaired.tolist() == [True, False]
    assert out[0].geom_type == "MultiPolygon" and out[0].is_valid
    assert len(out[0].geoms) == 2
    assert out[0].area == pytest.approx(0.02, rel=1e-9)  # two triangles, each a quarter of the box


def test_hole_outside_shell_repaired_structurally() -> None:
    # 'structure' semantics: the hole is subtracted from the shell rather than kept as extra area
    poly = wkt.loads("POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0), (1 1, 3 1, 3 3, 1 3, 1 1))")
    out, reasons, repaired = repair_geometries(_arr(poly), "MultiPolygon")
    assert reasons == [None] and repaired[0]
    assert out[0].area == pytest.approx(3.0)


def test_collapsed_polygon_rejected_with_reason() -> None:
    flat = wkt.loads("POLYGON ((118.1 32, 118.2 32, 118.3 32, 118.1 32))")
    out, reasons, repaired = repair_geometries(_arr(flat), "MultiPolygon")
    assert out[0] is None and not repaired[0]
    assert reasons[0] == (
        "invalid geometry (Self-intersection[118.2 32]) could not be repaired into a MultiPolygon"
    )


def test_invalid_points_and_lines_rejected() -> None:
    geoms = _arr(shapely.Point(np.nan, 32.0), shapely.Point(118.0, 32.0))
    out, reasons, _ = repair_geometries(geoms, "Point")
    assert reasons[0].startswith("invalid geometry (Invalid Coordinate[nan 32]")
    assert reasons[0].endswith("could not be repaired into a Point")
    assert reasons[1] is None
    line = shapely.LineString([(118, 32), (118, 32)])
    out, reasons, _ = repair_geometries(_arr(line), "LineString")
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
    out, reasons, repaired = repair_geometries(geoms, "Point")
    bad = [i for i, r in enumerate(reasons) if r is not None]
    assert bad == [10, 500]
    assert all(out[i] is pts[i] or out[i].equals(pts[i]) for i in range(1000) if i not in bad)


def test_million_points_under_a_second() -> None:
    pts = shapely.points(np.random.default_rng(0).uniform(118, 120, (1_000_000, 2)))
    repair_geometries(pts[:1000], "Point")  # warm up
    start = time.perf_counter()
    out, reasons, repaired = repair_geometries(pts, "Point")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s for 1M points"
    assert len(out) == 1_000_000 and reasons.count(None) == 1_000_000 and not repaired.any()
