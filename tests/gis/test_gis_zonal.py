"""Zonal sums over a polygon: counts per cell, densities times true cell areas, edges and no-data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from pyproj import Geod
from shapely.geometry import Polygon, box

from gis.zonal import cell_areas_km2, zonal_sum

GEOD = Geod(ellps="WGS84")


def _metric_grid(rows: int = 20, cols: int = 20, cell: float = 100.0) -> Affine:
    return Affine(cell, 0.0, 0.0, 0.0, -cell, rows * cell)


def test_aligned_square_sums_the_cells_it_covers() -> None:
    values = np.arange(400, dtype=float).reshape(20, 20)
    t = _metric_grid()
    square = box(300, 500, 800, 1200)  # columns 3..7, rows 8..14 (y from the top at 2000)
    z = zonal_sum(values, t, square, geographic=False)
    expected = values[8:15, 3:8].sum()
    assert z.cells == 35
    assert z.total == pytest.approx(expected)
    assert z.area_weighted == pytest.approx(expected)
    assert z.area_km2 == pytest.approx(35 * 0.01)


def test_centre_rule_and_area_weighting_differ_on_cut_cells() -> None:
    ones = np.ones((20, 20))
    t = _metric_grid()
    # x from 0 to 560 m cuts column 5 (500-600) past its centre (550): centre rule counts 6 columns,
    # area weighting 5.6.  y covers rows 10..19 exactly.
    z = zonal_sum(ones, t, box(0, 0, 560, 1000), geographic=False)
    assert z.cells == 60
    assert z.total == pytest.approx(60)
    assert z.area_weighted == pytest.approx(56)
    # 540 m stops short of column 5's centre: 5 columns by centres, 5.4 weighted
    z = zonal_sum(ones, t, box(0, 0, 540, 1000), geographic=False)
    assert (z.total, z.area_weighted) == (pytest.approx(50), pytest.approx(54))


def test_a_polygon_smaller_than_a_cell_still_has_a_weighted_share() -> None:
    ones = np.full((20, 20), 400.0)
    z = zonal_sum(ones, _metric_grid(), box(1010, 1010, 1040, 1040), geographic=False)
    assert z.total == 0 and z.cells == 0
    assert z.area_weighted == pytest.approx(400.0 * 0.09)


def test_triangle_area_weighted_sum_is_density_times_area() -> None:
    ones = np.ones((20, 20))
    tri = Polygon([(0, 0), (2000, 0), (0, 2000)])
    z = zonal_sum(ones, _metric_grid(), tri, geographic=False)
    assert z.area_weighted == pytest.approx(tri.area / 100.0**2, rel=1e-9)
    assert z.total == pytest.approx(tri.area / 100.0**2, rel=0.06)  # centres: 190 of 200 cells' worth


def test_density_on_a_lonlat_raster_uses_true_cell_areas() -> None:
    cell = 0.01
    t = Affine(cell, 0.0, 118.0, 0.0, -cell, 33.0)
    density = np.full((200, 200), 1000.0)  # persons per km²
    poly = box(118.2, 31.5, 118.7, 32.6)  # whole cells
    z = zonal_sum(density, t, poly, density_per_km2=True, geographic=True)
    area_m2, _ = GEOD.polygon_area_perimeter([118.2, 118.7, 118.7, 118.2], [31.5, 31.5, 32.6, 32.6])
    assert z.total == pytest.approx(1000.0 * abs(area_m2) / 1e6, rel=1e-5)
    assert z.area_km2 == pytest.approx(abs(area_m2) / 1e6, rel=1e-5)


def test_counts_per_cell_are_summed_without_areas_on_a_lonlat_raster() -> None:
    t = Affine(0.005, 0.0, 118.0, 0.0, -0.005, 33.0)
    counts = np.full((100, 100), 7.0)
    z = zonal_sum(counts, t, box(118.1, 32.7, 118.2, 32.8), geographic=True)
    assert z.cells == 400 and z.total == pytest.approx(2800.0)


def test_cell_areas_shrink_with_latitude_like_the_sphere() -> None:
    t = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 61.0)
    areas = cell_areas_km2(t, 61, 2, geographic=True)
    r = 6371.0072  # authalic radius, km
    for row in (0, 30, 60):
        top = 61.0 - row
        sphere = r**2 * math.radians(1.0) * (math.sin(math.radians(top)) - math.sin(math.radians(top - 1.0)))
        assert areas[row, 0] == pytest.approx(sphere, rel=1e-2)  # ellipsoid vs authalic sphere
    assert areas[0, 0] / areas[60, 0] == pytest.approx(math.cos(math.radians(60.5)), rel=1.5e-2)


def test_nodata_and_nan_count_as_zero() -> None:
    values = np.ones((20, 20))
    values[0:5, :] = -9999.0
    values[5, :] = np.nan
    z = zonal_sum(values, _metric_grid(), box(0, 0, 2000, 2000), nodata=-9999.0, geographic=False)
    assert z.total == pytest.approx(14 * 20)
    assert z.area_weighted == pytest.approx(14 * 20)


def test_empty_polygon_and_bad_inputs() -> None:
    assert zonal_sum(np.ones((3, 3)), _metric_grid(3, 3), Polygon(), geographic=False).total == 0
    with pytest.raises(ValueError, match="2-D"):
        zonal_sum(np.ones(3), _metric_grid(), box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="north-up"):
        zonal_sum(np.ones((3, 3)), Affine(1, 0.5, 0, 0, -1, 3), box(0, 0, 1, 1))
