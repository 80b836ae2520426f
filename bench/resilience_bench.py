"""Load and fault run against primary + replica (issue 15): not a test, it prints figures.

    .venv/bin/python -m bench.resilience_bench                   # 50 clients, 60 s, demo region
    .venv/bin/python -m bench.resilience_bench --clients 20 --seconds 20    # a quick run

What it does, on a cluster of its own (``--state``, ports ``--pg-port`` and ``--pg-port`` + 1):

1. start the primary, load the demo region (once), start the replica, serve the API (``riskatlas serve``);
2. **unloaded**: each cheap request (items, tiles, nearby) ``--baseline`` times, one at a time: p50/p95;
3. **loaded**: ``--clients`` concurrent clients for ``--seconds``, mixing items, tiles and nearby with
   an overlay analysis and a steward's upload; the replica is killed (SIGKILL of its postmaster) at a
   third of the run and started again at two thirds. Counted: every status, every 5xx and transport
   error; p50/p95 per kind, and the cheap requests' p95 against the unloaded p95 (target: within 2x);
   how many reads the replica served (``X-Read-From``);
4. **API killed during an upload**: a 20,000-row upload is sent, the API process is killed with SIGKILL
   while the load runs in the database, and the rows of that file are counted: all or none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from layers import cluster, db, migrate, replica
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"bench-steward": {"user": "bench-steward", "role": "steward", "city": "320100"}}
CHEAP = ("items", "tiles", "nearby")


def requests_for(kind: str, rnd: random.Random) -> tuple[str, str, dict[str, Any]]:
    """(method, path, httpx kwargs) of one request of ``kind``, at a random place in Nanjing."""
    lon, lat = rnd.uniform(118.6, 119.0), rnd.uniform(31.9, 32.2)
    if kind == "items":
        d = 0.05
        return "GET", (f"/collections/risk_source/items?limit=50&bbox={lon - d:.4f},{lat - d:.4f},"
                       f"{lon + d:.4f},{lat + d:.4f}"), {}
    if kind == "tiles":
        z = 12
        x, y = _tile(lon, lat, z)
        return "GET", f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}", {}
    if kind == "nearby":
        return "GET", f"/nearby?x={lon:.5f}&y={lat:.5f}&radius=5000&limit=10", {}
    if kind == "overlay":
        return "POST", "/analysis/overlay", {"json": {"left": "risk_source", "right": "protection_zone",
                                                      "predicate": "within-distance", "distance_m": 500,
                                                      "limit": 50}}
    key = rnd.randrange(10**9)
    csv = "key,name,category,lon,lat\n" + "".join(
        f"BENCH-{key}-{i},压测企业{i},chemical,{lon + i * 1e-4:.5f},{lat:.5f}\n" for i in range(5))
    return "POST", "/uploads", {"files": {"file": ("bench.csv", csv.encode(), "text/csv")},
                                "data": {"layer": "risk_source"}, "headers": {"X-API-Key": "bench-steward"}}


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def baseline(base: str, n: int) -> dict[str, dict[str, float]]:
    rnd = random.Random(1)
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for kind in CHEAP:
            times = []
            for _ in range(n):
                method, path, kw = requests_for(kind, rnd)
                t0 = time.perf_counter()
                r = await client.request(method, path, **kw)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code in (200, 204), (path, r.status_code, r.text[:200])
            out[kind] = {"p50_ms": round(p(times, 0.5), 1), "p95_ms": round(p(times, 0.95), 1)}
    return out


async def loaded(base: str, clients: int, seconds: float, settings: DatabaseSettings) -> dict[str, Any]:
    """``clients`` concurrent clients for ``seconds``; the replica is killed and restarted meanwhile."""
    times: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    errors: list[str] = []
    from_replica: Counter[str] = Counter()
    reads, replica_reads = [0, 0, 0], [0, 0, 0]  # cheap reads per third: before, during, after the kill
    deadline = time.monotonic() + seconds
    weights = {"items": 40, "tiles": 30, "nearby": 25, "overlay": 3, "upload": 2}

    async def one(i: int) -> None:
        rnd = random.Random(i)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            while time.monotonic() < deadline:
                kind = rnd.choices(list(weights), list(weights.values()))[0]
                method, path, kw = requests_for(kind, rnd)
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, path, **kw)
                except httpx.HTTPError as exc:
                    errors.append(f"{kind}: {type(exc).__name__}")
                    continue
                times[kind].append((time.perf_counter() - t0) * 1000)
                statuses[kind][r.status_code] += 1
                phase = min(2, int(3 * (1 - (deadline - time.monotonic()) / seconds)))
                reads[phase] += kind in CHEAP
                if r.headers.get("x-read-from") == "replica":
                    from_replica[kind] += 1
                    replica_reads[phase] += kind in CHEAP
                if r.status_code >= 500:
                    errors.append(f"{kind} {r.status_code}: {r.text[:160]}")

    async def faults() -> list[str]:
        log = []
        await asyncio.sleep(seconds / 3)
        pid = int((replica.paths(settings).data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        log.append(f"{time.strftime('%H:%M:%S')} replica postmaster {pid} killed (SIGKILL)")
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(_restart_replica, settings)
        log.append(f"{time.strftime('%H:%M:%S')} replica started again")
        return log

    fault_task = asyncio.create_task(faults())
    await asyncio.gather(*(one(i) for i in range(clients)))
    fault_log = await fault_task
    return {
        "kinds": {k: {"n": len(v), "p50_ms": round(p(v, 0.5), 1), "p95_ms": round(p(v, 0.95), 1),
                      "statuses": dict(statuses[k]), "from_replica": from_replica[k]} for k, v in times.items()},
        "errors": errors[:20], "error_count": len(errors), "faults": fault_log,
        "requests_per_s": round(sum(len(v) for v in times.values()) / seconds, 1),
        "cheap_reads_served_by_replica": {name: f"{replica_reads[i]}/{reads[i]}" for i, name in
                                          enumerate(("before the kill", "replica dead", "after restart"))},
    }


def _restart_replica(settings: DatabaseSettings) -> None:
    deadline = time.monotonic() + 30
    while cluster.is_running(replica.paths(settings)) and time.monotonic() < deadline:
        time.sleep(0.2)  # the killed postmaster's children leave
    replica.start(settings)


def kill_during_upload(base: str, settings: DatabaseSettings, serve: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Send a 20,000-row upload, SIGKILL the API while the load runs; count that file's rows."""
    tag = f"KILL-{int(time.time())}"
    rows = "".join(f"{tag}-{i},断电测试{i},chemical,{118.6 + (i % 200) * 0.002:.5f},{31.95 + (i // 200) * 0.002:.5f}\n"
                   for i in range(20_000))
    body = ("key,name,category,lon,lat\n" + rows).encode()
    result: dict[str, Any] = {}

    def send() -> None:
        try:
            r = httpx.post(base + "/uploads", files={"file": ("big.csv", body, "text/csv")},
                           data={"layer": "risk_source"}, headers={"X-API-Key": "bench-steward"}, timeout=300)
            result["status"] = r.status_code
        except httpx.HTTPError as exc:
            result["client"] = type(exc).__name__

    t = threading.Thread(target=send)
    t.start()
    deadline = time.monotonic() + 120
    busy = 0
    while time.monotonic() < deadline:  # the load runs in the database (the superuser sees its statement)
        busy = int(cluster.psql_admin(settings, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                                "AND query ILIKE '%stage%' AND pid <> pg_backend_pid()",
                                      db=settings.db_name).strip())
        if busy:
            break
    serve.send_signal(signal.SIGKILL)
    serve.wait()
    t.join(timeout=60)
    with db.connect(settings) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the orphaned backend notices the dead client and rolls back
            left = conn.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                                "AND application_name <> 'psql' AND pid <> pg_backend_pid() AND state = 'active'"
                                ).fetchone()["n"]
            conn.rollback()
            if not left:
                break
            time.sleep(0.2)
        n = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE %s", (tag + "-%",)
                         ).fetchone()["n"]
    return {"rows_in_file": 20_000, "rows_found": n, "all_or_nothing": n in (0, 20_000), "client_saw": result,
            "killed_while_loading": bool(busy)}


