"""OGC API benchmark: riskatlas against tipg on the same tables, with the raw SQL as the floor.

    .venv/bin/python -m bench.ogc_bench                      # prepare (once) and run everything
    .venv/bin/python -m bench.ogc_bench --prepare-only       # only build the 1M-point database
    .venv/bin/python -m bench.ogc_bench --points 100000 --requests 50 --tiles 300   # a quick run

Not a test: it prints figures and ratios (and ``--json PATH`` writes them). What it measures (issue 3,
"Speed"), each side by side in one run, both servers started here with one uvicorn worker each:

* items: a bbox with about 100 hits; ``limit=1000`` pages; a CQL2 filter; one item by id;
* tiles: a cold pan/zoom walk of ``--tiles`` tiles over z6..z16, the same list for both servers;
* nearby (k = 10): sequential latency against the raw SQL, and p99 with 8 concurrent clients.

The floor of each workload is the SQL riskatlas runs for it, executed by psycopg alone (prepared).

The data live in their own database (default ``riskatlas_ogc_bench``): the demo region, plus
``--points`` synthetic risk sources made by :func:`insert_synthetic_risk_points` (one SQL statement,
generate_series). tipg (PyPI) serves the same tables through the same least-privileged role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from layers.catalogue import RISK_CATEGORIES, RISK_LEVELS

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = RISK_CATEGORIES
LEVELS = RISK_LEVELS

#: Synthetic bench rows carry this key prefix, so they can be counted and removed on their own.
SYNTHETIC_KEY_PREFIX = "BENCH-"
#: Centre of the workloads: central Nanjing.
CENTRE = (118.80, 32.05)
FILTER = "category = 'chemical' AND m_score > 90"


# -- data -------------------------------------------------------------------------------------------


def insert_synthetic_risk_points(conn: psycopg.Connection, n: int, *, seed: float = 0.5) -> int:
    """Insert ``n`` synthetic risk sources, uniformly spread over the region's counties, in one SQL
    statement (generate_series, no Python loop); returns the number inserted.

    The rows are labelled: keys ``BENCH-0000001``..., ``synthetic = true``, ``source = 'riskatlas
    bench synthetic points'``. City and county codes come from a point-in-polygon join against
    ``admin_piece``, as the ETL derives them. Needs the owner role and loaded boundaries. Rows
    already present (by key) are kept, so a second call with the same ``n`` inserts nothing.
    """
    if n <= 0:
        return 0
    row = conn.execute(
        """SELECT ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1
           FROM (SELECT ST_Extent(geom)::geometry AS e FROM riskatlas.admin_piece WHERE level = 'county') s"""
    ).fetchone()
    values = list(row.values()) if isinstance(row, dict) else list(row)
    if values[0] is None:
        raise RuntimeError("admin_piece is empty: load the boundaries (admin_area) first")
    x0, y0, x1, y1 = values
    conn.execute("SELECT setseed(%s)", (seed,))
    # The counties fill about half of their envelope: draw 2.5 n candidates, keep the first n inside.
    cur = conn.execute(
        """
        WITH candidate AS (
            SELECT g, ST_SetSRID(ST_MakePoint(%(x0)s + random() * (%(x1)s - %(x0)s),
                                              %(y0)s + random() * (%(y1)s - %(y0)s)), 4326) AS geom
            FROM generate_series(1, %(candidates)s) AS g
        ), inside AS (
            SELECT DISTINCT ON (c.g) c.g, c.geom, p.code AS county_code
            FROM candidate c
            JOIN riskatlas.admin_piece p ON p.level = 'county' AND ST_Intersects(p.geom, c.geom)
            ORDER BY c.g
        ), numbered AS (
            SELECT row_number() OVER (ORDER BY g) AS i, geom, county_code FROM inside
        )
        INSERT INTO riskatlas.risk_source (key, name, category, industry, address, q_value, m_score,
                                           air_level, water_level, risk_level, status, city_code,
                                           county_code, owner_city, synthetic, source, geom)
        SELECT %(prefix)s || lpad(n.i::text, 7, '0'),
               'Synthetic site ' || n.i,
               (%(categories)s::text[])[1 + (n.i %% 8)],
               'synthetic industry ' || (n.i %% 40),
               'synthetic address ' || n.i,
               round((random() * 150)::numeric, 2)::double precision,
               (random() * 100)::int,
               (%(levels)s::text[])[1 + (n.i %% 3)],
               (%(levels)s::text[])[1 + ((n.i / 3) %% 3)],
               (%(levels)s::text[])[1 + ((n.i * 7) %% 3)],
               'active',
               a.parent_code, n.county_code, a.parent_code, true,
               'riskatlas bench synthetic points', n.geom
        FROM numbered n JOIN riskatlas.admin_area a ON a.code = n.county_code
        WHERE n.i <= %(n)s
        ON CONFLICT (key) DO NOTHING
        """,
        {
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "candidates": int(n * 2.5) + 100,
            "n": n,
            "prefix": SYNTHETIC_KEY_PREFIX,
            "categories": list(CATEGORIES),
            "levels": list(LEVELS),
        },
    )
    return cur.rowcount


def prepare(settings: Any, points: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Make the bench database ready: created and migrated, demo region loaded, ``points`` synthetic
    risk sources present, tables analysed. Idempotent; returns what it found or did."""
    from layers import cluster, db, migrate

    if settings.managed:
        cluster.start(settings)
        cluster.bootstrap(settings, settings.db_name)
    with db.connect(settings) as conn:
        migrate.upgrade(conn, settings)
        conn.commit()
        loaded = conn.execute("SELECT count(*) AS n FROM riskatlas.admin_area").fetchone()["n"]
    done: dict[str, Any] = {"database": settings.db_name}
    if not loaded:
        log("loading the demo region ...")
        from etl.demo import load_demo

        load_demo(settings, Path(tempfile.mkdtemp(prefix="riskatlas-bench-demo-")))
        done["demo"] = "loaded"
    with db.connect(settings) as conn:
        have = conn.execute(
            "SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE %s", (SYNTHETIC_KEY_PREFIX + "%",)
        ).fetchone()["n"]
        if have < points:
            log(f"inserting {points - have:,} synthetic risk points ...")
            t0 = time.perf_counter()
            done["inserted"] = insert_synthetic_risk_points(conn, points)
            conn.commit()
            done["insert_seconds"] = round(time.perf_counter() - t0, 1)
    if done.get("inserted") or done.get("demo"):
        with db.connect(settings, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE riskatlas.risk_source")
            conn.execute("ANALYZE")
    with db.connect(settings) as conn:
        done["risk_source_rows"] = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()[
            "n"
        ]
    return done


# -- servers ----------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(name: str, args: list[str], env: dict[str, str], cwd: Path, health: str, workers: int = 1) -> Server:
    import httpx

    port = _free_port()
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                *args,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + health, timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")


def start_riskatlas(settings: Any, workers: int = 1) -> Server:
    """riskatlas's app under uvicorn with ``workers`` processes (``riskatlas serve --workers``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPG_")}
    env.update(
        RISKATLAS_DB_NAME=settings.db_name,
        RISKATLAS_STATE_DIR=str(Path(settings.state_dir).resolve()),
        RISKATLAS_PG_PORT=str(settings.pg_port),
    )
    return _start("riskatlas", ["services.web.app:app_from_env", "--factory"], env, ROOT, "/health", workers)


def start_tipg(settings: Any, tile_cap: int) -> Server:
    from layers import cluster

    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKATLAS_")}
    env.update(
        DATABASE_URL=cluster.app_url(settings),
        TIPG_DB_SCHEMAS='["riskatlas"]',
        TIPG_DB_TABLES='["riskatlas.risk_source"]',
        TIPG_MAX_FEATURES_PER_QUERY="10000",
        TIPG_MAX_FEATURES_PER_TILE=str(tile_cap),
        TIPG_DB_DATETIME_EXTENT="false",
    )
    # an empty folder as cwd: tipg reads a .env file from where it runs
    return _start("tipg", ["tipg.main:app"], env, Path(tempfile.mkdtemp(prefix="bench-tipg-")), "/healthz")


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies of one workload on one side (milliseconds) and its throughput."""

    n: int
    seconds: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    per_second: float
    mean_bytes: int = 0
    errors: int = 0
    #: CPU milliseconds per request: ``client`` (this process), ``server`` (the HTTP server's process) and
    #: ``database`` (the cluster's processes); on a shared machine these hold where wall times do not.
    cpu_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls, latencies: Sequence[float], seconds: float, sizes: Sequence[int] = (), errors: int = 0
    ) -> Stats:
        ms = sorted(x * 1000 for x in latencies)
        p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))] if ms else 0.0
        return cls(
            len(ms),
            round(seconds, 3),
            round(statistics.fmean(ms), 3) if ms else 0.0,
            round(statistics.median(ms), 3) if ms else 0.0,
            round(p99, 3),
            round(len(ms) / seconds, 1) if seconds else 0.0,
            int(statistics.fmean(sizes)) if sizes else 0,
            errors,
        )


