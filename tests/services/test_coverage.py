"""Monitoring coverage on a built case: air and water gaps of risk sources, and river crossings of city
and province borders with and without a section station, against expectations computed here with
shapely and pyproj on the real boundaries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import mapping

from etl.load import load_file
from etl.sources.boundaries import region_boundaries
from layers import db
from layers.settings import DatabaseSettings
from services.coverage import crossing_gaps, source_gaps
from services.web.app import create_app
from services.web.settings import APISettings

GEOD = Geod(ellps="WGS84")
RIVER_1 = shapely.LineString([(118.55, 32.02), (118.85, 32.02), (119.15, 32.02), (119.45, 32.02)])  # Nanjing→Zhenjiang
RIVER_2 = shapely.LineString([(118.45, 31.60), (118.575, 31.725), (118.70, 31.85)])  # Ma'anshan (Anhui)→Nanjing
AIR_STATION = (118.70, 32.05)
SOURCES = {"S1": (118.6013, 32.0221), "S2": (118.7213, 32.0521), "S3": (118.9013, 32.0221),
           "S4": (119.2013, 31.5021), "S5": (119.0213, 32.0211)}


def _geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def _f(geom: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def _border_crossing(line: shapely.LineString, code: str) -> shapely.Point:
    """Where ``line`` leaves the area ``code`` (shapely, on the boundaries as loaded)."""
    area = region_boundaries().set_index("code").geometry[code]
    hits = line.intersection(area.boundary)
    points = list(getattr(hits, "geoms", [hits]))
    assert len(points) == 1, points
    return points[0]


@pytest.fixture
def built(fresh_db: DatabaseSettings, tmp_path: Path) -> DatabaseSettings:
    reaches = []
    for name, line in (("R1", RIVER_1), ("R2", RIVER_2)):
        coords = list(line.coords)
        reaches += [_f(shapely.LineString(coords[i:i + 2]), key=f"{name}-{i}", name=f"河{name}", river_class="major",
                       velocity_ms=1.0) for i in range(len(coords) - 1)]
    load_file(fresh_db, _geojson(tmp_path / "river.geojson", reaches), "river")
    crossing_1 = _border_crossing(RIVER_1, "320100")
    section = GEOD.fwd(crossing_1.x, crossing_1.y, 90.0, 300.0)[:2]  # 300 m into Zhenjiang, on the river
    stations = [
        _f(shapely.Point(section), key="X1", name="东西河交界断面", medium="water", kind="cross-border-section",
           target_class="III"),
        _f(shapely.Point(118.6813, 32.0203), key="W1", name="东西河自动站", medium="water", kind="automatic-water",
           target_class="III"),
        _f(shapely.Point(*AIR_STATION), key="AQ1", name="空气站", medium="air", kind="air-quality"),
    ]
    load_file(fresh_db, _geojson(tmp_path / "stations.geojson", stations), "monitoring_station")
    sources = [_f(shapely.Point(*xy), key=k, name=f"企业{k}", category="chemical") for k, xy in SOURCES.items()]
    load_file(fresh_db, _geojson(tmp_path / "sources.geojson", sources), "risk_source")
    return fresh_db


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


@pytest.mark.parametrize("distance_m", [5_000.0, 10_000.0])
def test_air_gaps_are_the_sources_beyond_the_distance(built: DatabaseSettings, distance_m: float) -> None:
    with db.connect(built, "app") as conn:
        doc = source_gaps(conn, "air", distance_m)
    expected = sorted(k for k, xy in SOURCES.items() if _distance(xy, AIR_STATION) > distance_m)
    assert [f["id"] for f in doc["features"]] == expected and doc["numberMatched"] == len(expected)
    first = doc["features"][0]["properties"]
    assert first["nearest_station"] == "AQ1"
    assert first["nearest_station_m"] == pytest.approx(_distance(SOURCES[first["key"]], AIR_STATION), abs=1.0)


def test_water_gaps_follow_the_river_downstream(built: DatabaseSettings) -> None:
    with db.connect(built, "app") as conn, conn.transaction(force_rollback=True):
        ten = source_gaps(conn, "water", 10_000.0)
    with db.connect(built, "app") as conn, conn.transaction(force_rollback=True):
        five = source_gaps(conn, "water", 5_000.0)
    # S1: W1 ~7.5 km downstream; S5: X1 ~7 km downstream; S3: nothing within 10 km; S2, S4: no river near
    assert [f["id"] for f in ten["features"]] == ["S3"]
    assert (ten["on_a_river"], ten["not_on_a_river"]) == (3, 2)
    assert [f["id"] for f in five["features"]] == ["S1", "S3", "S5"]
    assert ten["features"][0]["properties"]["reach_key"] == "R1-1"


def test_crossings_of_city_and_province_borders(built: DatabaseSettings) -> None:
    with db.connect(built, "app") as conn:
        cities = crossing_gaps(conn, "city", gaps_only=False)
        provinces = crossing_gaps(conn, "province", gaps_only=False)
        gaps = crossing_gaps(conn, "city")
        strict = crossing_gaps(conn, "city", within_m=200.0)
    by_river = {f["properties"]["river"]: f for f in cities["features"]}
    assert cities["crossings"] == 2 and set(by_river) == {"河R1", "河R2"}
    one, two = by_river["河R1"]["properties"], by_river["河R2"]["properties"]
    assert (one["from_code"], one["to_code"], one["covered"], one["station_key"]) == ("320100", "321100", True, "X1")
    assert (two["from_code"], two["to_code"], two["covered"]) == ("340500", "320100", False)
    for river, line, code in (("河R1", RIVER_1, "320100"), ("河R2", RIVER_2, "340500")):
        expected = _border_crossing(line, code)
        x, y = by_river[river]["geometry"]["coordinates"]
        assert _distance((x, y), (expected.x, expected.y)) < 100.0  # samples every 100 m
    assert one["station_m"] == pytest.approx(300.0, abs=100.0)
    assert [f["properties"]["river"] for f in gaps["features"]] == ["河R2"] and gaps["uncovered"] == 1
    assert strict["uncovered"] == 2
    (p,) = provinces["features"]
    assert (p["properties"]["from_code"], p["properties"]["to_code"]) == ("340000", "320000")


@pytest.fixture
def client(built: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(built, APISettings())) as c:
        yield c


def test_coverage_endpoints_give_geojson(client: TestClient) -> None:
    r = client.get("/analysis/coverage", params={"medium": "air", "distance_m": 5000})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and doc["features"][0]["geometry"]["type"] == "Point"
    page = client.get("/analysis/coverage", params={"medium": "air", "limit": 1, "offset": 1}).json()
    assert page["numberReturned"] == 1 and page["features"][0]["id"] == doc["features"][1]["id"]
    water = client.get("/analysis/coverage", params={"medium": "water"}).json()
    assert [f["id"] for f in water["features"]] == ["S3"]
    crossings = client.get("/analysis/coverage/crossings", params={"level": "province"}).json()
    assert crossings["numberReturned"] == 1
    bad = client.get("/analysis/coverage", params={"medium": "noise"})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameterValue"
    assert client.get("/analysis/coverage", params={"medium": "air", "distance_m": -1}).status_code == 400
