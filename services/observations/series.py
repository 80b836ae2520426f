"""A station's series over a time range: its values with the GB 3838 class or the HJ 633 IAQI of each,
and for air stations the hourly or daily AQI.

The database does the selection, the ordering, the aggregation into one array per parameter, the
GB 3838 class of each water value (``riskatlas.water_class``), the SO2 24-hour moving mean (a window)
and the daily means and maxima; the IAQI of whole arrays is :func:`gis.aqi.aqi_series` (numpy), so a
year of hourly values is a handful of rows and no Python loop per value.

Times: ISO 8601 in China Standard Time (+08:00). A time range without a zone is read as China Standard
Time. Days (daily AQI) are China Standard Time calendar days of ``observed_at``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import dict_row

from gis.aqi import aqi, aqi_series, iaqi_array
from layers.catalogue import relation
from services.errors import InvalidParameter, NotFound
from services.observations.air import AIR_PARAMETERS, COUNTED_FLAGS, CST, aqi_tables
from services.observations.water_state import ROMAN, class_sql

#: The longest range one request may ask for (a leap year and a little).
MAX_RANGE = dt.timedelta(days=370)
#: Without a range: this much before the station's latest observation.
DEFAULT_RANGE = dt.timedelta(days=30)
AQI_HOURLY, AQI_DAILY = "aqi", "aqi_daily"

STATION_SQL = sql.SQL("""
SELECT s.key, s.name, s.medium, s.kind, s.target_class, s.city_code, s.synthetic,
       (SELECT max(l.observed_at) FROM {latest} l WHERE l.station_key = s.key) AS last_at
FROM {station} s WHERE s.key = %s
""")

# One row of arrays: which parameter (its place in the list asked, 1-based), time (epoch seconds), value, flag,
# class. No ORDER BY: sorting text parameters by the database's collation costs more than the whole rest;
# numpy orders the arrays (:func:`_split`).
VALUES_SQL = sql.SQL("""
SELECT array_agg(array_position(%s::text[], o.parameter)) AS p, array_agg(extract(epoch FROM o.observed_at)::float8) AS e,
       array_agg(o.value) AS v, array_agg(o.flag) AS f, array_agg({cls}) AS c
FROM {observation} o
{class_join}
WHERE o.station_key = %s AND o.parameter = ANY(%s) AND o.observed_at >= %s AND o.observed_at < %s
""")

# The SO2 24-hour moving mean needs the 23 hours before the range: they are read here and dropped after
# the mean is taken (numpy, :func:`moving_mean`).
AQI_HOURLY_SQL = sql.SQL("""
SELECT array_agg(array_position(%s::text[], parameter)) AS p, array_agg(extract(epoch FROM observed_at)::float8) AS e,
       array_agg(value) AS v
FROM {observation}
WHERE station_key = %s AND parameter = ANY(%s) AND flag = ANY(%s) AND observed_at > %s AND observed_at < %s
""")

AQI_DAILY_SQL = sql.SQL("""
SELECT parameter, day, avg(value) AS mean, max(value) AS peak, count(*) AS n
FROM (SELECT parameter, value, (observed_at AT TIME ZONE 'Asia/Shanghai')::date AS day FROM {observation}
      WHERE station_key = %s AND parameter = ANY(%s) AND flag = ANY(%s) AND observed_at >= %s AND observed_at < %s) q
