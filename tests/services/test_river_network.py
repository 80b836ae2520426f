"""The downstream walk on a straight synthetic river: times equal distance over velocity."""

from __future__ import annotations

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point

from etl.load import load_file
from layers import db
from services.river import NoRiverNearby, downstream, jurisdictions_entered, points_along, snap

GEOD = Geod(ellps="WGS84")
LAT = 32.02  # runs east from Pukou (Nanjing) across the Yangtze plain towards Zhenjiang
XS = [118.55, 118.85, 119.15, 119.45]


@pytest.fixture
def straight_river(fresh_db, tmp_path):
    reaches = [LineString([(XS[i], LAT), ((XS[i] + XS[i + 1]) / 2, LAT), (XS[i + 1], LAT)]) for i in range(3)]
    gdf = gpd.GeoDataFrame({"key": ["R1", "R2", "R3"], "name": ["直河"] * 3, "river_class": ["major"] * 3,
                            "velocity_ms": [1.0, 0.5, 2.0]}, geometry=reaches, crs="EPSG:4326")
    path = tmp_path / "river.geojson"
    gdf.to_file(path, driver="GeoJSON")
    assert load_file(fresh_db, path, "river").rows_inserted == 3
    intake = gpd.GeoDataFrame({"key": ["W1"], "name": ["下游取水口"], "kind": ["river"]},
                              geometry=[Point(119.30, LAT + 0.001)], crs="EPSG:4326")
    ipath = tmp_path / "w.geojson"
    intake.to_file(ipath, driver="GeoJSON")
    assert load_file(fresh_db, ipath, "water_reserve").rows_inserted == 1
    return fresh_db


def _len(x0, x1):
    return GEOD.line_length([x0, x1], [LAT, LAT])


def test_nodes_are_derived_and_join_the_reaches(straight_river):
    with db.connect(straight_river) as conn:
        rows = conn.execute("SELECT key, from_node, to_node FROM riskatlas.river ORDER BY key").fetchall()
    assert rows[0]["to_node"] == rows[1]["from_node"] and rows[1]["to_node"] == rows[2]["from_node"]


def test_arrival_times_are_distance_over_velocity(straight_river):
    with db.connect(straight_river) as conn:
        start = snap(conn, 118.70, LAT + 0.002)
        assert start.key == "R1" and 150 < start.distance_m < 300
        steps = downstream(conn, start, horizon_s=10 * 24 * 3600)
    assert [s.key for s in steps] == ["R1", "R2", "R3"]
    t1 = _len(118.70, XS[1]) / 1.0
    t2 = t1 + _len(XS[1], XS[2]) / 0.5
    t3 = t2 + _len(XS[2], XS[3]) / 2.0
    assert steps[0].t_end_s == pytest.approx(t1, rel=2e-3)
    assert steps[1].t_end_s == pytest.approx(t2, rel=2e-3)
    assert steps[2].t_end_s == pytest.approx(t3, rel=2e-3)
    assert steps[2].end_m == pytest.approx(_len(118.70, XS[3]), rel=2e-3)


def test_horizon_stops_the_walk(straight_river):
    with db.connect(straight_river) as conn:
        start = snap(conn, 118.70, LAT)
        steps = downstream(conn, start, horizon_s=1000)
    assert [s.key for s in steps] == ["R1"]


def test_jurisdictions_and_features_in_order_of_arrival(straight_river):
    with db.connect(straight_river) as conn:
        start = snap(conn, 118.60, LAT)
        steps = downstream(conn, start, horizon_s=10 * 24 * 3600)
        cities = jurisdictions_entered(conn, steps, ("city",))
        met = points_along(conn, steps, "water_reserve", 500)
    assert cities[0].key == "320100" and cities[0].entry_s == pytest.approx(0, abs=1)
    assert [c.entry_s for c in cities] == sorted(c.entry_s for c in cities)
    assert len(cities) >= 2 and cities[-1].key in ("321100", "321000")
    assert [m.key for m in met] == ["W1"]
    expected = _len(118.60, XS[1]) / 1.0 + _len(XS[1], XS[2]) / 0.5 + _len(XS[2], 119.30) / 2.0
    assert met[0].at_s == pytest.approx(expected, rel=3e-3)
    assert met[0].distance_to_path_m == pytest.approx(111, abs=5)


def test_far_point_names_the_distance(straight_river):
    with db.connect(straight_river) as conn:
        with pytest.raises(NoRiverNearby, match=r"is \d+ m away"):
            snap(conn, 118.70, 32.50, max_distance_m=2000)


def test_a_point_on_the_path_is_placed_where_it_lies(straight_river, tmp_path):
    station = gpd.GeoDataFrame({"key": ["S1"], "name": ["河中站"], "medium": ["water"], "kind": ["automatic-water"]},
                               geometry=[Point(119.30, LAT)], crs="EPSG:4326")
    path = tmp_path / "s.geojson"
    station.to_file(path, driver="GeoJSON")
    load_file(straight_river, path, "monitoring_station")
    with db.connect(straight_river) as conn:
        steps = downstream(conn, snap(conn, 118.60, LAT), horizon_s=10 * 24 * 3600)
        met = points_along(conn, steps, "monitoring_station", 100)
    expected = _len(118.60, XS[1]) / 1.0 + _len(XS[1], XS[2]) / 0.5 + _len(XS[2], 119.30) / 2.0
    assert met[0].distance_to_path_m < 1 and met[0].at_s == pytest.approx(expected, rel=3e-3)
