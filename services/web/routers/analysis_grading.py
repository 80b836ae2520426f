"""``/analysis/grade/{key}``, ``/analysis/coverage``, ``/analysis/coverage/crossings``, ``/analysis/ledger``.

Thin handlers over :mod:`services.grading`, :mod:`services.coverage` and :mod:`services.ledger`.  Those
use the river-network helpers, which are synchronous, so each request runs in a worker thread on its
own connection as the application role, with the service's statement time limit (the event loop
stays free; the pool is for the short OGC queries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from services import coverage, grading, ledger
from services.errors import InvalidParameter, Unavailable
from services.identity import Identity, present_sync
from services.web.deps import APISettingsDep, DBSettingsDep, IdentityDep
from services.web.limits import apply_budget_sync
from services.web.ogc.render import json_response
from services.web.validation import INT64_MAX, MAX_OFFSET

router = APIRouter(prefix="/analysis", tags=["analysis"])
GEOJSON = "application/geo+json"
T = TypeVar("T")


def _run(pool: ConnectionPool, identity: Identity, work: Callable[[psycopg.Connection], T]) -> T:
    """``work`` on a connection of the heavy-analysis pool, as ``identity`` and within its statement time;
    rolled back after."""
    with pool.connection() as conn, conn.transaction(force_rollback=True):
        present_sync(conn, identity)
        apply_budget_sync(conn, identity)
        return work(conn)


def _heavy(request: Request) -> ConnectionPool:
    return request.app.state.heavy_sync_pool


HeavyDep = Annotated[ConnectionPool, Depends(_heavy)]


@router.get("/grade/{key}", summary="Why a risk source has its HJ 941-2018 grade, step by step",
            response_description="Q, M, E (air and water), the matrix cells, the level and the label, each "
                                 "with its inputs and the clause of the standard")
async def grade(
    settings: DBSettingsDep,
    pool: HeavyDep,
    identity: IdentityDep,
    key: Annotated[str, Path(max_length=200, description="The risk source's stable key")],
) -> Response:
    """The grade recomputed from the current data beside the stored one (``matches_stored``).

    The substance lines (quantities) are restricted: analysts, stewards and admins see them.
    """
    try:
        doc = await run_in_threadpool(_run, pool, identity, lambda conn: grading.explain(
            settings, key, may_see_restricted=identity.sees_restricted, conn=conn))
    except grading.GradingError as exc:
        raise Unavailable(str(exc)) from None
    return json_response(doc, headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4326>"})


@router.get("/coverage", summary="Risk sources no monitoring station of the medium covers",
            response_description="GeoJSON FeatureCollection (CRS84) of the uncovered sources")
async def coverage_gaps(
    pool: HeavyDep,
    api: APISettingsDep,
    identity: IdentityDep,
    medium: Annotated[Literal["air", "water"], Query(description="air: no air station within `distance_m`; "
                                                                 "water: no water station on the river within "
                                                                 "`distance_m` downstream")],
    distance_m: Annotated[float | None, Query(gt=0, le=200_000, description="Metres (default 5000 for air, "
                                                                            "10000 downstream for water)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Page size (capped at the maximum)")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Each gap: the source (point) and, for air, its nearest air station; for water, its river."""
    size = min(limit or api.default_limit, api.max_limit)
    doc = await run_in_threadpool(_run, pool, identity, lambda conn: coverage.source_gaps(
        conn, medium, distance_m, limit=size, offset=offset))
    return json_response(doc, GEOJSON, {"Content-Crs": f"<{coverage.CRS84}>"})


@router.get("/coverage/crossings", summary="River crossings of city or province borders without a section",
            response_description="GeoJSON FeatureCollection (CRS84) of crossing points")
async def crossings(
    pool: HeavyDep,
    identity: IdentityDep,
    level: Annotated[Literal["city", "province"], Query(description="Which borders")] = "city",
    within_m: Annotated[float, Query(ge=0, le=50_000, description="A section station this near covers a "
                                                                  "crossing")] = coverage.SECTION_WITHIN_M,
    min_stay_m: Annotated[float, Query(ge=0, le=100_000, description="Stays on one side shorter than this "
                                                                     "are ignored")] = coverage.MIN_STAY_M,
    gaps_only: Annotated[bool, Query(description="false: every crossing, with `covered`")] = True,
) -> Response:
    """Crossings derived from the reaches and the boundaries; each with its nearest section station."""
    doc = await run_in_threadpool(_run, pool, identity, lambda conn: coverage.crossing_gaps(
        conn, level, within_m=within_m, min_stay_m=min_stay_m, gaps_only=gaps_only))
    return json_response(doc, GEOJSON, {"Content-Crs": f"<{coverage.CRS84}>"})


@router.get("/ledger", summary="Cross-border section compensation by city pair and month",
            response_description="JSON (pairs, years, records, units, the schemes with their sources) or CSV")
async def ledger_view(
    pool: HeavyDep,
    identity: IdentityDep,
    month: Annotated[str | None, Query(description="YYYY-MM; every month when absent")] = None,
    pair: Annotated[str | None, Query(description="UPSTREAM-DOWNSTREAM city codes, e.g. 341100-320100")] = None,
    f: Annotated[str, Query(description="json or csv")] = "json",
    detail: Annotated[bool, Query(description="CSV: one row per record and factor instead of per pair and "
                                              "month")] = False,
) -> Response:
    """What each upstream city owes (positive) or is owed (negative) at its sections.

    Each record names its section's scheme (by station, city pair or province pair) and shows its
    computation: the factors over target and their loads (per tonne) or the index P and the fixed sum
    (two-way agreements, with the yearly index in ``years``).  Records of synthetic stations say so.
    """
    if f not in ("json", "csv"):
        raise InvalidParameter(f"`f` was {f[:20]!r} but is expected to be 'json' or 'csv'")
    result: Any = await run_in_threadpool(_run, pool, identity, lambda conn: ledger.build_ledger(
        conn, month=month, pair=pair))
    if f == "csv":
        name = f"ledger-{month or 'all'}{'-detail' if detail else ''}.csv"
        return Response(ledger.ledger_csv(result, detail=detail), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return json_response(result.to_dict())
