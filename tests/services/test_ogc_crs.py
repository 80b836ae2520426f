"""OGC API Features Part 2: crs, bbox-crs and Content-Crs, including GCJ-02 and BD-09."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer

from gis.crs import BD09, GCJ02, from_wgs84, to_wgs84
from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings
from tests.offsets_reference import gcj02_to_bd09_reference, wgs84_to_gcj02_reference

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
BOX = (118.6, 31.9, 118.95, 32.2)


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


def _features(client: TestClient, **params: object) -> tuple[dict, dict[str, list]]:
    r = client.get("/collections/water_reserve/items", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    doc = r.json()
    return r.headers, {f["id"]: f["geometry"]["coordinates"] for f in doc["features"]}


def test_collection_lists_storage_crs_and_offered_crs(client: TestClient) -> None:
    doc = client.get("/collections/water_reserve").json()
    assert doc["storageCrs"] == CRS84
    assert doc["crs"] == [CRS84, EPSG4326, EPSG4490, EPSG3857, GCJ02.uri, BD09.uri]
    assert client.get("/collections").json()["crs"] == doc["crs"]


@pytest.mark.parametrize(
    "value",
    [
        CRS84,
        "EPSG:4326",
        EPSG4326,
        EPSG4490,
        EPSG3857,
        "gcj02",
        GCJ02.uri,
        "bd09",
        "[EPSG:3857]",
        "urn:ogc:def:crs:EPSG::4326",
    ],
)
def test_every_offered_crs_is_accepted_and_announced(client: TestClient, value: str) -> None:
    headers, coords = _features(client, crs=value)
    assert coords
    assert headers["content-crs"].startswith("<") and headers["content-crs"].endswith(">")


def test_epsg_4326_and_4490_are_latitude_first(client: TestClient) -> None:
    _, lonlat = _features(client)
    headers, latlon = _features(client, crs=EPSG4326)
    assert headers["content-crs"] == f"<{EPSG4326}>"
    for key, (x, y) in lonlat.items():
        assert latlon[key] == pytest.approx([y, x], abs=1e-7)
    headers, cgcs = _features(client, crs=EPSG4490)
    assert headers["content-crs"] == f"<{EPSG4490}>"
    assert cgcs == latlon


def test_web_mercator_matches_proj(client: TestClient) -> None:
    _, lonlat = _features(client)
    headers, merc = _features(client, crs="EPSG:3857")
    assert headers["content-crs"] == f"<{EPSG3857}>"
    t = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)
    for key, (x, y) in lonlat.items():
        assert merc[key] == pytest.approx(list(t.transform(x, y)), abs=0.02)


@pytest.mark.parametrize("spec", [GCJ02, BD09])
def test_offset_systems_match_the_independent_formulas(client: TestClient, spec) -> None:
    _, lonlat = _features(client)
    headers, shifted = _features(client, crs=spec.name)
    assert headers["content-crs"] == f"<{spec.uri}>"
    keys = sorted(lonlat)
    expected = np.array([_reference(spec, *lonlat[k]) for k in keys])  # written out independently of gis.crs
    x, y = expected[:, 0], expected[:, 1]
    got = np.array([shifted[k] for k in keys])
    assert np.allclose(got[:, 0], x, atol=2e-7) and np.allclose(got[:, 1], y, atol=2e-7)
    # the offset is real: hundreds of metres in the region
    assert np.abs(got[:, 0] - np.array([lonlat[k][0] for k in keys])).min() > 1e-3


def _reference(spec, lon: float, lat: float) -> tuple[float, float]:
    gcj = wgs84_to_gcj02_reference(lon, lat)
    return gcj if spec is GCJ02 else gcj02_to_bd09_reference(*gcj)


def test_polygons_in_gcj02_keep_their_shape(client: TestClient, demo_db: DatabaseSettings) -> None:
    r = client.get("/collections/protected_area/items", params={"crs": "gcj02", "limit": 3})
    assert r.status_code == 200
    for f in r.json()["features"]:
        assert f["geometry"]["type"] == "MultiPolygon"
        ring = np.array(f["geometry"]["coordinates"][0][0])
        assert (ring[0] == ring[-1]).all()
        wlon, wlat = to_wgs84(ring[:, 0], ring[:, 1], GCJ02)
        with db.connect(demo_db) as conn:
            gap = conn.execute(
                "SELECT ST_Distance(ST_Boundary(geom)::geography, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) AS m "
                "FROM riskatlas.protected_area WHERE key = %s",
                (float(wlon[0]), float(wlat[0]), f["id"]),
            ).fetchone()["m"]
        assert gap < 0.05  # the first vertex, moved back to WGS84, lies on the stored boundary (< 5 cm)


def _expected_keys(settings: DatabaseSettings) -> set[str]:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT key FROM riskatlas.risk_source WHERE "
            "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
            BOX,
        ).fetchall()
    return {r["key"] for r in rows}


def _ids(client: TestClient, **params: object) -> set[str]:
    r = client.get("/collections/risk_source/items", params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def test_bbox_crs_in_lat_lon_order(client: TestClient, demo_db: DatabaseSettings) -> None:
    expected = _expected_keys(demo_db)
    latlon = f"{BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]}"
    assert _ids(client, bbox=latlon, **{"bbox-crs": EPSG4326}) == expected
    assert _ids(client, bbox=latlon, **{"bbox-crs": EPSG4490}) == expected
    # the same numbers read as lon/lat select something else (or nothing)
    r = client.get("/collections/risk_source/items", params={"bbox": latlon, "bbox-crs": CRS84})
    assert r.status_code == 400  # latitude 118.6 is out of range


def test_bbox_crs_web_mercator(client: TestClient, demo_db: DatabaseSettings) -> None:
    t = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)
    x0, y0 = t.transform(BOX[0], BOX[1])
    x1, y1 = t.transform(BOX[2], BOX[3])
    assert _ids(client, bbox=f"{x0},{y0},{x1},{y1}", **{"bbox-crs": "EPSG:3857"}) == _expected_keys(demo_db)


def test_bbox_crs_gcj02_selects_the_features_inside_the_shifted_box(
    client: TestClient, demo_db: DatabaseSettings
) -> None:
    gx0, gy0 = from_wgs84(BOX[0], BOX[1], GCJ02)
    gx1, gy1 = from_wgs84(BOX[2], BOX[3], GCJ02)
    got = _ids(client, bbox=f"{gx0},{gy0},{gx1},{gy1}", **{"bbox-crs": "gcj02"})
    with db.connect(demo_db) as conn:
        rows = conn.execute("SELECT key, ST_X(geom) x, ST_Y(geom) y FROM riskatlas.risk_source").fetchall()
    xs, ys = from_wgs84(np.array([r["x"] for r in rows]), np.array([r["y"] for r in rows]), GCJ02)
    inside = {r["key"] for r, x, y in zip(rows, xs, ys, strict=True) if gx0 <= x <= gx1 and gy0 <= y <= gy1}
    # Exact up to points within centimetres of the edge, where the densified edge and the test differ.
    assert len(got ^ inside) <= 1 and len(got) > 10


@pytest.mark.parametrize("param", ["crs", "bbox-crs"])
@pytest.mark.parametrize("value", ["EPSG:99999", "EPSG:4549", "foo", "EPSG:2000"])
def test_unknown_or_unoffered_crs_is_400(client: TestClient, param: str, value: str) -> None:
    params = {param: value}
    if param == "bbox-crs":
        params["bbox"] = "1,2,3,4"
    r = client.get("/collections/risk_source/items", params=params)
    assert r.status_code == 400
    assert param in r.json()["description"] and CRS84 in r.json()["description"]


def test_single_item_in_another_crs(client: TestClient) -> None:
    r = client.get("/collections/admin_area/items/320100", params={"crs": "EPSG:4326"})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{EPSG4326}>"
    lat, lon = r.json()["geometry"]["coordinates"][0][0][0]
    assert 31 < lat < 33 and 118 < lon < 120
    assert client.get("/collections/admin_area/items/320100?crs=bogus").status_code == 400


def test_bbox_crs_without_bbox_is_400(client: TestClient) -> None:
    r = client.get("/collections/risk_source/items", params={"bbox-crs": EPSG4326})
    assert r.status_code == 400 and "bbox" in r.json()["description"]
