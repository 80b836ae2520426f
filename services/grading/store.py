"""Writing a run's grades: ``risk_grade`` with every input, the levels onto ``risk_source``, set-based."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from gis.grading import GradingTables
from layers.catalogue import SCHEMA, relation
from services.grading.compute import GRADE_COLUMNS, JSON_COLUMNS, POPULATION, PassTimer
from services.grading.report import GradeRunReport


def store_grades(conn: psycopg.Connection, grades: pd.DataFrame, report: GradeRunReport, tables_sha: str,
                 raster_sha: str, tables: GradingTables, *, seconds: dict[str, float] | None = None) -> int:
    """Write the grades and the levels, set-based; fill the report's counts; return the run id.

    With ``seconds``, the wall time of each part (``stage``: the COPY into the staging table,
    ``grades``: ``risk_grade``, ``levels``: ``risk_source`` with its history, ``counts``) is recorded there.
    """
    timer = PassTimer(seconds)
    run_id = conn.execute(
        f"""INSERT INTO {SCHEMA}.grade_run (scope, batch_id, tables_sha256, raster, raster_sha256, settings)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (report.scope, report.batch_id, tables_sha, POPULATION, raster_sha,
         json.dumps({"far_radius_m": tables.far_radius_m, "near_radius_m": tables.near_radius_m,
                     "downstream_m": tables.downstream_m, "reach_s": tables.reach_s,
                     "snap_max_m": tables.snap_max_m, "near_m": tables.near_m,
                     "reserve_wetland_reading": tables.water_reading,
                     "reserve_wetland_class": tables.water_reading_class}))).fetchone()["id"]
    stage_grades(conn, grades)
    timer("stage")
    ident = sql.Identifier

    def listed(alias: str, names: tuple[str, ...]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(c)) for c in names)

    cols = sql.SQL(", ").join(map(ident, (*GRADE_COLUMNS, "substances", "run_id", "computed_at")))
    selected = sql.SQL(", ").join(sql.SQL("g.{}::jsonb" if c in JSON_COLUMNS else "g.{}").format(ident(c))
                                  for c in GRADE_COLUMNS)
    compared = (*GRADE_COLUMNS[1:], "substances")
    updates = sql.SQL(", ").join(sql.SQL("{c} = n.{c}").format(c=ident(c))
                                 for c in (*compared, "run_id", "computed_at"))
    grades_table, sources = relation("risk_grade"), relation("risk_source")
    # the runs whose inputs were this run's: a grade one of them stored, equal to this run's and computed
    # after the source's last change, is kept as it is (with the run and time that produced it)
    same_inputs = [r["id"] for r in conn.execute(sql.SQL(
        """SELECT o.id FROM {runs} o JOIN {runs} r ON r.id = %s
           WHERE (o.tables_sha256, o.raster, o.raster_sha256, o.settings)
                 IS NOT DISTINCT FROM (r.tables_sha256, r.raster, r.raster_sha256, r.settings)""").format(
        runs=relation("grade_run")), (run_id,)).fetchall()]
    # a changed grade updates its row, a first one is a plain insert (cheaper than INSERT … ON CONFLICT,
    # which probes the key before each row): the same rows and values as one upsert
    conn.execute(sql.SQL(
        """UPDATE {grades} o SET {updates}
            FROM (SELECT {selected}, s.substances, %(run)s::bigint AS run_id, now() AS computed_at, s.updated_at
                  FROM grade_stage g JOIN {sources} s ON s.key = g.source_key) n
            WHERE o.source_key = n.source_key
              AND (o.computed_at < n.updated_at OR o.run_id <> ALL(%(same)s)
                   OR ({old}) IS DISTINCT FROM ({new}))""").format(
        grades=grades_table, updates=updates, selected=selected, sources=sources,
        old=listed("o", compared), new=listed("n", compared)),
        {"run": run_id, "same": same_inputs})
    # the sources without a grade row, found before the insert: an insert that looked them up itself could
    # be planned (on an emptied table's statistics) as a scan of risk_grade per row, while it grows
    conn.execute(sql.SQL("""CREATE TEMP TABLE grade_new ON COMMIT DROP AS
                     SELECT g.source_key FROM grade_stage g
                     WHERE NOT EXISTS (SELECT 1 FROM {grades} o WHERE o.source_key = g.source_key)""").format(
        grades=grades_table))
    conn.execute("ANALYZE grade_new")
    conn.execute(sql.SQL(
        """INSERT INTO {grades} ({cols})
            SELECT {selected}, s.substances, %(run)s, now()
            FROM grade_new n JOIN grade_stage g ON g.source_key = n.source_key
            JOIN {sources} s ON s.key = g.source_key""").format(
        grades=grades_table, cols=cols, selected=selected, sources=sources),
        {"run": run_id})
    timer("grades")
    changed = write_levels(conn)
    timer("levels")
    if report.scope == "all":
        conn.execute(f"""DELETE FROM {SCHEMA}.risk_grade g
                         WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.risk_source s WHERE s.key = g.source_key)""")
    levels = conn.execute("SELECT risk_level, count(*) AS n FROM grade_stage WHERE status = 'graded' GROUP BY 1"
                          ).fetchall()
    report.levels = {r["risk_level"]: int(r["n"]) for r in levels}
    report.graded = sum(report.levels.values())
    report.pending = int((grades["status"] == "pending-m").sum())
    report.one_m_for_both = int(grades["m_note"].astype(str).str.startswith("one M for both").sum())
    report.rejected = len(grades) - report.graded - report.pending
    report.changed = int(changed)
    conn.execute(
        f"""UPDATE {SCHEMA}.grade_run SET finished_at = clock_timestamp(), sources = %s, graded = %s, rejected = %s,
               changed = %s WHERE id = %s""",
        (report.sources, report.graded, report.rejected, report.changed, run_id))
    timer("counts")
    return int(run_id)


