"""What the public page shows: each city's air quality now and the day's, with what it means for health,
and each cross-border section's latest class against its target.

City values follow the city AQI practice (HJ 633-2012 §5, ``city`` in ``layers/data/hj633_aqi.yaml``):
for each pollutant the arithmetic mean of the city's air stations' concentrations, then the IAQI and
AQI of those means (:func:`gis.aqi.aqi`) -- never the mean or the worst of the stations' AQI.

* **now**: the city's latest hour (the latest hour any of its air stations reported); the stations
  that reported that hour are averaged; an hourly AQI (实时报).
* **the day's**: the daily AQI (日报) of the latest complete China-Standard-Time day before or at the
  latest hour: for each hour the mean of the stations, then the day's 24-hour mean (at least 20 hours),
  O3 the day's largest 1-hour value and largest 8-hour moving mean.

Only values flagged valid or estimated count. Nothing here is restricted: the page needs no login.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.aqi import aqi
from layers.catalogue import relation
from services.observations.air import AIR_PARAMETERS, COUNTED_FLAGS, CST, aqi_document, aqi_tables
from services.observations.latest import air_state_dict, latest_states
from services.observations.series import daily_values

# A city's values now are the latest values of its stations at the city's latest hour: observation_latest
# holds them (one small table, no partition to search).
CITY_NOW_SQL = sql.SQL("""
WITH last AS (
    SELECT s.city_code, max(l.observed_at) AS at
    FROM {latest} l JOIN {station} s ON s.key = l.station_key
    WHERE s.medium = 'air' AND l.parameter = ANY(%(params)s) AND l.flag = ANY(%(flags)s)
    GROUP BY s.city_code
)
SELECT last.city_code, last.at, a.name, a.name_en, bool_or(s.synthetic) AS synthetic,
       o.parameter, avg(o.value) AS v, count(DISTINCT o.station_key) AS stations
FROM last
JOIN {admin} a ON a.code = last.city_code
JOIN {station} s ON s.city_code = last.city_code AND s.medium = 'air'
JOIN {latest} o ON o.station_key = s.key AND o.observed_at = last.at
     AND o.parameter = ANY(%(params)s) AND o.flag = ANY(%(flags)s)
GROUP BY last.city_code, last.at, a.name, a.name_en, o.parameter
""")

# The city's SO2 24-hour mean up to its latest hour: needed only when its SO2 1-hour value is above 800.
CITY_SO2_SQL = sql.SQL("""
SELECT avg(x.value) AS v FROM {station} s
JOIN {observation} x ON x.station_key = s.key
WHERE s.city_code = %(city)s AND s.medium = 'air' AND x.parameter = 'so2' AND x.flag = ANY(%(flags)s)
  AND x.observed_at > %(at)s::timestamptz - interval '24 hours' AND x.observed_at <= %(at)s
