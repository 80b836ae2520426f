"""Simplified boundaries benchmark: ``admin_area`` items as stored against ``zoom`` and ``simplify``, and
the cold vector tiles of ``admin_area``.

    .venv/bin/python -m bench.simplify_bench --runs 5

On the project's database as it is (``riskatlas demo`` first), through the app in-process. Prints, side
by side: the bytes, vertices and median time of ``/collections/admin_area/items`` (every feature) as stored,
at ``zoom=8``, ``zoom=12`` and ``simplify=100`` (and the ratios to the stored ones); then the median time
and bytes of the admin_area tiles at z6 and z9 over the region with the tile cache off (each request makes
its tile), next to the same tiles made from a copy of the boundaries simplified beforehand for that zoom
(what a pre-simplified copy per zoom band would save). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import morecantile
import orjson
from fastapi.testclient import TestClient
from psycopg import sql

from layers import db
from layers.catalogue import LAYERS
from layers.settings import DatabaseSettings
from services.query.views import CollectionView
from services.web.app import create_app
from services.web.ogc.mvt import EXTENT, layer_sql
from services.web.settings import APISettings

TMS = morecantile.tms.get("WebMercatorQuad")
VARIANTS = (("as stored", ""), ("zoom=8", "&zoom=8"), ("zoom=12", "&zoom=12"), ("simplify=100", "&simplify=100"))


def _vertices(body: bytes) -> int:
    """Vertices of the features of a GeoJSON body (closing vertices of rings included)."""
    return sum(orjson.dumps(f["geometry"]["coordinates"]).count(b"],[") + 1
               for f in orjson.loads(body)["features"] if f["geometry"])


def _timed(client: TestClient, path: str, runs: int) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        body = r.content
    return statistics.median(times), body


def items(client: TestClient, runs: int) -> None:
    print("admin_area items, every feature (limit=1000)")
    print(f"  {'variant':<14}{'bytes':>11}{'vertices':>10}{'median ms':>11}{'bytes ratio':>13}{'time ratio':>12}")
    full: tuple[float, int] | None = None
    for name, extra in VARIANTS:
        ms, body = _timed(client, "/collections/admin_area/items?limit=1000" + extra, runs)
        full = full or (ms, len(body))
        print(f"  {name:<14}{len(body):>11}{_vertices(body):>10}{ms:>11.1f}"
              f"{len(body) / full[1]:>13.3f}{ms / full[0]:>12.2f}")


def _region_tiles(settings: DatabaseSettings, zoom: int) -> list[morecantile.Tile]:
    with db.connect(settings) as conn:
        box: Any = conn.execute("SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM "
                                 "(SELECT ST_Extent(geom) e FROM riskatlas.admin_area) s").fetchone()
    return list(TMS.tiles(box["x0"], box["y0"], box["x1"], box["y1"], [zoom]))


def tiles(client: TestClient, settings: DatabaseSettings, zooms: Sequence[int], runs: int) -> None:
    print("admin_area tiles, cold (tile cache off), every tile of the region at the zoom")
    print(f"  {'zoom':<6}{'tiles':>6}{'HTTP ms':>9}{'max ms':>8}{'bytes':>8}"
          f"{'SQL ms':>8}{'SQL ms, copy':>14}{'ratio':>7}   (medians; copy: boundaries simplified beforehand)")
    v = CollectionView(LAYERS["admin_area"], LAYERS["admin_area"].public_fields(False))
    for z in zooms:
        region = _region_tiles(settings, z)
        times, sizes = [], []
        for t in region:
            ms, body = _timed(client, f"/collections/admin_area/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}", runs)
            times.append(ms)
            sizes.append(len(body))
        table, copy = _sql_ms(settings, v, region, runs)
        print(f"  {z:<6}{len(region):>6}{statistics.median(times):>9.1f}{max(times):>8.1f}"
              f"{int(statistics.median(sizes)):>8}{table:>8.1f}{copy:>14.1f}{copy / table:>7.2f}")


def _sql_ms(settings: DatabaseSettings, v: CollectionView, region: list[morecantile.Tile],
            runs: int) -> tuple[float, float]:
    """Median time (ms) of the tiles' SQL over the table, and over a temporary copy of the boundaries
    simplified once for the zoom (the tolerance the tile SQL uses), run the same way."""
    z = region[0].z
    tolerance = 360.0 / (EXTENT * 2**z)
    with db.connect(settings) as conn:
        conn.execute(sql.SQL("CREATE TEMP TABLE admin_area_simple AS SELECT code, name, name_en, level, "
                             "parent_code, source, key, updated_at, ST_Simplify(geom, {}, true) AS geom "
                             "FROM riskatlas.admin_area").format(sql.Literal(tolerance)))
        conn.execute("CREATE INDEX ON admin_area_simple USING gist (geom)")
        conn.execute("ANALYZE admin_area_simple")
        table: list[float] = []
        copy: list[float] = []
        for t in region:
            clause = layer_sql(v, t.z, t.x, t.y, 20_000)
            text = clause.text.as_string(conn)
            # the copy is already simplified: read it instead of the table (same SQL otherwise)
            for out, query in ((table, text), (copy, text.replace('"riskatlas"."admin_area"', "admin_area_simple"))):
                runs_ms = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    conn.execute(query.encode(), clause.params).fetchone()
                    runs_ms.append((time.perf_counter() - t0) * 1000)
                out.append(statistics.median(runs_ms))
        conn.rollback()
    return statistics.median(table), statistics.median(copy)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="requests per measurement (the median is shown)")
    parser.add_argument("--tile-zooms", default="6,9", help="comma-separated zooms of the cold tiles")
    args = parser.parse_args(argv)
    settings = DatabaseSettings()
    app = create_app(settings, APISettings(tile_cache_mb=0, rate_per_address=1e6, rate_burst_per_address=1e6))
    with TestClient(app) as client:
        items(client, args.runs)
        tiles(client, settings, [int(z) for z in args.tile_zooms.split(",")], args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
