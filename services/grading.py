"""HJ 941-2018 grading of risk sources, set-based, stored with the inputs that produced it.

One run grades a set of sources (all, those of one load batch, those changed since they were last
graded, or given keys) in four passes, each over the whole set at once:

1. Q for air and water from each source's substance inventory and the HJ 169 critical quantities
   (``gis.grading.q_many``: the inventory lines read flat, each distinct substance resolved once);
2. the population within 5 km and 500 m from the population raster: one array, exact cell-fraction
   sums over the geodesic circles of every source (``gis.grading.disk_sums``);
3. the water receptors within 10 km downstream and the provinces within the 24-hour reach, from one
   snap, one downstream closure and one join each (``services.river``);
4. the level matrix and the label (``gis.grading.grade_many``: ``grade`` once per distinct
   combination of bands and classes).

Results go to ``risk_grade`` (every input and the reasons) and the levels to ``risk_source`` (q_value,
q_band, air_level, water_level, risk_level, grade_label; ``q_value`` is the larger of the air and water
Q and ``q_band`` its HJ 941 band, the public's view of it) in one transaction, as the schema owner.  A row whose grade did not change is not touched; a changed
grade keeps the row's previous version in ``row_history``; a first grade keeps none.  Sources whose
inventory cannot be graded (negative quantity, unknown substance, no M score) keep their previous
levels and get a ``rejected`` grade row with the reasons.

Speed (``bench/grading_bench.py``, this machine, 2 cores): a million sources in about 105 s, about
70 s when nothing changed.
"""

from __future__ import annotations

from contextlib import nullcontext

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
import rasterio
import yaml
from rasterio.windows import Window, from_bounds

from gis.grading import (
    Critical,
    CriticalTable,
    GradingProblem,
    GradingTables,
    WaterReceptor,
    disk_sums,
    e_air,
    e_water,
    grade_many,
    q_many,
    q_values,
    receptor_class,
)
from gis.zonal import cell_areas_km2
from layers import db
from layers.catalogue import SCHEMA
from layers.settings import DatabaseSettings
from layers.substances import DATA, substances
from services import river as rn
from services.errors import InvalidParameter, NotFound

TABLES_FILE = DATA / "hj941_grading.yaml"
SUBSTANCES_FILE = DATA / "hj169_substances.csv"
POPULATION = "population"
Scope = Literal["all", "batch", "stale", "keys"]
Progress = Callable[[str, int, int], None]


class GradingError(RuntimeError):
    """A run cannot start: no population raster, a raster in the wrong CRS, tables that do not parse."""


# --------------------------------------------------------------------------------------------------
# the tables


@lru_cache(maxsize=4)
def load_tables(path: Path = TABLES_FILE) -> GradingTables:
    """The HJ 941 tables of ``layers/data/hj941_grading.yaml`` (or another file of the same form)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GradingError(f"{path}: cannot read the grading tables: {exc}") from None
    return GradingTables.from_dict(doc)


@lru_cache(maxsize=1)
def critical_table() -> CriticalTable:
    """The HJ 169 critical quantities, found by id, names, aliases or CAS number."""
    return CriticalTable(Critical(s.id, s.name_en, s.cas, s.critical_t, s.water, (s.name_zh, *s.aliases))
                         for s in substances())


def tables_sha256(path: Path = TABLES_FILE) -> str:
    """One checksum over the grading tables and the substance table a run used."""
    h = hashlib.sha256()
    for p in (Path(path), SUBSTANCES_FILE):
        h.update(p.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# computing

#: Columns of a computed grade, in ``risk_grade``'s names (``substances`` is copied from the source).
GRADE_COLUMNS = ("source_key", "status", "reasons", "q_air", "q_water", "q_air_band", "q_water_band", "m_score",
                 "m_band", "pop_far", "pop_near", "e_air", "e_air_reason", "e_water", "e_water_reasons", "water",
                 "air_level", "water_level", "risk_level", "air_cell", "water_cell", "label")
_JSON_COLUMNS = ("reasons", "e_water_reasons", "water")


def select_sources(conn: psycopg.Connection, scope: Scope, batch_id: int | None = None,
                   keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Put the sources in ``scope`` into the temporary table ``grade_src`` (pid 0…n-1 in key order,
    key, geom, m_score) and return pid, key, lon, lat and m_score (NaN when absent), read by COPY."""
    if scope not in _SCOPES:
        raise InvalidParameter(f"scope was {scope!r} but is expected to be one of {list(_SCOPES)}")
    conn.execute("DROP TABLE IF EXISTS grade_src")
    conn.execute(
        f"""CREATE TEMP TABLE grade_src ON COMMIT DROP AS
            SELECT (row_number() OVER (ORDER BY s.key) - 1)::bigint AS pid, s.key, s.geom, s.m_score
            FROM {SCHEMA}.risk_source s WHERE {_SCOPES[scope]}""",
        {"batch": batch_id, "keys": list(keys or [])})
    conn.execute("ALTER TABLE grade_src ADD PRIMARY KEY (pid)")
    conn.execute("ANALYZE grade_src")
    frame = _copy_frame(conn, "SELECT pid, key, ST_X(geom) AS lon, ST_Y(geom) AS lat, m_score FROM grade_src "
                              "ORDER BY pid", {"key": str})
    frame["m_score"] = pd.to_numeric(frame["m_score"], errors="coerce").astype("float64")
    return frame