# -- CPU accounting ---------------------------------------------------------------------------------


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat; zeros once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def postmaster_pid(settings: Any) -> int:
    """The process id of the project's PostgreSQL cluster (its postmaster.pid's first line)."""
    from layers import cluster

    return int((cluster.paths(settings).data / "postmaster.pid").read_text().split()[0])


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process so far: its own, its live children's, and those of the children it has
    reaped (a PostgreSQL backend that exits leaves its time with the postmaster; uvicorn's workers are
    children of its supervisor)."""
    own, reaped = _proc_cpu(pid)
    total = own + reaped
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += _proc_cpu(int(stat.parent.name))[0]
    return total


def cluster_cpu(settings: Any) -> float:
    """CPU seconds of the project's PostgreSQL cluster so far (:func:`tree_cpu` of its postmaster)."""
    return tree_cpu(postmaster_pid(settings))


@dataclass
class CpuMeter:
    """CPU time of the three parties of a run: this client, the HTTP server (if any) and the database."""

    settings: Any
    server_pid: int | None = None

    def snapshot(self) -> dict[str, float]:
        import resource

        me = resource.getrusage(resource.RUSAGE_SELF)
        out = {"client": me.ru_utime + me.ru_stime, "database": cluster_cpu(self.settings)}
        if self.server_pid is not None:
            out["server"] = tree_cpu(self.server_pid)
        return out

    def measure(self, run: Callable[[], Stats]) -> Stats:
        """``run()``'s stats with the CPU milliseconds per request of each party."""
        before = self.snapshot()
        stats = run()
        after = self.snapshot()
        stats.cpu_ms = {k: round((after[k] - before[k]) * 1000 / max(stats.n, 1), 3) for k in after}
        return stats


