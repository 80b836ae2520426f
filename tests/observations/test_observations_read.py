"""Reading observations: the latest state of every station and a station's series, over rows inserted here
into a copy of the demo region (values chosen so the AQI and classes can be worked out by hand)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from layers import cluster, db
from layers.catalogue import relation
from layers.settings import DatabaseSettings
from services.web.app import create_app
from tests.conftest import _clone

CST = dt.timezone(dt.timedelta(hours=8))
#: The last hour of the inserted data.
LAST = dt.datetime(2026, 11, 30, 23, 0, tzinfo=CST)


def _stations(s: DatabaseSettings) -> dict[str, dict[str, Any]]:
    with db.connect(s) as conn:
        rows = conn.execute("SELECT key, medium, kind, target_class, owner_city, city_code "
                            "FROM riskatlas.monitoring_station ORDER BY key").fetchall()
    return {r["key"]: r for r in rows}


def insert(s: DatabaseSettings, rows: list[tuple[str, str, dt.datetime, float, str]]) -> None:
    """Insert (station, parameter, time, value, flag) rows as the owner, with their owner city."""
    with db.connect(s) as conn, conn.cursor() as cur:
        cur.execute("SELECT riskatlas.ensure_observation_partitions(%s, %s)",
                    (min(r[2] for r in rows).date() - dt.timedelta(days=1), max(r[2] for r in rows).date()))
        owners = {r["key"]: r["owner_city"] for r in conn.execute(
            "SELECT key, owner_city FROM riskatlas.monitoring_station").fetchall()}
        with cur.copy("COPY riskatlas.observation (station_key, parameter, observed_at, value, flag, owner_city) "
                      "FROM STDIN") as cp:
            for k, p, t, v, f in rows:
                cp.write_row((k, p, t, v, f, owners[k]))
        conn.commit()


@pytest.fixture(scope="module")
def obs_db(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[DatabaseSettings]:
    s = _clone(cluster_settings, demo_template, "obsread")
    yield s
    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="module")
def keys(obs_db: DatabaseSettings) -> dict[str, str]:
    return fill(obs_db)


def fill(obs_db: DatabaseSettings) -> dict[str, str]:
    """One air station with a year of hourly data, one with a single hour, one cross-border section, one water
    station with nothing: the demo's own observations of these four are removed first."""
    st = _stations(obs_db)
    air = [k for k, r in st.items() if r["medium"] == "air"]
    section = next(k for k, r in st.items() if r["kind"] == "cross-border-section" and r["target_class"] == "III")
    empty = next(k for k, r in st.items() if r["medium"] == "water" and k != section)
    year, one = air[0], air[1]
    with db.connect(obs_db) as conn:
        for table in ("observation", "observation_latest"):
            conn.execute(sql.SQL("DELETE FROM {} WHERE station_key = ANY(%s)").format(relation(table)),
                         ([year, one, section, empty],))
        conn.commit()
    rows: list[tuple[str, str, dt.datetime, float, str]] = []
    start = LAST - dt.timedelta(hours=8759)
    for h in range(8760):
        t = start + dt.timedelta(hours=h)
        rows += [(year, "pm25", t, 20.0 + (h % 50), "valid"), (year, "pm10", t, 40.0 + (h % 30), "valid"),
                 (year, "no2", t, 30.0, "valid"), (year, "so2", t, 8.0, "valid"), (year, "co", t, 0.8, "valid"),
                 (year, "o3", t, 60.0, "valid"), (year, "o3_8h", t, 55.0, "valid")]
    # The last hour of `year`: PM2.5 120 → (200−150)/(150−115) × (120−115) + 150 = 157.14 → 158 (IV, 中度污染).
    rows = [r for r in rows if not (r[2] == LAST and r[1] == "pm25")] + [(year, "pm25", LAST, 120.0, "valid")]
    # `one`: PM10 160 → 105, NO2 90 → 45, an invalid PM2.5 500 that must not count: AQI 105 (III), primary PM10.
    rows += [(one, "pm10", LAST, 160.0, "valid"), (one, "no2", LAST, 90.0, "valid"),
             (one, "pm25", LAST, 500.0, "invalid"), (one, "pm10", LAST - dt.timedelta(hours=1), 10.0, "valid")]
    # The section (target III): daily samples; the last one NH3-N 1.8 (class V: 1.5 < 1.8 ≤ 2.0), CODMn 5 (III),
    # DO 6.5 (II), TN 9 (not counted for a river): class V, worse than its target by two.
    for d in range(60):
        t = dt.datetime(2026, 10, 2, 10, 0, tzinfo=CST) + dt.timedelta(days=d)
        rows += [(section, "nh3n", t, 0.6, "valid"), (section, "codmn", t, 4.5, "valid"), (section, "do", t, 6.5, "valid")]
    t = dt.datetime(2026, 12, 1, 10, 0, tzinfo=CST)
    rows += [(section, "nh3n", t, 1.8, "valid"), (section, "codmn", t, 5.0, "valid"), (section, "do", t, 6.5, "valid"),
             (section, "tn", t, 9.0, "valid")]
    insert(obs_db, rows)
    with db.connect(obs_db) as conn:
        conn.execute("ANALYZE riskatlas.observation")
        conn.commit()
    return {"year": year, "one": one, "section": section, "empty": empty}


