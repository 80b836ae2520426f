"""A grading run: select the sources in scope, compute their grades, store them, in one transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from layers import db
from layers.settings import DatabaseSettings
from services.errors import InvalidParameter
from services.grading.compute import Progress, Scope, compute, raster_of, select_sources
from services.grading.report import GradeRunReport
from services.grading.store import store_grades
from services.grading.tables import TABLES_FILE, critical_table, load_tables, tables_sha256

#: Session settings of a run (the run's transaction only): memory for its temporary tables and its joins.
TEMP_BUFFERS = "1GB"
WORK_MEM = "256MB"


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
        # a run joins and stages a million rows in temporary tables: room for them in memory (temp_buffers
        # takes effect only before the session's first temporary table, which this fresh connection has not)
        conn.execute("SELECT set_config('temp_buffers', %s, true), set_config('work_mem', %s, true)",
                     (TEMP_BUFFERS, WORK_MEM))
        raster, raster_sha = raster_of(conn)
        sources = select_sources(conn, scope, batch_id, keys)
        report.sources = len(sources)
        report.seconds["select"] = round(time.perf_counter() - clock, 2)
        t = time.perf_counter()
        passes: dict[str, float] = {}
        grades = compute(conn, sources, raster, tables, critical, step=progress, seconds=passes)
        report.seconds["compute"] = round(time.perf_counter() - t, 2)
        report.seconds.update({f"compute: {k}": v for k, v in passes.items()})
        t = time.perf_counter()
        # a signed context lasts ten minutes: the writes present a fresh one for the same actor
        db.set_actor(conn, user="riskatlas-grade", role="admin")
        stored: dict[str, float] = {}
        report.run_id = store_grades(conn, grades, report, tables_sha256(tables_path), raster_sha, tables,
                                     seconds=stored)
        report.seconds["store"] = round(time.perf_counter() - t, 2)
        report.seconds.update({f"store: {k}": v for k, v in stored.items()})
    bad = grades[grades["status"] == "rejected"].head(show_rejects)
    report.rejects = [{"key": k, "reasons": json.loads(r)} for k, r in zip(bad["source_key"], bad["reasons"])]
    report.seconds["total"] = round(time.perf_counter() - clock, 2)
    return report