def read_lines(conn: psycopg.Connection) -> pd.DataFrame:
    """The inventory lines of the sources in ``grade_src``, flat: pid, position, name, cas, the
    quantity as JSON text, and whether the line is a JSON object."""
    return _copy_frame(
        conn,
        f"""SELECT g.pid, e.position, e.v->>'name' AS name, e.v->>'cas' AS cas, e.v->'quantity_t' AS quantity,
                   jsonb_typeof(e.v) = 'object' AS is_object
            FROM grade_src g JOIN {SCHEMA}.risk_source_visible s ON s.key = g.key
            CROSS JOIN LATERAL jsonb_array_elements(s.substances) WITH ORDINALITY AS e(v, position)
            ORDER BY g.pid, e.position""",
        {"name": str, "cas": str, "quantity": str})


def _copy_frame(conn: psycopg.Connection, query: str, dtypes: dict[str, Any]) -> pd.DataFrame:
    """The result of ``query`` as a DataFrame, moved with COPY (the fast path for a million rows)."""
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
            critical: CriticalTable, *, step: Progress | None = None) -> pd.DataFrame:
    """Grade the sources of ``grade_src`` (as returned by :func:`select_sources`) against the
    database's rivers and receptors and the population raster ``raster``.

    Returns one row per source with the columns of :data:`GRADE_COLUMNS` (JSON columns as text).
    Uses temporary tables dropped at the end of the caller's transaction; writes nothing else.
    """
    step = step or (lambda *_: None)
    n = len(sources)
    step("Q", 0, n)
    lines = read_lines(conn)
    q = q_many(lines["pid"].to_numpy(), lines["position"].to_numpy(), lines["name"].tolist(),
               lines["cas"].tolist(), _quantities(lines["quantity"]), lines["is_object"].to_numpy(dtype=bool),
               n, critical, tables)
    step("Q", n, n)
    lon = sources["lon"].to_numpy(dtype=np.float64)
    lat = sources["lat"].to_numpy(dtype=np.float64)
    step("population", 0, n)
    far, near = population_within(raster, lon, lat, (tables.far_radius_m, tables.near_radius_m))
    step("population", n, n)
    step("rivers", 0, n)
    water = water_facts(conn, tables)
    step("rivers", n, n)
    air = [e_air(f, c, tables) for f, c in zip(far.tolist(), near.tolist())]
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
    m = sources["m_score"].to_numpy(dtype=np.float64)
    e_air_class = np.array([a[0] for a in air], dtype=object)
    g = grade_many(q.q_air, q.q_water, m, e_air_class, e_water_class, tables)
    reasons = np.full(n, None, dtype=object)
    for pid, problems in q.problems.items():
        reasons[pid] = json.dumps(problems, ensure_ascii=False)
    for pid, problem in g.problems.items():
        if reasons[pid] is None:
            reasons[pid] = json.dumps([problem], ensure_ascii=False)
    rejected = np.array([r is not None for r in reasons], dtype=bool)
    out = pd.DataFrame({
        "source_key": sources["key"].to_numpy(dtype=object),
        "status": np.where(rejected, "rejected", "graded"),
        "reasons": reasons,
        "q_air": np.where(np.isin(np.arange(n), list(q.problems)), np.nan, np.round(q.q_air, 6)),
        "q_water": np.where(np.isin(np.arange(n), list(q.problems)), np.nan, np.round(q.q_water, 6)),
        "m_score": pd.array(np.where(np.isnan(m), np.nan, m), dtype="Float64").round().astype("Int64"),
        "pop_far": np.round(far, 1), "pop_near": np.round(near, 1),
        "e_air": e_air_class, "e_air_reason": np.array([a[1] for a in air], dtype=object),
        "e_water": e_water_class, "e_water_reasons": water_reasons, "water": water_json,
    })
    for name in ("q_air_band", "q_water_band", "m_band", "air_level", "water_level", "risk_level", "air_cell",
                 "water_cell", "label"):
        out[name] = np.where(rejected, None, getattr(g, name))
    return out[list(GRADE_COLUMNS)]


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


def water_facts(conn: psycopg.Connection, tables: GradingTables) -> dict[int, dict[str, Any]]:
    """For every source of ``grade_src`` (by pid) near a river: the reach it drains to, the counted
    receptors within the downstream distance and the provinces within the reach time.  Sources with no
    reach within the snapping distance are absent."""
    conn.execute("DROP TABLE IF EXISTS bulk_point")
    conn.execute("CREATE TEMP TABLE bulk_point ON COMMIT DROP AS SELECT pid, geom FROM grade_src")
    conn.execute("ANALYZE bulk_point")
    if rn.snap_points(conn, tables.snap_max_m) == 0:
        return {}
    u = rn.min_velocity(conn) or 0.1
    horizon = max(tables.reach_s, tables.downstream_m / u)
    rn.downstream_closure(conn, horizon, origins=rn.snapped_reaches(conn))
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
    for pid, provinces in rn.jurisdictions_downstream(conn, "province", tables.reach_s, min_count=2).items():
        out[pid]["provinces"] = [{"code": p["code"], "name": p["name"], "entry_s": round(p["entry_s"], 1)}
                                 for p in provinces]
        out[pid]["crosses_province"] = True
    for facts in out.values():
        facts["receptors"].sort(key=lambda r: (r["at_m"], r["key"]))
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


# --------------------------------------------------------------------------------------------------
# a run


@dataclass
class GradeRunReport:
    """What a run did: how many sources, graded, rejected, changed; levels; time per pass."""

    run_id: int | None
    scope: str
    batch_id: int | None
    sources: int = 0
    graded: int = 0
    rejected: int = 0
    changed: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every source was graded, 1 when some were rejected."""
        return 1 if self.rejected else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


def raster_of(conn: psycopg.Connection, name: str = POPULATION) -> tuple[Path, str]:
    """The registered population raster's file and checksum."""
    row = conn.execute(f"SELECT path, sha256 FROM {SCHEMA}.raster_layer WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise GradingError(f"no raster layer named {name!r} is registered: load the population GeoTIFF first "
                           f"(riskatlas load FILE --layer population)")
    return Path(row["path"]), str(row["sha256"])