def measure_http(
    base: str, paths: Sequence[str], concurrency: int = 1, ok: tuple[int, ...] = (200,)
) -> Stats:
    """GET every path with ``concurrency`` keep-alive connections in one asyncio loop.

    A minimal HTTP/1.1 client (Content-Length and chunked bodies) keeps the load generator's own CPU
    small: on a two-core machine a heavier client would share the cores with both servers and the
    database and blur the comparison.
    """
    return asyncio.run(_measure_http(base, paths, concurrency, ok))


async def _measure_http(base: str, paths: Sequence[str], concurrency: int, ok: tuple[int, ...]) -> Stats:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    queue = iter(paths)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for path in queue:
                t0 = time.perf_counter()
                try:
                    status, size = await _get(reader, writer, host, path)
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    status, size = await _get(reader, writer, host, path)
                latencies.append(time.perf_counter() - t0)
                sizes.append(size)
                if status not in ok:
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Stats.of(latencies, time.perf_counter() - t0, sizes, errors)


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str
) -> tuple[int, int]:
    """One GET on a kept-alive connection: the status and the body's size (the body is read, not kept)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
    if status in (204, 304) or headers.get("content-length") == "0":
        return status, 0
    if "content-length" in headers:
        return status, len(await reader.readexactly(int(headers["content-length"])))
    size = 0
    while True:  # chunked
        chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(chunk + 2)
        size += chunk
        if chunk == 0:
            return status, size


def measure_sql(settings: Any, statements: Sequence[tuple[Any, Any]], concurrency: int = 1) -> Stats:
    """Run every (statement, params) with psycopg alone (async, prepared, all rows fetched): the floor."""
    return asyncio.run(_measure_sql(settings, statements, concurrency))


async def _measure_sql(settings: Any, statements: Sequence[tuple[Any, Any]], concurrency: int) -> Stats:
    from layers import db

    latencies: list[float] = []
    queue = iter(statements)

    async def worker() -> None:
        async with await psycopg.AsyncConnection.connect(db.url(settings, "app"), autocommit=True) as conn:
            for text, params in queue:
                t0 = time.perf_counter()
                cur = await conn.execute(text, params, prepare=True)
                await cur.fetchall()
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Stats.of(latencies, time.perf_counter() - t0)


# -- workloads --------------------------------------------------------------------------------------


def bbox_with_hits(settings: Any, target: int = 100) -> tuple[float, float, float, float]:
    """A square around the centre holding about ``target`` risk sources (bisection on its half-size)."""
    from layers import db

    lo, hi = 1e-4, 0.5
    with db.connect(settings) as conn:
        for _ in range(30):
            r = (lo + hi) / 2
            n = conn.execute(
                "SELECT count(*) AS n FROM riskatlas.risk_source WHERE geom && "
                "ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                (CENTRE[0] - r, CENTRE[1] - r, CENTRE[0] + r, CENTRE[1] + r),
            ).fetchone()["n"]
            if abs(n - target) <= target * 0.05:
                break
            lo, hi = (r, hi) if n < target else (lo, r)
    return (
        round(CENTRE[0] - r, 6),
        round(CENTRE[1] - r, 6),
        round(CENTRE[0] + r, 6),
        round(CENTRE[1] + r, 6),
    )


def shifted_boxes(box: tuple[float, float, float, float], n: int, seed: int) -> list[tuple[float, ...]]:
    """``n`` copies of ``box`` moved around the centre (so no two requests are the same)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        dx, dy = rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)
        out.append(tuple(round(v + (dx if i % 2 == 0 else dy), 6) for i, v in enumerate(box)))
    return out


