"""Liveness, and the list of layers with their counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from psycopg.rows import dict_row

from layers.catalogue import LAYERS, SCHEMA
from services.inventory import COUNTS_SQL
from services.web.deps import PoolDep
from services.web.limits import apply_budget

router = APIRouter(tags=["service"])


@router.get("/health", summary="Service and database health")
async def health(pool: PoolDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        await apply_budget(conn, None)
        cur = await conn.execute("SELECT postgis_lib_version() AS postgis, "
                                 f"(SELECT max(version) FROM {SCHEMA}.schema_migration) AS schema_version")
        row = await cur.fetchone()
    return {"status": "ok", "database": "ok", "postgis": row[0], "schema_version": row[1]}


@router.get("/layers", summary="Layers with their row counts")
async def layers(pool: PoolDep) -> dict[str, Any]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await apply_budget(conn, None)
        counts = {r["name"]: r["n"] for r in await (await cur.execute(COUNTS_SQL)).fetchall()}
        info = await (await cur.execute(f"SELECT name, value FROM {SCHEMA}.dataset_info")).fetchall()
    return {
        "layers": [{"name": lay.name, "title": lay.title, "title_zh": lay.title_zh, "geometry_type": lay.geometry_type,
                    "count": counts.get(lay.name, 0)} for lay in LAYERS.values()],
        "dataset": {r["name"]: r["value"] for r in info},
        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    }
