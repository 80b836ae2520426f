"""Change-feed benchmark (issue 11, "Speed"): a city's feed over one day of changes on a large inventory.

    .venv/bin/python -m bench.feed_bench --sources 1000000 --days 30

In a database of its own (default ``riskatlas_bench_feed``): the region's real boundaries, the city
borders derived (``services.hazards.borders``), N synthetic risk sources generated in SQL (as
``bench.hazards_bench`` does: the insert trigger writes N history rows) and ``--updates`` updates of
random sources (their history rows), the whole history spread evenly over ``--days`` days. Then, for the
last whole day, "what changed within 5 km of Nanjing's border", median of ``--repeat`` runs of:

1. the raw SQL floor: the same search on ``row_history`` as the schema owner (the border's pieces probing
   the history's index, no view, no role filtering, no JSON);
2. riskatlas, the service: ``services.feed.read_changes_sync`` on the application role as the public
   (the view ``change_visible``: restricted fields dropped, restricted-only updates hidden);
3. riskatlas over HTTP: ``GET /changes?since=&until=&near_city=&within_m=`` (in-process ASGI client).

Prints milliseconds, rows and ratios to the floor (goal: the HTTP answer < 100 ms); ``--explain`` prints
the service's plan. Asserts nothing. ``--keep`` reuses the database when it holds N sources.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from layers import cluster, db, migrate
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
CITY = "320100"
WITHIN_M = 5000.0

FLOOR_SQL = """
WITH near AS MATERIALIZED (
    SELECT DISTINCT h.id FROM riskatlas.feed_border_piece b
    JOIN riskatlas.row_history h ON ST_DWithin(b.geom_m, h.geom_m, %(m)s)
    WHERE b.code = %(city)s AND h.changed_at >= %(since)s AND h.changed_at < %(until)s)
SELECT h.id, h.layer, h.key, h.op, h.changed_at, h.changed_by, h.old_row, h.new_row
FROM (SELECT id FROM near ORDER BY id LIMIT %(limit)s) page
JOIN riskatlas.row_history h USING (id)
ORDER BY h.id
"""


def bench_database(base: DatabaseSettings, name: str, n: int, updates: int, days: int, keep: bool) -> DatabaseSettings:
    """The benchmark database: boundaries, borders, ``n`` sources, ``updates`` updates over ``days`` days."""
    from bench.hazards_bench import _exists, generate_sources

    s = base.with_db(name)
    if keep and _exists(base, name):
        with db.connect(s) as conn:
            if conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"] == n:
                return s
    if _exists(base, name):
        cluster.drop_database(base, name)
    cluster.bootstrap(base, name)
    with db.connect(s) as conn:
        migrate.upgrade(conn, s)
    from etl.load import load_file
    from etl.sources.boundaries import region_boundaries
    from services.hazards.borders import ensure_borders

    folder = ROOT / ".riskatlas" / "bench" / "feed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "admin_area.geojson"
    region_boundaries().to_file(path, driver="GeoJSON")
    load_file(s, path, "admin_area", sandbox=False)
    with db.transaction(s) as conn:
        ensure_borders(conn, 5.0, levels=("city",))
    t0 = time.perf_counter()
    generate_sources(s, n)
    print(f"{n:,} synthetic sources (and their history) generated in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with db.transaction(s) as conn:
        conn.execute("""UPDATE riskatlas.risk_source SET status = 'closed', updated_at = now()
                        WHERE id IN (SELECT 1 + floor(random() * %s)::bigint FROM generate_series(1, %s))""",
                     (n, updates))
        # the history as if written over `days` days, evenly, ending now
        conn.execute("""UPDATE riskatlas.row_history SET changed_at = now() - make_interval(days => %(d)s)
                            + (id - 1)::float8 / (SELECT max(id) FROM riskatlas.row_history)
                              * make_interval(days => %(d)s)""", {"d": days})
        conn.execute("ANALYZE riskatlas.row_history")
    print(f"{updates:,} updates written and the history spread over {days} days in {time.perf_counter() - t0:.1f} s")
    return s


def _median_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    fn()  # warm
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def measure(s: DatabaseSettings, repeat: int, limit: int, explain: bool) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from services.feed import parse_query, read_changes_sync
    from services.web.app import create_app
    from services.web.settings import APISettings

    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=1)
    p = {"since": since, "until": until, "city": CITY, "m": WITHIN_M, "limit": limit + 1}
    with db.connect(s) as owner:
        day = owner.execute("SELECT count(*) AS n FROM riskatlas.row_history WHERE changed_at >= %s AND changed_at < %s",
                            (since, until)).fetchone()["n"]
        floor_ms, rows = _median_ms(lambda: owner.execute(FLOOR_SQL, p).fetchall(), repeat)
    q = parse_query(since.isoformat(), until.isoformat(), None, CITY, WITHIN_M, None, limit)
    with db.connect(s, "app") as app:
        def service() -> Any:
            with app.transaction():
                return read_changes_sync(app, q)
        service_ms, page = _median_ms(service, repeat)
        if explain:
            from services.feed.changes import changes_clause

            c = changes_clause(q)
            for line in app.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + c.text.as_bytes(app), c.params).fetchall():
                print("   ", line["QUERY PLAN"])
    params = {"since": since.isoformat(), "until": until.isoformat(), "near_city": CITY, "within_m": WITHIN_M,
              "limit": limit}
    with TestClient(create_app(s, APISettings(pool_min=1, pool_max=2))) as client:
        http_ms, resp = _median_ms(lambda: client.get("/changes", params=params), repeat)
    assert resp.status_code == 200, resp.text
    return {"changes_that_day": day, "rows_floor": len(rows), "rows_service": len(page.changes),
            "floor_ms": round(floor_ms, 2), "service_ms": round(service_ms, 2), "http_ms": round(http_ms, 2),
            "service_over_floor": round(service_ms / floor_ms, 2), "http_over_floor": round(http_ms / floor_ms, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=1_000_000)
    ap.add_argument("--updates", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--limit", type=int, default=1000, help="page size of the feed request")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--db", default="riskatlas_bench_feed")
    ap.add_argument("--keep", action="store_true", help="reuse the database if it holds --sources sources")
    ap.add_argument("--explain", action="store_true", help="print the service query's plan")
    args = ap.parse_args()
    base = DatabaseSettings(database_url=None, state_dir=ROOT / ".riskatlas")
    cluster.start(base)
    s = bench_database(base, args.db, args.sources, args.updates, args.days, args.keep)
    r = measure(s, args.repeat, args.limit, args.explain)
    print(f"one day of changes: {r['changes_that_day']:,} (of {args.sources + args.updates:,} in {args.days} days); "
          f"within {WITHIN_M / 1000:g} km of {CITY}'s border: {r['rows_floor']} (page of {args.limit})")
    print(f"  raw SQL floor (owner, row_history)  {r['floor_ms']:8.2f} ms")
    print(f"  riskatlas service (public, view)    {r['service_ms']:8.2f} ms   x{r['service_over_floor']}")
    print(f"  riskatlas GET /changes (HTTP)       {r['http_ms']:8.2f} ms   x{r['http_over_floor']}")


if __name__ == "__main__":
    main()
