"""Tolerances of simplification: metres in a degree against pyproj's geodesics, the half pixel of a zoom."""

from __future__ import annotations

import pyproj
import pytest

from gis.simplify import PIXEL_Z0_M, half_pixel_m, metres_per_degree

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.mark.parametrize("lat", [0.0, 18.2, 32.0, 45.5, 53.5, 70.0])
def test_metres_per_degree_match_the_ellipsoid(lat: float) -> None:
    east, north = metres_per_degree(lat)
    d = 1e-4  # a short step, where a degree's metres are the local scale
    _, _, along_parallel = GEOD.inv(118.0, lat, 118.0 + d, lat)
    _, _, along_meridian = GEOD.inv(118.0, lat - d / 2, 118.0, lat + d / 2)
    assert east == pytest.approx(along_parallel / d, rel=1e-6)
    assert north == pytest.approx(along_meridian / d, rel=1e-6)


def test_half_pixel_of_a_zoom() -> None:
    assert PIXEL_Z0_M == pytest.approx(156543.034, abs=1e-3)  # WebMercatorQuad's zoom 0 cell size
    assert half_pixel_m(0, 0.0) == pytest.approx(PIXEL_Z0_M / 2)
    assert half_pixel_m(8, 32.0) == pytest.approx(259.2, abs=0.1)
    assert half_pixel_m(12, 32.0) == pytest.approx(half_pixel_m(8, 32.0) / 16)
    assert half_pixel_m(8, 60.0) == pytest.approx(half_pixel_m(8, 0.0) / 2)