def stage_grades(conn: psycopg.Connection, grades: pd.DataFrame) -> None:
    """Put the computed grades into the temporary table ``grade_stage`` (``risk_grade``'s columns, the
    JSON ones as text), with one binary COPY, and ANALYZE it."""
    conn.execute(f"CREATE TEMP TABLE grade_stage (LIKE {SCHEMA}.risk_grade) ON COMMIT DROP")
    conn.execute("ALTER TABLE grade_stage ALTER run_id DROP NOT NULL, ALTER computed_at DROP NOT NULL, "
                 + ", ".join(f"ALTER {c} TYPE text" for c in JSON_COLUMNS))
    types = {r["attname"]: r["t"] for r in conn.execute(
        """SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute
           WHERE attrelid = 'grade_stage'::regclass AND attnum > 0 AND NOT attisdropped""").fetchall()}
    columns = [_plain_values(grades[c]) for c in GRADE_COLUMNS]
    with conn.cursor().copy(f"COPY grade_stage ({', '.join(GRADE_COLUMNS)}) FROM STDIN (FORMAT binary)") as copy:
        copy.set_types([types[c] for c in GRADE_COLUMNS])
        for row in zip(*columns):
            copy.write_row(row)
    conn.execute("ANALYZE grade_stage")


def _plain_values(column: pd.Series) -> list[Any]:
    """A column's values as Python objects, None where missing (NaN, NA, None)."""
    if column.dtype == np.float64:
        values = column.to_numpy()
        return np.where(np.isnan(values), None, values).tolist()
    if isinstance(column.dtype, pd.Int64Dtype):
        return column.astype(object).where(column.notna(), None).tolist()
    values = column.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = None
    return values.tolist()


