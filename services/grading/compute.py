"""Grading a set of sources at once: Q, population, water receptors and the level matrix, nothing written.

The sources are put in the temporary table ``grade_src`` (:func:`select_sources`), then
:func:`compute` grades them in four passes over the whole set (see :mod:`services.grading`).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
import rasterio
from rasterio.windows import Window, from_bounds

from gis.grading import (
    CriticalTable,
    GradingTables,
    WaterReceptor,
    disk_sums,
    e_air_many,
    e_water,
    grade_many,
    q_many,
    receptor_class,
)
from gis.zonal import cell_areas_km2
from layers.catalogue import SCHEMA
from services import river as rn
from services.errors import InvalidParameter
from services.grading.tables import GradingError

POPULATION = "population"
Scope = Literal["all", "batch", "stale", "keys"]
Progress = Callable[[str, int, int], None]

#: Columns of a computed grade, in ``risk_grade``'s names (``substances`` is copied from the source).
GRADE_COLUMNS = ("source_key", "status", "reasons", "q_air", "q_water", "q_air_band", "q_water_band", "m_score",
                 "m_air", "m_water", "m_air_band", "m_water_band", "m_note", "pop_far", "pop_near", "e_air",
                 "e_air_reason", "e_water", "e_water_reasons", "water", "air_level", "water_level", "risk_level",
                 "level_min", "level_max", "air_cell", "water_cell", "label")
JSON_COLUMNS = ("reasons", "e_water_reasons", "water")

SCOPES = {
    "all": "true",
    "batch": "s.batch_id = %(batch)s",
    "stale": f"""NOT EXISTS (SELECT 1 FROM {SCHEMA}.risk_grade g
                             WHERE g.source_key = s.key AND g.computed_at >= s.updated_at)""",
    "keys": "s.key = ANY(%(keys)s)",
}


def select_sources(conn: psycopg.Connection, scope: Scope, batch_id: int | None = None,
                   keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Put the sources in ``scope`` into the temporary table ``grade_src`` (pid 0…n-1 in key order,
    key, geom and the M scores) and return pid, key, lon, lat, m_score, m_air and m_water (NaN when
    absent, as stored) with the M each medium is graded with (``m_air_used``, ``m_water_used``: the
    medium's own score, else the one-M ``m_score``) and ``m_note`` saying which, read by COPY."""
    if scope not in SCOPES:
        raise InvalidParameter(f"scope was {scope!r} but is expected to be one of {list(SCOPES)}")
    conn.execute("DROP TABLE IF EXISTS grade_src")
    conn.execute(
        f"""CREATE TEMP TABLE grade_src ON COMMIT DROP AS
            SELECT (row_number() OVER (ORDER BY s.key) - 1)::bigint AS pid, s.key, s.geom, s.m_score, s.m_air,
                   s.m_water
            FROM {SCHEMA}.risk_source s WHERE {SCOPES[scope]}""",
        {"batch": batch_id, "keys": list(keys or [])})
    conn.execute("ALTER TABLE grade_src ADD PRIMARY KEY (pid)")
    conn.execute("ANALYZE grade_src")
    frame = _copy_frame(conn, "SELECT pid, key, ST_X(geom) AS lon, ST_Y(geom) AS lat, m_score, m_air, m_water "
                              "FROM grade_src ORDER BY pid",
                        {"key": object, "m_score": "float64", "m_air": "float64", "m_water": "float64"})
    for c in ("m_score", "m_air", "m_water"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    frame["m_air_used"] = frame["m_air"].fillna(frame["m_score"])
    frame["m_water_used"] = frame["m_water"].fillna(frame["m_score"])
    frame["m_note"] = pd.Series(m_notes(frame["m_score"].notna().to_numpy(), frame["m_air"].notna().to_numpy(),
                                        frame["m_water"].notna().to_numpy()), index=frame.index, dtype=object)
    return frame


#: Where each medium's M came from, by which of m_score, m_air and m_water a source has.
M_NOTES = {
    (False, True, True): "m_air and m_water, each medium's own M (HJ 941-2018 §6.2, §7.2)",
    (True, True, True): "m_air and m_water, each medium's own M (HJ 941-2018 §6.2, §7.2); m_score is not used",
    (True, False, False): "one M for both media: m_score is used for air and for water (HJ 941-2018 scores them "
                          "separately, §6.2 and §7.2: give m_air and m_water)",
    (True, True, False): "m_air for air; m_water is empty, so the one-M m_score is used for water",
    (True, False, True): "m_water for water; m_air is empty, so the one-M m_score is used for air",
    (False, True, False): "m_air for air; no M for water (a water Q of 1 or more is pending M)",
    (False, False, True): "m_water for water; no M for air (an air Q of 1 or more is pending M)",
    (False, False, False): "no M score (a medium whose Q is 1 or more is pending M)",
}


def m_notes(has_score: np.ndarray, has_air: np.ndarray, has_water: np.ndarray) -> np.ndarray:
    """:data:`M_NOTES` of every source, from whether it has m_score, m_air and m_water."""
    code = has_score.astype(int) * 4 + has_air.astype(int) * 2 + has_water.astype(int)
    notes = np.empty(8, dtype=object)
    for (s, a, w), text in M_NOTES.items():
        notes[int(s) * 4 + int(a) * 2 + int(w)] = text
    return notes[code]


def read_lines(conn: psycopg.Connection) -> pd.DataFrame:
    """The inventory lines of the sources in ``grade_src``, flat, ordered by pid and position: pid,
    position, name, cas, the quantity as JSON text, and whether the line is a JSON object."""
    # read in any order (a hash join of the two tables) and put in order here: ordered by the database,
    # the join became a key lookup per source to keep the order of grade_src's primary key
    lines = _copy_frame(
        conn,
        f"""SELECT g.pid, e.position, e.v->>'name' AS name, e.v->>'cas' AS cas, e.v->'quantity_t' AS quantity,
                   jsonb_typeof(e.v) = 'object' AS is_object
            FROM grade_src g JOIN {SCHEMA}.risk_source_visible s ON s.key = g.key
            CROSS JOIN LATERAL jsonb_array_elements(s.substances) WITH ORDINALITY AS e(v, position)""",
        {"name": object, "cas": object, "quantity": object})
    order = np.lexsort((lines["position"].to_numpy(), lines["pid"].to_numpy()))
    return lines.take(order).reset_index(drop=True)


def _copy_frame(conn: psycopg.Connection, query: str, dtypes: dict[str, Any]) -> pd.DataFrame:
    """The result of ``query`` as a DataFrame, moved with COPY (the fast path for a million rows).

    Text columns are best asked for as ``object``: Python strings, as the grading uses them (pandas'
    own string type stores them in Arrow and builds a Python string again on each use)."""
    buf = io.BytesIO()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
        for chunk in copy:
            buf.write(chunk)
    buf.seek(0)
    return pd.read_csv(buf, dtype=dtypes, keep_default_na=False, na_values={c: [""] for c in dtypes})


def _quantities(raw: pd.Series) -> list[Any]:
    """Each line's quantity as the JSON gave it: a float for numbers, the parsed value otherwise."""
    numbers = pd.to_numeric(raw, errors="coerce")
    out: list[Any] = numbers.tolist()
    for i in np.flatnonzero(numbers.isna().to_numpy()):
        text = raw.iat[i]
        out[i] = None if not isinstance(text, str) else json.loads(text)
    return out


def compute(conn: psycopg.Connection, sources: pd.DataFrame, raster: Path, tables: GradingTables,
            critical: CriticalTable, *, step: Progress | None = None,
            seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """Grade the sources of ``grade_src`` (as returned by :func:`select_sources`) against the
    database's rivers and receptors and the population raster ``raster``.

    Returns one row per source with the columns of :data:`GRADE_COLUMNS` (JSON columns as text).
    Uses temporary tables dropped at the end of the caller's transaction; writes nothing else.
    Every pass is set-based (a handful of statements over all the sources, none per source); with
    ``seconds``, the wall time of each (``q``, ``population``, ``rivers`` and its parts, ``levels``)
    is recorded there.
    """
    step = step or (lambda *_: None)
    timer = PassTimer(seconds)
    n = len(sources)
    lon = sources["lon"].to_numpy(dtype=np.float64)
    lat = sources["lat"].to_numpy(dtype=np.float64)
    # the population pass is numpy on the raster (it releases the GIL): it runs in a thread while this
    # one reads the inventory lines and the database walks the rivers
    population_seconds: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        step("population", 0, n)
        population = pool.submit(_timed, population_seconds, population_within, raster, lon, lat,
                                 (tables.far_radius_m, tables.near_radius_m))
        step("Q", 0, n)
        lines = read_lines(conn)
        q = q_many(lines["pid"].to_numpy(), lines["position"].to_numpy(), lines["name"].tolist(),
                   lines["cas"].tolist(), _quantities(lines["quantity"]), lines["is_object"].to_numpy(dtype=bool),
                   n, critical, tables)
        del lines
        timer("q")
        step("Q", n, n)
        step("rivers", 0, n)
        water = water_facts(conn, tables, seconds=seconds)
        timer.restart()
        step("rivers", n, n)
        far, near = population.result()
        timer("population: wait")
        step("population", n, n)
    if seconds is not None:
        seconds["population"] = round(population_seconds["seconds"], 2)
    e_air_class, e_air_reason = e_air_many(far, near, tables)
    e_water_class = np.full(n, tables.water_otherwise, dtype=object)
    no_river = json.dumps([f"no river reach within {tables.snap_max_m:g} m of the site: nothing lies downstream"],
                          ensure_ascii=False)
    water_json = np.full(n, json.dumps(_NO_REACH, ensure_ascii=False), dtype=object)
    water_reasons = np.full(n, no_river, dtype=object)
    for pid, facts in water.items():
        receptors = [WaterReceptor(r["layer"], r.get("kind"), r["key"], r.get("name"), r["at_m"])
                     for r in facts["receptors"]]
        cls, why = e_water(receptors, facts["crosses_province"], facts["crosses_national"], tables)
        e_water_class[pid] = cls
        water_json[pid] = json.dumps(facts, ensure_ascii=False)
        water_reasons[pid] = json.dumps(why, ensure_ascii=False)
    m_air = sources["m_air_used"].to_numpy(dtype=np.float64)
    m_water = sources["m_water_used"].to_numpy(dtype=np.float64)
    g = grade_many(q.q_air, q.q_water, m_air, e_air_class, e_water_class, tables, m_water)
    reasons = np.full(n, None, dtype=object)
    for pid, problems in q.problems.items():
        reasons[pid] = json.dumps(problems, ensure_ascii=False)
    for pid, problem in g.problems.items():
        if reasons[pid] is None:
            reasons[pid] = json.dumps([problem], ensure_ascii=False)
    rejected = np.array([r is not None for r in reasons], dtype=bool)
    columns: dict[str, Any] = {
        "source_key": sources["key"].to_numpy(dtype=object),
        "status": np.where(rejected, "rejected", g.status),
        "reasons": reasons,
        "q_air": np.where(np.isin(np.arange(n), list(q.problems)), np.nan, np.round(q.q_air, 6)),
        "q_water": np.where(np.isin(np.arange(n), list(q.problems)), np.nan, np.round(q.q_water, 6)),
        "m_score": _ints(sources["m_score"].to_numpy(dtype=np.float64)),
        "m_air": _ints(m_air), "m_water": _ints(m_water), "m_note": sources["m_note"].to_numpy(dtype=object),
        "pop_far": np.round(far, 1), "pop_near": np.round(near, 1),
        "e_air": e_air_class, "e_air_reason": e_air_reason,
        "e_water": e_water_class, "e_water_reasons": water_reasons, "water": water_json,
    }
    for name in ("q_air_band", "q_water_band", "m_air_band", "m_water_band", "air_level", "water_level",
                 "risk_level", "level_min", "level_max", "air_cell", "water_cell", "label"):
        columns[name] = np.where(rejected, None, getattr(g, name))
    # texts stay Python objects (pandas would otherwise copy every one into an Arrow string column)
    out = pd.DataFrame({c: v if isinstance(v, pd.api.extensions.ExtensionArray) else pd.Series(v, dtype=v.dtype)
                        for c, v in ((c, columns[c]) for c in GRADE_COLUMNS)})
    timer("levels")
    return out


def _timed(into: dict[str, float], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, its wall time stored in ``into['seconds']``."""
    t = time.perf_counter()
    try:
        return fn(*args)
    finally:
        into["seconds"] = time.perf_counter() - t


class PassTimer:
    """Records into ``seconds`` (when given) the wall time since the previous record, under a name."""

    def __init__(self, seconds: dict[str, float] | None) -> None:
        self.seconds, self.t = seconds, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.seconds is not None:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self.t, 2)
        self.t = now

    def restart(self) -> None:
        self.t = time.perf_counter()


def _ints(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Scores as nullable integers (NaN becomes missing)."""
    return pd.array(np.where(np.isnan(values), np.nan, values), dtype="Float64").round().astype("Int64")


_NO_REACH: dict[str, Any] = {"reach": None, "receptors": [], "provinces": [], "crosses_province": False,
                             "crosses_national": False}


def population_within(raster: Path, lon: np.ndarray, lat: np.ndarray,
                      radii_m: Sequence[float]) -> list[np.ndarray]:
    """Persons within each radius (geodesic metres) of every point, from the population raster.

    Only the window of the raster around the points is read.  A raster of densities (its unit names
    km²) is turned into counts per cell with the cells' ellipsoidal areas first.
    """
    if not len(lon):
        return [np.zeros(0) for _ in radii_m]
    with rasterio.open(raster) as ds:
        if ds.crs is None or not ds.crs.is_geographic:
            raise GradingError(f"{raster}: the population raster must be in geographic lon/lat "
                               f"(EPSG:4326), not {ds.crs}")
        margin = 1.2 * max(radii_m) / (111_000.0 * np.cos(np.radians(min(abs(float(lat.max())), 85.0))))
        window = from_bounds(lon.min() - margin, lat.min() - margin, lon.max() + margin, lat.max() + margin,
                             ds.transform).round_offsets().round_lengths()
        window = window.intersection(Window(0, 0, ds.width, ds.height)) if _overlaps(window, ds) else None
        if window is None:
            return [np.zeros(len(lon)) for _ in radii_m]
        data = ds.read(1, window=window, masked=True).astype("float64").filled(0.0)
        transform = ds.window_transform(window)
        unit = " ".join(str(u) for u in (ds.units or ()) if u) + " " + str(ds.tags().get("unit", ""))
    if "km" in unit.lower():
        data = data * cell_areas_km2(transform, data.shape[0], data.shape[1], True)
    return [disk_sums(data, transform, lon, lat, r) for r in radii_m]


def _overlaps(window: Window, ds: Any) -> bool:
    return (window.col_off < ds.width and window.row_off < ds.height
            and window.col_off + window.width > 0 and window.row_off + window.height > 0)


def water_facts(conn: psycopg.Connection, tables: GradingTables, *,
                seconds: dict[str, float] | None = None) -> dict[int, dict[str, Any]]:
    """For every source of ``grade_src`` (by pid) near a river: the reach it drains to, the counted
    receptors within the downstream distance and the provinces within the reach time.  Sources with no
    reach within the snapping distance are absent.  With ``seconds``, the time of each part
    (``rivers: snap``, ``rivers: closure``, ``rivers: receptors``, ``rivers: provinces``) is recorded."""
    timer = PassTimer(seconds)
    snapped = rn.snap_points(conn, tables.snap_max_m, points="grade_src")
    timer("rivers: snap")
    if snapped == 0:
        return {}
    u = rn.min_velocity(conn) or 0.1
    horizon = max(tables.reach_s, tables.downstream_m / u)
    rn.downstream_closure(conn, horizon, origins=rn.snapped_reaches(conn))
    timer("rivers: closure")
    snaps = conn.execute(
        f"""SELECT s.pid, s.distance_m, r.key, r.name FROM point_snap s JOIN {SCHEMA}.river r ON r.id = s.reach_id""")
    out: dict[int, dict[str, Any]] = {}
    for r in snaps.fetchall():
        out[int(r["pid"])] = {"reach": {"key": r["key"], "name": r["name"], "distance_m": round(float(r["distance_m"]), 1)},
                              "receptors": [], "provinces": [], "crosses_province": False,
                              "crosses_national": False}
    for layer, kinds in _receptor_layers(tables).items():
        where = {"kind": kinds} if kinds else None
        hits = rn.features_downstream(conn, layer, tables.near_m, tables.downstream_m, where=where,
                                      columns=("name", "kind") if kinds else ("name",))
        for pid, found in hits.items():
            for h in found:
                kind = h.get("kind")
                out[pid]["receptors"].append({"layer": layer, "kind": kind, "key": h["key"], "name": h["name"],
                                              "at_m": round(h["at_m"], 1),
                                              "class": receptor_class(layer, kind, tables)})
    timer("rivers: receptors")
    for pid, provinces in rn.jurisdictions_downstream(conn, "province", tables.reach_s, min_count=2).items():
        out[pid]["provinces"] = [{"code": p["code"], "name": p["name"], "entry_s": round(p["entry_s"], 1)}
                                 for p in provinces]
        out[pid]["crosses_province"] = True
    for facts in out.values():
        facts["receptors"].sort(key=lambda r: (r["at_m"], r["key"]))
    timer("rivers: provinces")
    return out


def _receptor_layers(tables: GradingTables) -> dict[str, list[str] | None]:
    """Layers the receptor rules name, with the kinds that count (None: every row of the layer)."""
    out: dict[str, list[str] | None] = {}
    for rule in tables.receptors:
        if rule.kind is None:
            out[rule.layer] = None
        elif rule.layer not in out or out[rule.layer] is not None:
            out.setdefault(rule.layer, [])
            out[rule.layer].append(rule.kind)  # type: ignore[union-attr]
    return out


def raster_of(conn: psycopg.Connection, name: str = POPULATION) -> tuple[Path, str]:
    """The registered population raster's file and checksum."""
    row = conn.execute(f"SELECT path, sha256 FROM {SCHEMA}.raster_layer WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise GradingError(f"no raster layer named {name!r} is registered: load the population GeoTIFF first "
                           f"(riskatlas load FILE --layer population)")
    return Path(row["path"]), str(row["sha256"])