@pytest.fixture(scope="module")
def client(obs_db: DatabaseSettings, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(obs_db)) as c:
        yield c


def _feature(doc: dict, key: str) -> dict:
    return next(f for f in doc["features"] if f["id"] == key)


def test_latest_is_every_station_in_one_geojson(client: TestClient, obs_db: DatabaseSettings,
                                                keys: dict[str, str]) -> None:
    r = client.get("/observations/latest")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert {f["id"] for f in doc["features"]} == set(_stations(obs_db))
    year = _feature(doc, keys["year"])
    assert year["geometry"]["type"] == "Point"
    p = year["properties"]
    assert p["observed_at"] == "2026-11-30T23:00:00+08:00"
    assert p["state"]["aqi"] == 158 and p["state"]["primary"] == ["pm25"]
    assert p["state"]["level"] == "IV" and p["state"]["name_zh"] == "中度污染" and p["state_colour"] == "#FF0000"
    assert "户外" in p["state"]["category"]["advice_zh"]
    one = _feature(doc, keys["one"])["properties"]
    # PM2.5 500 is flagged invalid: shown, not counted. PM10 160 → (150−100)/(250−150) × 10 + 100 = 105.
    assert one["state"]["aqi"] == 105 and one["state"]["primary"] == ["pm10"] and one["state"]["level"] == "III"
    assert one["state_colour"] == "#FF7E00"
    assert any(v["parameter"] == "pm25" and v["flag"] == "invalid" for v in one["values"])


def test_latest_water_section_class_against_target(client: TestClient, keys: dict[str, str]) -> None:
    p = _feature(client.get("/observations/latest", params={"medium": "water"}).json(), keys["section"])["properties"]
    s = p["state"]
    assert s["class"] == "V" and s["class_num"] == 5 and s["worst"] == ["nh3n"]
    assert s["target_class"] == "III" and s["meets_target"] is False and s["colour"] == "#D50000"
    classes = {v["parameter"]: v.get("class_num") for v in p["values"]}
    assert classes["codmn"] == 3 and classes["do"] == 2 and classes["nh3n"] == 5
    # A station with no observation is there too, with no state.
    doc = client.get("/observations/latest", params={"medium": "water"}).json()
    assert _feature(doc, keys["empty"])["properties"]["state"] is None
    assert all(f["properties"]["medium"] == "water" for f in doc["features"])


def test_series_of_a_year_hourly_with_aqi(client: TestClient, keys: dict[str, str]) -> None:
    when = "2025-12-01T00:00:00/2026-12-01T00:00:00"
    r = client.get(f"/stations/{keys['year']}/series", params={"parameter": "aqi,pm25", "datetime": when})
    assert r.status_code == 200, r.text
    doc = r.json()
    a = doc["aqi"]
    assert a["count"] == 8760 and len(a["aqi"]) == 8760
    assert a["t"][-1] == "2026-11-30T23:00:00+08:00" and a["aqi"][-1] == 158 and a["primary"][-1] == ["pm25"]
    # The first hour (h = 0): PM2.5 20 → 50/35 × 20 = 28.57 → 29; PM10 40 → 40; NO2 30 (1-h) → 50/100 × 30 = 15;
    # O3 60 → 50/160 × 60 = 18.75 → 19; O3-8h 55 → 50/100 × 55 = 27.5 → 28: AQI 40, no primary (≤ 50).
    assert a["aqi"][0] == 40 and a["primary"][0] == [] and a["level"][0] == "I"
    pm25 = doc["series"][0]
    assert pm25["parameter"] == "pm25" and pm25["count"] == 8760 and pm25["iaqi"][0] == 29


