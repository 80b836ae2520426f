"""Overlay queries against geopandas on the demo region: the same pairs, the same areas and lengths.

Pair sets are compared with ``geopandas.sjoin`` on the same rows; within-distance uses a metric CRS, so a
pair whose geodesic distance lies within a metre of the distance may go either way and is left out.
Areas and lengths of the intersections are compared with shapely in the region's metric CRS (0.5 %).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod

from gis.crs import LOCAL_METRIC, metric_crs_for, to_metric
from layers import db
from layers.settings import DatabaseSettings
from services.errors import InvalidParameter
from services.overlay import overlay
from services.web.app import create_app
from services.web.settings import APISettings

ROOT = Path(__file__).resolve().parents[2]
ANALYST = {"X-API-Key": "analyst-key"}


@pytest.fixture(scope="module")
def layers(demo_db: DatabaseSettings) -> dict[str, gpd.GeoDataFrame]:
    """Every vector layer of the demo region as a GeoDataFrame (EPSG:4326), keyed rows."""
    out = {}
    with db.connect(demo_db) as conn:
        for name, cols in (("risk_source", "key, category, risk_level, city_code"),
                           ("protection_zone", "key, level, owner_city"),
                           ("protected_area", "key, kind"),
                           ("river", "key, name"),
                           ("admin_area", "key, level, name"),
                           ("monitoring_station", "key, medium")):
            rows = conn.execute(f"SELECT {cols}, ST_AsBinary(geom) AS wkb FROM riskatlas.{name} ORDER BY key").fetchall()
            out[name] = gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "wkb"} for r in rows],
                                         geometry=shapely.from_wkb([bytes(r["wkb"]) for r in rows]), crs="EPSG:4326")
    return out


@pytest.fixture(scope="module")
def client(demo_db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys = tmp_path_factory.mktemp("overlay_keys") / "keys.json"
    keys.write_text(json.dumps({"analyst-key": {"user": "ana", "role": "analyst"}}))
    with TestClient(create_app(demo_db, APISettings(max_limit=1_000, default_limit=100, api_keys_file=keys))) as c:
        yield c


def _run(s: DatabaseSettings, *args: Any, **kw: Any):
    with db.connect(s, "app") as conn:
        return overlay(conn, *args, **kw)


def _pairs(result) -> set[tuple[str, str]]:
    return {(f["properties"]["left_key"], f["properties"]["right_key"]) for f in result.collection()["features"]}


def _sjoin(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame, predicate: str, **kw: Any) -> set[tuple[str, str]]:
    joined = gpd.sjoin(left, right.rename(columns={"key": "key_r"}), how="inner", predicate=predicate, **kw)
    return set(zip(joined["key"], joined["key_r"]))


def _geodesic(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Distance (m) in a transverse Mercator centred on ``a`` (true to millimetres at these distances)."""
    c = a.representative_point()
    crs = metric_crs_for(c.x, c.y)
    ga, gb = to_metric([a, b], crs)
    return float(ga.distance(gb))


# --------------------------------------------------------------------------------------------------
# pairs against geopandas


def test_sources_within_500_m_of_protection_zones_match_sjoin(demo_db, layers):
    result = _run(demo_db, "risk_source", "within-distance", "protection_zone", distance_m=500, cap=None)
    ours = _pairs(result)
    theirs = _sjoin(layers["risk_source"].to_crs(LOCAL_METRIC), layers["protection_zone"].to_crs(LOCAL_METRIC),
                    "dwithin", distance=500)
    src = layers["risk_source"].set_index("key").geometry
    zones = layers["protection_zone"].set_index("key").geometry
    for a, b in ours ^ theirs:
        assert abs(_geodesic(src[a], zones[b]) - 500) < 1, (a, b)
    assert len(ours) > 20 and len(ours ^ theirs) <= 2
    for f in result.collection()["features"][:50]:
        p = f["properties"]
        assert p["left_category"] and p["right_level"] in ("1", "2", "quasi")  # attributes of both sides


