"""Liveness, and the list of layers with their counts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from layers import db
from layers.catalogue import LAYERS, relation
from services.inventory import COUNTS_SQL
from services.web.deps import PoolDep, ReadPoolDep
from services.web.errors import DOWN_RETRY_AFTER_S
from services.web.limits import apply_budget
from services.web.ogc.execute import public_pool_of

router = APIRouter(tags=["service"])

_HEALTH_SQL = sql.SQL("SELECT postgis_lib_version() AS postgis, (SELECT max(version) FROM {migrations}) "
                      "AS schema_version, pg_is_in_recovery(), pg_current_wal_lsn()::text").format(
    migrations=relation("schema_migration"))
log = logging.getLogger("riskatlas")
HEALTH_WAIT_S = 2.0  # a health check answers quickly, up or down


@router.get("/health", summary="Service and database health: the primary and the read replica",
            responses={503: {"description": "the primary database is not reachable"}})
async def health(request: Request, pool: PoolDep) -> JSONResponse:
    """The primary (reachable, WAL position) and the replica (serving reads or not, lag); 503 when the
    primary does not answer, with what is known of both."""
    routing = request.app.state.routing
    replica = routing.health() if routing is not None else {"state": "none configured"}
    try:
        async with pool.connection(timeout=HEALTH_WAIT_S) as conn:
            await apply_budget(conn, None)
            cur = await conn.execute(_HEALTH_SQL)
            row = await cur.fetchone()
    except (psycopg.OperationalError, PoolTimeout) as exc:
        # a pooled connection may be one the server dropped (a restart): ask on a new one before saying down
        row = await _probe(request)
        if row is not None:
            log.warning("health: a pooled connection had failed (%s); the primary answers: checking the pools", exc)
            await _check_pools(request)
    if row is None:
        return JSONResponse({"status": "unavailable", "database": "down",
                             "description": "the primary database is not reachable; try again shortly",
                             "primary": {"state": "down"}, "replica": replica},
                            status_code=503, headers={"Retry-After": str(DOWN_RETRY_AFTER_S)})
    return JSONResponse({"status": "ok", "database": "ok", "postgis": row[0], "schema_version": row[1],
                         "primary": {"state": "ok", "in_recovery": row[2], "wal_lsn": row[3]},
                         "replica": replica})


async def _probe(request: Request) -> Any:
    """The health row over a new connection to the primary, or None when none can be made or it fails."""
    try:
        conn = await psycopg.AsyncConnection.connect(db.url(request.app.state.db_settings, "app"),
                                                     connect_timeout=int(HEALTH_WAIT_S), autocommit=True)
    except (psycopg.OperationalError, OSError) as exc:
        log.error("health: primary not reachable: %s", exc)
        return None
    try:
        await apply_budget(conn, None)
        return await (await conn.execute(_HEALTH_SQL)).fetchone()
    except psycopg.Error as exc:
        log.error("health: primary not answering: %s", exc)
        return None
    finally:
        await conn.close()


async def _check_pools(request: Request) -> None:
    """Have the primary's pools test their idle connections and replace the ones that fail."""
    pool = request.app.state.pool
    for p in (pool, public_pool_of(pool), request.app.state.heavy_pool):
        if p is not None:
            try:
                await asyncio.wait_for(p.check(), HEALTH_WAIT_S)
            except (TimeoutError, psycopg.Error) as exc:
                log.warning("health: checking a pool did not finish: %s", exc)


@router.get("/layers", summary="Layers with their row counts")
async def layers(pool: ReadPoolDep) -> dict[str, Any]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, None)
        counts = {r["name"]: r["n"] for r in await (await cur.execute(COUNTS_SQL)).fetchall()}
        info = await (await cur.execute(sql.SQL("SELECT name, value FROM {}").format(relation("dataset_info")))).fetchall()
    return {
        "layers": [{"name": lay.name, "title": lay.title, "title_zh": lay.title_zh, "geometry_type": lay.geometry_type,
                    "count": counts.get(lay.name, 0)} for lay in LAYERS.values()],
        "dataset": {r["name"]: r["value"] for r in info},
        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    }