def write_levels(conn: psycopg.Connection) -> int:
    """Write the graded levels onto ``risk_source`` where they changed; return how many rows changed.

    ``q_band`` is written with ``q_value`` in the same statement: the band of the larger Q is the larger
    of the two media's bands (the bands are ordered, and so are their names Q0 < Q1 < Q2 < Q3).  A
    source pending M gets its Q, its label (with the levels M could give) and ``grade_status``
    'pending-m'; its levels are written where they are known whatever M is, else left empty.

    A changed grade keeps the row's previous and new versions in ``row_history``, as every inventory
    change does; a first grade (the five grade columns all empty before) keeps none: it derives values
    the row's insert, which is in the history, already implied.  So the statement-level history and
    tile-change triggers are disabled inside this transaction, and what they would have written is
    written by one INSERT each: the history of the regraded rows (as ``keep_history_statement()``
    writes it: actor, city, old and new rows, location, changed fields) and the z14 cell of every
    changed row (as ``note_tile_change()``).  Their generic form turns every old and new row to JSON
    to compare them; here only the regraded rows are, with ``riskatlas.row_jsonb_sql`` (migration 0022:
    the JSON ``to_jsonb`` gives, without PostGIS's catalogue query per geometry).  The row trigger that
    derives ``q_band`` from a changed ``q_value`` (migration 0006) is off too: this statement writes both,
    the band of the larger Q (2-3 s of a million rows for a function call per row that changes nothing).
    ``ALTER TABLE … DISABLE TRIGGER`` takes a lock that makes
    other writers of ``risk_source`` wait for the commit, and readers not at all.
    """
    conn.execute(
        f"""CREATE TEMP TABLE grade_change ON COMMIT DROP AS
            SELECT s.id, greatest(g.q_air, g.q_water) AS q_value, greatest(g.q_air_band, g.q_water_band) AS q_band,
                   g.air_level, g.water_level, g.risk_level, g.label, g.status,
                   coalesce(s.q_value::text, s.air_level, s.water_level, s.risk_level, s.grade_label) IS NOT NULL
                     AS regraded,
                   {SCHEMA}.z14_col(ST_X(s.geom)) AS tx, {SCHEMA}.z14_row(ST_Y(s.geom)) AS ty
            FROM {SCHEMA}.risk_source s JOIN grade_stage g ON g.source_key = s.key
            WHERE g.status IN ('graded', 'pending-m')
              AND (s.q_value, s.q_band, s.air_level, s.water_level, s.risk_level, s.grade_label, s.grade_status)
                  IS DISTINCT FROM (greatest(g.q_air, g.q_water), greatest(g.q_air_band, g.q_water_band), g.air_level,
                                    g.water_level, g.risk_level, g.label, g.status)""")
    n = int(conn.execute("SELECT count(*) AS n FROM grade_change").fetchone()["n"])
    if n == 0:
        return 0
    triggers = {r["proname"]: r["tgname"] for r in conn.execute(
        """SELECT p.proname, t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D'
             AND p.proname IN ('keep_history_statement', 'note_tile_change', 'follow_q_value')
             AND (t.tgtype & 16) <> 0""",
        (f"{SCHEMA}.risk_source",)).fetchall()}
    for name in triggers.values():
        conn.execute(f'ALTER TABLE {SCHEMA}.risk_source DISABLE TRIGGER "{name}"')
    history = "keep_history_statement" in triggers
    if history:
        # the row's JSON expression, made by the database from the table's columns (names quoted there)
        row_json = conn.execute("SELECT riskatlas.row_jsonb_sql(%s::regclass, 's') AS e",
                                (f"{SCHEMA}.risk_source",)).fetchone()["e"]
        conn.execute(f"""CREATE TEMP TABLE grade_old ON COMMIT DROP AS
            SELECT s.id, s.key, {row_json} AS old_row FROM {SCHEMA}.risk_source s
            JOIN grade_change c ON c.id = s.id WHERE c.regraded""")
    conn.execute(
        f"""UPDATE {SCHEMA}.risk_source s
            SET q_value = c.q_value, q_band = c.q_band, air_level = c.air_level, water_level = c.water_level,
                risk_level = c.risk_level, grade_label = c.label, grade_status = c.status
            FROM grade_change c WHERE c.id = s.id""")
    if history:  # the rows keep_history_statement() would have written: located, with the changed fields
        conn.execute(
            f"""INSERT INTO {SCHEMA}.row_history (layer, key, op, old_row, new_row, changed_by, acting_role,
                                                  acting_city, batch_id, geom, geom_m, changed)
                SELECT 'risk_source', o.key, 'update', o.old_row, j.new_row, (SELECT {SCHEMA}.acting_user()),
                       a.role, a.city, nullif(current_setting('riskatlas.batch_id', true), '')::bigint,
                       s.geom, ST_Transform(s.geom, 4549), {SCHEMA}.history_changed(o.old_row, j.new_row)
                FROM grade_old o JOIN {SCHEMA}.risk_source s ON s.id = o.id
                CROSS JOIN LATERAL (SELECT {row_json} AS new_row) j
                CROSS JOIN {SCHEMA}.actor() a
                WHERE o.old_row IS DISTINCT FROM j.new_row""")
    if "note_tile_change" in triggers:  # what note_tile_change() would have noted: the z14 cell of each row
        # (grading moves no source: the cells were taken with the changes)
        conn.execute(sql.SQL(
            """INSERT INTO {changes} (layer, extent)
               SELECT 'risk_source', ST_TileEnvelope(14, tx, ty)
               FROM (SELECT DISTINCT tx, ty FROM grade_change) p""").format(changes=relation("tile_change")))
    for name in triggers.values():
        conn.execute(f'ALTER TABLE {SCHEMA}.risk_source ENABLE TRIGGER "{name}"')
    return n
