"""One way to answer a vector tile: from the tile cache while it is good, else made in PostGIS and kept.

Used by the OGC API tiles (per collection and for the dataset) and the web map's lean risk-source tiles.
The answer says how it was made in ``X-Tile-Cache`` (``hit``, ``miss`` or ``stale``: cached but touched by
a change since); the ETag is the hash of the bytes either way, so ``If-None-Match`` gives 304.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from fastapi import Request, Response

from services.identity import Identity
from services.query.clauses import Clause
from services.query.views import CollectionView
from services.tiles import TileCache, fresh_sql, versioned
from services.web.ogc import links as L
from services.web.ogc import mvt
from services.web.ogc.execute import read_connection, run_query

#: The code that makes the tiles: cached tiles of an earlier version are never served.
CODE_VERSION = hashlib.blake2b(Path(mvt.__file__).read_bytes(), digest_size=8).hexdigest()
#: The share of a tile's width its features reach beyond it (the MVT buffer).
MARGIN = mvt.BUFFER / mvt.EXTENT


async def tile_response(request: Request, pool: object, clause: Clause, identity: Identity, max_age: int, *,
                        views: Sequence[CollectionView], z: int, x: int, y: int,
                        variant: tuple[object, ...]) -> Response:
    """The tile ``clause`` makes for ``views`` at z/x/y; ``variant`` names the rest of what decides its bytes
    (filter, properties, aggregation, feature cap)."""
    cache: TileCache = request.app.state.tile_cache
    layers = sorted({v.layer.name for v in views})
    name = cache.variant(CODE_VERSION, identity.sees_restricted, variant,
                         [(v.layer.name, [f.name for f in v.fields], v.via_visible) for v in views])
    state = "miss"
    async with read_connection(pool, identity) as conn:  # type: ignore[arg-type]
        entry = cache.lookup(name, z, x, y)
        if entry is not None:
            rows = await run_query(conn, fresh_sql(entry, layers, z, x, y, MARGIN))
            state = "hit" if rows[0][0] else "stale"
        if state == "hit" and entry is not None:
            data, etag = entry.data, entry.etag
        else:
            row = (await run_query(conn, versioned(clause)))[0]
            data = bytes(row[0] or b"")
            etag = cache.store(name, z, x, y, data, row[1], row[2])
    headers = {
        "ETag": etag,
        "Vary": "Authorization, X-API-Key",
        "Cache-Control": f"{'public' if identity.role == 'public' else 'private'}, max-age={max_age}",
        "X-Tile-Cache": state,
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=L.MVT, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags
