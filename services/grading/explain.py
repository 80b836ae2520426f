"""One source's grade explained step by step, recomputed beside the stored one (nothing is written)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from gis.grading import GradingProblem, GradingTables, q_values
from layers import db
from layers.catalogue import SCHEMA_SQL
from layers.settings import DatabaseSettings
from services import river as rn
from services.errors import NotFound
from services.grading.compute import JSON_COLUMNS, compute, raster_of, select_sources
from services.grading.tables import TABLES_FILE, critical_table, load_tables, tables_sha256


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
            sql.SQL("""SELECT s.key, s.name, s.category, s.city_code, s.county_code, s.m_score, s.m_air, s.m_water,
                       s.substances, s.q_value, s.air_level, s.water_level, s.risk_level, s.grade_label,
                       s.grade_status, s.updated_at,
                       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
                FROM {schema}.risk_source_visible s WHERE s.key = %s""").format(schema=SCHEMA_SQL), (key,)).fetchone()
        if source is None:
            raise NotFound(f"no risk source has the key {key!r}")
        stored = conn.execute(
            sql.SQL("""SELECT g.*, r.started_at AS run_started_at, r.run_by, r.tables_sha256, r.raster_sha256
                FROM {schema}.risk_grade_visible g JOIN {schema}.grade_run r ON r.id = g.run_id
                WHERE g.source_key = %s""").format(schema=SCHEMA_SQL), (key,)).fetchone()
        with conn.transaction(force_rollback=True):
            raster, raster_sha = raster_of(conn)
            frame = select_sources(conn, "keys", keys=[key])
            current = compute(conn, frame, raster, tables, critical_table()).iloc[0].to_dict()
            walk = _walk(conn, float(source["lon"]), float(source["lat"]), tables)
    current = {k: _plain(v) for k, v in current.items()}
    for c in JSON_COLUMNS:
        current[c] = json.loads(current[c]) if isinstance(current[c], str) else current[c]
    compared = ("status", "q_air", "q_water", "m_air_band", "m_water_band", "e_air", "e_water", "air_level",
                "water_level", "risk_level", "level_min", "level_max", "label")
    if not may_see_restricted:
        # The database shows this caller no substance line (they hold quantities), so Q cannot be
        # recomputed here: what depends on Q comes from the stored grade; M and E are still live.
        live_m = {c: current.get(c) for c in ("m_air_band", "m_water_band")}
        current.update(_stored_q_part(stored))
        for c, band in live_m.items():
            if band is not None or stored is None:
                current[c] = band
            else:  # a medium's M band is written only where its Q is 1 or more, which needs the lines
                current[c] = stored.get(c)
        compared = ("status", "m_air_band", "m_water_band", "e_air", "e_water")
    steps = _steps(source, current, walk, tables, may_see_restricted)
    return {
        "key": source["key"], "name": source["name"], "category": source["category"],
        "city_code": source["city_code"], "county_code": source["county_code"],
        "location": {"lon": source["lon"], "lat": source["lat"], "crs": "EPSG:4326"},
        "standard": "HJ 941-2018",
        "status": current["status"],
        "pending_m": None if current["status"] != "pending-m" else (
            "Q and E are graded, but a medium whose Q is 1 or more has no M score: its level is the range the "
            "matrix allows over M1-M4 (shown as M? in the label) until the bureau scores M (m_air, m_water)"),
        "levels": None if current.get("level_min") is None else [current["level_min"], current["level_max"]],
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
           "risk_level", "level_min", "level_max", "label", "air_cell", "water_cell")


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
        {"step": 2, "title": "M: process and risk-control level, for air and for water", **src["m"],
         "m_score": source["m_score"], "m_air_input": source["m_air"], "m_water_input": source["m_water"],
         "m_air": g["m_air"], "m_water": g["m_water"], "m_air_band": g["m_air_band"],
         "m_water_band": g["m_water_band"], "from": g["m_note"],
         "one_m_for_both": source["m_air"] is None and source["m_water"] is None and source["m_score"] is not None,
         "bands": [{"name": b.name, "range": b.describe()} for b in tables.m_bands]},
        {"step": 3, "title": "E (air): population around the site", **src["e_air"],
         "population_far": g["pop_far"], "far_radius_m": tables.far_radius_m,
         "population_near": g["pop_near"], "near_radius_m": tables.near_radius_m,
         "e_air": g["e_air"], "why": g["e_air_reason"],
         "rule": "a class is reached by more people than its threshold (大于): exactly the threshold is not enough",
         "method": "zonal sum of the population raster over geodesic circles (WGS84), cells weighted by the "
                   "fraction inside"},
        {"step": 4, "title": "E (water): receptors downstream", **src["e_water"],
         "downstream_m": tables.downstream_m, "reach_hours": tables.reach_s / 3600, "near_m": tables.near_m,
         "facts": g["water"], "e_water": g["e_water"], "why": g["e_water_reasons"], "walk": walk,
         "national_border": "not found: the loaded boundaries hold no national border",
         "reserve_wetland_reading": {"setting": tables.water_reading, "class": tables.water_reading_class,
                                     "text": tables.water_reading_text,
                                     "note": "nature reserves and important wetlands downstream are "
                                             f"{tables.water_reading_class} under this reading; the other reading "
                                             "is a setting of hj941_grading.yaml (e_water.reserve_wetland_reading)"}},
        {"step": 5, "title": "Levels from the matrix", **src["matrix"],
         "air": {"cell": g["air_cell"], "level": g["air_level"], "m": g["m_air_band"]},
         "water": {"cell": g["water_cell"], "level": g["water_level"], "m": g["m_water_band"]},
         "pending": "a cell ending in M? has no M score: its level is the range of its matrix row over M1-M4"},
        {"step": 6, "title": "Enterprise level and label", **src["label"], "level": g["risk_level"],
         "level_zh": tables.level_zh.get(g["risk_level"] or "", None), "label": g["label"],
         "levels": None if g.get("level_min") is None else [g["level_min"], g["level_max"]],
         "status": g["status"],
         "rule": "the higher of the air and water levels (pending M: the higher of their ranges)"},
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
