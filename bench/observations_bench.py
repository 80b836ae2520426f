"""Observation store benchmark: file ingest rate, push rate, a station's year, latest per station.

    .venv/bin/python -m bench.observations_bench --stations 50 --months 3
    .venv/bin/python -m bench.observations_bench --stations 200 --months 96   # ~108 M rows (100 M scale)
    .venv/bin/python -m bench.observations_bench --stations 200 --generate-months 96 --months 1

``--generate-months G`` builds the store at scale without waiting on the loader: G months of hourly values
(every station, 7 parameters) written by PostgreSQL itself, each month as a table indexed and attached as
its partition.  It generates the 12 latest months first and times the queries, then the G - 12 earlier
months and times the same queries again (the same year, the same rows: the store's size is what changed),
then loads ``--months`` further months of files through the loader into the full store.

In a database of its own (``riskatlas_obsbench`` on the project's cluster): ``--stations`` synthetic air
stations, then ``--months`` months of hourly values of 7 parameters per station written as one wide CSV
per month and loaded with the observation loader (``etl.observations``: read, check, COPY, one upsert,
history and latest-value triggers), timed file by file; then pushes of ``--push-batch`` items over
loopback to ``POST /observations`` of a real server (uvicorn, an administrator key), for ``--push-items``
items; then a station's year of hourly PM2.5 (median of 30 stations) and the latest values of every
station and parameter (median of 30).  Goals (issue 13): ingest ≥ 200 000 observations/s, push
≥ 20 000/s, a year < 50 ms, latest < 30 ms.  Prints the figures (``--json`` for a document) and the
peak memory of the loading process.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from psycopg import sql

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("pm25", "pm10", "so2", "no2", "o3", "o3_8h", "co")
CITY = "320100"
CST = timezone(timedelta(hours=8))
START = datetime(2015, 1, 1)


def bench_database(base: DatabaseSettings, stations: int) -> DatabaseSettings:
    """A migrated database with one city and ``stations`` synthetic air stations in it."""
    s = base.with_db("riskatlas_obsbench")
    cluster.bootstrap(base, s.db_name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
        conn.execute("""INSERT INTO riskatlas.admin_area (code, name, level, geom) VALUES (%s, '南京市', 'city',
                        ST_Multi(ST_MakeEnvelope(118.3, 31.2, 119.3, 32.6, 4326))) ON CONFLICT DO NOTHING""", (CITY,))
        conn.execute("""INSERT INTO riskatlas.monitoring_station (key, name, medium, kind, city_code, owner_city,
                            synthetic, geom)
                        SELECT format('B-%%s', lpad(i::text, 4, '0')), format('bench %%s', i), 'air', 'air-quality',
                               %s, %s, true, ST_SetSRID(ST_MakePoint(118.4 + (i %% 50) * 0.015, 31.3 + (i / 50) * 0.02),
                                                        4326)
                        FROM generate_series(1, %s) i ON CONFLICT (key) DO NOTHING""", (CITY, CITY, stations))
        conn.commit()
    return s


def month_file(folder: Path, stations: int, month: int, rng: np.random.Generator) -> tuple[Path, int]:
    """One month of hourly values for every station, wide; returns the file and its observation count."""
    first = pd.Timestamp(START) + pd.DateOffset(months=month)
    hours = pd.date_range(first, first + pd.DateOffset(months=1) - pd.Timedelta(hours=1), freq="h")
    keys = np.repeat([f"B-{i:04d}" for i in range(1, stations + 1)], len(hours))
    times = np.tile(hours.strftime("%Y-%m-%d %H:%M").to_numpy(), stations)
    n = len(keys)
    frame = pd.DataFrame({"station": keys, "time": times})
    for p in PARAMS:
        frame[p] = np.round(rng.lognormal(3.5, 0.5, n), 1) if p != "co" else np.round(rng.lognormal(-0.3, 0.4, n), 2)
    path = folder / f"obs_{first:%Y%m}.csv"
    frame.to_csv(path, index=False)
    return path, n * len(PARAMS)


def ingest(s: DatabaseSettings, stations: int, months: int, folder: Path) -> dict[str, Any]:
    from etl.load import Actor
    from etl.observations import load_observation_file

    rng = np.random.default_rng(7)
    total_obs, total_s, per_file = 0, 0.0, []
    for m in range(months):
        path, n = month_file(folder, stations, m, rng)
        t = time.perf_counter()
        report = load_observation_file(s, path, actor=Actor(user="bench"))
        dt = time.perf_counter() - t
        assert report.rows_inserted == n, report.to_dict()
        total_obs += n
        total_s += dt
        per_file.append(round(n / dt))
        path.unlink()
    with db.connect(s) as conn:
        conn.execute("ANALYZE riskatlas.observation")
        conn.commit()
    return {"observations": total_obs, "seconds": round(total_s, 2), "per_second": round(total_obs / total_s),
            "per_second_by_file": per_file, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                   / 1024)}


def push(s: DatabaseSettings, stations: int, items: int, batch: int, port: int, t0: datetime) -> dict[str, Any]:
    """Pushes of hourly values from ``t0`` on (new rows) over loopback to a real server; times after the
    server answers /health."""
    from services import accounts

    with db.connect(s) as conn:
        conn.execute("DELETE FROM riskatlas.api_key WHERE account = 'bench-admin'")
        conn.execute("DELETE FROM riskatlas.account WHERE name = 'bench-admin'")
        accounts.create_account(conn, "bench-admin", "admin", None)
        key = accounts.create_key(conn, "bench-admin").secret
        conn.commit()
    env = {**os.environ, "RISKATLAS_DB_NAME": s.db_name, "RISKATLAS_PG_PORT": str(s.pg_port),
           "RISKATLAS_STATE_DIR": str(s.state_dir), "RISKATLAS_API_RATE_PER_KEY": "100000",
           "RISKATLAS_API_RATE_BURST_PER_KEY": "100000"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.web.app:app_from_env", "--factory",
                               "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=120) as client:
            for _ in range(600):
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            sent, elapsed = 0, 0.0
            i = 0
            while sent < items:
                body = []
                for _ in range(batch):
                    st = 1 + i % stations
                    hour = i // stations
                    body.append({"station": f"B-{st:04d}", "parameter": "pm25", "value": 20 + (i % 97),
                                 "time": (t0 + timedelta(hours=hour)).isoformat()})
                    i += 1
                payload = json.dumps({"items": body}).encode()
                t = time.perf_counter()
                r = client.post(f"{url}/observations", content=payload,
                                headers={"X-API-Key": key, "Content-Type": "application/json"})
                elapsed += time.perf_counter() - t
                assert r.status_code == 200 and r.json()["rows_inserted"] == batch, r.text[:500]
                sent += batch
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"observations": sent, "batch": batch, "seconds": round(elapsed, 2), "per_second": round(sent / elapsed)}


def generate(s: DatabaseSettings, stations: int, first: int, last: int) -> dict[str, Any]:
    """Months ``first`` .. ``last - 1`` counted back from START (1 = the month before START) written by
    PostgreSQL: per month a table of hourly values of every station and parameter, its primary key and
    BRIN index built after the rows, attached as the month's partition; the latest values follow."""
    t0 = time.perf_counter()
    rows = 0
    with db.connect(s) as conn:
        conn.autocommit = True
        for back in range(first, last):
            m = (pd.Timestamp(START) - pd.DateOffset(months=back)).to_pydatetime()
            nxt = (pd.Timestamp(m) + pd.DateOffset(months=1)).to_pydatetime()
            name = f"observation_y{m:%Y}m{m:%m}"
            lo, hi = m.replace(tzinfo=UTC), nxt.replace(tzinfo=UTC)
            table, bounds = sql.Identifier("riskatlas", name), sql.Identifier(f"{name}_bounds")
            with conn.transaction():
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                conn.execute(sql.SQL("CREATE TABLE {} (LIKE riskatlas.observation INCLUDING DEFAULTS "
                                     "INCLUDING CONSTRAINTS)").format(table))
                n = conn.execute(sql.SQL(
                    """INSERT INTO {} (station_key, parameter, observed_at, value, flag, owner_city, batch_id,
                                       updated_at, updated_by)
                       SELECT 'B-' || lpad(st::text, 4, '0'), p, t,
                              CASE WHEN p = 'co' THEN round((0.3 + random())::numeric, 2)
                                   ELSE round((5 + 95 * random())::numeric, 1) END::float8,
                              'valid', %s, NULL, now(), 'bench'
                       FROM generate_series(1, %s) st, unnest(%s::text[]) p,
                            generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour', interval '1 hour') t
                       WHERE t < %s  -- the files start at START, China Standard Time"""
                ).format(table), (CITY, stations, list(PARAMS), lo, hi, START.replace(tzinfo=CST))).rowcount
                rows += n
                # the bounds as a constraint first: attaching then needs no second scan
                conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (observed_at >= {} AND observed_at < {})")
                             .format(table, bounds, sql.Literal(lo), sql.Literal(hi)))
                conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (station_key, parameter, observed_at)").format(table))
                conn.execute(sql.SQL("CREATE INDEX ON {} USING brin (observed_at)").format(table))
                conn.execute(sql.SQL("ALTER TABLE riskatlas.observation ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})")
                             .format(table, sql.Literal(lo), sql.Literal(hi)))
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, bounds))
            print(f"  generated {m:%Y-%m}: {n:,} rows ({rows:,} so far, {time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
        conn.execute("""INSERT INTO riskatlas.observation_latest AS l (station_key, parameter, observed_at, value, flag,
                                                                        owner_city, batch_id)
                        SELECT DISTINCT ON (station_key, parameter) station_key, parameter, observed_at, value, flag,
                               owner_city, batch_id
                        FROM riskatlas.observation WHERE observed_at >= %s
                        ORDER BY station_key, parameter, observed_at DESC
                        ON CONFLICT (station_key, parameter) DO UPDATE SET observed_at = EXCLUDED.observed_at,
                            value = EXCLUDED.value, flag = EXCLUDED.flag, batch_id = EXCLUDED.batch_id
                        WHERE EXCLUDED.observed_at >= l.observed_at""",
                     ((pd.Timestamp(START) - pd.DateOffset(months=1)).to_pydatetime().replace(tzinfo=UTC),))
        conn.execute("ANALYZE riskatlas.observation")
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}


