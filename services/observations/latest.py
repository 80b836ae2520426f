"""The latest state of every monitoring station, in one read: the whole map's stations as GeoJSON.

One statement joins the stations to ``observation_latest`` (kept by the write trigger of migration 0010:
one row per station and parameter) and classes each water value with ``riskatlas.water_class``; the
station's state is then computed from the values of its latest time only (an older value of another
parameter is shown, marked ``current: false``, and counts for nothing):

* air: the hourly AQI (HJ 633-2012 real-time report, :func:`gis.aqi.aqi`), category, colour, primary
  pollutant(s); an SO2 1-hour value above 800 μg/m³ brings its 24-hour mean (a second, small query);
* water: the section's GB 3838 class (worst factor, :mod:`services.observations.water_state`) against
  its target class.

Only values flagged ``valid`` or ``estimated`` count; a station with none has ``state`` null.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.aqi import aqi
from layers.catalogue import relation
from services.observations.air import AIR_PARAMETERS, COUNTED_FLAGS, CST_ISO, aqi_tables
from services.observations.water_state import class_sql, section_state

# One row per station; its latest values as one JSON array built by the database (each with its GB 3838
# class for water), the station's latest time beside it (as timestamptz and as text in the same format).
LATEST_SQL = sql.SQL("""
SELECT s.key, s.name, s.medium, s.kind, s.target_class, s.city_code, a.name AS city_name, s.synthetic,
       round(ST_X(s.geom)::numeric, 6)::float8 AS lon, round(ST_Y(s.geom)::numeric, 6)::float8 AS lat,
       v.at, {t_at} AS observed_at, v.vals
FROM {station} s
LEFT JOIN {admin} a ON a.code = s.city_code
LEFT JOIN LATERAL (
    SELECT max(l.observed_at) AS at,
           json_agg(json_build_object('parameter', l.parameter, 'name_zh', p.name_zh, 'name_en', p.name_en,
                                      'value', l.value, 'unit', p.unit, 'flag', l.flag, 'observed_at', {t},
                                      'class_num', CASE WHEN s.medium = 'water' THEN {water_class} END)
                    ORDER BY l.parameter) AS vals
    FROM {latest} l
    LEFT JOIN {parameter} p ON p.code = l.parameter
    {class_join}
    WHERE l.station_key = s.key
) v ON true
{where}
ORDER BY s.key
""")

SO2_24H_SQL = sql.SQL("""
SELECT station_key, avg(value) AS v, count(*) AS n FROM {observation}
WHERE station_key = ANY(%s) AND parameter = 'so2' AND flag = ANY(%s)
  AND observed_at > %s::timestamptz - interval '24 hours' AND observed_at <= %s::timestamptz
GROUP BY station_key
""")


def _latest_sql(where: sql.Composable) -> sql.Composed:
    water_class, class_join = class_sql(sql.SQL("l.value"), sql.SQL("l.parameter"))
    return LATEST_SQL.format(
        t=sql.SQL(CST_ISO.format("l.observed_at")), t_at=sql.SQL(CST_ISO.format("v.at")), water_class=water_class,
        class_join=class_join,
        station=relation("monitoring_station"), admin=relation("admin_area"), latest=relation("observation_latest"),
        parameter=relation("obs_parameter"), where=where)


async def latest_states(conn: psycopg.AsyncConnection, medium: str | None = None,
                        city: str | None = None) -> list[dict[str, Any]]:
    """Every station (of ``medium`` and ``city`` when given) with its latest values and its state."""
    conds: list[sql.Composable] = []
    params: list[Any] = []
    if medium is not None:
        conds.append(sql.SQL("s.medium = %s"))
        params.append(medium)
    if city is not None:
        conds.append(sql.SQL("s.city_code = %s"))
        params.append(city)
    where = sql.SQL("WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
    async with conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(_latest_sql(where), params)).fetchall()
    stations: dict[str, dict[str, Any]] = {}
    for r in rows:
        values = r["vals"] or []
        for v in values:
            v["current"] = v["observed_at"] == r["observed_at"]
            if v["class_num"] is None:
                del v["class_num"]
        stations[r["key"]] = {
            "key": r["key"], "name": r["name"], "medium": r["medium"], "kind": r["kind"],
            "target_class": r["target_class"], "city_code": r["city_code"], "city_name": r["city_name"],
            "synthetic": r["synthetic"], "lon": r["lon"], "lat": r["lat"], "observed_at": r["observed_at"],
            "values": values, "_at": r["at"],
            "_counted": {v["parameter"]: v for v in values if v["current"] and v["flag"] in COUNTED_FLAGS}}
    need_so2: dict[str, dt.datetime] = {}
    limit = aqi_tables().so2_1h_limit
    for key, st in stations.items():
        so2 = st["_counted"].get("so2")
        if st["medium"] == "air" and so2 is not None and so2["value"] > limit:
            need_so2[key] = st["_at"]
    so2_24h = await _so2_24h(conn, need_so2) if need_so2 else {}
    out = []
    for key, st in stations.items():
        counted = st.pop("_counted")
        st.pop("_at")
        st["state"] = _air_state(counted, so2_24h.get(key)) if st["medium"] == "air" else \
            _water_state(counted, st["target_class"])
        out.append(st)
    return out


async def _so2_24h(conn: psycopg.AsyncConnection, at: dict[str, dt.datetime]) -> dict[str, float]:
    """The SO2 24-hour mean ending at each station's latest hour (HJ 633 Table 1 note 1), by station."""
    out: dict[str, float] = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for when in set(at.values()):
            keys = [k for k, t in at.items() if t == when]
            q = SO2_24H_SQL.format(observation=relation("observation"))
            for r in await (await cur.execute(q, (keys, list(COUNTED_FLAGS), when, when))).fetchall():
                out[r["station_key"]] = float(r["v"])
    return out


def _air_state(counted: dict[str, dict[str, Any]], so2_24h: float | None) -> dict[str, Any] | None:
    conc = {p: counted[p]["value"] for p in AIR_PARAMETERS if p in counted}
    if not conc:
        return None
    result = aqi(aqi_tables(), conc, "hourly", so2_24h=so2_24h)
    if result.aqi is None or result.category is None:
        return None
    return air_state_dict(result)


def air_state_dict(result: Any) -> dict[str, Any]:
    """An :class:`gis.aqi.AqiResult` as the readers show it (colour and names at the top level)."""
    cat = result.category
    tables = aqi_tables()
    names = tables.pollutants
    return {**result.to_dict(), "colour": cat.hex, "level": cat.level, "name_zh": cat.name_zh, "name_en": cat.name_en,
            "primary_zh": [names.get(p, {}).get("name_zh", p) for p in result.primary],
            "primary_en": [names.get(p, {}).get("name_en", p) for p in result.primary]}


def _water_state(counted: dict[str, dict[str, Any]], target: str | None) -> dict[str, Any] | None:
    state = section_state({p: v.get("class_num") for p, v in counted.items()}, target)
    return None if state is None else state.to_dict()


def geojson(stations: list[dict[str, Any]]) -> dict[str, Any]:
    """The stations as a GeoJSON FeatureCollection (WGS84 longitude/latitude)."""
    features = []
    for st in stations:
        props = {k: v for k, v in st.items() if k not in ("lon", "lat")}
        state = st.get("state") or {}
        props["state_colour"] = state.get("colour")
        features.append({"type": "Feature", "id": st["key"],
                         "geometry": {"type": "Point", "coordinates": [st["lon"], st["lat"]]},
                         "properties": props})
    return {"type": "FeatureCollection", "numberReturned": len(features), "features": features}