def grade_sources(settings: DatabaseSettings, *, scope: Scope = "stale", batch_id: int | None = None,
                  keys: Sequence[str] | None = None, tables_path: Path = TABLES_FILE,
                  progress: Progress | None = None, show_rejects: int = 50) -> GradeRunReport:
    """Grade the sources in ``scope`` and store the grades; return what happened.

    ``all``: every source; ``batch``: those written by load batch ``batch_id``; ``stale``: those
    never graded or changed since their last grade; ``keys``: the given keys.  One transaction: a
    failure leaves the previous grades in place.
    """
    if scope == "batch" and batch_id is None:
        raise InvalidParameter("scope 'batch' needs the load batch id (--batch ID)")
    if scope == "keys" and not keys:
        raise InvalidParameter("scope 'keys' needs at least one source key")
    tables = load_tables(tables_path)
    critical = critical_table()
    report = GradeRunReport(None, scope, batch_id)
    clock = time.perf_counter()
    with db.connect(settings) as conn, conn.transaction():
        db.set_actor(conn, user="riskatlas-grade", role="admin")
        raster, raster_sha = raster_of(conn)
        sources = select_sources(conn, scope, batch_id, keys)
        report.sources = len(sources)
        report.seconds["select"] = round(time.perf_counter() - clock, 2)
        t = time.perf_counter()
        grades = compute(conn, sources, raster, tables, critical, step=progress)
        report.seconds["compute"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        report.run_id = _store(conn, grades, report, tables_sha256(tables_path), raster_sha, tables)
        report.seconds["store"] = round(time.perf_counter() - t, 2)
    bad = grades[grades["status"] == "rejected"].head(show_rejects)
    report.rejects = [{"key": k, "reasons": json.loads(r)} for k, r in zip(bad["source_key"], bad["reasons"])]
    report.seconds["total"] = round(time.perf_counter() - clock, 2)
    return report


_SCOPES = {
    "all": "true",
    "batch": "s.batch_id = %(batch)s",
    "stale": f"""NOT EXISTS (SELECT 1 FROM {SCHEMA}.risk_grade g
                             WHERE g.source_key = s.key AND g.computed_at >= s.updated_at)""",
    "keys": "s.key = ANY(%(keys)s)",
}


def _store(conn: psycopg.Connection, grades: pd.DataFrame, report: GradeRunReport, tables_sha: str,
           raster_sha: str, tables: GradingTables) -> int:
    """Write the grades and the levels, set-based; fill the report's counts; return the run id."""
    run_id = conn.execute(
        f"""INSERT INTO {SCHEMA}.grade_run (scope, batch_id, tables_sha256, raster, raster_sha256, settings)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (report.scope, report.batch_id, tables_sha, POPULATION, raster_sha,
         json.dumps({"far_radius_m": tables.far_radius_m, "near_radius_m": tables.near_radius_m,
                     "downstream_m": tables.downstream_m, "reach_s": tables.reach_s,
                     "snap_max_m": tables.snap_max_m, "near_m": tables.near_m}))).fetchone()["id"]
    conn.execute(f"CREATE TEMP TABLE grade_stage (LIKE {SCHEMA}.risk_grade) ON COMMIT DROP")
    conn.execute("ALTER TABLE grade_stage ALTER run_id DROP NOT NULL, ALTER computed_at DROP NOT NULL")
    cols = ", ".join(GRADE_COLUMNS)
    with conn.cursor().copy(f"COPY grade_stage ({cols}) FROM STDIN (FORMAT csv)") as copy:
        for start in range(0, len(grades), 100_000):
            copy.write(grades.iloc[start:start + 100_000].to_csv(header=False, index=False, na_rep=""))
    conn.execute("ANALYZE grade_stage")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*GRADE_COLUMNS[1:], "substances", "run_id", "computed_at"))
    conn.execute(
        f"""INSERT INTO {SCHEMA}.risk_grade ({cols}, substances, run_id, computed_at)
            SELECT {", ".join("g." + c for c in GRADE_COLUMNS)}, s.substances, %s, now()
            FROM grade_stage g JOIN {SCHEMA}.risk_source s ON s.key = g.source_key
            ON CONFLICT (source_key) DO UPDATE SET {updates}""", (run_id,))
    changed = _write_levels(conn)
    if report.scope == "all":
        conn.execute(f"""DELETE FROM {SCHEMA}.risk_grade g
                         WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.risk_source s WHERE s.key = g.source_key)""")
    levels = conn.execute("SELECT risk_level, count(*) AS n FROM grade_stage WHERE status = 'graded' GROUP BY 1"
                          ).fetchall()
    report.levels = {r["risk_level"]: int(r["n"]) for r in levels}
    report.graded = sum(report.levels.values())
    report.rejected = len(grades) - report.graded
    report.changed = int(changed)
    conn.execute(
        f"""UPDATE {SCHEMA}.grade_run SET finished_at = clock_timestamp(), sources = %s, graded = %s, rejected = %s,
               changed = %s WHERE id = %s""",
        (report.sources, report.graded, report.rejected, report.changed, run_id))
    return int(run_id)


def _write_levels(conn: psycopg.Connection) -> int:
    """Write the graded levels onto ``risk_source`` where they changed; return how many rows changed.

    ``q_band`` is written with ``q_value`` in the same statement: the band of the larger Q is the larger
    of the two media's bands (the bands are ordered, and so are their names Q0 < Q1 < Q2 < Q3).

    A changed grade keeps the row's previous and new versions in ``row_history``, as every inventory
    change does; a first grade (the five grade columns all empty before) keeps none: it derives values
    the row's insert, which is in the history, already implied.  So the statement-level history
    trigger is disabled inside this transaction and the history of the regraded rows written by one
    INSERT; ``ALTER TABLE … DISABLE TRIGGER`` takes a lock that makes other writers of
    ``risk_source`` wait for the commit, and readers not at all.
    """
    conn.execute(
        f"""CREATE TEMP TABLE grade_change ON COMMIT DROP AS
            SELECT s.id, greatest(g.q_air, g.q_water) AS q_value, greatest(g.q_air_band, g.q_water_band) AS q_band,
                   g.air_level, g.water_level, g.risk_level, g.label,
                   coalesce(s.q_value::text, s.air_level, s.water_level, s.risk_level, s.grade_label) IS NOT NULL
                     AS regraded
            FROM {SCHEMA}.risk_source s JOIN grade_stage g ON g.source_key = s.key
            WHERE g.status = 'graded'
              AND (s.q_value, s.q_band, s.air_level, s.water_level, s.risk_level, s.grade_label)
                  IS DISTINCT FROM (greatest(g.q_air, g.q_water), greatest(g.q_air_band, g.q_water_band), g.air_level,
                                    g.water_level, g.risk_level, g.label)""")
    n = int(conn.execute("SELECT count(*) AS n FROM grade_change").fetchone()["n"])
    if n == 0:
        return 0
    triggers = [r["tgname"] for r in conn.execute(
        """SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D'
             AND p.proname = 'keep_history_statement' AND (t.tgtype & 16) <> 0""",
        (f"{SCHEMA}.risk_source",)).fetchall()]
    for name in triggers:
        conn.execute(f'ALTER TABLE {SCHEMA}.risk_source DISABLE TRIGGER "{name}"')
    if triggers:
        conn.execute(f"""CREATE TEMP TABLE grade_old ON COMMIT DROP AS
            SELECT s.id, s.key, to_jsonb(s) AS old_row FROM {SCHEMA}.risk_source s
            JOIN grade_change c ON c.id = s.id WHERE c.regraded""")
    conn.execute(
        f"""UPDATE {SCHEMA}.risk_source s
            SET q_value = c.q_value, q_band = c.q_band, air_level = c.air_level, water_level = c.water_level,
                risk_level = c.risk_level, grade_label = c.label
            FROM grade_change c WHERE c.id = s.id""")
    if triggers:
        conn.execute(
            f"""INSERT INTO {SCHEMA}.row_history (layer, key, op, old_row, new_row, changed_by, acting_role,
                                                  acting_city, batch_id)
                SELECT 'risk_source', o.key, 'update', o.old_row, to_jsonb(s), {SCHEMA}.acting_user(),
                       a.role, a.city, nullif(current_setting('riskatlas.batch_id', true), '')::bigint
                FROM grade_old o JOIN {SCHEMA}.risk_source s ON s.id = o.id
                CROSS JOIN {SCHEMA}.actor() a""")
    for name in triggers:
        conn.execute(f'ALTER TABLE {SCHEMA}.risk_source ENABLE TRIGGER "{name}"')
    return n


# --------------------------------------------------------------------------------------------------
# one source, step by step


def explain(settings: DatabaseSettings, key: str, *, may_see_restricted: bool,
            tables_path: Path = TABLES_FILE, conn: psycopg.Connection | None = None) -> dict[str, Any]:
    """Why source ``key`` has its grade: each step of HJ 941 with its inputs, clause and result.

    The grade is recomputed from the current inventory, rivers, receptors and raster (nothing is
    written) and set beside the stored one, with ``matches_stored`` saying whether they agree (they
    differ when the source or its surroundings changed since the last ``riskatlas grade``).  The
    substance lines hold quantities, so they are shown only to roles that may see restricted fields;
    so are Q for air and water and each line's q/Q, since for a one-substance site Q times the
    critical quantity is the tonnage: other roles see the Q bands, and reasons that name a quantity
    or a Q say so without the number.
    """
    tables = load_tables(tables_path)
    with (nullcontext(conn) if conn is not None else db.connect(settings, "app")) as conn:
        source = conn.execute(
            f"""SELECT s.key, s.name, s.category, s.city_code, s.county_code, s.m_score, s.substances,
                       s.q_value, s.air_level, s.water_level, s.risk_level, s.grade_label, s.updated_at,
                       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
                FROM {SCHEMA}.risk_source_visible s WHERE s.key = %s""", (key,)).fetchone()
        if source is None:
            raise NotFound(f"no risk source has the key {key!r}")
        stored = conn.execute(
            f"""SELECT g.*, r.started_at AS run_started_at, r.run_by, r.tables_sha256, r.raster_sha256
                FROM {SCHEMA}.risk_grade_visible g JOIN {SCHEMA}.grade_run r ON r.id = g.run_id
                WHERE g.source_key = %s""", (key,)).fetchone()
        with conn.transaction(force_rollback=True):
            raster, raster_sha = raster_of(conn)
            frame = select_sources(conn, "keys", keys=[key])
            current = compute(conn, frame, raster, tables, critical_table()).iloc[0].to_dict()
            walk = _walk(conn, float(source["lon"]), float(source["lat"]), tables)
    current = {k: _plain(v) for k, v in current.items()}
    for c in _JSON_COLUMNS:
        current[c] = json.loads(current[c]) if isinstance(current[c], str) else current[c]
    compared = ("status", "q_air", "q_water", "m_band", "e_air", "e_water", "air_level", "water_level", "risk_level",
                "label")
    if not may_see_restricted:
        # The database shows this caller no substance line (they hold quantities), so Q cannot be
        # recomputed here: what depends on Q comes from the stored grade; M and E are still live.
        live_m = current.get("m_band")
        current.update(_stored_q_part(stored))
        if live_m is not None or stored is None:
            current["m_band"] = live_m
        elif stored is not None:
            current["m_band"] = stored.get("m_band")  # the compute stops before M when it has no line
        compared = ("status", "m_band", "e_air", "e_water")
    steps = _steps(source, current, walk, tables, may_see_restricted)
    return {
        "key": source["key"], "name": source["name"], "category": source["category"],
        "city_code": source["city_code"], "county_code": source["county_code"],
        "location": {"lon": source["lon"], "lat": source["lat"], "crs": "EPSG:4326"},
        "standard": "HJ 941-2018",
        "status": current["status"],
        "reasons": (current["reasons"] or []) if may_see_restricted else public_reasons(current["reasons"] or []),
        "level": current["risk_level"], "label": current["label"],
        "steps": steps,
        "stored": None if stored is None else {
            "status": stored["status"], "risk_level": stored["risk_level"], "label": stored["label"],
            "computed_at": stored["computed_at"].isoformat(), "run_id": stored["run_id"],
            "run_by": stored["run_by"], "tables_sha256": stored["tables_sha256"],
            "raster_sha256": stored["raster_sha256"]},
        "matches_stored": stored is not None and all(_same(stored[c], current[c]) for c in compared),
        "inputs_changed_since": None if stored is None else source["updated_at"] > stored["computed_at"],
        "tables_sha256": tables_sha256(tables_path), "raster_sha256": raster_sha,
    }


_Q_PART = ("status", "reasons", "q_air", "q_water", "q_air_band", "q_water_band", "air_level", "water_level",
           "risk_level", "label", "air_cell", "water_cell")


def _stored_q_part(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The parts of a stored grade that depend on Q (Q itself is NULL for callers who may not see it)."""
    if stored is None:
        return {"status": "not graded", "reasons": ["this source has not been graded yet (`riskatlas grade`)"],
                **{c: None for c in _Q_PART[2:]}}
    out = {c: stored.get(c) for c in _Q_PART}
    if isinstance(out["reasons"], str):
        out["reasons"] = json.loads(out["reasons"])
    return out


def _plain(v: Any) -> Any:
    """A pandas/numpy scalar as a plain Python value (None for missing)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
    return a == b


def _walk(conn: psycopg.Connection, lon: float, lat: float, tables: GradingTables) -> dict[str, Any]:
    """The downstream walk from the source over the reach time: reaches and jurisdictions in order."""
    try:
        start = rn.snap(conn, lon, lat, tables.snap_max_m)
    except rn.NoRiverNearby as exc:
        return {"reach": None, "note": str(exc), "reaches": [], "entered": []}
    steps = rn.downstream(conn, start, horizon_s=tables.reach_s)
    entered = [e for e in rn.jurisdictions_entered(conn, steps, ("province", "city")) if e.entry_s <= tables.reach_s]
    return {
        "reach": {"key": start.key, "name": start.name, "distance_m": round(start.distance_m, 1)},
        "reaches": [{"key": s.key, "name": s.name, "from_m": round(s.start_m, 1), "to_m": round(s.end_m, 1),
                     "from_h": round(s.t_start_s / 3600, 2), "to_h": round(s.t_end_s / 3600, 2)} for s in steps],
        "entered": [{"level": e.properties["level"], "code": e.key, "name": e.name, "at_m": round(e.entry_m, 1),
                     "at_h": round(e.entry_s / 3600, 2)} for e in entered],
    }


def _steps(source: dict[str, Any], g: dict[str, Any], walk: dict[str, Any], tables: GradingTables,
           may_see_restricted: bool) -> list[dict[str, Any]]:
    """The explanation, one entry per step of the standard."""
    src = tables.sources
    q_step: dict[str, Any] = {
        "step": 1, "title": "Q: quantities stored over critical quantities", **src["q"],
        "q_air_band": g["q_air_band"], "q_water_band": g["q_water_band"],
        "bands": [{"name": "Q0", "range": f"x < {tables.q_general_below:g} (general directly)"}]
        + [{"name": b.name, "range": b.describe()} for b in tables.q_bands],
    }
    if may_see_restricted:
        q_step.update({"q_air": g["q_air"], "q_water": g["q_water"],
                       "substances": _substance_lines(source["substances"], tables)})
    else:
        q_step["substances"] = RESTRICTED_Q
    return [
        q_step,
        {"step": 2, "title": "M: process and risk-control level", **src["m"], "m_score": g["m_score"],
         "m_band": g["m_band"], "bands": [{"name": b.name, "range": b.describe()} for b in tables.m_bands]},
        {"step": 3, "title": "E (air): population around the site", **src["e_air"],
         "population_far": g["pop_far"], "far_radius_m": tables.far_radius_m,
         "population_near": g["pop_near"], "near_radius_m": tables.near_radius_m,
         "e_air": g["e_air"], "why": g["e_air_reason"],
         "method": "zonal sum of the population raster over geodesic circles (WGS84), cells weighted by the "
                   "fraction inside"},
        {"step": 4, "title": "E (water): receptors downstream", **src["e_water"],
         "downstream_m": tables.downstream_m, "reach_hours": tables.reach_s / 3600, "near_m": tables.near_m,
         "facts": g["water"], "e_water": g["e_water"], "why": g["e_water_reasons"], "walk": walk,
         "national_border": "not found: the loaded boundaries hold no national border"},
        {"step": 5, "title": "Levels from the matrix", **src["matrix"],
         "air": {"cell": g["air_cell"], "level": g["air_level"]},
         "water": {"cell": g["water_cell"], "level": g["water_level"]}},
        {"step": 6, "title": "Enterprise level and label", **src["label"], "level": g["risk_level"],
         "level_zh": tables.level_zh.get(g["risk_level"] or "", None), "label": g["label"],
         "rule": "the higher of the air and water levels"},
    ]


#: What roles without restricted access read in place of Q and the inventory lines.
RESTRICTED_Q = ("restricted: the inventory's quantities, Q for air and water and each line's q/Q (from which "
                "a one-substance site's tonnage follows) are shown to analysts, stewards and admins; the Q "
                "bands are public")

_Q_NUMBER = re.compile(r"\bQ is \S+ \(≥ ([^)]+)\)")


def public_reasons(reasons: Sequence[str]) -> list[str]:
    """Why a source could not be graded, as roles without restricted access may read it.

    A reason about an inventory line names the substance and its quantity: it becomes one sentence
    saying that the inventory has a problem.  A reason that states a Q ("air Q is 3.2 (≥ 1) but the
    source has no M score") keeps the threshold and loses the number.  Other reasons (the M score, the
    sensitivity) hold nothing restricted and stay as they are.
    """
    out: list[str] = []
    for reason in reasons:
        if reason.startswith("substance"):
            text = ("the substance inventory cannot be graded (the lines and their problems are shown to "
                    "analysts, stewards and admins)")
        else:
            text = _Q_NUMBER.sub(lambda m: f"Q is ≥ {m.group(1)}", reason)
        if text not in out:
            out.append(text)
    return out


def _substance_lines(items: Any, tables: GradingTables) -> list[dict[str, Any]]:
    """Each inventory line with what it resolved to and its q/Q, or why it could not be used."""
    out = []
    table = critical_table()
    for i, item in enumerate(items or (), start=1):
        line: dict[str, Any] = {"line": i, "item": item}
        try:
            part = q_values([item], table, tables).parts[0]
            line.update({"id": part.id, "critical_t": part.critical_t, "ratio": round(part.ratio, 6),
                         "counts_for_air": part.air, "counts_for_water": part.water})
        except GradingProblem as exc:
            line["problem"] = str(exc)
        out.append(line)
    return out