GROUP BY parameter, day ORDER BY day
""")


@dataclass(frozen=True)
class Range:
    """A half-open time range ``start <= t < end`` (either may be open: None)."""

    start: dt.datetime | None
    end: dt.datetime | None

    def text(self) -> str:
        def one(t: dt.datetime | None) -> str:
            return ".." if t is None else t.astimezone(CST).isoformat()
        return f"{one(self.start)}/{one(self.end)}"


def _instant(raw: str, name: str, end: bool) -> dt.datetime | None:
    raw = raw.strip()
    if raw in ("", ".."):
        return None
    try:
        if len(raw) == 10:  # a date: the whole day in China Standard Time
            d = dt.date.fromisoformat(raw)
            t = dt.datetime.combine(d + dt.timedelta(days=1) if end else d, dt.time(), CST)
        else:
            t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"`{name}` was {raw[:40]!r} but is expected to be an ISO 8601 date or date-time, "
                               "or '..'") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=CST)


def parse_range(value: str | None, name: str = "datetime") -> Range:
    """An OGC ``datetime``: ``start/end`` (``..`` open), or one instant or date. No zone: China Standard Time.

    A date as the end includes that whole day; a single date is that day.
    """
    if value is None or not value.strip():
        return Range(None, None)
    if "\x00" in value or len(value) > 80:
        raise InvalidParameter(f"`{name}` is expected to be 'start/end' in ISO 8601 (at most 80 characters)")
    if "/" in value:
        a, _, b = value.partition("/")
        r = Range(_instant(a, name, False), _instant(b, name, True))
    else:
        start = _instant(value, name, False)
        r = Range(start, _instant(value, name, True) if len(value.strip()) == 10 else
                  (start + dt.timedelta(seconds=1) if start else None))
    if r.start is not None and r.end is not None and r.end <= r.start:
        raise InvalidParameter(f"`{name}`: the end {r.end.isoformat()} is not after the start {r.start.isoformat()}")
    return r


def _bounded(r: Range, last: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The range made finite: open ends around the station's latest observation; at most MAX_RANGE."""
    anchor = last + dt.timedelta(seconds=1) if last is not None else dt.datetime.now(CST)
    end = r.end or (anchor if r.start is None or anchor > r.start else r.start + DEFAULT_RANGE)
    start = r.start or end - DEFAULT_RANGE
    if end - start > MAX_RANGE:
        raise InvalidParameter(f"`datetime`: {(end - start).days} days asked, at most {MAX_RANGE.days} per request")
    return start, end


async def station(conn: psycopg.AsyncConnection, key: str) -> dict[str, Any]:
    """The station's facts and its latest observation time; NotFound names the key."""
    async with conn.cursor(row_factory=dict_row) as cur:
        q = STATION_SQL.format(latest=relation("observation_latest"), station=relation("monitoring_station"))
        row = await (await cur.execute(q, (key,))).fetchone()
    if row is None:
        raise NotFound(f"no monitoring station with key {key[:80]!r}")
    return dict(row)


def parameters_asked(value: str | None, medium: str) -> list[str]:
    """The parameters of ``parameter=``: codes, ``aqi`` or ``aqi_daily`` (air); default aqi for air, all for water."""
    from services.observations.parameters import parameters

    known = parameters()
    if value is None or not value.strip():
        return [AQI_HOURLY] if medium == "air" else []
    asked = list(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))
    if len(asked) > 40:
        raise InvalidParameter("`parameter`: at most 40 parameters per request")
    for p in asked:
        if p in (AQI_HOURLY, AQI_DAILY):
            if medium != "air":
                raise InvalidParameter(f"`parameter` {p!r} is for air stations; this station measures {medium}")
            continue
        if p not in known:
            raise InvalidParameter(f"`parameter` {p[:40]!r} is unknown; allowed are {sorted(known)} and "
                                   f"{AQI_HOURLY!r}, {AQI_DAILY!r} for air")
    return asked


async def station_series(conn: psycopg.AsyncConnection, key: str, parameter: str | None,
                         when: str | None) -> dict[str, Any]:
    """The station's series: ``series`` (one entry per parameter, columns as arrays), ``aqi`` and
    ``aqi_daily`` when asked (air). Each value carries its class (water) or IAQI (air)."""
    st = await station(conn, key)
    asked = parameters_asked(parameter, st["medium"])
    start, end = _bounded(parse_range(when), st["last_at"])
    out: dict[str, Any] = {"station": {k: v for k, v in st.items() if k != "last_at"},
                           "datetime": Range(start, end).text(), "timezone": "+08:00 (China Standard Time)"}
    plain = [p for p in asked if p not in (AQI_HOURLY, AQI_DAILY)]
    if plain or not asked:
        out["series"] = await _values(conn, key, plain, start, end, st["medium"], everything=not asked)
    if AQI_HOURLY in asked:
        out["aqi"] = await _aqi_hourly(conn, key, start, end)
    if AQI_DAILY in asked:
        out["aqi_daily"] = await _aqi_daily(conn, key, start, end)
    return out