def sample_ids(settings: Any, n: int, seed: int) -> list[tuple[str, int]]:
    """(key, id) of ``n`` random risk sources."""
    from layers import db

    with db.connect(settings) as conn:
        top = conn.execute("SELECT max(id) AS m FROM riskatlas.risk_source").fetchone()["m"]
        rng = random.Random(seed)
        wanted = [rng.randint(1, top) for _ in range(n * 2)]
        rows = conn.execute(
            "SELECT key, id FROM riskatlas.risk_source WHERE id = ANY(%s)", (wanted,)
        ).fetchall()
    rows = [(r["key"], r["id"]) for r in rows]
    rng.shuffle(rows)
    return rows[:n]


def tile_walk(n: int, seed: int, zooms: tuple[int, int] = (6, 16)) -> list[tuple[int, int, int]]:
    """``n`` distinct tiles (z, x, y) of a pan/zoom walk over the region: zoom in and out between the
    given levels, panning a tile or two at each step, as a person browsing the map would."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    rng = random.Random(seed)
    seen: set[tuple[int, int, int]] = set()
    out: list[tuple[int, int, int]] = []
    lon, lat, z = CENTRE[0], CENTRE[1], zooms[0]
    while len(out) < n:
        z = max(zooms[0], min(zooms[1], z + rng.choice((-1, 1, 1, 0))))
        step = 360 / 2**z
        lon = min(119.9, max(117.6, lon + rng.uniform(-2, 2) * step))
        lat = min(33.8, max(30.3, lat + rng.uniform(-2, 2) * step * 0.85))
        centre = tms.tile(lon, lat, z)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                t = (z, centre.x + dx, centre.y + dy)
                if t not in seen and len(out) < n:
                    seen.add(t)
                    out.append(t)
    return out


def nearby_points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(round(rng.uniform(118.3, 119.3), 6), round(rng.uniform(31.5, 32.6), 6)) for _ in range(n)]


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One workload: riskatlas, tipg and the floor, and the ratios asked for."""

    workload: str
    riskatlas: Stats
    tipg: Stats | None = None
    floor: Stats | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _items_sql(
    settings: Any, clause_builder: Callable[[Any], list], limit: int, offset: int = 0, count: bool = True
) -> list[tuple[Any, Sequence[Any]]]:
    """The statements riskatlas runs for one items request (features, then the count when needed)."""
    from gis.crs import CRS84
    from layers.catalogue import RISK_SOURCE
    from services.identity import ANONYMOUS
    from services.query.clauses import GEOM, FeatureQuery
    from services.query.crs import geojson_decimals, output_geometry_sql
    from services.query.views import view

    v = view(RISK_SOURCE, ANONYMOUS)
    q = FeatureQuery(v, v.fields, tuple(clause_builder(v)), (), limit, offset)
    feats = q.features_as_text(output_geometry_sql(GEOM, CRS84), geojson_decimals(CRS84))
    out = [(feats.text, feats.params)]
    if count:
        c = q.count()
        out.append((c.text, c.params))
    return out


