"""Inspections benchmark: a phone's sync of records with photos, and a site's history on a large store.

    .venv/bin/python -m bench.inspections_bench                    # 50 records, 100 photos of ~2 MB, 100k records
    .venv/bin/python -m bench.inspections_bench --records 100000 --json

In a database of its own (``riskatlas_inspbench`` on the project's cluster, made again each run): the
region's real boundaries, ``--sites`` synthetic chemical sites in Nanjing and an inspector of Nanjing.
Then, over loopback to a real server (uvicorn): ``POST /inspections/sync`` of ``--sync-records``
records with two photos each (noise JPEGs of about 2 MB, decoded and re-encoded by the server), timed
from the request to the answer; then ``--records`` inspection records spread over the sites (with a
finding every tenth), and ``GET /sites/{key}/history`` for 30 sites (median and worst), as the
Nanjing steward.  Goals (issue 12): the sync < 5 s, a history < 50 ms.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
CITY = "320100"
CST = timezone(timedelta(hours=8))


def bench_database(base: DatabaseSettings, sites: int) -> DatabaseSettings:
    """A migrated database with the region's boundaries and ``sites`` synthetic sites in Nanjing."""
    from etl.load import load_file
    from etl.sources.boundaries import region_boundaries

    s = base.with_db("riskatlas_inspbench")
    cluster.drop_database(base, s.db_name)
    cluster.bootstrap(base, s.db_name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "admin_area.geojson"
        region_boundaries().to_file(path, driver="GeoJSON")
        load_file(s, path, "admin_area", sandbox=False)
    with db.connect(s) as conn:
        conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, city_code, owner_city, synthetic, geom)
                        SELECT format('IB-%%s', lpad(i::text, 5, '0')), format('bench %%s', i), 'chemical', %s, %s, true,
                               ST_SetSRID(ST_MakePoint(118.70 + (i %% 40) * 0.004, 31.95 + (i / 40) * 0.004), 4326)
                        FROM generate_series(1, %s) i""", (CITY, CITY, sites))
        conn.commit()
    return s


def photo(rng: np.random.Generator, target: int = 2 * 1024**2) -> bytes:
    """A noise JPEG of about ``target`` bytes (noise does not compress: the size is the file's)."""
    from PIL import Image

    side = 900
    while True:
        im = Image.fromarray(rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=92)
        if out.tell() >= target * 0.95:
            return out.getvalue()
        side = int(side * (target / out.tell()) ** 0.5) + 8


def serve(s: DatabaseSettings) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "RISKATLAS_DB_NAME": s.db_name, "RISKATLAS_PG_PORT": str(s.pg_port),
           "RISKATLAS_STATE_DIR": str(s.state_dir), "RISKATLAS_API_RATE_PER_KEY": "100000",
           "RISKATLAS_API_RATE_BURST_PER_KEY": "100000"}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.web.app:app_from_env", "--factory",
                                 "--fd", str(listener.fileno()), "--log-level", "warning"], cwd=ROOT, env=env,
                                pass_fds=(listener.fileno(),))
    url = f"http://127.0.0.1:{port}"
    httpx.get(url + "/health", timeout=60).raise_for_status()  # waits in the listen backlog
    return proc, url


def keys(s: DatabaseSettings) -> dict[str, str]:
    from services import accounts

    out = {}
    with db.connect(s) as conn:
        for name, role in (("bench.insp", "inspector"), ("bench.nj", "steward")):
            accounts.create_account(conn, name, role, CITY)
            out[name] = accounts.create_key(conn, name).secret
        conn.commit()
    return out


