"""Observations as an OGC API Features collection: points at their stations, filtered by `datetime`,
station and parameter, paged, as GeoJSON and HTML; a month asked reads that month's partition only."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from layers import db
from services.observations.features import items_clause, where_clause
from services.web.app import create_app
from services.web.settings import APISettings

CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def obs(stations):
    """Daily PM2.5 at NJ-A and CZ-A and daily NH3-N at NJ-W, 1 October to 31 December 2026 (CST)."""
    settings, _keys = stations
    days = [dt.datetime(2026, 10, 1, 12, tzinfo=CST) + dt.timedelta(days=i) for i in range(92)]
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT riskatlas.ensure_observation_partitions('2026-10-01', '2026-12-31')")
        with cur.copy("COPY riskatlas.observation (station_key, parameter, observed_at, value, flag, owner_city, "
                      "batch_id, updated_by) FROM STDIN") as cp:
            for i, t in enumerate(days):
                cp.write_row(("NJ-A", "pm25", t, 30.0 + i, "valid", "320100", 7, "loader"))
                cp.write_row(("CZ-A", "pm25", t, 40.0 + i, "valid", "341100", 7, "loader"))
                cp.write_row(("NJ-W", "nh3n", t, 0.5, "valid", "320100", 7, "loader"))
        conn.commit()
    with TestClient(create_app(settings, APISettings(pool_min=1, pool_max=2))) as c:
        yield settings, c


def test_a_month_of_one_station_and_parameter_as_geojson_and_html(obs):
    settings, client = obs
    r = client.get("/collections/observations/items",
                   params={"datetime": "2026-11-01/2026-11-30", "station": "NJ-A", "parameter": "pm25", "limit": 1000})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["numberReturned"] == 30 and len(doc["features"]) == 30
    f = doc["features"][0]
    assert f["geometry"] == {"type": "Point", "coordinates": [118.8, 32.05]}
    assert f["properties"]["observed_at"] == "2026-11-01T12:00:00+08:00" and f["properties"]["value"] == 61.0
    assert f["properties"]["unit"] and f["properties"]["station_name"] == "南京空气站"
    assert not {"batch_id", "updated_by"} & set(f["properties"])
    assert {x["properties"]["station"] for x in doc["features"]} == {"NJ-A"}

    page = client.get("/collections/observations/items", params={"datetime": "2026-10-01/..", "limit": 100}).json()
    assert page["numberReturned"] == 100
    nxt = next(lk["href"] for lk in page["links"] if lk["rel"] == "next")
    rest = client.get(nxt).json()
    assert rest["numberReturned"] == 100  # 276 observations since 1 October: the second page is full
    assert page["features"][-1]["id"] != rest["features"][0]["id"]

    h = client.get("/collections/observations/items", params={"f": "html", "station": "CZ-A", "limit": 5})
    assert h.status_code == 200 and "滁州空气站" in h.text and h.headers["content-type"].startswith("text/html")
    assert client.get("/collections/observations").json()["id"] == "observations"
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    stations = listed["monitoring_station"]["extent"]["spatial"]["bbox"]
    assert listed["observations"]["extent"]["spatial"]["bbox"] == stations  # listed, at its stations' extent
    assert "observations/items?f=html" in client.get("/collections", params={"f": "html"}).text


@pytest.mark.parametrize("params, needle", [({"datetime": "November"}, "datetime"), ({"limit": 0}, "`limit`"),
                                            ({"f": "csv"}, "`f`")])
def test_bad_parameters_are_400s(obs, params, needle):
    _s, client = obs
    r = client.get("/collections/observations/items", params=params)
    assert r.status_code == 400 and needle in r.text, r.text


def test_a_month_asked_reads_only_its_partition(obs):
    """Partitions are UTC months (migration 0010): November in UTC reads November's partition alone."""
    settings, _client = obs
    clause = items_clause(where_clause("2026-11-01T00:00:00Z/2026-11-30T23:00:00Z", "NJ-A", "pm25"), 100, 0)
    with db.connect(settings, "app") as conn:
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
            b"EXPLAIN (ANALYZE, COSTS OFF) " + clause.text.as_bytes(conn), clause.params).fetchall())
    assert "observation_y2026m11" in plan, plan
    assert "observation_y2026m10" not in plan and "observation_y2026m12" not in plan, plan


def test_bbox_keeps_the_observations_of_the_stations_inside(obs):
    """OGC API Features Core's bbox: CRS84 by default, or in `bbox-crs` (here lat/lon EPSG:4326)."""
    _s, client = obs
    url = "/collections/observations/items"
    around_nanjing = client.get(url, params={"bbox": "118.6,32.0,118.9,32.1", "limit": 1000}).json()
    assert {f["properties"]["station"] for f in around_nanjing["features"]} == {"NJ-A", "NJ-W"}
    assert around_nanjing["numberReturned"] == 184
    lat_lon = client.get(url, params={"bbox": "32.3,118.3,32.32,118.33", "bbox-crs": "EPSG:4326",
                                      "parameter": "pm25", "datetime": "2026-12-01/2026-12-31"}).json()
    assert {f["properties"]["station"] for f in lat_lon["features"]} == {"CZ-A"} and lat_lon["numberReturned"] == 31
    assert client.get(url, params={"bbox": "100,10,101,11"}).json()["numberReturned"] == 0
    nxt = client.get(url, params={"bbox": "118.6,32.0,118.9,32.1", "limit": 100}).json()
    assert "bbox=118.6" in next(lk["href"] for lk in nxt["links"] if lk["rel"] == "next")


@pytest.mark.parametrize("params, needle", [({"bbox": "118,32,119"}, "`bbox`"), ({"bbox": "119,32,118,33"}, "`bbox`"),
                                            ({"bbox-crs": "EPSG:4326"}, "`bbox-crs`"),
                                            ({"bbox": "118,32,119,33", "bbox-crs": "EPSG:99999"}, "bbox-crs")])
def test_a_bad_bbox_is_a_400_naming_it(obs, params, needle):
    _s, client = obs
    r = client.get("/collections/observations/items", params=params)
    assert r.status_code == 400 and needle in r.text, r.text