def test_daily_aqi(client: TestClient, keys: dict[str, str]) -> None:
    doc = client.get(f"/stations/{keys['year']}/series",
                     params={"parameter": "aqi_daily", "datetime": "2026-11-30"}).json()
    d = doc["aqi_daily"]
    assert d["day"] == ["2026-11-30"]
    # Hours h = 8736..8759 of the year: PM2.5 20 + (h mod 50) for 23 hours and 120 at the last:
    # h mod 50 runs 36..49 then 0..9 (24 values; the last, 9, replaced by 120): sum (56..69) = 875,
    # sum (20..28) = 216, plus 120 → 1211 / 24 = 50.46 → 35..75: 50/40 × 15.46 + 50 = 69.32 → 70.
    # PM10 40 + (h mod 30): h mod 30 = 6..29 → 46..69, mean 57.5 → 50/100 × 7.5 + 50 = 53.75 → 54.
    # O3 daily max 60 → 19; O3-8h max 55 → 28; NO2 24-h 30 → 50/40 × 30 = 37.5 → 38. AQI 70, primary PM2.5.
    assert d["aqi"] == [70] and d["primary"] == [["pm25"]] and d["level"] == ["II"]


def test_series_water_with_classes_and_csv(client: TestClient, keys: dict[str, str]) -> None:
    doc = client.get(f"/stations/{keys['section']}/series", params={"datetime": "2026-11-01/.."}).json()
    nh3n = next(s for s in doc["series"] if s["parameter"] == "nh3n")
    assert nh3n["class_num"][-1] == 5 and nh3n["value"][-1] == 1.8 and set(nh3n["class_num"][:-1]) == {3}  # 0.5 < 0.6 ≤ 1.0
    r = client.get(f"/stations/{keys['section']}/series", params={"parameter": "nh3n", "datetime": "2026-12-01",
                                                                  "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows == [{"station": keys["section"], "parameter": "nh3n", "time": "2026-12-01T10:00:00+08:00",
                     "value": "1.8", "unit": "mg/L", "flag": "valid", "class": "V", "iaqi": "", "category": "",
                     "primary": ""}]


def test_public_data_city_values_are_means_of_concentrations(client: TestClient, keys: dict[str, str]) -> None:
    doc = client.get("/public/data.json").json()
    assert doc["synthetic"] is True  # the demo's stations are synthetic
    nj = next(c for c in doc["cities"] if c["code"] == "320100")
    now = nj["now"]
    # Now (23:00): PM2.5 only the year station's 120 (the other's is invalid) → 158; PM10 (69 + 160) / 2 = 114.5
    # → 50/100 × 64.5 + 50 = 82.25 → 83; NO2 (30 + 90) / 2 = 60 (1-h) → 30: AQI 158, PM2.5 primary, IV.
    assert now["at"] == "2026-11-30T23:00:00+08:00"
    assert now["aqi"] == 158 and now["primary"] == ["pm25"] and now["level"] == "IV"
    assert now["iaqi"]["pm10"] == 83 and now["iaqi"]["no2"] == 30
    assert now["category"]["health_zh"] and now["category"]["advice_en"]
    # The day (2026-11-30, complete at 23:00): PM2.5 mean 1211 / 24 = 50.46 → 70 (as the station's own day);
    # PM10 hourly city means: the year station's 46..69 (sum 1380) with 22:00 → (68 + 10) / 2 = 39 and 23:00 → 114.5:
    # 1380 − 68 − 69 + 39 + 114.5 = 1396.5, / 24 = 58.19 → 50/100 × 8.19 + 50 = 54.09 → 55.
    day = nj["day"]
    assert day["day"] == "2026-11-30" and day["aqi"] == 70 and day["iaqi"]["pm10"] == 55
    section = next(s for s in doc["sections"] if s["key"] == keys["section"])
    assert section["state"]["class"] == "V" and section["state"]["meets_target"] is False
    assert [c["hex"] for c in doc["categories"]][0] == "#00E400"
    assert "contact" not in r_text(doc)


