"""Grading benchmark: HJ 941 grades of N risk sources, population and rivers included.

    .venv/bin/python -m bench.grading_bench --rows 1000000
    .venv/bin/python -m bench.grading_bench --rows 200000 --db riskatlas_grading_bench_200k

Builds (once) a database ``riskatlas_grading_bench`` holding the demo region (boundaries, rivers,
water sources, protection zones, protected areas, stations, the population raster) plus N synthetic
risk sources spread over the region's counties, each with one to four HJ 169 substances and an M
score.  The sources are written straight into ``risk_source`` with COPY (this measures grading, not
loading).  Then it clears every grade and times ``grade_sources(scope='all')``: reading the sources,
Q, the population within 5 km and 500 m of each from the raster, the river snap and the downstream
receptors and provinces, the matrix, and writing ``risk_grade`` and the levels on ``risk_source`` (with
their row history).  Prints the time of each pass and the total, then times a second run over the
same data (every grade recomputed, none changed).  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg import sql

from bench.load_bench import synthetic_points
from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from layers.substances import substances
from services.grading import grade_sources

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "riskatlas_grading_bench"


def bench_database(base: DatabaseSettings, name: str = DB_NAME) -> DatabaseSettings:
    """The benchmark database with the demo region loaded (created on first use)."""
    from etl.demo import load_demo

    s = base.with_db(name)
    cluster.bootstrap(base, s.db_name)
    try:
        with db.connect(s) as conn:
            migrate.upgrade(conn, s)
    except migrate.MigrationError:  # built with a migration edited since: start again from scratch
        cluster.drop_database(base, s.db_name)
        cluster.bootstrap(base, s.db_name)
        with db.connect(s) as conn:
            migrate.upgrade(conn, s)
    with db.connect(s) as conn:
        rivers = conn.execute("SELECT count(*) AS n FROM riskatlas.river").fetchone()["n"]
    if not rivers:
        load_demo(s, ROOT / ".riskatlas" / "bench" / "grading_demo")
    return s


def synthetic_sources(n: int, seed: int = 11) -> pd.DataFrame:
    """N sources in the region's counties with substances drawn from the HJ 169 table."""
    df = synthetic_points(n, seed=seed)
    rng = np.random.default_rng(seed)
    table = substances()
    counts = rng.integers(1, 5, n)
    picks = rng.integers(0, len(table), counts.sum())
    scale = rng.lognormal(mean=0.0, sigma=1.2, size=counts.sum())
    items, k = [], 0
    for c in counts:
        row = []
        for j in range(k, k + c):
            s = table[picks[j]]
            row.append({"name": s.name_en, "cas": s.cas, "quantity_t": round(float(s.critical_t * scale[j]), 3)})
        k += c
        items.append(json.dumps(row, ensure_ascii=False))
    df["substances"] = items
    return df


def install_sources(s: DatabaseSettings, df: pd.DataFrame) -> None:
    """Replace the benchmark sources with ``df`` and clear every grade."""
    with db.connect(s) as conn:
        conn.execute("DELETE FROM riskatlas.risk_source WHERE key LIKE 'B%'")
        with conn.cursor().copy("COPY riskatlas.risk_source (key, name, category, m_score, status, synthetic, "
                                "substances, geom) FROM STDIN") as copy:
            for r in df.itertuples(index=False):
                copy.write_row((r.key, r.name, r.category, int(r.m_score), r.status, True, r.substances,
                                f"SRID=4326;POINT({r.lon} {r.lat})"))
        conn.commit()
    _clear_grades(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default=DB_NAME, help=f"the benchmark database (default {DB_NAME}); one per size "
                                                  "saves reinstalling the sources when switching sizes")
    args = ap.parse_args()
    base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(base)
    s = bench_database(base, args.db)
    t0 = time.perf_counter()
    with db.connect(s) as conn:
        have = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE 'B%'").fetchone()["n"]
    if have == args.rows:
        _clear_grades(s)
    else:
        install_sources(s, synthetic_sources(args.rows))
    print(f"{args.rows} sources ready in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    report = grade_sources(s, scope="all")
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"graded {report.graded} of {report.sources} sources ({report.rejected} rejected, {report.changed} "
          f"levels written) in {elapsed:.1f} s; peak memory {peak:.0f} MB")
    print("passes (s): " + ", ".join(f"{k} {v}" for k, v in report.seconds.items()))
    print("levels: " + ", ".join(f"{k} {v}" for k, v in sorted(report.levels.items())))
    t0 = time.perf_counter()
    again = grade_sources(s, scope="all")
    print(f"graded again, nothing changed: {time.perf_counter() - t0:.1f} s ({again.changed} levels written)")
    print("passes (s): " + ", ".join(f"{k} {v}" for k, v in again.seconds.items()))


def _clear_grades(s: DatabaseSettings) -> None:
    """Reset grades and levels so the timed run writes every row, as a first run does (the reset itself
    is not an edit: it bypasses the history and tile triggers, and empties the history and tile notes),
    and rewrite ``risk_source`` as a load leaves it (``VACUUM FULL``: every page filled to the table's
    fillfactor, no dead versions)."""
    with db.connect(s) as conn:
        conn.execute("TRUNCATE riskatlas.risk_grade, riskatlas.grade_run, riskatlas.row_history, "
                     "riskatlas.tile_change CASCADE")
        conn.execute("ALTER TABLE riskatlas.risk_source DISABLE TRIGGER USER")
        graded = sql.SQL("num_nonnulls(q_value, q_band, air_level, water_level, risk_level, grade_label, "
                         "grade_status) > 0")
        conn.execute(sql.SQL("UPDATE riskatlas.risk_source SET q_value = NULL, q_band = NULL, air_level = NULL, "
                             "water_level = NULL, risk_level = NULL, grade_label = NULL, grade_status = NULL "
                             "WHERE {}").format(graded))
        conn.execute("ALTER TABLE riskatlas.risk_source ENABLE TRIGGER USER")
        conn.commit()
        conn.autocommit = True
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("VACUUM FULL riskatlas.risk_source")
        conn.execute("VACUUM ANALYZE riskatlas.risk_source")

if __name__ == "__main__":
    main()