def run(args: argparse.Namespace) -> list[Row]:
    from layers.catalogue import RISK_SOURCE
    from layers.settings import DatabaseSettings
    from services.identity import ANONYMOUS
    from services.query.views import view
    from services.web.settings import APISettings

    settings = DatabaseSettings().with_db(args.db_name)
    if not args.skip_prepare:
        print(json.dumps(prepare(settings, args.points, log=lambda m: print(m, flush=True))))
    cap = APISettings().tile_max_features
    ours = start_riskatlas(settings, args.workers)
    theirs = None if args.no_tipg else start_tipg(settings, cap)
    rows: list[Row] = []
    rs = view(RISK_SOURCE, ANONYMOUS)
    try:
        box = bbox_with_hits(settings, 100)
        boxes = shifted_boxes(box, args.requests, 1)
        conc = args.concurrency

        def both(
            name: str,
            ours_paths: list[str],
            tipg_paths: list[str],
            floor: list,
            concurrency: int,
            ok: tuple[int, ...] = (200,),
            **notes: Any,
        ) -> Row:
            warm = min(10, len(ours_paths))
            measure_http(ours.url, ours_paths[:warm], 1, ok)
            if theirs:
                measure_http(theirs.url, tipg_paths[:warm], 1, ok)
            row = Row(name, CpuMeter(settings, ours.proc.pid).measure(
                lambda: measure_http(ours.url, ours_paths, concurrency, ok)), notes=notes)
            if theirs:
                row.tipg = CpuMeter(settings, theirs.proc.pid).measure(
                    lambda: measure_http(theirs.url, tipg_paths, concurrency, ok))
            if floor:
                row.floor = CpuMeter(settings).measure(lambda: measure_sql(settings, floor, concurrency))
            rows.append(row)
            _print_row(row)
            return row

        bb = ",".join(map(str, box))
        only = set(args.only.split(",")) if args.only else {"items", "tiles", "nearby"}
        if "items" in only:
            _items_workloads(args, both, settings, box, boxes, bb, rs, conc)
        if "tiles" in only:
            walk = _tile_workloads(args, both, rs, cap, conc)
        if "nearby" in only:
            _nearby_workloads(args, ours, settings, rows)
        if "tiles" in only:
            # the web map's multi-layer tile (no tipg counterpart)
            row = Row(
                "tiles: multi-layer /tiles walk (web map)",
                measure_http(
                    ours.url,
                    [f"/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in walk[: args.tiles // 4]],
                    conc,
                    (200, 204),
                ),
            )
            rows.append(row)
            _print_row(row)
    finally:
        ours.stop()
        if theirs:
            theirs.stop()
    return rows


def _items_workloads(args: argparse.Namespace, both: Callable[..., Row], settings: Any, box: Any, boxes: Any,
                     bb: str, rs: Any, conc: int) -> None:
    from gis.crs import CRS84
    from services.query.clauses import by_id, envelope_clause
    from services.query.cql import filter_clause

    if True:
        # items, a bbox with about 100 hits (each request a different box of the same size)
        both(
            "items: bbox ~100 hits (limit 200)",
            [f"/collections/risk_source/items?bbox={','.join(map(str, b))}&limit=200" for b in boxes],
            [
                f"/collections/riskatlas.risk_source/items?bbox={','.join(map(str, b))}&limit=200"
                for b in boxes
            ],
            [
                s
                for b in boxes
                for s in _items_sql(settings, lambda v, b=b: [envelope_clause(*b)], 200, count=False)
            ],
            conc,
            bbox=bb,
        )
        # items, limit=1000, paging through the table
        offsets = [1000 * (i % 50) for i in range(args.requests)]
        both(
            "items: limit=1000 pages",
            [f"/collections/risk_source/items?limit=1000&offset={o}" for o in offsets],
            [f"/collections/riskatlas.risk_source/items?limit=1000&offset={o}" for o in offsets],
            # the floor counts once, as riskatlas does for the pages of one query (services/ogc/counts.py)
            [s for i, o in enumerate(offsets) for s in _items_sql(settings, lambda v: [], 1000, o, i == 0)],
            conc,
        )
        # items, a CQL2 filter
        filt = filter_clause(FILTER, "cql2-text", CRS84, rs, 20)
        fq = FILTER.replace(" ", "%20").replace("'", "%27")
        both(
            "items: CQL2 filter (limit 100)",
            [
                f"/collections/risk_source/items?filter={fq}&limit=100&offset={100 * (i % 20)}"
                for i in range(args.requests)
            ],
            [
                f"/collections/riskatlas.risk_source/items?filter={fq}&filter-lang=cql2-text&limit=100"
                f"&offset={100 * (i % 20)}"
                for i in range(args.requests)
            ],
            [
                s
                for i in range(args.requests)
                for s in _items_sql(settings, lambda v: [filt], 100, 100 * (i % 20), i == 0)
            ],
            conc,
            filter=FILTER,
        )
        # items, one by id
        ids = sample_ids(settings, args.requests, 2)
        both(
            "items: one item by id",
            [f"/collections/risk_source/items/{k}" for k, _ in ids],
            [f"/collections/riskatlas.risk_source/items/{i}" for _, i in ids],
            [s for k, _ in ids for s in _items_sql(settings, lambda v, k=k: [by_id(v, k)], 1, count=False)],
            conc,
        )


def _tile_workloads(args: argparse.Namespace, both: Callable[..., Row], rs: Any, cap: int,
                    conc: int) -> list[tuple[int, int, int]]:
    from services.web.ogc.mvt import tile_sql

    if True:
        # tiles, a cold walk (the same tiles for both, each requested once by each)
        walk = tile_walk(args.tiles, 3)
        tiles_ok = (200, 204)
        both(
            f"tiles: {len(walk)}-tile walk z6-z16, cold",
            [f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in walk],
            [f"/collections/riskatlas.risk_source/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in walk],
            [(c.text, c.params) for z, x, y in walk for c in [tile_sql([rs], z, x, y, cap)]],
            conc,
            tiles_ok,
            properties="riskatlas default tile properties; tipg every column",
        )
        # the same comparison with every property in riskatlas's tiles too (another walk, also cold)
        walk2 = tile_walk(args.tiles, 5)
        every = [f.name for f in rs.fields if f.type != "json"]
        both(
            f"tiles: {len(walk2)}-tile walk z6-z16, cold, all properties",
            [
                f"/collections/risk_source/tiles/WebMercatorQuad/{z}/{y}/{x}?properties={','.join(every)}"
                for z, x, y in walk2
            ],
            [f"/collections/riskatlas.risk_source/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in walk2],
            [(c.text, c.params) for z, x, y in walk2 for c in [tile_sql([rs], z, x, y, cap, (), every)]],
            conc,
            tiles_ok,
        )
    return walk


def _nearby_workloads(args: argparse.Namespace, ours: Server, settings: Any, rows: list[Row]) -> None:
    from services.nearby import NearbyQuery, nearby_sql

    if True:
        # nearby: sequential latency against the floor, then 8 concurrent clients
        pts = nearby_points(args.nearby_requests, 4)
        paths = [f"/nearby?x={x}&y={y}&radius=5000&limit=10" for x, y in pts]
        floor = [nearby_sql(NearbyQuery(x, y, 5000, 10), False) for x, y in pts]
        measure_http(ours.url, paths[:20])
        meter, floor_meter = CpuMeter(settings, ours.proc.pid), CpuMeter(settings)
        row = Row(
            "nearby k=10, sequential",
            meter.measure(lambda: measure_http(ours.url, paths, 1)),
            floor=floor_meter.measure(lambda: measure_sql(settings, floor, 1)),
        )
        rows.append(row)
        _print_row(row)
        row = Row(
            "nearby k=10, 8 concurrent clients",
            meter.measure(lambda: measure_http(ours.url, paths, 8)),
            floor=floor_meter.measure(lambda: measure_sql(settings, floor, 8)),
        )
        rows.append(row)
        _print_row(row)


def _print_row(row: Row) -> None:
    def fmt(s: Stats | None) -> str:
        if s is None:
            return "-"
        err = f" ERR {s.errors}" if s.errors else ""
        cpu = "  cpu/req " + " ".join(f"{k} {v:.2f}" for k, v in s.cpu_ms.items()) + " ms" if s.cpu_ms else ""
        return f"{s.per_second:8.1f}/s  mean {s.mean_ms:7.2f} ms  p99 {s.p99_ms:7.2f} ms{err}{cpu}"

    print(f"\n{row.workload}", flush=True)
    print(f"  riskatlas  {fmt(row.riskatlas)}  ({row.riskatlas.mean_bytes:,} B)")
    if row.tipg:
        print(f"  tipg       {fmt(row.tipg)}  ({row.tipg.mean_bytes:,} B)")
        print(
            "  ratio      throughput riskatlas/tipg = "
            f"{row.riskatlas.per_second / max(row.tipg.per_second, 1e-9):.2f}x"
        )
    if row.floor:
        print(f"  raw SQL    {fmt(row.floor)}")
        print(f"  overhead   mean {row.riskatlas.mean_ms - row.floor.mean_ms:+.2f} ms over the floor")
        if row.riskatlas.cpu_ms and row.floor.cpu_ms:
            ours = sum(row.riskatlas.cpu_ms.values())
            raw = sum(row.floor.cpu_ms.values())
            print(f"  cpu        {ours:.2f} ms a request in all against {raw:.2f} ms for the raw SQL: on a machine "
                  f"whose cores are the limit, throughput can reach at most {raw / max(ours, 1e-9):.2f}x the raw SQL's")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ogc_bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--db-name", default="riskatlas_ogc_bench", help="database of the project's cluster to use"
    )
    parser.add_argument("--points", type=int, default=1_000_000, help="synthetic risk points to have")
    parser.add_argument("--requests", type=int, default=200, help="requests per items workload")
    parser.add_argument("--tiles", type=int, default=2000, help="tiles in the cold walk")
    parser.add_argument("--nearby-requests", type=int, default=500, help="nearby requests per run")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads for items and tiles")
    parser.add_argument("--workers", type=int, default=1,
                        help="riskatlas's uvicorn worker processes (riskatlas serve --workers; tipg keeps one)")
    parser.add_argument("--no-tipg", action="store_true", help="measure riskatlas and the floor only")
    parser.add_argument("--only", help="comma-separated workload groups to run: items, tiles, nearby (default all)")
    parser.add_argument("--skip-prepare", action="store_true", help="use the database as it is")
    parser.add_argument("--prepare-only", action="store_true", help="build the database, measure nothing")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.prepare_only:
        from layers.settings import DatabaseSettings

        print(json.dumps(prepare(DatabaseSettings().with_db(args.db_name), args.points), indent=2))
        return 0
    rows = run(args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