def r_text(doc: dict) -> str:
    import json
    return json.dumps(doc, ensure_ascii=False)


@pytest.mark.parametrize(("path", "params", "status", "needle"), [
    ("/stations/no-such-station/series", {}, 404, "no-such-station"),
    ("/stations/{year}/series", {"parameter": "plutonium"}, 400, "plutonium"),
    ("/stations/{year}/series", {"datetime": "yesterday"}, 400, "ISO 8601"),
    ("/stations/{year}/series", {"datetime": "2020-01-01/2026-01-01"}, 400, "at most 370"),
    ("/stations/{year}/series", {"datetime": "2026-02-01/2026-01-01"}, 400, "not after"),
    ("/stations/{year}/series", {"format": "xml"}, 400, "format"),
    ("/stations/{section}/series", {"parameter": "aqi"}, 400, "air stations"),
    ("/observations/latest", {"medium": "fire"}, 400, "medium"),
])
def test_bad_requests_are_4xx_naming_the_parameter(client: TestClient, keys: dict[str, str], path: str,
                                                   params: dict, status: int, needle: str) -> None:
    r = client.get(path.format(**keys), params=params)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_set_based_class_agrees_with_water_class(obs_db: DatabaseSettings, keys: dict[str, str]) -> None:
    """The readers class values set-based (services.observations.water_state.CLASS_EXPR); it must give what
    riskatlas.water_class gives, for every water parameter at values around each of its limits."""
    from services.observations.water_state import class_sql

    expr, join = class_sql(sql.SQL("o.value"), sql.SQL("o.parameter"))
    q = sql.SQL("""
        WITH o AS (SELECT p.code AS parameter, v.value
                   FROM riskatlas.obs_parameter p
                   JOIN riskatlas.gb3838_limit l ON l.factor = coalesce(p.gb3838, p.code)
                   CROSS JOIN LATERAL unnest(l.limits) AS lim
                   CROSS JOIN LATERAL (VALUES (lim * 0.99), (lim), (lim * 1.01), (0.0), (1e6)) AS v(value)
                   WHERE p.medium = 'water')
        SELECT o.parameter, o.value, riskatlas.water_class(o.parameter, o.value) AS want, {expr} AS got
        FROM o {join}""").format(expr=expr, join=join)
    with db.connect(obs_db) as conn:
        rows = conn.execute(q).fetchall()
    assert len(rows) > 50
    assert [r for r in rows if r["want"] != r["got"]] == []


def test_so2_above_800_takes_the_24_hour_mean(demo_copy: DatabaseSettings) -> None:
    """SO2 1-hour 900 μg/m³ at a station (the last of 24 hours, the others 500): no 1-hour IAQI; its 24-hour mean
    (23 × 500 + 900) / 24 = 516.67 → 475..800 ↔ 150..200: 50/325 × 41.67 + 150 = 156.41 → 157 (HJ 633 Table 1
    note 1), for the station on the map and for its city on the public page (the only station of that hour)."""
    st = _stations(demo_copy)
    key = next(k for k, r in st.items() if r["medium"] == "air")
    city = st[key]["city_code"]
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=CST)  # after the demo's year: no other station reports then
    rows = [(key, "so2", at - dt.timedelta(hours=h), 500.0, "valid") for h in range(1, 24)]
    insert(demo_copy, rows + [(key, "so2", at, 900.0, "valid")])
    with TestClient(create_app(demo_copy)) as c:
        p = _feature(c.get("/observations/latest", params={"medium": "air"}).json(), key)["properties"]
        assert p["state"]["aqi"] == 157 and p["state"]["primary"] == ["so2"]
        assert any("note 1" in n for n in p["state"]["notes"])
        town = next(x for x in c.get("/public/data.json").json()["cities"] if x["code"] == city)
        assert town["now"]["at"] == "2026-03-01T12:00:00+08:00" and town["now"]["aqi"] == 157
