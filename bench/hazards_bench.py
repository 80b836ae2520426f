"""Hazard-flag and overlay benchmark over the real region (issue 4, "Speed").

    .venv/bin/python -m bench.hazards_bench --sources 1000000

In a database of its own (default ``riskatlas_bench_hazards``) it loads the demo region (real
boundaries, synthetic rivers, zones, protected areas), replaces the demo's risk sources with N synthetic
ones generated in SQL (``generate_series`` + random points inside the county polygons, risk levels
60/30/10 % general/larger/major), then measures:

1. a full flag refresh (``services.hazards.flags.refresh_full``): seconds, flags by kind;
2. the overlay "N sources x all protection zones within 500 m", pairs out, by riskatlas
   (``services.overlay.overlay`` with the cap lifted) and by geopandas ``sjoin(predicate="dwithin")``
   in the region's metric CRS on the same rows, read once from the same database; both pair sets are
   compared (pairs that differ are listed with their geodesic distance: only pairs within a fraction
   of a metre of 500 m can differ, metric CRS vs spheroid).

Prints figures; asserts nothing.  ``--keep`` reuses the database when it already holds N sources.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "HZB-"


def bench_database(base: DatabaseSettings, name: str, n: int, keep: bool) -> DatabaseSettings:
    """The benchmark database with the demo region and ``n`` synthetic sources (rebuilt unless kept)."""
    s = base.with_db(name)
    if keep and _exists(base, name):
        with db.connect(s) as conn:
            have = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE %s",
                                (PREFIX + "%",)).fetchone()["n"]
        if have == n:
            return s
    if _exists(base, name):
        cluster.drop_database(base, name)
    cluster.bootstrap(base, name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    from etl.demo import load_demo

    t0 = time.perf_counter()
    load_demo(s, ROOT / ".riskatlas" / "bench" / "hazards_demo")
    print(f"demo region loaded in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    generate_sources(s, n)
    print(f"{n:,} synthetic sources generated in SQL in {time.perf_counter() - t0:.1f} s")
    return s


def _exists(base: DatabaseSettings, name: str) -> bool:
    with db.connect(base.with_db("postgres")) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def generate_sources(s: DatabaseSettings, n: int, seed: int = 4) -> None:
    """Replace the risk sources by ``n`` random points inside the counties, in proportion to area."""
    with db.transaction(s) as conn:
        conn.execute("TRUNCATE riskatlas.risk_source CASCADE")
        conn.execute("""
            WITH county AS (
                SELECT code, parent_code, geom, ST_Area(geom::geography) AS area
                FROM riskatlas.admin_area WHERE level = 'county'
            ), quota AS (
                SELECT *, %(n)s * area / sum(area) OVER () AS q FROM county
            ), share AS (
                -- whole parts first, then one more point to the counties with the largest remainders,
                -- so that exactly n points are drawn
                SELECT code, parent_code, geom, row_number() OVER (ORDER BY code) AS i,
                       floor(q)::int + CASE WHEN row_number() OVER (ORDER BY q - floor(q) DESC, code)
                                                <= %(n)s - sum(floor(q)) OVER () THEN 1 ELSE 0 END AS k
                FROM quota
            ), point AS (
                SELECT s.code, s.parent_code, (ST_Dump(ST_GeneratePoints(s.geom, s.k, %(seed)s + s.i::int))).geom AS geom
                FROM share s WHERE s.k > 0
            ), numbered AS (
                SELECT row_number() OVER (ORDER BY code, ST_X(geom), ST_Y(geom)) AS i, * FROM point
            )
            INSERT INTO riskatlas.risk_source (key, name, category, risk_level, status, city_code,
                                               county_code, owner_city, synthetic, source, geom)
            SELECT %(prefix)s || lpad(i::text, 7, '0'), 'bench site ' || i,
                   (ARRAY['chemical', 'hazardous-waste', 'wastewater-plant', 'metal-plating', 'other'])[1 + i %% 5],
                   CASE WHEN i %% 10 = 0 THEN 'major' WHEN i %% 10 < 4 THEN 'larger' ELSE 'general' END,
                   'active', parent_code, code, parent_code, true, 'riskatlas hazards bench', geom
            FROM numbered""", {"n": n, "seed": seed, "prefix": PREFIX})
        conn.execute("ANALYZE riskatlas.risk_source")


def bench_refresh(s: DatabaseSettings) -> None:
    from services.hazards.flags import refresh_full

    t0 = time.perf_counter()
    report = refresh_full(s)
    total = time.perf_counter() - t0
    print(f"full flag refresh: {report.sources:,} sources -> {report.flags_written:,} flags in {total:.1f} s "
          f"(inside the transaction {report.seconds:.1f} s)")
    for kind, count in report.by_kind.items():
        print(f"    {kind:<16} {count:>9,} flags  {report.seconds_by_kind[kind]:6.1f} s")


def bench_overlay(s: DatabaseSettings, distance: float) -> None:
    from gis.crs import LOCAL_METRIC
    from services.overlay import overlay

    with db.connect(s, "app") as conn:
        t0 = time.perf_counter()
        result = overlay(conn, "risk_source", "within-distance", "protection_zone", distance_m=distance,
                         geometry="none", cap=None)
        t_ours = time.perf_counter() - t0
    ours = {tuple(f.split('"id":"', 1)[1].split('"', 1)[0].split("|")) for f in result.features}

    t0 = time.perf_counter()
    with db.connect(s, "app") as conn:
        engine_sql = "SELECT key, ST_AsBinary(geom) AS wkb FROM riskatlas.{} ORDER BY key"
        src = conn.execute(engine_sql.format("risk_source")).fetchall()
        zon = conn.execute(engine_sql.format("protection_zone")).fetchall()
    sources = gpd.GeoDataFrame({"key": [r["key"] for r in src]},
                               geometry=shapely.from_wkb([r["wkb"] for r in src]), crs="EPSG:4326")
    zones = gpd.GeoDataFrame({"zone": [r["key"] for r in zon]},
                             geometry=shapely.from_wkb([r["wkb"] for r in zon]), crs="EPSG:4326")
    t_read = time.perf_counter() - t0

    t0 = time.perf_counter()
    joined = gpd.sjoin(sources.to_crs(LOCAL_METRIC), zones.to_crs(LOCAL_METRIC), how="inner",
                       predicate="dwithin", distance=distance)
    theirs = set(zip(joined["key"], joined["zone"]))
    t_gpd = time.perf_counter() - t0

    print(f"overlay {len(sources):,} sources x {len(zones)} protection zones within {distance:.0f} m:")
    print(f"    riskatlas overlay (SQL + fetch)       {t_ours:7.2f} s  {len(ours):,} pairs")
    print(f"    geopandas sjoin dwithin (metric CRS)  {t_gpd:7.2f} s  {len(theirs):,} pairs "
          f"(+ {t_read:.1f} s to read both layers from PostGIS)")
    print(f"    ratio geopandas / riskatlas           {t_gpd / t_ours:7.2f}")
    _compare(s, ours, theirs, distance)


def _compare(s: DatabaseSettings, ours: set[tuple[str, str]], theirs: set[tuple[str, str]], distance: float) -> None:
    """Say whether the pair sets agree, and how far from the threshold any disagreement lies."""
    differ = sorted(ours ^ theirs)
    if not differ:
        print("    identical pair sets")
        return
    with db.connect(s, "app") as conn:
        rows = conn.execute(
            """SELECT x.k, x.z, ST_Distance(s.geom::geography, z.geom::geography) AS d
               FROM unnest(%s::text[], %s::text[]) AS x(k, z)
               JOIN riskatlas.risk_source s ON s.key = x.k JOIN riskatlas.protection_zone z ON z.key = x.z""",
            ([d[0] for d in differ], [d[1] for d in differ])).fetchall()
    gaps = np.array([abs(r["d"] - distance) for r in rows])
    print(f"    {len(differ)} pairs differ, all within {gaps.max():.3f} m of {distance:.0f} m "
          f"(geodesic vs metric-CRS distance)")
    print(pd.DataFrame(rows).head(10).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=1_000_000)
    ap.add_argument("--db", default="riskatlas_bench_hazards")
    ap.add_argument("--distance", type=float, default=500.0)
    ap.add_argument("--keep", action="store_true", help="reuse the database if it holds --sources sources")
    ap.add_argument("--skip-refresh", action="store_true")
    ap.add_argument("--skip-overlay", action="store_true")
    args = ap.parse_args()
    base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(base)
    s = bench_database(base, args.db, args.sources, args.keep)
    if not args.skip_refresh:
        bench_refresh(s)
    if not args.skip_overlay:
        bench_overlay(s, args.distance)


if __name__ == "__main__":
    main()
