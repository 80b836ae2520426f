"""Load benchmark: riskatlas load vs ogr2ogr (PG_USE_COPY) on the same file, same database.

    .venv/bin/python -m bench.load_bench --rows 1000000

Writes N synthetic risk-source points inside the region's counties as a GeoPackage and a CSV, then
for each file times (a) ``ogr2ogr --config PG_USE_COPY YES -gt 65536`` into a scratch table, spatial
index and ANALYZE included, and (b) ``riskatlas load`` into an empty ``risk_source`` (validation,
jurisdiction by point-in-polygon, upsert, indexes maintained, ANALYZE; ``--no-derive``: grading and
the flag refresh that follow a CLI load are measured by their own benchmarks).  Prints both times, the
ratio and riskatlas's peak memory.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = np.array(["chemical", "hazardous-waste", "wastewater-plant", "oil-and-gas-storage",
                       "pharmaceutical", "metal-plating", "other"])


def synthetic_points(n: int, seed: int = 7) -> pd.DataFrame:
    """N points spread over the region's counties (sampled inside their polygons)."""
    from etl.sources.boundaries import region_boundaries

    counties = region_boundaries().query("level == 'county'")
    rng = np.random.default_rng(seed)
    # by land area: square metres in an Albers equal-area projection for China (as bench.national_bench), not
    # square degrees (which shrink with the cosine of the latitude)
    weights = counties.geometry.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80").area.to_numpy()
    pick = rng.choice(len(counties), size=n, p=weights / weights.sum())
    xs = np.empty(n)
    ys = np.empty(n)
    for i, geom in enumerate(counties.geometry):
        idx = np.flatnonzero(pick == i)
        if not len(idx):
            continue
        minx, miny, maxx, maxy = geom.bounds
        got: list[np.ndarray] = []
        need = len(idx)
        shapely.prepare(geom)
        while need > 0:
            cx = rng.uniform(minx, maxx, need * 3)
            cy = rng.uniform(miny, maxy, need * 3)
            inside = shapely.contains_xy(geom, cx, cy)
            got.append(np.column_stack([cx[inside], cy[inside]])[:need])
            need -= min(need, int(inside.sum()))
        pts = np.concatenate(got)[: len(idx)]
        xs[idx], ys[idx] = pts[:, 0], pts[:, 1]
    return pd.DataFrame({
        "key": [f"B{i:07d}" for i in range(n)],
        "name": [f"基准企业{i}" for i in range(n)],
        "category": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
        "m_score": rng.integers(0, 100, n),
        "status": "active",
        "synthetic": True,
        "lon": np.round(xs, 7),
        "lat": np.round(ys, 7),
    })


def write_files(folder: Path, n: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    gpkg, csv = folder / f"sources_{n}.gpkg", folder / f"sources_{n}.csv"
    if gpkg.exists() and csv.exists():
        return {"gpkg": gpkg, "csv": csv}
    df = synthetic_points(n)
    df.to_csv(csv, index=False)
    geometry = shapely.points(df["lon"].to_numpy(), df["lat"].to_numpy())
    pyogrio.write_dataframe(
        __import__("geopandas").GeoDataFrame(df.drop(columns=["lon", "lat"]), geometry=geometry, crs="EPSG:4326"),
        gpkg, driver="GPKG", layer="sources")
    return {"gpkg": gpkg, "csv": csv}


def bench_database(base: DatabaseSettings) -> DatabaseSettings:
    s = base.with_db("riskatlas_bench")
    cluster.bootstrap(base, s.db_name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
        has = conn.execute("SELECT count(*) AS n FROM riskatlas.admin_area").fetchone()["n"]
    if not has:
        from etl.load import load_file
        from etl.sources.boundaries import region_boundaries

        path = ROOT / ".riskatlas" / "bench" / "admin_area.geojson"
        path.parent.mkdir(parents=True, exist_ok=True)
        region_boundaries().to_file(path, driver="GeoJSON")
        load_file(s, path, "admin_area")
    return s


def run_ogr2ogr(s: DatabaseSettings, path: Path) -> float:
    pw = json.loads((cluster.paths(s).secrets).read_text())[s.owner_role]
    pg = f"PG:host=127.0.0.1 port={s.pg_port} dbname={s.db_name} user={s.owner_role} password={pw}"
    with db.connect(s) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("DROP TABLE IF EXISTS bench.ogr_sources")
        conn.commit()
    extra = ["-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat", "-a_srs", "EPSG:4326"] \
        if path.suffix == ".csv" else []
    t0 = time.perf_counter()
    subprocess.run(["ogr2ogr", "--config", "PG_USE_COPY", "YES", "-gt", "65536", "-f", "PostgreSQL", pg,
                    str(path), "-nln", "bench.ogr_sources", "-lco", "GEOMETRY_NAME=geom",
                    "-lco", "SPATIAL_INDEX=GIST", "-nlt", "POINT", *extra], check=True)
    with db.connect(s) as conn:
        conn.execute("ANALYZE bench.ogr_sources")
        conn.commit()
    return time.perf_counter() - t0


def run_riskatlas(s: DatabaseSettings, path: Path) -> tuple[float, float, dict]:
    with db.connect(s) as conn:
        conn.execute("TRUNCATE riskatlas.risk_source, riskatlas.row_history CASCADE")
        conn.execute("DELETE FROM riskatlas.load_reject")
        conn.commit()
    env = {**os.environ, "RISKATLAS_DB_NAME": s.db_name, "RISKATLAS_PG_PORT": str(s.pg_port),
           "RISKATLAS_STATE_DIR": str(s.state_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "riskatlas"), "load", str(path), "--layer", "risk_source",
                           "--no-derive", "--json"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        sys.exit(f"riskatlas load failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return elapsed, max(peak_kb, before) / 1024, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--formats", default="gpkg,csv")
    args = ap.parse_args()
    base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(base)
    s = bench_database(base)
    t0 = time.perf_counter()
    files = write_files(ROOT / ".riskatlas" / "bench", args.rows)
    print(f"files ready in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {v.stat().st_size / 1e6:.0f} MB" for k, v in files.items()))
    print(f"{'format':<6} {'rows':>9} {'ogr2ogr s':>10} {'riskatlas s':>12} {'ratio':>6} {'peak MB':>8} loaded")
    for fmt in args.formats.split(","):
        path = files[fmt]
        t_ogr = run_ogr2ogr(s, path)
        t_ra, peak, report = run_riskatlas(s, path)
        print(f"{fmt:<6} {args.rows:>9} {t_ogr:>10.1f} {t_ra:>12.1f} {t_ra / t_ogr:>6.2f} {peak:>8.0f} "
              f"{report['rows_loaded']}")
        # where riskatlas's time goes, pass by pass (the rest is the CLI's start and its report)
        passes = report.get("seconds", {})
        print("       riskatlas passes: " + " · ".join(f"{k} {v:.1f} s" for k, v in passes.items())
              + f" · start and report {t_ra - sum(passes.values()):.1f} s")


if __name__ == "__main__":
    main()
