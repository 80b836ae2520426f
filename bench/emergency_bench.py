"""Emergency benchmark: the spill trace across the whole demo network and the plume footprint with
receptor counts (issue 6, "Speed": under 200 ms and under 500 ms).

    .venv/bin/python -m bench.emergency_bench [--db riskatlas_emergency_bench] [--repeat 20]

Uses a database of its own (created and loaded with the demo region when empty).  Spill: one release
at the head of every river of the network (reaches with nothing upstream) with the longest horizon
(720 h), so each trace walks to the end of the network; plus the usual 72 h release in Ma'anshan.
Plume: threat zones with population and receptors at three sites.  Each case is timed in the service
(one warm connection) and end to end through the HTTP app (in-process client, JSON included).
Prints median and p95 per case.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _settings(db_name: str):  # type: ignore[no-untyped-def]
    from layers import cluster, db, migrate
    from layers.settings import DatabaseSettings

    base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(base)
    cluster.bootstrap(base, db_name)
    s = base.with_db(db_name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
        empty = conn.execute("SELECT count(*) AS n FROM riskatlas.river").fetchone()["n"] == 0
    if empty:
        from etl.demo import load_demo

        print(f"loading the demo region into {db_name} ...", flush=True)
        load_demo(s, ROOT / ".riskatlas" / "bench-demo")
    return s


def _time(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    fn()  # warm: plans, caches, the raster's first read
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return times, out


def _line(name: str, ms: list[float], extra: str = "") -> None:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print(f"  {name:<44} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="riskatlas_emergency_bench", help="database to use (created if missing)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per case")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from etl.raster import raster_path
    from layers import db
    from services.emergency.plume import plume_zones
    from services.emergency.requests import PlumeRequest, SpillRequest
    from services.emergency.spill import trace_spill
    from services.web.app import create_app

    s = _settings(args.db)
    with db.connect(s, "app") as conn:
        heads = conn.execute(
            """SELECT r.key, r.name, ST_X(ST_StartPoint(r.geom)) AS x, ST_Y(ST_StartPoint(r.geom)) AS y
               FROM riskatlas.river r
               WHERE NOT EXISTS (SELECT 1 FROM riskatlas.river u WHERE u.to_node = r.from_node)
               ORDER BY r.key""").fetchall()
        reaches = conn.execute("SELECT count(*) AS n FROM riskatlas.river").fetchone()["n"]
    raster = raster_path(s, "population")

    spills = [(f"spill from the head of {h['name']} ({h['key']}), 720 h",
               SpillRequest(x=h["x"], y=h["y"], substance="benzene", mass_t=10, horizon_h=720)) for h in heads]
    spills.append(("spill in Ma'anshan on the Yangtze, 72 h",
                   SpillRequest(x=118.45, y=31.753, substance="ammonia", mass_t=20)))
    plumes = [
        ("plume chlorine 2 kg/s D, Nanjing chemical park",
         dict(x=118.79, y=32.27, substance="chlorine", release_rate_kg_s=2, wind_speed_m_s=3, stability="D")),
        ("plume ammonia 20 kg/s F, Nanjing chemical park",
         dict(x=118.79, y=32.27, substance="ammonia", release_rate_kg_s=20, wind_speed_m_s=1.5, stability="F")),
        ("plume chlorine 5 kg/s F, Yizheng (capped)",
         dict(x=119.18, y=32.27, substance="chlorine", release_rate_kg_s=5, wind_speed_m_s=2, stability="F")),
    ]
    print(f"demo network: {reaches} reaches, {len(heads)} river heads; {args.repeat} timed runs per case")
    print("spill trace (snap, recursive-CTE walk, jurisdictions at 3 levels, intakes/zones/stations/areas, model)")
    worst = 0.0
    with db.connect(s, "app") as conn:
        for name, req in spills:
            ms, res = _time(lambda req=req: trace_spill(conn, req), args.repeat)
            worst = max(worst, statistics.median(ms))
            n_reach = sum(1 for f in res["features"] if f["properties"]["role"] == "reach")
            n_rec = sum(1 for f in res["features"] if f["properties"]["role"] == "receptor")
            _line(name, ms, f"{n_reach} reaches, {n_rec} receptors, {len(res['jurisdictions'])} jurisdictions")
        print(f"  -> slowest median spill trace: {worst:.1f} ms (target < 200 ms)")
        print("plume footprint (2 zones, population zonal sums, receptors, jurisdictions)")
        worst = 0.0
        for name, body in plumes:
            req = PlumeRequest(wind_from_deg=45, **body)
            ms, res = _time(lambda req=req: plume_zones(conn, req, raster), args.repeat)
            worst = max(worst, statistics.median(ms))
            z = next(f["properties"] for f in res["features"] if f["properties"].get("endpoint") == "endpoint-2")
            _line(name, ms, f"far edge {z['far_edge_m']:.0f} m, pop {z['population']}, risk sources "
                            f"{z['counts']['risk_source']}, water {z['counts']['water_reserve']}, "
                            f"jurisdictions {len(res['jurisdictions'])}")
        print(f"  -> slowest median plume: {worst:.1f} ms (target < 500 ms)")

    print("end to end through the app (in-process HTTP client, pooled connections, JSON encoding)")
    with TestClient(create_app(s)) as client:
        for name, req in (spills[0], spills[-1]):
            body = req.model_dump(mode="json", exclude_none=True)
            ms, _ = _time(lambda body=body: client.post("/analysis/spill", json=body), args.repeat)
            _line("POST /analysis/spill: " + name.split(",")[0][6:], ms)
        for name, body in plumes[:2]:
            payload = {**body, "wind_from_deg": 45}
            ms, _ = _time(lambda payload=payload: client.post("/analysis/plume", json=payload), args.repeat)
            _line("POST /analysis/plume: " + name[6:28], ms)


if __name__ == "__main__":
    main()
