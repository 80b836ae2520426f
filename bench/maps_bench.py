"""Maps benchmark: the first full render of /map in headless Chromium, and the build of a city's report map.

Not a test: it prints figures. Run ``python -m bench.maps_bench --help``.

* ``/map``: time from navigation start until the viewer reports its first full render (style, every
  tile of the whole region and the hazard flags loaded and drawn: ``riskmap.firstRenderMs``), in a new
  browser context each run (no browser cache), with the demo region plus ``--points`` synthetic risk
  sources.  The server's tile cache is emptied before the first run (cold); the later runs find it warm.
  With ``--compare-grid`` (the default) the same runs are made twice in one go: bins aggregated from the
  points (``RISKATLAS_API_BIN_GRID=false``, as before migration 0020) and read from the grid.  Each run
  prints the risk tiles asked for, their bytes, statuses and slowest times, and the slowest other requests;
* report map: :func:`maps.overview.build_overview` of ``--city`` (SQL, GeoJSON from PostGIS, HTML).

The data: a database of its own (default ``riskatlas_maps_bench``), made on first use from the demo
region and the synthetic points of :func:`bench.ogc_bench.insert_synthetic_risk_points` (1,000,000 by
default; ``--points 0`` for the demo alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    with db.connect(settings) as conn:  # a database made by an earlier version gets the new migrations
        t = time.perf_counter()
        ran = migrate.upgrade(conn, settings)
        if ran:
            print(f"migrations {ran} applied in {time.perf_counter() - t:.1f} s", flush=True)
    if not exists:
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
    """First full render of /map, ``runs`` times in fresh browser contexts, with what each asked for."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        for _ in range(runs):
            context = browser.new_context(viewport={"width": width, "height": height})
            finished: list[Any] = []  # tiles are fetched by MapLibre's workers: watched here, not in the page
            def note(request: Any, *, into: list[Any] = finished) -> None:
                into.append(request)

            context.on("requestfinished", note)
            context.on("requestfailed", note)
            page = context.new_page()
            t0 = time.time() * 1000
            page.goto(base_url + "/map")
            try:
                page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=120_000)
                ms: float | None = page.evaluate("riskmap.firstRenderMs")
            except Exception:  # noqa: BLE001 - a render that never finishes is a figure too
                ms = None
            drawn = page.evaluate("window.riskmap && riskmap.map ? riskmap.map.queryRenderedFeatures("
                                  "{layers: ['risk_source-bins', 'risk_source', 'risk_source-dot']}).length : 0")
            zoom = page.evaluate("window.riskmap && riskmap.map ? riskmap.map.getZoom() : null")
            resources = [_entry(r, t0) for r in finished]
            marks = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('mark')
                .filter(m => m.name.startsWith('riskmap-')).map(m => [m.name.slice(8), Math.round(m.startTime)])
                .concat([['dom', Math.round(performance.getEntriesByType('navigation')[0]
                                             .domContentLoadedEventEnd)]]))""")
            risk = [r for r in resources if "/map/tiles/risk_source/" in r["name"]]
            base = [r for r in resources if "/tiles/WebMercatorQuad/" in r["name"]]
            other = sorted((r for r in resources if r not in risk and r not in base), key=lambda r: -r["ms"])
            out.append({
                "first_render_ms": round(ms) if ms is not None else None, "zoom": zoom, "marks": marks,
                "risk_features_drawn": drawn,
                "risk_tiles": _tiles(risk), "base_tiles": _tiles(base),
                "tile_bytes": sum(r["bytes"] for r in risk + base),
                "slowest_other": [{"path": r["name"].removeprefix(base_url), "ms": round(r["ms"])} for r in other[:4]],
            })
            context.close()
        browser.close()
    return out


def _entry(request: Any, t0: float) -> dict[str, Any]:
    """A finished or failed request: URL, status, bytes, its time and when it ended after navigation."""
    timing = request.timing
    response = request.response() if request.failure is None else None
    end = timing["responseEnd"] if timing["responseEnd"] >= 0 else 0
    return {"name": request.url, "ms": end, "end": timing["startTime"] + end - t0,
            "bytes": request.sizes()["responseBodySize"] if response else 0,
            "status": response.status if response else "failed"}


def _tiles(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, bytes, statuses and times of a set of tile requests."""
    times = sorted(r["ms"] for r in entries)
    statuses: dict[str, int] = {}
    for r in entries:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    return {"count": len(entries), "bytes": sum(r["bytes"] for r in entries), "statuses": statuses,
            "zooms": sorted({int(r["name"].split("/tiles/")[1].split("/")[-3]) for r in entries}),
            "median_ms": round(statistics.median(times)) if times else None,
            "last_end_ms": round(max(r["end"] for r in entries)) if entries else None,
            "max_ms": round(times[-1]) if times else None}