def queries(s: DatabaseSettings, stations: int, months: int, year_from: datetime | None = None) -> dict[str, Any]:
    """A station's year of hourly PM2.5 and the latest of every station and parameter, as the app role."""
    year_from = year_from or START + timedelta(days=max(0, months * 30 - 365))
    # as /stations/{key}/series reads it (services.observations.series.VALUES_SQL): one row of arrays, binary
    year_sql = """SELECT array_agg(extract(epoch FROM observed_at)::float8) AS e, array_agg(value) AS v,
                         array_agg(flag) AS f, count(*) AS n FROM riskatlas.observation
                  WHERE station_key = %s AND parameter = 'pm25' AND observed_at >= %s AND observed_at < %s"""
    latest_sql = "SELECT station_key, parameter, observed_at, value, flag FROM riskatlas.observation_latest"
    tz = timezone(timedelta(hours=8))
    year, latest, rows_year, rows_latest = [], [], 0, 0
    with db.connect(s, "app") as conn:
        conn.execute(year_sql, ("B-0001", year_from.replace(tzinfo=tz), (year_from + timedelta(days=365)).replace(tzinfo=tz)))
        for k in range(30):
            key = f"B-{1 + (k * 7919) % stations:04d}"
            t = time.perf_counter()
            row = conn.cursor().execute(year_sql, (key, year_from.replace(tzinfo=tz),
                                                   (year_from + timedelta(days=365)).replace(tzinfo=tz)),
                                        binary=True, prepare=True).fetchone()
            year.append((time.perf_counter() - t) * 1000)
            rows_year = row["n"]
            t = time.perf_counter()
            rows = conn.execute(latest_sql).fetchall()
            latest.append((time.perf_counter() - t) * 1000)
            rows_latest = len(rows)
    return {"station_year_ms_median": round(statistics.median(year), 2), "station_year_rows": rows_year,
            "latest_ms_median": round(statistics.median(latest), 2), "latest_rows": rows_latest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--months", type=int, default=3, help="months of hourly data (96 months × 200 stations ≈ 108 M rows)")
    ap.add_argument("--push-items", type=int, default=100_000)
    ap.add_argument("--push-batch", type=int, default=10_000)
    ap.add_argument("--port", type=int, default=8053)
    ap.add_argument("--generate-months", type=int, default=0,
                    help="months of history written by PostgreSQL before the files (100 M scale: 96 × 200 stations)")
    ap.add_argument("--keep", action="store_true", help="keep the bench database (to add months to it)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = DatabaseSettings()
    cluster.start(base)
    s = bench_database(base, args.stations)
    folder = base.state_dir.resolve() / "bench" / "observations"
    folder.mkdir(parents=True, exist_ok=True)
    with db.connect(s) as conn:
        existing = conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"]
    out: dict[str, Any] = {"stations": args.stations, "months": args.months, "existing_rows": existing}
    if args.generate_months and existing == 0:
        year_from = (pd.Timestamp(START) - pd.DateOffset(months=12)).to_pydatetime()
        out["generated_12"] = generate(s, args.stations, 1, min(13, args.generate_months + 1))
        out["queries_12_months"] = queries(s, args.stations, 12, year_from)
        out["generated_rest"] = generate(s, args.stations, 13, args.generate_months + 1)
        with db.connect(s) as conn:
            out["generated_rows"] = conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"]
        out["queries_full"] = queries(s, args.stations, 12, year_from)
        existing = 0
    if existing == 0:
        out["ingest"] = ingest(s, args.stations, args.months, folder)
    after_files = (pd.Timestamp(START) + pd.DateOffset(months=args.months + 1)).to_pydatetime().replace(tzinfo=CST)
    out["push"] = push(s, args.stations, args.push_items, args.push_batch, args.port, after_files)
    with db.connect(s) as conn:
        out["rows"] = conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"]
        out["table_mb"] = round(conn.execute("SELECT sum(pg_total_relation_size(c.oid)) / 1e6 AS mb FROM pg_inherits i "
                                             "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                                             "'riskatlas.observation'::regclass").fetchone()["mb"])
    out["queries"] = queries(s, args.stations, args.months)
    if not args.keep:
        cluster.drop_database(base, s.db_name)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    ing = out.get("ingest", {})
    print(f"rows in the store: {out['rows']:,} ({out['table_mb']} MB)")
    if ing:
        print(f"file ingest: {ing['observations']:,} observations in {ing['seconds']} s = {ing['per_second']:,}/s "
              f"(goal 200,000/s); peak memory {ing['peak_rss_mb']} MB")
    p = out["push"]
    print(f"push: {p['observations']:,} in batches of {p['batch']:,}: {p['seconds']} s = {p['per_second']:,}/s "
          "(goal 20,000/s)")
    if "queries_full" in out:
        a, b = out["queries_12_months"], out["queries_full"]
        print(f"generated {out['generated_rows']:,} rows in {out['generated_12']['seconds'] + out['generated_rest']['seconds']:.0f} s;"
              f" the same year and latest at 12 months of store vs at {args.generate_months} months:")
        print(f"  a station's year ({b['station_year_rows']} rows): {a['station_year_ms_median']} ms -> "
              f"{b['station_year_ms_median']} ms; latest ({b['latest_rows']} rows): {a['latest_ms_median']} ms -> "
              f"{b['latest_ms_median']} ms")
    q = out["queries"]
    print(f"a station's year of hourly PM2.5 ({q['station_year_rows']} rows): {q['station_year_ms_median']} ms "
          f"(goal < 50 ms); latest of every station and parameter ({q['latest_rows']} rows): "
          f"{q['latest_ms_median']} ms (goal < 30 ms)")


if __name__ == "__main__":
    main()
