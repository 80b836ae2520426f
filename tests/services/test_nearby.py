"""GET /nearby: the nearest risk sites by geodesic distance, with bearing, in WGS84 or GCJ-02/BD-09."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyproj
import pytest
from fastapi.testclient import TestClient

from gis.crs import BD09, GCJ02
from layers import db
from layers.settings import DatabaseSettings
from services.nearby import NearbyQuery, candidates
from services.web.app import create_app
from services.web.settings import APISettings
from tests.offsets_reference import gcj02_to_bd09_reference, wgs84_to_gcj02_reference

ANALYST = {"X-API-Key": "analyst-key"}
INSPECTOR = {"X-API-Key": "inspector-key"}
ORIGIN = (118.78, 32.04)
GEOD = pyproj.Geod(ellps="WGS84")  # the reference: PROJ's geodesics, not the service's helpers


def _bearing(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Initial bearing from the first point to the second, degrees clockwise from north in [0, 360)."""
    return float(GEOD.inv(lon0, lat0, lon1, lat1)[0]) % 360.0


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys: Path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "analyst-key": {"user": "ana", "role": "analyst"},
                "inspector-key": {"user": "ian", "role": "inspector"},
            }
        )
    )
    with TestClient(create_app(demo_db, APISettings(api_keys_file=keys))) as c:
        yield c


@pytest.fixture(scope="module")
def truth(demo_db: DatabaseSettings) -> list[dict]:
    """Every risk site within 20 km of the origin with its geodesic distance, nearest first."""
    with db.connect(demo_db) as conn:
        rows = conn.execute(
            "SELECT key, category, risk_level, city_code, county_code, ST_X(geom) x, ST_Y(geom) y "
            "FROM riskatlas.risk_source"
        ).fetchall()
    xs, ys = np.array([r["x"] for r in rows]), np.array([r["y"] for r in rows])
    d = GEOD.inv(np.full_like(xs, ORIGIN[0]), np.full_like(ys, ORIGIN[1]), xs, ys)[2]
    out = [{**r, "d": float(v)} for r, v in zip(rows, d, strict=True) if v <= 20_000]
    return sorted(out, key=lambda r: (r["d"], r["key"]))


def _get(client: TestClient, headers: dict | None = None, **params: object):
    return client.get("/nearby", params={"x": ORIGIN[0], "y": ORIGIN[1], **params}, headers=headers or {})


def test_nearest_sites_in_order_with_distance_and_bearing(client: TestClient, truth: list[dict]) -> None:
    assert len(truth) > 25
    r = _get(client, radius=20000, limit=25)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    doc = r.json()
    assert doc["count"] == 25 and doc["radius_m"] == 20000
    sites = doc["sites"]
    assert [s["key"] for s in sites] == [t["key"] for t in truth[:25]]
    for s, t in zip(sites, truth, strict=False):
        assert s["distance_m"] == pytest.approx(t["d"], abs=0.1)
        assert s["bearing_deg"] == pytest.approx(_bearing(ORIGIN[0], ORIGIN[1], t["x"], t["y"]), abs=0.06)
        assert 0 <= s["bearing_deg"] < 360
        assert (s["x"], s["y"]) == pytest.approx((t["x"], t["y"]), abs=1e-7)
        assert s["city"] and s["county"] and s["category"] == t["category"]
    assert [s["distance_m"] for s in sites] == sorted(s["distance_m"] for s in sites)


def test_radius_bounds_the_answer(client: TestClient, truth: list[dict]) -> None:
    radius = (truth[6]["d"] + truth[7]["d"]) / 2
    doc = _get(client, radius=radius, limit=200).json()
    assert [s["key"] for s in doc["sites"]] == [t["key"] for t in truth[:7]]


def test_category_and_level_filters(client: TestClient, truth: list[dict]) -> None:
    doc = _get(client, radius=20000, limit=200, category="chemical,tailings").json()
    expected = [t["key"] for t in truth if t["category"] in ("chemical", "tailings")]
    assert [s["key"] for s in doc["sites"]] == expected[:200] and expected
    doc = _get(client, radius=20000, limit=200, level="major").json()
    assert [s["key"] for s in doc["sites"]] == [t["key"] for t in truth if t["risk_level"] == "major"]


@pytest.mark.parametrize("spec", [GCJ02, BD09])
def test_offset_coordinates_in_and_out(client: TestClient, truth: list[dict], spec) -> None:
    gcj = wgs84_to_gcj02_reference(*ORIGIN)
    ox, oy = gcj if spec is GCJ02 else gcj02_to_bd09_reference(*gcj)
    r = client.get("/nearby", params={"x": ox, "y": oy, "crs": spec.name, "radius": 20000, "limit": 10})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{spec.uri}>"
    doc = r.json()
    assert doc["crs"] == spec.uri and doc["origin"] == {"x": ox, "y": oy}
    assert [s["key"] for s in doc["sites"]] == [t["key"] for t in truth[:10]]
    for s, t in zip(doc["sites"], truth, strict=False):
        gcj = wgs84_to_gcj02_reference(t["x"], t["y"])  # independent of gis.crs
        expected = gcj if spec is GCJ02 else gcj02_to_bd09_reference(*gcj)
        assert (s["x"], s["y"]) == pytest.approx(expected, abs=2e-7)
        assert s["distance_m"] == pytest.approx(t["d"], abs=0.5)


def test_a_point_in_a_projected_crs(client: TestClient, truth: list[dict]) -> None:
    """The same point given in Web Mercator metres finds the same sites; positions come back in metres."""
    mx, my = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(*ORIGIN)
    r = client.get("/nearby", params={"x": mx, "y": my, "crs": "EPSG:3857", "radius": 20000, "limit": 5})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [s["key"] for s in doc["sites"]] == [t["key"] for t in truth[:5]]
    for s, t in zip(doc["sites"], truth, strict=False):
        assert s["distance_m"] == pytest.approx(t["d"], abs=0.5)
        ex, ey = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(t["x"], t["y"])
        assert (s["x"], s["y"]) == pytest.approx((ex, ey), abs=0.01)


def test_geojson_on_request(client: TestClient, truth: list[dict]) -> None:
    r = _get(client, radius=20000, limit=5, f="geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 5
    f = doc["features"][0]
    assert f["id"] == truth[0]["key"] and f["geometry"]["type"] == "Point"
    assert f["geometry"]["coordinates"] == pytest.approx([truth[0]["x"], truth[0]["y"]], abs=1e-7)
    assert {"distance_m", "bearing_deg", "name", "level", "city", "county"} <= set(f["properties"])
    latlon = _get(client, radius=20000, limit=1, f="geojson", crs="EPSG:4326").json()
    assert latlon["features"][0]["geometry"]["coordinates"] == pytest.approx(
        [truth[0]["y"], truth[0]["x"]], abs=1e-7
    )


def test_contacts_only_for_roles_that_may_see_them(client: TestClient) -> None:
    assert all("contact" not in s for s in _get(client, radius=20000, limit=50).json()["sites"])
    assert all("contact" not in s for s in _get(client, INSPECTOR, radius=20000, limit=50).json()["sites"])
    assert any("contact" in s for s in _get(client, ANALYST, radius=20000, limit=50).json()["sites"])


def test_compact_by_default(client: TestClient) -> None:
    r = _get(client, radius=20000, limit=10)
    assert len(r.content) < 10 * 600
    assert "geometry" not in r.json()["sites"][0]


def test_nothing_near_is_an_empty_list(client: TestClient) -> None:
    doc = client.get("/nearby", params={"x": 10, "y": 50, "radius": 1000}).json()
    assert doc["count"] == 0 and doc["sites"] == []


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"x": 200, "y": 32}, "x"),
        ({"x": 118, "y": 95}, "y"),
        ({"x": "nan", "y": 32}, "x"),
        ({"x": 118}, "y"),
        ({"x": 118, "y": 32, "radius": 50001}, "radius"),
        ({"x": 118, "y": 32, "radius": 0}, "radius"),
        ({"x": 118, "y": 32, "radius": -5}, "radius"),
        ({"x": 118, "y": 32, "limit": 201}, "limit"),
        ({"x": 118, "y": 32, "limit": 0}, "limit"),
        ({"x": 118, "y": 32, "category": "bakery"}, "category"),
        ({"x": 118, "y": 32, "level": "huge"}, "level"),
        ({"x": 118, "y": 32, "crs": "EPSG:32650"}, "crs"),
        ({"x": 118, "y": 32, "crs": "nonsense"}, "crs"),
        ({"x": 118, "y": 32, "f": "xml"}, "f"),
    ],
)
def test_bad_parameters_are_400(client: TestClient, params: dict, needle: str) -> None:
    r = client.get("/nearby", params=params)
    assert r.status_code == 400, r.text
    assert needle in r.json()["description"]


def test_candidates_cover_the_sphere_spheroid_difference() -> None:
    assert candidates(10) >= 20
    with pytest.raises(ValueError):
        NearbyQuery(118.0, 32.0, 60_000, 10)


def test_query_plan_uses_the_geography_index(demo_db: DatabaseSettings) -> None:
    from services.nearby import nearby_sql

    text, params = nearby_sql(NearbyQuery(ORIGIN[0], ORIGIN[1], 5000, 10), with_restricted=False)
    with db.connect(demo_db) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + text, params).fetchall()
        )
    assert "risk_source_geog_gist" in plan, plan


def test_completeness_check_widens_the_search_when_needed() -> None:
    from services.nearby import is_complete

    rows = [{"sphere_m": d, "distance_m": d * 1.003} for d in (10.0, 20.0, 30.0, 40.0)]
    assert is_complete(rows, n_candidates=5, limit=2)  # fewer rows than asked: all of them were fetched
    assert is_complete(rows, n_candidates=4, limit=2)  # 20.06 m is well inside the 40 m already covered
    assert not is_complete(rows, n_candidates=4, limit=4)  # 40.12 m: a site just beyond could be nearer


def test_many_answers_are_exact(client: TestClient, truth: list[dict]) -> None:
    doc = _get(client, radius=20000, limit=200).json()
    expected = [t["key"] for t in truth[:200]]
    assert [s["key"] for s in doc["sites"]] == expected