def start_api(settings: DatabaseSettings, port: int, keys: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RISKATLAS_STATE_DIR": str(settings.state_dir), "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_REPLICA_PORT": str(settings.replica_pg_port), "RISKATLAS_DB_NAME": settings.db_name,
           "RISKATLAS_API_API_KEYS_FILE": str(keys), "RISKATLAS_API_RATE_PER_ADDRESS": "100000",
           "RISKATLAS_API_RATE_BURST_PER_ADDRESS": "100000", "RISKATLAS_API_RATE_PER_KEY": "100000",
           "RISKATLAS_API_RATE_BURST_PER_KEY": "100000", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(settings.state_dir / "api.log", "ab"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API did not start; see {settings.state_dir / 'api.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state", type=Path, default=Path("/var/tmp/riskatlas-resilience-bench"))
    ap.add_argument("--pg-port", type=int, default=55446)
    ap.add_argument("--api-port", type=int, default=8041)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--baseline", type=int, default=100)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    s = DatabaseSettings(database_url=None, state_dir=args.state, pg_port=args.pg_port,
                         replica_port=args.pg_port + 1)
    cluster.start(s)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
        loaded_already = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"]
    if not loaded_already:
        from etl.demo import load_demo
        from services.after_load import after_demo

        print("loading the demo region (once) ...", flush=True)
        load_demo(s)
        after_demo(s)
    replica.start(s)
    keys = args.state / "bench-keys.json"
    keys.write_text(json.dumps(KEYS))
    base = f"http://127.0.0.1:{args.api_port}"
    api = start_api(s, args.api_port, keys)
    figures: dict[str, Any] = {}
    try:
        figures["unloaded"] = asyncio.run(baseline(base, args.baseline))
        print("unloaded:", json.dumps(figures["unloaded"]), flush=True)
        figures["loaded"] = asyncio.run(loaded(base, args.clients, args.seconds, s))
        for kind in CHEAP:
            figures["loaded"]["kinds"][kind]["p95_vs_unloaded"] = round(
                figures["loaded"]["kinds"][kind]["p95_ms"] / figures["unloaded"][kind]["p95_ms"], 2)
        print("loaded:", json.dumps(figures["loaded"], ensure_ascii=False, indent=1), flush=True)
        figures["kill_api_during_upload"] = kill_during_upload(base, s, api)
        print("API killed during an upload:", json.dumps(figures["kill_api_during_upload"], ensure_ascii=False),
              flush=True)
    finally:
        if api.poll() is None:
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=30)
    five = sum(n for k in figures.get("loaded", {}).get("kinds", {}).values()
               for code, n in k["statuses"].items() if int(code) >= 500)
    print(f"\n5xx during the run: {five}; transport errors: "
          f"{figures.get('loaded', {}).get('error_count')}; cheap p95 loaded/unloaded: "
          + ", ".join(f"{k} {figures['loaded']['kinds'][k]['p95_vs_unloaded']}x" for k in CHEAP if 'loaded' in figures))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
