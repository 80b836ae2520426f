"""numberMatched without recounting a table for every page of the same query.

Clients page through a result with the ``next`` link (GDAL, QGIS, OWSLib): the same conditions with
another offset. Counting a million rows costs about 100 ms each time, so a count is kept, for at most
:data:`TTL_SECONDS`, under the query's conditions *and the table's data version*:

* the newest ``load_batch`` id, which a load commits in the same transaction as its rows (so a load is
  seen at once), and
* the table's file node and its insert/update/delete/live-row counters from the statistics system,
  which catch any other change (direct edits, TRUNCATE) within the statistics flush delay (about a
  second).

Any change of the version is a miss; nothing is ever served older than the TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import psycopg
from fastapi import Request
from psycopg import sql
from psycopg.rows import tuple_row

from layers.catalogue import SCHEMA
from services.query.clauses import Clause
from services.web.ogc.execute import run_query

TTL_SECONDS = 30.0
MAX_ENTRIES = 2048

_VERSION = sql.SQL(
    "SELECT pg_relation_filenode(c.oid), s.n_tup_ins, s.n_tup_upd, s.n_tup_del, s.n_live_tup, "
    "(SELECT max(id) FROM {batches}) "
    "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass"
)


class CountCache:
    """Counts by (table version, conditions), each kept at most ``ttl`` seconds; oldest use evicted first."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, int]] = OrderedDict()

    async def count(self, conn: psycopg.AsyncConnection, table: str, clause: Clause) -> int:
        """The row count of ``clause`` (a count query over ``table``, a layer name), from the cache when the
        table has not changed since it was counted."""
        if self.ttl <= 0:
            return await _run_count(conn, clause)
        version = await table_version(conn, table)
        key = (table, version, repr(clause.text), repr(clause.params))
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] <= self.ttl:
            self._entries.move_to_end(key)
            return hit[1]
        n = await _run_count(conn, clause)
        self._entries[key] = (now, n)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return n


async def table_version(conn: psycopg.AsyncConnection, table: str) -> tuple[Any, ...]:
    """What changes whenever the rows of ``riskatlas.<table>`` may have changed (see the module doc)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_VERSION.format(batches=sql.Identifier(SCHEMA, "load_batch")), (f"{SCHEMA}.{table}",))
    row = await cur.fetchone()
    return tuple(row) if row else ()


def count_cache(request: Request) -> CountCache:
    """The application's count cache, made on first use."""
    cache = getattr(request.app.state, "ogc_counts", None)
    if cache is None:
        cache = CountCache()
        request.app.state.ogc_counts = cache
    return cache


async def _run_count(conn: psycopg.AsyncConnection, clause: Clause) -> int:
    rows = await run_query(conn, clause)
    return int(rows[0][0])