def sync(url: str, key: str, n: int, rng: np.random.Generator) -> dict[str, Any]:
    files, recs = [], []
    pictures = [photo(rng) for _ in range(4)]  # distinct bytes per file: vary the last bytes of the comment-free data
    for i in range(n):
        names = []
        for j in range(2):
            data = pictures[(2 * i + j) % 4]
            names.append(f"r{i}-{j}.jpg")
            files.append(("photos", (names[-1], data, "image/jpeg")))
        recs.append({"client_id": str(uuid.uuid4()), "site_key": f"IB-{1 + i:05d}", "template": "chemical",
                     "template_version": 2, "answers": {"emergency-plan": True, "drill-count": 2},
                     "position": {"lon": 118.70 + (1 + i) % 40 * 0.004 + 0.0003, "lat": 31.95 + (1 + i) // 40 * 0.004},
                     "accuracy_m": 5, "device_time": datetime.now(CST).isoformat(), "photos": names})
    size = sum(len(f[1][1]) for f in files)
    with httpx.Client(timeout=300) as client:
        t = time.perf_counter()
        r = client.post(url + "/inspections/sync", headers={"X-API-Key": key}, data={"records": json.dumps(recs)},
                        files=files)
        elapsed = time.perf_counter() - t
    doc = r.json()
    return {"records": n, "photos": len(files), "megabytes": round(size / 1024**2, 1), "seconds": round(elapsed, 2),
            "status": r.status_code, "saved": doc.get("saved"), "goal_s": 5}


def fill(s: DatabaseSettings, records: int, sites: int) -> dict[str, Any]:
    """``records`` records spread over the sites over the past year, one finding per ten; as the owner."""
    t = time.perf_counter()
    with db.connect(s) as conn:
        conn.execute("""INSERT INTO riskatlas.inspection_record (key, client_id, site_key, inspector, template,
                            template_version, answers, position, accuracy_m, device_time, synthetic)
                        SELECT u::text, u, format('IB-%%s', lpad((1 + i %% %s)::text, 5, '0')), '', 'chemical', 2,
                               '{"emergency-plan": true}', ST_SetSRID(ST_MakePoint(118.701 + (i %% 40) * 0.004,
                               31.951 + ((i %% %s) / 40) * 0.004), 4326), 5, now() - (i %% 365) * interval '1 day', true
                        FROM (SELECT gen_random_uuid() AS u, i FROM generate_series(1, %s) i) g""",
                     (sites, sites, records))
        conn.execute("""INSERT INTO riskatlas.inspection_finding (key, record_id, ordinal, kind, severity)
                        SELECT key || ':1', id, 1, 'leak', 'medium' FROM riskatlas.inspection_record WHERE id % 10 = 0""")
        conn.execute("ANALYZE riskatlas.inspection_record")
        conn.execute("ANALYZE riskatlas.inspection_finding")
        conn.commit()
    return {"records": records, "seconds": round(time.perf_counter() - t, 1)}


def history(url: str, key: str, sites: int) -> dict[str, Any]:
    times, events = [], []
    with httpx.Client(timeout=60) as client:
        client.get(f"{url}/sites/IB-00001/history", headers={"X-API-Key": key})  # warm the connection
        for i in range(30):
            t = time.perf_counter()
            r = client.get(f"{url}/sites/IB-{1 + (i * 37) % sites:05d}/history", headers={"X-API-Key": key})
            times.append((time.perf_counter() - t) * 1000)
            events.append(len(r.json()["events"]))
        base = []
        for _ in range(30):  # the server's floor on this machine: a request that does no work
            t = time.perf_counter()
            client.get(f"{url}/health")
            base.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "worst_ms": round(max(times), 1),
            "events_per_site": statistics.median(events), "health_median_ms": round(statistics.median(base), 1),
            "goal_ms": 50}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=1000)
    p.add_argument("--sync-records", type=int, default=50)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the database riskatlas_inspbench afterwards")
    a = p.parse_args()
    base = DatabaseSettings()
    cluster.start(base)
    s = bench_database(base, a.sites)
    k = keys(s)
    proc, url = serve(s)
    rng = np.random.default_rng(12)
    try:
        out = {"sync": sync(url, k["bench.insp"], a.sync_records, rng), "fill": fill(s, a.records, a.sites),
               "history": history(url, k["bench.nj"], a.sites)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if not a.keep:
            cluster.drop_database(base, s.db_name)
    print(json.dumps(out, indent=2) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
