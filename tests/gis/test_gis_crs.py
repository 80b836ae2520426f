"""CRS parsing, transforms with and without Chinese offsets, metric helpers, geodesics."""

import dataclasses

import numpy as np
import pyproj
import pytest
import shapely

from gis.chinese_offsets import wgs84_to_bd09, wgs84_to_gcj02
from gis.crs import (
    BD09,
    CRS84,
    GCJ02,
    LOCAL_METRIC,
    SUPPORTED_OUTPUT_CRS,
    WGS84,
    CrsSpec,
    UnknownCRS,
    bearing_deg,
    from_metric,
    from_wgs84,
    geodesic_distance_m,
    metric_crs_for,
    parse_crs,
    to_metric,
    to_wgs84,
    transform_geometries,
)

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.mark.parametrize(
    "value, name, epsg, latlon",
    [
        ("EPSG:4326", "EPSG:4326", 4326, True),
        ("epsg:4490", "EPSG:4490", 4490, True),
        ("4326", "EPSG:4326", 4326, True),
        (4326, "EPSG:4326", 4326, True),
        (" EPSG:3857 ", "EPSG:3857", 3857, False),
        ("http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326", 4326, True),
        ("https://www.opengis.net/def/crs/EPSG/0/4490", "EPSG:4490", 4490, True),
        ("urn:ogc:def:crs:EPSG::4326", "EPSG:4326", 4326, True),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84", None, False),
        ("CRS84", "OGC:CRS84", None, False),
        ("OGC:CRS84", "OGC:CRS84", None, False),
        ("EPSG:4549", "EPSG:4549", 4549, True),
        (4527, "EPSG:4527", 4527, True),
        ("EPSG:4554", "EPSG:4554", 4554, True),
        (32650, "EPSG:32650", 32650, False),
        ("EPSG:32651", "EPSG:32651", 32651, False),
    ],
)
def test_parse_crs_codes_and_uris(value, name, epsg, latlon) -> None:
    spec = parse_crs(value)
    assert spec.name == name and spec.epsg == epsg and spec.axis_latlon is latlon
    assert spec.offset is None
    if epsg is not None:
        assert spec.uri == f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"
    else:
        assert spec.uri == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@pytest.mark.parametrize("value", ["gcj02", "GCJ-02", "gcj-02", "urn:riskatlas:crs:gcj02"])
def test_parse_gcj02(value) -> None:
    spec = parse_crs(value)
    assert spec == GCJ02
    expected = ("gcj02", "gcj02", None, "urn:riskatlas:crs:gcj02")
    assert (spec.name, spec.offset, spec.epsg, spec.uri) == expected


@pytest.mark.parametrize("value", ["bd09", "BD-09", "urn:riskatlas:crs:bd09"])
def test_parse_bd09(value) -> None:
    spec = parse_crs(value)
    assert (spec.name, spec.offset, spec.uri) == ("bd09", "bd09", "urn:riskatlas:crs:bd09")


@pytest.mark.parametrize(
    "value",
    ["EPSG:4978", "EPSG:4979", "EPSG:5773", "EPSG:999999", "wgs-42", "", "EPSG:4610", True, None, 3.5],
)
def test_parse_crs_rejects(value) -> None:
    with pytest.raises(UnknownCRS) as info:
        parse_crs(value)
    message = str(info.value)
    assert repr(value) in message and "EPSG:4326" in message and "gcj02" in message
    assert isinstance(info.value, ValueError)


def test_crsspec_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        WGS84.name = "x"  # type: ignore[misc]
    assert len({parse_crs(4326), parse_crs("EPSG:4326"), WGS84}) == 1


def test_supported_output_crs() -> None:
    names = [c.name for c in SUPPORTED_OUTPUT_CRS]
    assert names == ["OGC:CRS84", "EPSG:4326", "EPSG:4490", "EPSG:3857", "gcj02", "bd09"]
    assert all(isinstance(c, CrsSpec) and c.uri for c in SUPPORTED_OUTPUT_CRS)


def test_to_from_wgs84_projected_against_pyproj() -> None:
    lon = np.array([118.78, 119.45, 120.1])
    lat = np.array([32.04, 32.2, 31.7])
    spec = parse_crs("EPSG:4549")
    x, y = from_wgs84(lon, lat, spec)
    ref = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    ex, ey = ref.transform(lon, lat)
    np.testing.assert_allclose(x, ex, atol=1e-6)
    np.testing.assert_allclose(y, ey, atol=1e-6)
    assert 300_000 < x.min() < x.max() < 700_000  # easting with false easting 500 km, lon_0 = 120
    back_lon, back_lat = to_wgs84(x, y, spec)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)


def test_web_mercator_and_scalars() -> None:
    x, y = from_wgs84(118.8, 32.0, parse_crs(3857))
    assert isinstance(x, float)
    assert x == pytest.approx(6378137.0 * np.radians(118.8), rel=1e-12)
    lon, lat = to_wgs84(x, y, parse_crs(3857))
    assert (lon, lat) == pytest.approx((118.8, 32.0), abs=1e-9)


