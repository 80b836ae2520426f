"""Maps benchmark: the first full render of /map in headless Chromium, and the build of a city's report map.

Not a test: it prints figures. Run ``python -m bench.maps_bench --help``.

* ``/map``: time from navigation start until the viewer reports its first full render (style, every
  tile of the whole region and the hazard flags loaded and drawn: ``riskmap.firstRenderMs``), in a new
  browser context each run (no cache), with the demo region plus ``--points`` synthetic risk sources;
* report map: :func:`maps.overview.build_overview` of ``--city`` (SQL, GeoJSON from PostGIS, HTML).

The data: a database of its own (default ``riskatlas_maps_bench``), made on first use from the demo
region and the synthetic points of :func:`bench.ogc_bench.insert_synthetic_risk_points` (1,000,000 by
default; ``--points 0`` for the demo alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from maps.overview import build_overview
from maps.png import CHROMIUM_ARGS, chromium_path
from tests.maps.browser import serve, stop


def prepare(base: DatabaseSettings, name: str, points: int) -> DatabaseSettings:
    """The bench database: created with the demo region and ``points`` synthetic sources if missing."""
    from bench.ogc_bench import insert_synthetic_risk_points
    from etl.demo import load_demo

    settings = base.with_db(name)
    exists = name in cluster.psql_admin(base, "SELECT datname FROM pg_database").split()
    if not exists:
        cluster.bootstrap(base, name)
        with db.connect(settings) as conn:
            migrate.upgrade(conn, settings)
        load_demo(settings)
    with db.connect(settings) as conn:
        have = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE 'BENCH-%'").fetchone()["n"]
        if have < points:
            print(f"inserting {points - have:,} synthetic risk sources ...", flush=True)
            insert_synthetic_risk_points(conn, points)
            conn.commit()
            conn.execute("ANALYZE riskatlas.risk_source")
        total = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"]
    print(f"database {name}: {total:,} risk sources", flush=True)
    return settings


def map_render(base_url: str, runs: int, width: int, height: int) -> list[dict[str, Any]]:
    """First full render of /map, ``runs`` times in fresh contexts."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        for _ in range(runs):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(base_url + "/map")
            page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=120_000)
            ms = page.evaluate("riskmap.firstRenderMs")
            drawn = page.evaluate("riskmap.map.queryRenderedFeatures({layers: ['risk_source', 'risk_source-dot']})"
                                  ".length")
            tiles = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/tiles/'))"
                                  ".map(e => e.transferSize || e.encodedBodySize).reduce((a, b) => a + b, 0)")
            out.append({"first_render_ms": round(ms), "risk_features_drawn": drawn, "tile_bytes": tiles})
            context.close()
        browser.close()
    return out


def overview_build(settings: DatabaseSettings, city: str, runs: int) -> list[dict[str, Any]]:
    """Build the report map of ``city`` ``runs`` times."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        report = build_overview(settings, city, flags=True)
        out.append({"seconds": round(time.perf_counter() - t, 3), "bytes": len(report.html.encode()),
                    "risk_sources": report.counts.get("risk_source"), "clustered": report.clustered})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="riskatlas_maps_bench", help="Bench database (made if missing)")
    parser.add_argument("--points", type=int, default=1_000_000, help="Synthetic risk sources besides the demo")
    parser.add_argument("--city", default="320100", help="City of the report map")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--json", action="store_true", help="Print one JSON document")
    args = parser.parse_args()

    settings = prepare(DatabaseSettings(), args.db, args.points)
    proc, base = serve(settings)
    try:
        render = map_render(base, args.runs, args.width, args.height)
    finally:
        stop(proc)
    build = overview_build(settings, args.city, args.runs)
    result = {
        "database": args.db, "viewport": [args.width, args.height],
        "map_first_render_ms": {"median": statistics.median(r["first_render_ms"] for r in render), "runs": render,
                                "target_ms": 2000},
        "overview_build_s": {"median": statistics.median(r["seconds"] for r in build), "runs": build,
                             "target_s": 5.0, "city": args.city},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"/map first full render (median of {args.runs}): {result['map_first_render_ms']['median']} ms "
          f"(target < 2000 ms); risk features drawn {render[-1]['risk_features_drawn']:,}, "
          f"tile bytes {render[-1]['tile_bytes']:,}")
    print(f"report map of {args.city} (median of {args.runs}): {result['overview_build_s']['median']} s "
          f"(target < 5 s); {build[-1]['bytes']:,} bytes, {build[-1]['risk_sources']:,} risk sources, "
          f"clustered {build[-1]['clustered']}")


if __name__ == "__main__":
    main()
