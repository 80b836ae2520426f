"""Spatial extents of the collections, computed from the data and kept for a short time only.

A new load shows up within :data:`TTL_SECONDS` without a restart; nothing else is cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from fastapi import Request
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from layers.catalogue import SCHEMA, Layer
from services.web.ogc.execute import read_connection

TTL_SECONDS = 10.0

BBox = tuple[float, float, float, float]


class ExtentCache:
    """Extents by layer name, each valid for :data:`TTL_SECONDS` after it was computed."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._values: dict[str, tuple[float, BBox | None]] = {}
        self._lock = asyncio.Lock()

    async def get(self, pool: AsyncConnectionPool, layers: Iterable[Layer]) -> dict[str, BBox | None]:
        """The extent of each layer (None when it has no rows), computing the stale ones in one query."""
        wanted = list(layers)
        now = time.monotonic()
        stale = [la for la in wanted if now - self._values.get(la.name, (-1e18, None))[0] > self.ttl]
        if stale:
            async with self._lock:
                now = time.monotonic()
                stale = [la for la in stale if now - self._values.get(la.name, (-1e18, None))[0] > self.ttl]
                if stale:
                    fresh = await _compute(pool, stale)
                    for name, box in fresh.items():
                        self._values[name] = (time.monotonic(), box)
        return {la.name: self._values[la.name][1] for la in wanted}


def extent_cache(request: Request) -> ExtentCache:
    """The application's extent cache, made on first use."""
    cache = getattr(request.app.state, "ogc_extents", None)
    if cache is None:
        cache = ExtentCache()
        request.app.state.ogc_extents = cache
    return cache


async def _compute(pool: AsyncConnectionPool, layers: list[Layer]) -> dict[str, BBox | None]:
    parts = [
        sql.SQL(
            "SELECT {name}, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM {table}) s"
        ).format(name=sql.Literal(la.name), table=sql.Identifier(SCHEMA, la.name))
        for la in layers
    ]
    query = sql.SQL(" UNION ALL ").join(parts)
    async with read_connection(pool) as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query)
        rows = await cur.fetchall()
    out: dict[str, BBox | None] = {}
    for name, x0, y0, x1, y1 in rows:
        out[name] = None if x0 is None else (float(x0), float(y0), float(x1), float(y1))
    return out