def test_intersects_within_and_contains_match_sjoin(demo_db, layers):
    ours = _pairs(_run(demo_db, "protected_area", "intersects", "protection_zone", cap=None))
    assert ours and ours == _sjoin(layers["protected_area"], layers["protection_zone"], "intersects")
    counties = layers["admin_area"][layers["admin_area"]["level"] == "county"]
    ours = _pairs(_run(demo_db, "risk_source", "within", "admin_area", right_filter={"level": "county"},
                       geometry="none", cap=None))
    assert len(ours) > 2000 and ours == _sjoin(layers["risk_source"], counties, "within")
    cities = layers["admin_area"][layers["admin_area"]["level"] == "city"]
    ours = _pairs(_run(demo_db, "admin_area", "contains", "monitoring_station", left_filter="level = 'city'",
                       geometry="none", cap=None))
    assert ours and ours == _sjoin(cities, layers["monitoring_station"], "contains")


def test_left_with_count_matches_a_grouped_sjoin(demo_db, layers):
    result = _run(demo_db, "protection_zone", "within-distance", "risk_source", distance_m=1000,
                  output="left-with-count", cap=None)
    counts = {f["properties"]["left_key"]: f["properties"]["match_count"] for f in result.collection()["features"]}
    assert set(counts) == set(layers["protection_zone"]["key"])  # zero matches included
    joined = gpd.sjoin(layers["protection_zone"].to_crs(LOCAL_METRIC),
                       layers["risk_source"].rename(columns={"key": "key_r"}).to_crs(LOCAL_METRIC),
                       predicate="dwithin", distance=1000)
    expected = joined.groupby("key").size().to_dict()
    zones = layers["protection_zone"].set_index("key").geometry
    src = layers["risk_source"].set_index("key").geometry
    for key, n in counts.items():
        if n != expected.get(key, 0):
            near_edge = [k for k in src.index if abs(_geodesic(zones[key], src[k]) - 1000) < 1]
            assert abs(n - expected.get(key, 0)) <= len(near_edge), key
    assert sum(counts.values()) > 0


def test_filters_in_cql2_text_json_and_equality_agree(demo_db, layers):
    right = {"level": ["1", "2"]}
    a = _pairs(_run(demo_db, "risk_source", "within-distance", "protection_zone", distance_m=2000,
                    left_filter="category = 'chemical'", right_filter="level IN ('1', '2')", cap=None))
    b = _pairs(_run(demo_db, "risk_source", "within-distance", "protection_zone", distance_m=2000,
                    left_filter={"op": "=", "args": [{"property": "category"}, "chemical"]}, right_filter=right,
                    cap=None))
    c = _pairs(_run(demo_db, "risk_source", "within-distance", "protection_zone", distance_m=2000,
                    left_filter={"category": "chemical"}, right_filter=right, cap=None))
    assert a == b == c and a
    chemical = set(layers["risk_source"].loc[layers["risk_source"]["category"] == "chemical", "key"])
    zones = set(layers["protection_zone"].loc[layers["protection_zone"]["level"].isin(["1", "2"]), "key"])
    assert {k for k, _ in a} <= chemical and {z for _, z in a} <= zones


# --------------------------------------------------------------------------------------------------
# measures against shapely in a metric CRS


def test_areas_of_intersections_match_shapely(demo_db, layers):
    result = _run(demo_db, "protected_area", "intersects", "protection_zone", measures=["area"],
                  geometry="intersection", cap=None)
    areas = layers["protected_area"].set_index("key").geometry
    zones = layers["protection_zone"].set_index("key").geometry
    checked = 0
    for f in result.collection()["features"]:
        p = f["properties"]
        a, b = to_metric([areas[p["left_key"]], zones[p["right_key"]]])
        expected = a.intersection(b).area
        assert p["area_m2"] == pytest.approx(expected, rel=5e-3, abs=50), p["left_key"]
        checked += expected > 10_000
    assert checked >= 5


def test_lengths_of_rivers_in_cities_match_shapely(demo_db, layers):
    result = _run(demo_db, "river", "intersects", "admin_area", right_filter={"level": "city"},
                  measures=["length", "distance"], geometry="intersection", cap=None)
    rivers = layers["river"].set_index("key").geometry
    admin = layers["admin_area"].set_index("key").geometry
    feats = result.collection()["features"]
    geod = Geod(ellps="WGS84")
    for f in feats:
        p = f["properties"]
        # Where a reach crosses a boundary is found on the stored geometry, whose segments are straight in
        # degrees (drawn straight in a metric CRS, a 5 km segment bows by up to a metre, and a reach that
        # runs along a boundary at a shallow angle then gains or loses tens of metres in a city); the
        # length of that intersection is then measured geodesically, as PostGIS does on geography.
        piece = rivers[p["left_key"]].intersection(admin[p["right_key"]])
        assert p["length_m"] == pytest.approx(geod.geometry_length(piece), rel=5e-3, abs=1)
        line, city = to_metric([rivers[p["left_key"]], admin[p["right_key"]]])
        assert p["length_m"] == pytest.approx(line.intersection(city).length, rel=5e-3, abs=50)
        assert p["distance_m"] < 0.1  # touching in degrees; geodesic edges may part by centimetres
    assert len(feats) > 40
    summed = _run(demo_db, "river", "intersects", "admin_area", right_filter={"level": "city"},
                  output="left-with-count", measures=["length"], cap=None).collection()["features"]
    per_reach = {f["properties"]["left_key"]: f["properties"]["length_m"] for f in summed}
    for key, total in per_reach.items():
        assert total == pytest.approx(sum(f["properties"]["length_m"] for f in feats
                                          if f["properties"]["left_key"] == key), rel=1e-9)


# --------------------------------------------------------------------------------------------------
# paging, the cap and the Python result


def test_pages_add_up_to_the_whole(demo_db):
    whole = _run(demo_db, "risk_source", "within-distance", "protected_area", distance_m=1000, cap=None)
    keys, offset = [], 0
    while True:
        page = _run(demo_db, "risk_source", "within-distance", "protected_area", distance_m=1000, limit=40,
                    offset=offset, cap=100)
        keys += [json.loads(f)["id"] for f in page.features]
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert keys == [json.loads(f)["id"] for f in whole.features] and len(keys) > 40


def test_python_result_as_geodataframe(demo_db):
    gdf = _run(demo_db, "protection_zone", "intersects", "protected_area", measures=["area"]).to_geodataframe()
    assert len(gdf) > 0 and gdf.crs.to_epsg() == 4326
    assert {"left_key", "right_key", "area_m2", "left_level", "right_kind"} <= set(gdf.columns)


def test_restricted_fields_follow_the_role(demo_db):
    mine = _run(demo_db, "risk_source", "within", "admin_area", right_filter={"code": "320100"}, limit=1)
    assert "left_contact" in json.loads(mine.features[0])["properties"]
    public = _run(demo_db, "risk_source", "within", "admin_area", right_filter={"code": "320100"}, limit=1,
                  may_see_restricted=False)
    assert "left_contact" not in json.loads(public.features[0])["properties"]
    with pytest.raises(InvalidParameter, match="contact"):
        _run(demo_db, "risk_source", "within", "admin_area", left_filter={"contact": "x"}, may_see_restricted=False)


# --------------------------------------------------------------------------------------------------
# the API and the CLI


def test_post_overlay_returns_geojson_pairs(client):
    r = client.post("/analysis/overlay", json={
        "left": "risk_source", "predicate": "within-distance", "right": "protection_zone", "distance_m": 500,
        "left_filter": "category IN ('chemical', 'other')", "measures": ["distance"], "limit": 50})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["crs"].endswith("CRS84") and doc["numberReturned"] == len(doc["features"])
    for f in doc["features"]:
        assert f["properties"]["distance_m"] <= 500 + 1e-6 and f["properties"]["left_category"] in ("chemical", "other")
        assert "left_contact" not in f["properties"]  # anonymous
    analyst = client.post("/analysis/overlay", headers=ANALYST, json={
        "left": "risk_source", "predicate": "within", "right": "admin_area", "right_filter": {"code": "320100"},
        "left_filter": "contact IS NOT NULL", "limit": 1}).json()
    assert "left_contact" in analyst["features"][0]["properties"]


