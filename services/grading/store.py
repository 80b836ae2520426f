"""Writing a run's grades: ``risk_grade`` with every input, the levels onto ``risk_source``, set-based."""

from __future__ import annotations

import json

import pandas as pd
import psycopg

from gis.grading import GradingTables
from layers.catalogue import SCHEMA
from services.grading.compute import GRADE_COLUMNS, POPULATION
from services.grading.report import GradeRunReport


def store_grades(conn: psycopg.Connection, grades: pd.DataFrame, report: GradeRunReport, tables_sha: str,
           raster_sha: str, tables: GradingTables) -> int:
    """Write the grades and the levels, set-based; fill the report's counts; return the run id."""
    run_id = conn.execute(
        f"""INSERT INTO {SCHEMA}.grade_run (scope, batch_id, tables_sha256, raster, raster_sha256, settings)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (report.scope, report.batch_id, tables_sha, POPULATION, raster_sha,
         json.dumps({"far_radius_m": tables.far_radius_m, "near_radius_m": tables.near_radius_m,
                     "downstream_m": tables.downstream_m, "reach_s": tables.reach_s,
                     "snap_max_m": tables.snap_max_m, "near_m": tables.near_m,
                     "reserve_wetland_reading": tables.water_reading,
                     "reserve_wetland_class": tables.water_reading_class}))).fetchone()["id"]
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
    changed = write_levels(conn)
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
    return int(run_id)


def write_levels(conn: psycopg.Connection) -> int:
    """Write the graded levels onto ``risk_source`` where they changed; return how many rows changed.

    ``q_band`` is written with ``q_value`` in the same statement: the band of the larger Q is the larger
    of the two media's bands (the bands are ordered, and so are their names Q0 < Q1 < Q2 < Q3).  A
    source pending M gets its Q, its label (with the levels M could give) and ``grade_status``
    'pending-m'; its levels are written where they are known whatever M is, else left empty.

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
                   g.air_level, g.water_level, g.risk_level, g.label, g.status,
                   coalesce(s.q_value::text, s.air_level, s.water_level, s.risk_level, s.grade_label) IS NOT NULL
                     AS regraded
            FROM {SCHEMA}.risk_source s JOIN grade_stage g ON g.source_key = s.key
            WHERE g.status IN ('graded', 'pending-m')
              AND (s.q_value, s.q_band, s.air_level, s.water_level, s.risk_level, s.grade_label, s.grade_status)
                  IS DISTINCT FROM (greatest(g.q_air, g.q_water), greatest(g.q_air_band, g.q_water_band), g.air_level,
                                    g.water_level, g.risk_level, g.label, g.status)""")
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
                risk_level = c.risk_level, grade_label = c.label, grade_status = c.status
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