""")

# The cities whose report day starts at %(start)s: for each hour the mean of the city's stations, then per
# parameter the day's mean, maximum and number of hours. (One statement per distinct day, with the day's
# bounds as constants, so that only that day's partition is read.)
CITY_DAY_SQL = sql.SQL("""
WITH hours AS (
    SELECT s.city_code, o.parameter, o.observed_at, avg(o.value) AS v
    FROM {station} s
    JOIN {observation} o ON o.station_key = s.key
    WHERE s.medium = 'air' AND s.city_code = ANY(%(cities)s) AND o.parameter = ANY(%(params)s)
      AND o.flag = ANY(%(flags)s) AND o.observed_at >= %(start)s AND o.observed_at < %(end)s
    GROUP BY s.city_code, o.parameter, o.observed_at
)
SELECT city_code, parameter, avg(v) AS mean, max(v) AS peak, count(*) AS n FROM hours GROUP BY city_code, parameter
""")


def _report_day(at: dt.datetime) -> dt.date:
    """The latest complete CST day at ``at``: its own day when ``at`` is its 23:00 hour, else the day before."""
    local = at.astimezone(CST)
    return local.date() if local.hour == 23 else local.date() - dt.timedelta(days=1)


async def city_air(conn: psycopg.AsyncConnection) -> list[dict[str, Any]]:
    """Each city with air stations: its AQI now and the day's, with category, health effects and advice."""
    q = CITY_NOW_SQL.format(latest=relation("observation_latest"), station=relation("monitoring_station"),
                            observation=relation("observation"), admin=relation("admin_area"))
    params = {"params": list(AIR_PARAMETERS), "flags": list(COUNTED_FLAGS)}
    async with conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(q, params)).fetchall()
        cities: dict[str, dict[str, Any]] = {}
        for r in rows:
            c = cities.setdefault(r["city_code"], {"code": r["city_code"], "name_zh": r["name"],
                                                   "name_en": r["name_en"], "at": r["at"], "synthetic": r["synthetic"],
                                                   "conc": {}, "stations": 0, "so2_24h": None})
            c["conc"][r["parameter"]] = float(r["v"])
            c["stations"] = max(c["stations"], int(r["stations"]))
        tables = aqi_tables()
        q3 = CITY_SO2_SQL.format(station=relation("monitoring_station"), observation=relation("observation"))
        for code, c in cities.items():
            if c["conc"].get("so2", 0.0) > tables.so2_1h_limit:
                row = await (await cur.execute(q3, {**params, "city": code, "at": c["at"]})).fetchone()
                c["so2_24h"] = None if row is None or row["v"] is None else float(row["v"])
        days = {code: _report_day(c["at"]) for code, c in cities.items()}
        starts = {code: dt.datetime.combine(day, dt.time(), CST) for code, day in days.items()}
        q2 = CITY_DAY_SQL.format(station=relation("monitoring_station"), observation=relation("observation"))
        stats: dict[str, dict[str, Any]] = {}
        for start in sorted(set(starts.values())):
            codes = [code for code, s in starts.items() if s == start]
            for r in await (await cur.execute(q2, {**params, "cities": codes, "start": start,
                                                    "end": start + dt.timedelta(days=1)})).fetchall():
                stats.setdefault(r["city_code"], {})[r["parameter"]] = r
    out = []
    for code, c in cities.items():
        now = aqi(tables, c["conc"], "hourly", so2_24h=c["so2_24h"])
        daily = aqi(tables, daily_values(stats.get(code, {})), "daily")
        out.append({
            "code": code, "name_zh": c["name_zh"], "name_en": c["name_en"], "synthetic": c["synthetic"],
            "stations": c["stations"],
            "now": None if now.aqi is None else {
                "at": c["at"].astimezone(CST).isoformat(), **air_state_dict(now),
                "concentrations": {k: round(v, 3) for k, v in c["conc"].items()}},
            "day": None if daily.aqi is None else {"day": days[code].isoformat(), **air_state_dict(daily)},
        })
    return sorted(out, key=lambda x: x["code"])


async def sections(conn: psycopg.AsyncConnection) -> list[dict[str, Any]]:
    """Each cross-border section with its latest class against its target (no value: state null)."""
    states = await latest_states(conn, medium="water")
    return [{k: s[k] for k in ("key", "name", "city_code", "city_name", "target_class", "synthetic", "observed_at",
                               "state", "lon", "lat")}
            | {"values": [v for v in s["values"] if v["current"]]}
            for s in states if s["kind"] == "cross-border-section"]


async def public_document(conn: psycopg.AsyncConnection) -> dict[str, Any]:
    """The public page's data: cities' air, sections' water, the categories and the conventions used."""
    doc = aqi_document()
    cities = await city_air(conn)
    secs = await sections(conn)
    tables = aqi_tables()
    return {
        "generated_at": dt.datetime.now(CST).replace(microsecond=0).isoformat(),
        "synthetic": any(c["synthetic"] for c in cities) or any(s["synthetic"] for s in secs),
        "cities": cities,
        "sections": secs,
        "categories": [c.to_dict() for c in tables.categories],
        "pollutants": tables.pollutants,
        "method": {
            "standard": doc["standard"], "title": doc["title"], "title_en": doc["title_en"],
            "city_zh": "城市数值：各污染物取该市各空气站浓度的算术平均值，再计算分指数与AQI（HJ 633-2012）。",
            "city_en": "City value: for each pollutant the mean of the city's stations' concentrations, then IAQI and "
                       "AQI (HJ 633-2012).",
            "hourly_pm_zh": doc["hourly"]["pm_convention_text_zh"], "hourly_pm_en": doc["hourly"]["pm_convention_text_en"],
            "day_zh": "当日数值为最近一个完整自然日（北京时间）的日报AQI。",
            "day_en": "The day's value is the daily AQI of the latest complete day (China Standard Time).",
            "water_zh": "断面水质类别按GB 3838-2002取最差单项（总氮不参与河流断面评价），与目标类别比较。",
            "water_en": "A section's class is its worst factor by GB 3838-2002 (total nitrogen not counted for rivers), "
                        "compared with its target class.",
        },
    }