def _split(row: dict[str, Any] | None, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The one-row arrays of VALUES_SQL / AQI_HOURLY_SQL split by parameter, each in time order."""
    if row is None or row["p"] is None:
        return {}
    which = np.asarray(row["p"], dtype=np.int64)
    epochs = np.asarray(row["e"], dtype=np.float64)
    order = np.lexsort((epochs, which))
    which, epochs = which[order], epochs[order]
    cols = {k: np.asarray(row[k], dtype=object if k in ("f", "c") else np.float64)[order]
            for k in ("v", "f", "c") if k in row}
    out: dict[str, dict[str, np.ndarray]] = {}
    bounds = np.searchsorted(which, np.arange(1, len(names) + 2))
    for i, name in enumerate(names):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            out[name] = {"e": epochs[lo:hi], **{k: v[lo:hi] for k, v in cols.items()}}
    return out


async def _values(conn: psycopg.AsyncConnection, key: str, params: list[str], start: dt.datetime, end: dt.datetime,
                  medium: str, everything: bool) -> list[dict[str, Any]]:
    from services.observations.parameters import parameters

    known = parameters()
    if everything:
        params = sorted(c for c, p in known.items() if p.medium == medium)
    cls: sql.Composable
    class_join: sql.Composable
    if medium == "water":
        cls, class_join = class_sql(sql.SQL("o.value"), sql.SQL("o.parameter"))
    else:
        cls, class_join = sql.SQL("NULL::smallint"), sql.SQL("")
    q = VALUES_SQL.format(cls=cls, class_join=class_join, observation=relation("observation"))
    async with conn.cursor(row_factory=dict_row) as cur:
        row = await (await cur.execute(q, (params, key, params, start, end), binary=True, prepare=True)).fetchone()
    parts = _split(row, params)
    tables = aqi_tables()
    out = []
    for p in params:
        r = parts.get(p)
        if r is None:
            continue
        values = r["v"]
        flags = r["f"].tolist()
        entry: dict[str, Any] = {"parameter": p, "name_zh": known[p].name_zh, "name_en": known[p].name_en,
                                 "unit": known[p].unit, "count": len(values), "t": _iso(r["e"]),
                                 "value": values.tolist(), "flag": flags}
        if medium == "water":
            entry["class_num"] = r["c"].tolist()
        elif p in tables.hourly:
            column = tables.hourly[p]
            counted = np.isin(r["f"].astype(str), COUNTED_FLAGS)
            sub = iaqi_array(tables, column, np.where(counted & (values >= 0), values, np.nan))
            entry["iaqi_column"] = column
            entry["iaqi"] = _ints(sub)
        out.append(entry)
    return out


def _iso(epochs: NDArray[np.float64]) -> list[str]:
    stamps = (epochs.astype("int64") + 8 * 3600).astype("datetime64[s]")
    return [s + "+08:00" for s in np.datetime_as_string(stamps, unit="s").tolist()]


async def _aqi_hourly(conn: psycopg.AsyncConnection, key: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    q = AQI_HOURLY_SQL.format(observation=relation("observation"))
    before = start - dt.timedelta(hours=23)
    names = list(AIR_PARAMETERS)
    async with conn.cursor(row_factory=dict_row) as cur:
        row = await (await cur.execute(q, (names, key, names, list(COUNTED_FLAGS), before, end), binary=True, prepare=True)).fetchone()
    parts = _split(row, names)
    so2_all = (parts["so2"]["e"], parts["so2"]["v"]) if "so2" in parts else None
    first = start.timestamp()
    by = {p: (d["e"][d["e"] >= first], d["v"][d["e"] >= first]) for p, d in parts.items()}
    by = {p: ev for p, ev in by.items() if len(ev[0])}
    if not by:
        return {"count": 0, "t": [], "aqi": [], "primary": [], "level": [], "colour": [], "iaqi": {}}
    times = np.unique(np.concatenate([e for e, _ in by.values()]))
    arrays: dict[str, NDArray[np.float64]] = {}
    so2_24h = None
    for p, (e, v) in by.items():
        a = np.full(len(times), np.nan)
        a[np.searchsorted(times, e)] = v
        arrays[p] = a
    if so2_all is not None and "so2" in by:
        e_all, v_all = so2_all
        m = moving_mean(e_all, v_all, 24 * 3600)
        so2_24h = np.full(len(times), np.nan)
        keep = e_all >= first
        so2_24h[np.searchsorted(times, e_all[keep])] = m[keep]
    tables = aqi_tables()
    s = aqi_series(tables, arrays, "hourly", so2_24h=so2_24h)
    levels, colours = _categories(s.aqi)
    return {"count": len(times), "t": _iso(times), "aqi": _ints(s.aqi), "primary": [list(p) for p in s.primary],
            "level": levels, "colour": colours, "iaqi": {p: _ints(v) for p, v in s.iaqi.items()},
            "convention_zh": aqi_document_text("pm_convention_text_zh"),
            "convention_en": aqi_document_text("pm_convention_text_en")}


def moving_mean(epochs: NDArray[np.float64], values: NDArray[np.float64], seconds: float) -> NDArray[np.float64]:
    """At each time t, the mean of the values in (t - seconds, t] (times ascending, in epoch seconds):
    the 24-hour moving mean of hourly values over the hours that exist."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    first = np.searchsorted(epochs, epochs - seconds, side="right")
    idx = np.arange(1, len(values) + 1)
    return (sums[idx] - sums[first]) / (idx - first)


def aqi_document_text(name: str) -> str:
    from services.observations.air import aqi_document

    return str(aqi_document()["hourly"][name])


def _ints(a: NDArray[np.float64]) -> list[int | None]:
    """Whole numbers as ints, NaN as None (vectorised: a year of hourly values is 8,760 of them)."""
    missing = np.isnan(a)
    out = np.where(missing, 0, a).astype(np.int64).astype(object)
    out[missing] = None
    return list(out.tolist())


def _categories(values: NDArray[np.float64]) -> tuple[list[str | None], list[str | None]]:
    tables = aqi_tables()
    uppers = np.array([c.upper if c.upper is not None else np.inf for c in tables.categories])
    idx = np.searchsorted(uppers, np.nan_to_num(values, nan=0.0), side="left")
    levels = [None if math.isnan(v) else tables.categories[i].level for v, i in zip(values.tolist(), idx.tolist())]
    colours = [None if math.isnan(v) else tables.categories[i].hex for v, i in zip(values.tolist(), idx.tolist())]
    return levels, colours


async def _aqi_daily(conn: psycopg.AsyncConnection, key: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    q = AQI_DAILY_SQL.format(observation=relation("observation"))
    async with conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(q, (key, list(AIR_PARAMETERS), list(COUNTED_FLAGS), start, end))).fetchall()
    return daily_from_rows(rows)


def daily_values(stats: dict[str, dict[str, Any]]) -> dict[str, float]:
    """A day's report values from per-parameter ``mean``/``peak``/``n``: 24-hour means (at least
    ``min_hours_24h`` hours), O3 the day's largest 1-hour value and largest 8-hour moving mean."""
    tables = aqi_tables()
    out: dict[str, float] = {}
    for p, s in stats.items():
        if p in ("o3", "o3_8h"):
            out[p] = float(s["peak"])
        elif s["n"] >= tables.min_hours_24h:
            out[p] = float(s["mean"])
    return out


def daily_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Daily AQI per day from rows of (parameter, day, mean, peak, n)."""
    days: dict[dt.date, dict[str, dict[str, Any]]] = {}
    for r in rows:
        days.setdefault(r["day"], {})[r["parameter"]] = r
    out: dict[str, list[Any]] = {"day": [], "aqi": [], "primary": [], "level": [], "colour": []}
    tables = aqi_tables()
    for day in sorted(days):
        res = aqi(tables, daily_values(days[day]), "daily")
        out["day"].append(day.isoformat())
        out["aqi"].append(res.aqi)
        out["primary"].append(list(res.primary))
        out["level"].append(res.category.level if res.category else None)
        out["colour"].append(res.category.hex if res.category else None)
    return {"count": len(out["day"]), **out, "min_hours_24h": tables.min_hours_24h}


def to_csv(doc: dict[str, Any]) -> str:
    """The series as CSV: one line per value (station, parameter, time, value, unit, flag, class or IAQI),
    then the AQI lines (parameter ``aqi`` / ``aqi_daily``) with category and primary pollutants."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["station", "parameter", "time", "value", "unit", "flag", "class", "iaqi", "category", "primary"])
    key = doc["station"]["key"]
    for s in doc.get("series", []):
        classes = s.get("class_num") or [None] * s["count"]
        iaqis = s.get("iaqi") or [None] * s["count"]
        for t, v, f, c, i in zip(s["t"], s["value"], s["flag"], classes, iaqis, strict=True):
            w.writerow([key, s["parameter"], t, repr(v), s["unit"], f, "" if c is None else ROMAN[c],
                        "" if i is None else i, "", ""])
    a = doc.get("aqi")
    if a:
        for t, v, lv, pr in zip(a["t"], a["aqi"], a["level"], a["primary"], strict=True):
            w.writerow([key, "aqi", t, "" if v is None else v, "", "", "", "", lv or "", " ".join(pr)])
    d = doc.get("aqi_daily")
    if d:
        for day, v, lv, pr in zip(d["day"], d["aqi"], d["level"], d["primary"], strict=True):
            w.writerow([key, "aqi_daily", day, "" if v is None else v, "", "", "", "", lv or "", " ".join(pr)])
    return buf.getvalue()
