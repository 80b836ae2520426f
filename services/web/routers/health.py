"""Liveness, and the list of layers with their counts."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from layers.catalogue import LAYERS, relation
from services.inventory import COUNTS_SQL
from services.web.deps import PoolDep, ReadPoolDep
from services.web.errors import DOWN_RETRY_AFTER_S
from services.web.limits import apply_budget

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
        log.error("health: primary not reachable: %s", exc)
        return JSONResponse({"status": "unavailable", "database": "down",
                             "description": "the primary database is not reachable; try again shortly",
                             "primary": {"state": "down"}, "replica": replica},
                            status_code=503, headers={"Retry-After": str(DOWN_RETRY_AFTER_S)})
    assert row is not None
    return JSONResponse({"status": "ok", "database": "ok", "postgis": row[0], "schema_version": row[1],
                         "primary": {"state": "ok", "in_recovery": row[2], "wal_lsn": row[3]},
                         "replica": replica})


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