def render_phase(settings: DatabaseSettings, runs: int, width: int, height: int,
                 env: dict[str, str]) -> list[dict[str, Any]]:
    """A server with ``env``, its tile cache emptied first: the first run is cold, the others warm."""
    shutil.rmtree(settings.state_dir / "tile-cache" / settings.db_name, ignore_errors=True)
    proc, base = serve(settings, env)
    try:
        return map_render(base, runs, width, height)
    finally:
        stop(proc)


def _print_run(label: str, i: int, r: dict[str, Any]) -> None:
    risk, base = r["risk_tiles"], r["base_tiles"]
    print(f"  {label:6s} run {i + 1} ({'cold' if i == 0 else 'warm'}): first render "
          f"{r['first_render_ms'] if r['first_render_ms'] is not None else 'never (timed out)'} ms at zoom "
          f"{r['zoom'] and round(r['zoom'], 2)} (ms: {r['marks']}); risk tiles {risk['count']} (z {risk['zooms']}) {risk['bytes']:,} B "
          f"statuses {risk['statuses']} median {risk['median_ms']} ms max {risk['max_ms']} ms, last done at "
          f"{risk['last_end_ms']} ms; "
          f"base tiles {base['count']} {base['bytes']:,} B max {base['max_ms']} ms; "
          f"slowest others {[(o['path'][:40], o['ms']) for o in r['slowest_other'][:3]]}", flush=True)


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
    parser.add_argument("--runs", type=int, default=3, help="Renders per phase: the first cold, the rest warm")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--json", action="store_true", help="Print one JSON document")
    parser.add_argument("--compare-grid", action=argparse.BooleanOptionalAction, default=True,
                        help="Render with bins from the points, then from the grid (default), or from the grid only")
    parser.add_argument("--overview", action=argparse.BooleanOptionalAction, default=True,
                        help="Also time the report map of --city")
    args = parser.parse_args()

    settings = prepare(DatabaseSettings(), args.db, args.points)
    print(f"load average before: {_load()}", flush=True)
    phases = {"points": {"RISKATLAS_API_BIN_GRID": "false"}, "grid": {"RISKATLAS_API_BIN_GRID": "true"}}
    if not args.compare_grid:
        phases = {"grid": phases["grid"]}
    renders: dict[str, list[dict[str, Any]]] = {}
    for label, env in phases.items():
        renders[label] = render_phase(settings, args.runs, args.width, args.height, env)
        for i, r in enumerate(renders[label]):
            _print_run(label, i, r)
        print(f"  load average: {_load()}", flush=True)
    build = overview_build(settings, args.city, args.runs) if args.overview else []
    result: dict[str, Any] = {
        "database": args.db, "viewport": [args.width, args.height], "target_ms": 2000,
        "map_first_render_ms": {label: {"cold": runs[0]["first_render_ms"],
                                        "warm_median": _median([r["first_render_ms"] for r in runs[1:]]),
                                        "runs": runs} for label, runs in renders.items()},
        "load_average": _load(),
    }
    if build:
        result["overview_build_s"] = {"median": statistics.median(r["seconds"] for r in build), "runs": build,
                                      "target_s": 5.0, "city": args.city}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for label, figures in result["map_first_render_ms"].items():
        print(f"/map first full render, bins from the {label}: cold {figures['cold']} ms, warm (median of "
              f"{args.runs - 1}) {figures['warm_median']} ms (target < 2000 ms)")
    if build:
        print(f"report map of {args.city} (median of {args.runs}): {result['overview_build_s']['median']} s "
              f"(target < 5 s); {build[-1]['bytes']:,} bytes, {build[-1]['risk_sources']:,} risk sources, "
              f"clustered {build[-1]['clustered']}")
    print(f"load average after: {_load()}")


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