def test_cgcs2000_and_crs84_are_identity() -> None:
    for spec in (CRS84, WGS84, parse_crs(4490)):
        lon, lat = to_wgs84([118.8, 119.0], [32.0, 32.5], spec)
        assert lon.tolist() == [118.8, 119.0] and lat.tolist() == [32.0, 32.5]


def test_offsets_through_crs() -> None:
    lon, lat = 118.7969, 32.0603
    assert from_wgs84(lon, lat, GCJ02) == pytest.approx(wgs84_to_gcj02(lon, lat), abs=1e-12)
    assert from_wgs84(lon, lat, BD09) == pytest.approx(wgs84_to_bd09(lon, lat), abs=1e-12)
    for spec in (GCJ02, BD09):
        back = to_wgs84(*from_wgs84(lon, lat, spec), spec)
        assert back == pytest.approx((lon, lat), abs=1e-9)


def test_transform_geometries_offsets_and_projected() -> None:
    geoms = np.array(
        [
            shapely.Point(118.8, 32.0),
            None,
            shapely.LineString([(118.7, 32.0), (118.9, 32.1)]),
            shapely.Polygon([(118.7, 32.0), (118.9, 32.0), (118.9, 32.1), (118.7, 32.0)]),
        ],
        dtype=object,
    )
    gcj = transform_geometries(geoms, WGS84, GCJ02)
    assert gcj[1] is None
    assert shapely.get_coordinates(gcj[0])[0] == pytest.approx(wgs84_to_gcj02(118.8, 32.0), abs=1e-12)
    back = transform_geometries(gcj, GCJ02, WGS84)
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(geoms), atol=1e-9)

    # GCJ-02 straight to a projected CRS goes through WGS84
    proj = transform_geometries(gcj, GCJ02, parse_crs(4549))
    expected = pyproj.Transformer.from_crs(4326, 4549, always_xy=True).transform(118.8, 32.0)
    assert shapely.get_coordinates(proj[0])[0] == pytest.approx(expected, abs=1e-4)

    # BD-09 -> GCJ-02 without touching WGS84 semantics
    bd = transform_geometries(geoms, CRS84, BD09)
    gcj2 = transform_geometries(bd, BD09, GCJ02)
    np.testing.assert_allclose(shapely.get_coordinates(gcj2), shapely.get_coordinates(gcj), atol=1e-9)
    assert transform_geometries(geoms, WGS84, WGS84) is not None


def test_transform_geometries_drops_z() -> None:
    out = transform_geometries(np.array([shapely.Point(118.8, 32.0, 15.0)]), WGS84, parse_crs(3857))
    assert not shapely.has_z(out[0])


def test_local_metric_and_round_trip() -> None:
    assert LOCAL_METRIC.is_projected
    geoms = np.array([shapely.Point(118.5, 32.0), shapely.LineString([(118.5, 32.0), (118.5, 32.1)])])
    metric = to_metric(geoms)
    x, y = shapely.get_coordinates(metric[0])[0]
    assert x == pytest.approx(500_000.0, abs=1e-6)  # on the central meridian
    # a 0.1 degree meridian arc is ~11.09 km; the metric length agrees with the geodesic to 1e-4
    _, _, arc = GEOD.inv(118.5, 32.0, 118.5, 32.1)
    assert shapely.length(metric[1]) == pytest.approx(arc, rel=1e-4)
    back = from_metric(metric)
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(geoms), atol=1e-9)


def test_metric_crs_for_is_centred() -> None:
    crs = metric_crs_for(87.6, 43.8)
    geoms = to_metric(np.array([shapely.Point(87.6, 43.8), shapely.Point(87.6, 43.9)]), crs)
    assert shapely.get_coordinates(geoms[0])[0] == pytest.approx((0.0, 0.0), abs=1e-6)
    x, y = shapely.get_coordinates(geoms[1])[0]
    assert abs(x) < 1e-6 and y == pytest.approx(GEOD.inv(87.6, 43.8, 87.6, 43.9)[2], rel=1e-6)
    with pytest.raises(ValueError):
        metric_crs_for(float("nan"), 30.0)


def test_geodesic_distance_and_bearing() -> None:
    # one degree of latitude at 32 N is ~110.9 km (pyproj.Geod as reference)
    d = geodesic_distance_m(118.0, 32.0, 118.0, 33.0)
    assert isinstance(d, float) and d == pytest.approx(GEOD.inv(118.0, 32.0, 118.0, 33.0)[2], rel=1e-12)
    assert 110_000 < d < 111_500
    b = bearing_deg(118.0, 32.0, [118.0, 119.0, 118.0, 117.0, 118.0], [33.0, 32.0, 31.0, 32.0, 32.0])
    assert b[0] == pytest.approx(0.0, abs=1e-9)
    assert 89 < b[1] < 90  # due east along a parallel starts slightly north of east
    assert b[2] == pytest.approx(180.0, abs=1e-9)
    assert 270 < b[3] < 271
    assert b[4] == 0.0  # identical points
    assert ((b >= 0) & (b < 360)).all()
    assert bearing_deg(118.0, 32.0, 117.99, 32.01) > 300  # north-west is expressed as 0..360
