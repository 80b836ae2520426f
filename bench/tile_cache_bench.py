"""Tile cache benchmark: the same tiles made in PostGIS (cold) and served from the cache (warm).

    .venv/bin/python -m bench.tile_cache_bench --zoom 8 --runs 3
    .venv/bin/python -m bench.tile_cache_bench --db riskatlas_maps_bench --zoom 7 --bins-above 4000

On the project's database as it is (``riskatlas demo`` first), through the app in-process: every tile of
the region's extent at ``--zoom`` (and the two zooms below it) from the web map's risk-source tiles and the
multi-layer ``/tiles`` endpoint, first with the cache off (``tile_cache_mb=0``: each request makes its
tile), then warm (the cache filled once, then read, each read checked fresh against the recorded
changes).  Prints the median per tile of each and the ratio; issue 17's goal is warm >= 5x faster than
cold.  ``--bins-above N`` asks for tiles as the web map does (counts per cell above N sources), ``--db`` names
another database (the million sources of ``bench.maps_bench``).  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import morecantile
from fastapi.testclient import TestClient

from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

GOAL = 5.0
TMS = morecantile.tms.get("WebMercatorQuad")


def tiles(settings: DatabaseSettings, zoom: int) -> list[tuple[int, int, int]]:
    with db.connect(settings) as conn:
        box = conn.execute("SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM "
                           "(SELECT ST_Extent(geom) e FROM riskatlas.risk_source) s").fetchone()
    out = []
    for z in range(zoom - 2, zoom + 1):
        out += [(t.z, t.x, t.y) for t in TMS.tiles(box["x0"], box["y0"], box["x1"], box["y1"], [z])]
    return out


def timed(client: TestClient, urls: list[str]) -> tuple[list[float], dict[str, int]]:
    times, states = [], {}
    for u in urls:
        t0 = time.perf_counter()
        r = client.get(u)
        times.append(time.perf_counter() - t0)
        assert r.status_code in (200, 204), (u, r.status_code, r.text[:200])
        s = r.headers.get("x-tile-cache", "?")
        states[s] = states.get(s, 0) + 1
    return times, states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoom", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", default=None, help="Database (default: the project's)")
    ap.add_argument("--bins-above", type=int, default=None, help="Ask for bins above this count, as the web map")
    ap.add_argument("--bin-grid", action=argparse.BooleanOptionalAction, default=True,
                    help="Bins read from the grid (default) or aggregated from the points")
    args = ap.parse_args()
    settings = DatabaseSettings() if args.db is None else DatabaseSettings().with_db(args.db)
    grid = tiles(settings, args.zoom)
    query = "" if args.bins_above is None else f"?bins-above={args.bins_above}"
    kinds = {"map risk_source": "/map/tiles/risk_source/{z}/{y}/{x}" + query,
             "/tiles (all layers)": "/tiles/WebMercatorQuad/{z}/{y}/{x}" + query}
    print(f"{len(grid)} tiles at zooms {args.zoom - 2}-{args.zoom} over the sources' extent, {args.runs} runs, "
          f"{settings.db_name}{', bins above ' + str(args.bins_above) if query else ''}"
          f"{'' if args.bin_grid else ' from the points'}; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for label, template in kinds.items():
        urls = [template.format(z=z, x=x, y=y) for z, x, y in grid]
        with TestClient(create_app(settings, APISettings(tile_cache_mb=0, bin_grid=args.bin_grid))) as cold_client:
            cold = [statistics.median(timed(cold_client, urls)[0]) for _ in range(args.runs)]
        with TestClient(create_app(settings, APISettings(tile_cache_mb=256, bin_grid=args.bin_grid))) as warm_client:
            warm_client.app.state.tile_cache.clear()  # a cache, so emptying it loses nothing
            timed(warm_client, urls)  # fill the cache
            runs = [timed(warm_client, urls) for _ in range(args.runs)]
        warm = [statistics.median(t) for t, _ in runs]
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"{label:22s} cold {c * 1000:7.2f} ms/tile   warm {w * 1000:6.2f} ms/tile   "
              f"{c / w:5.1f}x faster warm (goal >= {GOAL:.0f}x)   states {runs[-1][1]}")


if __name__ == "__main__":
    main()