@pytest.mark.parametrize("body, words", [
    ({"left": "factories", "predicate": "intersects", "right": "river"}, ["left", "factories"]),
    ({"left": "risk_source", "predicate": "intersects", "right": "lakes"}, ["right", "lakes"]),
    ({"left": "river", "predicate": "touches", "right": "admin_area"}, ["predicate", "touches"]),
    ({"left": "risk_source", "predicate": "within-distance", "right": "river", "distance_m": -10},
     ["distance_m", "-10"]),
    ({"left": "risk_source", "predicate": "within-distance", "right": "river"}, ["distance_m"]),
    ({"left": "risk_source", "predicate": "intersects", "right": "river", "distance_m": 5}, ["distance_m"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "left_filter": {"colour": "red"}},
     ["left_filter", "colour"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "right_filter": "altitude > 3"},
     ["right_filter", "altitude"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "left_filter": {"contact": "x"}},
     ["contact"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area"}, ["1000", "limit"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "limit": 5000}, ["limit", "1000"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "measures": ["area"]}, ["area"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "output": "matrix"}, ["output"]),
    ({"left": "risk_source", "predicate": "within", "right": "admin_area", "colour": 1}, ["colour"]),
])
def test_bad_overlay_input_is_a_400_that_says_which(client, body, words):
    r = client.post("/analysis/overlay", json=body)
    assert r.status_code == 400, r.text
    text = r.json()["description"]
    assert all(w in text for w in words), text


def test_cli_overlay_json_and_table(demo_db, tmp_path):
    env = {**os.environ, "RISKATLAS_DB_NAME": demo_db.db_name, "RISKATLAS_PG_PORT": str(demo_db.pg_port),
           "RISKATLAS_STATE_DIR": str(demo_db.state_dir)}
    env.pop("DATABASE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "overlay", *args], check=False, cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)

    out = tmp_path / "o.geojson"
    done = cli("protected_area", "intersects", "protection_zone", "--measure", "area", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["numberReturned"] > 0 and json.loads(out.read_text(encoding="utf-8")) == doc
    table = cli("river", "intersects", "admin_area", "--right-filter", "level = 'city'", "--output",
                "left-with-count", "--measure", "length", "--limit", "5")
    assert table.returncode == 0 and "match_count" in table.stdout
    bad = cli("river", "near", "admin_area", "--json")
    assert bad.returncode == 2 and "near" in json.loads(bad.stdout)["error"]


def test_overlay_as_csv_and_geopackage_holds_the_same_rows(client: TestClient, tmp_path: Path) -> None:
    import csv
    import io

    import pyogrio

    body = {"left": "risk_source", "predicate": "within-distance", "right": "protection_zone", "distance_m": 2000,
            "measures": ["distance"], "limit": 200}
    geo = client.post("/analysis/overlay", json=body).json()
    assert geo["features"], "the demo has sources near protection zones"
    r = client.post("/analysis/overlay", params={"f": "csv"}, json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode()), "UTF-8 with a byte-order mark (Excel reads the Chinese then)"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [str(f["id"]) for f in geo["features"]]
    first = geo["features"][0]
    assert rows[0]["left_name"] == first["properties"]["left_name"]
    assert float(rows[0]["lon"]) == pytest.approx(first["geometry"]["coordinates"][0], abs=1e-9)
    g = client.post("/analysis/overlay", params={"f": "gpkg"}, json=body)
    assert g.status_code == 200 and g.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "overlay.gpkg"
    path.write_bytes(g.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == len(geo["features"]) and frame.crs.to_epsg() == 4326
    assert list(frame["left_name"]) == [f["properties"]["left_name"] for f in geo["features"]]
    bad = client.post("/analysis/overlay", params={"f": "xlsx"}, json=body)
    assert bad.status_code == 400 and "`f`" in bad.json()["description"]
