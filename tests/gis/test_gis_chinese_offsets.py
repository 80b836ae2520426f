"""GCJ-02 / BD-09 offsets: published values, an independent re-implementation, round trips, accuracy."""


import numpy as np
import pyproj
import pytest

from gis.chinese_offsets import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from tests.offsets_reference import gcj02_to_bd09_reference, wgs84_to_gcj02_reference

GEOD = pyproj.Geod(ellps="WGS84")
_reference_wgs_to_gcj, _reference_gcj_to_bd = wgs84_to_gcj02_reference, gcj02_to_bd09_reference


def _china_grid(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A grid over mainland China, kept clear of the box edges where the forward transform jumps."""
    lon, lat = np.meshgrid(np.linspace(73.5, 134.5, n), np.linspace(18.0, 53.5, n))
    return lon.ravel(), lat.ravel()


def test_published_pairs_gcoord() -> None:
    # Values published in the test suite of the gcoord library (hujiulong/gcoord), point (123, 45).
    # The independent reference (tests.offsets_reference) that the service tests use agrees with them too.
    assert wgs84_to_gcj02_reference(123, 45) == pytest.approx((123.00607541, 45.00197815), abs=5e-6)
    assert gcj02_to_bd09_reference(123, 45) == pytest.approx((123.00636499, 45.00636899), abs=5e-6)
    assert wgs84_to_gcj02(123, 45) == pytest.approx((123.00607541, 45.00197815), abs=5e-6)
    assert gcj02_to_bd09(123, 45) == pytest.approx((123.00636499, 45.00636899), abs=5e-6)
    assert wgs84_to_bd09(123, 45) == pytest.approx((123.0124491, 45.0083293), abs=5e-6)
    # gcoord's inverses are approximations; ours are exact inverses, so agree to ~1e-6 degrees.
    assert gcj02_to_wgs84(123, 45) == pytest.approx((122.99395597, 44.99804071), abs=1e-6)
    assert bd09_to_gcj02(123, 45) == pytest.approx((122.99363304, 44.99365430), abs=2e-6)
    assert bd09_to_wgs84(123, 45) == pytest.approx((122.98762210, 44.99171540), abs=2e-6)


@pytest.mark.parametrize(
    "lng, lat",
    [(118.7969, 32.0603), (116.3912, 39.9073), (121.4737, 31.2304), (87.6168, 43.8256), (110.0, 20.0)],
)
def test_forward_matches_independent_formula(lng: float, lat: float) -> None:
    expected = _reference_wgs_to_gcj(lng, lat)
    got = wgs84_to_gcj02(lng, lat)
    assert got == pytest.approx(expected, abs=1e-12)
    bd = gcj02_to_bd09(*got)
    assert bd == pytest.approx(_reference_gcj_to_bd(*expected), abs=1e-12)
    assert wgs84_to_bd09(lng, lat) == pytest.approx(bd, abs=1e-12)


def test_nanjing_offset_is_a_few_hundred_metres() -> None:
    lng, lat = 118.7969, 32.0603  # Nanjing, Xinjiekou
    glng, glat = wgs84_to_gcj02(lng, lat)
    _, _, dist = GEOD.inv(lng, lat, glng, glat)
    assert 300 < dist < 700
    assert glng > lng and glat < lat  # the GCJ-02 shift in Nanjing is to the east and south


def test_identity_outside_china() -> None:
    for lng, lat in [(2.35, 48.85), (-74.0, 40.7), (139.7, 35.7), (100.0, 60.0), (183.0, 45.0)]:
        assert out_of_china(lng, lat)
        assert wgs84_to_gcj02(lng, lat) == (lng, lat)
        assert gcj02_to_wgs84(lng, lat) == (lng, lat)
    assert not out_of_china(118.8, 32.0)


def test_out_of_china_box_edges() -> None:
    lon = np.array([72.004, 72.0039, 137.8347, 137.8348, 100.0, 100.0])
    lat = np.array([30.0, 30.0, 30.0, 30.0, 0.8293, 55.8272])
    assert out_of_china(lon, lat).tolist() == [False, True, False, True, False, True]


def test_scalar_and_array_shapes() -> None:
    x, y = wgs84_to_gcj02(118.8, 32.0)
    assert isinstance(x, float) and isinstance(y, float)
    lon = np.full((3, 4), 118.8)
    ax, ay = gcj02_to_wgs84(lon, 32.0)  # broadcast scalar latitude
    assert ax.shape == (3, 4) and ay.shape == (3, 4) and ax.dtype == np.float64
    lx, ly = bd09_to_wgs84([118.8, 119.0], [32.0, 32.1])
    assert lx.shape == (2,)


def test_gcj02_inverse_error_below_half_metre_over_china() -> None:
    lon, lat = _china_grid()
    glon, glat = wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    _, _, err = GEOD.inv(lon, lat, back_lon, back_lat)
    assert err.max() < 0.5
    assert err.max() < 0.01  # actually converges to far below the requirement
    # and the inverse is not the identity: the offsets are hundreds of metres
    _, _, shift = GEOD.inv(lon, lat, glon, glat)
    assert shift.min() > 1.0


def test_bd09_round_trips_over_china() -> None:
    lon, lat = _china_grid(40)
    blon, blat = wgs84_to_bd09(lon, lat)
    wlon, wlat = bd09_to_wgs84(blon, blat)
    _, _, err = GEOD.inv(lon, lat, wlon, wlat)
    assert err.max() < 0.01
    glon, glat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    _, _, err2 = GEOD.inv(lon, lat, glon, glat)
    assert err2.max() < 0.01


def test_nan_passes_through() -> None:
    x, y = gcj02_to_wgs84(np.array([np.nan, 118.8]), np.array([32.0, 32.0]))
    assert np.isnan(x[0]) and np.isfinite(x[1])
