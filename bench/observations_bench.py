"""Observation store benchmark: file ingest rate, push rate, a station's year, latest per station.

    .venv/bin/python -m bench.observations_bench --stations 50 --months 3
    .venv/bin/python -m bench.observations_bench --stations 200 --months 96   # ~108 M rows (100 M scale)

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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("pm25", "pm10", "so2", "no2", "o3", "o3_8h", "co")
CITY = "320100"
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


def push(s: DatabaseSettings, stations: int, items: int, batch: int, port: int) -> dict[str, Any]:
    """Pushes over loopback to a real server; times after the server answers /health."""
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
            t0 = datetime(2014, 1, 1, tzinfo=timezone(timedelta(hours=8)))  # before the files: all new rows
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


def queries(s: DatabaseSettings, stations: int, months: int) -> dict[str, Any]:
    """A station's year of hourly PM2.5 and the latest of every station and parameter, as the app role."""
    year_from = START + timedelta(days=max(0, months * 30 - 365))
    year_sql = """SELECT observed_at, value, flag FROM riskatlas.observation
                  WHERE station_key = %s AND parameter = 'pm25' AND observed_at >= %s AND observed_at < %s
                  ORDER BY observed_at"""
    latest_sql = "SELECT station_key, parameter, observed_at, value, flag FROM riskatlas.observation_latest"
    tz = timezone(timedelta(hours=8))
    year, latest, rows_year, rows_latest = [], [], 0, 0
    with db.connect(s, "app") as conn:
        conn.execute(year_sql, ("B-0001", year_from.replace(tzinfo=tz), (year_from + timedelta(days=365)).replace(tzinfo=tz)))
        for k in range(30):
            key = f"B-{1 + (k * 7919) % stations:04d}"
            t = time.perf_counter()
            rows = conn.execute(year_sql, (key, year_from.replace(tzinfo=tz),
                                           (year_from + timedelta(days=365)).replace(tzinfo=tz))).fetchall()
            year.append((time.perf_counter() - t) * 1000)
            rows_year = len(rows)
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
    if existing == 0:
        out["ingest"] = ingest(s, args.stations, args.months, folder)
    out["push"] = push(s, args.stations, args.push_items, args.push_batch, args.port)
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
    q = out["queries"]
    print(f"a station's year of hourly PM2.5 ({q['station_year_rows']} rows): {q['station_year_ms_median']} ms "
          f"(goal < 50 ms); latest of every station and parameter ({q['latest_rows']} rows): "
          f"{q['latest_ms_median']} ms (goal < 30 ms)")


if __name__ == "__main__":
    main()
