"""The demo's derived HJ 338 zones: lakes and reservoirs by size class, wells by aquifer and yield."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, shape

from etl.sources.demo import write_demo_files
from gis.crs import LOCAL_METRIC

TO_M = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)


def metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(TO_M.transform(c[:, 0], c[:, 1])))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo_zones")
    write_demo_files(out, n_sources=50)

    def read(name: str) -> list[dict[str, Any]]:
        return json.loads((out / name).read_text(encoding="utf-8"))["features"]

    reserves = {f["properties"]["name"]: f for f in read("water_reserve.geojson")}
    zones: dict[str, dict[str, Any]] = {}
    for f in read("protection_zone.geojson"):
        zones.setdefault(f["properties"]["reserve_key"], {})[f["properties"]["level"]] = shape(f["geometry"])
    return {"dir": Path(out), "reserves": reserves, "zones": zones}


def radii(demo: dict[str, Any], name: str) -> dict[str, float]:
    """Farthest vertex of each zone from the intake, in metres."""
    feature = demo["reserves"][name]
    site = metric(shape(feature["geometry"]))
    out = {}
    for level, zone in demo["zones"][feature["properties"]["key"]].items():
        pts = shapely.points(shapely.get_coordinates(metric(zone)))
        out[level] = float(shapely.distance(site, pts).max())
    return out


@pytest.mark.parametrize("name", ["滁州城西水库水源地", "滁州沙河集水库水源地"])
def test_chuzhou_medium_reservoirs_get_the_300_m_rule(demo: dict[str, Any], name: str) -> None:
    props = demo["reserves"][name]["properties"]
    assert props["water_body_type"] == "reservoir" and props["size"] == "medium"
    assert 0.1 <= props["storage_1e8_m3"] < 1.0
    # HJ 338: medium reservoirs like small lakes -- level 1 water 300 m plus 200 m of land, no level 2
    got = radii(demo, name)
    assert set(got) == {"1"}
    assert got["1"] == pytest.approx(300 + 200, abs=1)


def test_small_lake_and_large_lake_and_reservoir(demo: dict[str, Any]) -> None:
    gucheng = demo["reserves"]["南京高淳固城湖水源地"]["properties"]
    assert (gucheng["water_body_type"], gucheng["size"]) == ("lake", "small")  # 30 km2 < 100 km2
    assert radii(demo, "南京高淳固城湖水源地") == pytest.approx({"1": 500.0}, abs=1)
    for name in ("高邮湖水源地", "宁国港口湾水库水源地"):
        assert demo["reserves"][name]["properties"]["size"] == "large"
        assert radii(demo, name) == pytest.approx({"1": 500.0, "2": 2500.0}, abs=1)


def test_wells_get_their_zones(demo: dict[str, Any]) -> None:
    baoying = demo["reserves"]["宝应城南地下水水源地"]["properties"]
    assert baoying["kind"] == "groundwater" and baoying["aquifer"] == "porous" and baoying["synthetic"] is True
    # porous phreatic medium sand: the table's high ends, 100 m and 1000 m
    assert radii(demo, "宝应城南地下水水源地") == pytest.approx({"1": 100.0, "2": 1000.0}, abs=0.5)
    # karst, R = 1.5 x 20 m/d x 0.005 x T / 0.05: 300 m (T = 100 d) and 3000 m (T = 1000 d)
    assert radii(demo, "广德岩溶地下水水源地") == pytest.approx({"1": 300.0, "2": 3000.0}, abs=0.5)
    key = demo["reserves"]["宝应城南地下水水源地"]["properties"]["key"]
    zones = demo["zones"][key]
    assert zones["1"].contains(Point(demo["reserves"]["宝应城南地下水水源地"]["geometry"]["coordinates"]))
    assert metric(zones["1"]).intersection(metric(zones["2"])).area < 1.0
