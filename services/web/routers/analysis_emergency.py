"""Emergency analyses: a spill's reach downstream, an air threat zone, and the warning bulletin.

Thin handlers: the requests are validated by :mod:`services.emergency.requests` (400 with the reason),
the work is done by :mod:`services.emergency` on a connection of the app's heavy-analysis pool.  The
handlers are plain functions, so FastAPI runs them in its thread pool (the river-network code is
synchronous psycopg).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from psycopg_pool import ConnectionPool

from services.emergency import notify
from services.emergency.plume import plume_zones
from services.emergency.population import registered_raster
from services.emergency.requests import (
    BulletinFormat,
    BulletinRequest,
    PlumeBulletinQuery,
    PlumeRequest,
    SpillBulletinQuery,
    SpillRequest,
)
from services.emergency.spill import trace_spill
from services.errors import Forbidden
from services.identity import Identity
from services.incidents.requests import PlumeIncidentRequest, SpillIncidentRequest
from services.web.deps import DBSettingsDep, IdentityDep
from services.web.limits import apply_budget_sync

GEOJSON = "application/geo+json"


router = APIRouter(prefix="/analysis", tags=["emergency"])


def _pool(request: Request) -> ConnectionPool:
    """The app's small synchronous pool for heavy analyses (the river-network code is synchronous)."""
    return request.app.state.heavy_sync_pool


PoolDep = Annotated[ConnectionPool, Depends(_pool)]


def run_spill(pool: ConnectionPool, req: SpillRequest, identity: Identity) -> dict[str, Any]:
    """The spill trace for one request, within ``identity``'s statement time."""
    with pool.connection() as conn:
        apply_budget_sync(conn, identity)
        return trace_spill(conn, req)


def run_plume(pool: ConnectionPool, req: PlumeRequest, identity: Identity) -> dict[str, Any]:
    """The threat zones for one request, with the registered population raster, within ``identity``'s
    statement time."""
    with pool.connection() as conn:
        apply_budget_sync(conn, identity)
        return plume_zones(conn, req, registered_raster(conn))


@router.post("/spill", summary="River spill: downstream reach, arrival times, peaks, jurisdictions",
             response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def spill(req: SpillIncidentRequest, pool: PoolDep, identity: IdentityDep, settings: DBSettingsDep) -> JSONResponse:
    """Snap the point to the nearest reach, follow the cloud downstream to the horizon, and say when it
    arrives (leading edge, peak, tail) and how strong it is at each reach end, intake, protection zone,
    cross-border section and water station; the jurisdictions crossed in order; whom to notify.  With
    ``"open_incident": true`` (a duty officer's key) it also opens an incident and sends its notices."""
    _may_open(identity, req)
    result = run_spill(pool, SpillRequest.model_validate(req.analysis_request()), identity)
    return JSONResponse(_maybe_open(settings, identity, "spill", req, result), media_type=GEOJSON)


@router.post("/plume", summary="Air threat zones of a continuous release, with what lies inside",
             response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def plume(req: PlumeIncidentRequest, pool: PoolDep, identity: IdentityDep, settings: DBSettingsDep) -> JSONResponse:
    """Gaussian-plume threat zones for toxic end-points 1 and 2 (HJ 169), and inside them the population,
    risk sources, drinking-water sources, air stations, protected areas and jurisdictions.  With
    ``"open_incident": true`` (a duty officer's key) it also opens an incident and sends its notices."""
    _may_open(identity, req)
    result = run_plume(pool, PlumeRequest.model_validate(req.analysis_request()), identity)
    return JSONResponse(_maybe_open(settings, identity, "plume", req, result), media_type=GEOJSON)


def _may_open(identity: Identity, req: SpillIncidentRequest | PlumeIncidentRequest) -> None:
    """Refuse an incident request from a key that may not open one, before the analysis runs."""
    if req.open_incident and identity.role not in ("duty", "admin"):
        raise Forbidden(f"opening an incident needs a duty officer's or administrator's key; this request is "
                        f"{identity.role!r}")


def _maybe_open(settings: Any, identity: Identity, kind: str, req: SpillIncidentRequest | PlumeIncidentRequest,
                result: dict[str, Any]) -> dict[str, Any]:
    """``result``, with ``"incident": {"id", "created", "notices"}`` when the request opens one."""
    if req.open_incident:
        from services.web.routers.incidents import open_from_analysis

        assert req.client_request_id is not None  # the request's validator demands it
        result["incident"] = {**result["incident"], **open_from_analysis(
            settings, identity, kind, result, client_request_id=req.client_request_id,
            description=req.incident_description, severity=req.severity)}
    return result


@router.post("/bulletin", summary="Warning bulletin of an incident (spill, plume or both)",
             responses={200: {"content": {"text/plain": {}, "text/csv": {}, "application/json": {}}}})
def bulletin(req: BulletinRequest, pool: PoolDep, identity: IdentityDep,
             f: Annotated[BulletinFormat, Query(description="text, csv or json")] = "text") -> Response:
    """Whom to tell, in order of first arrival, with the intakes and cross-border sections and the zones;
    Chinese and English labels."""
    spill_result = run_spill(pool, req.spill, identity) if req.spill else None
    plume_result = run_plume(pool, req.plume, identity) if req.plume else None
    return _bulletin(spill_result, plume_result, f)


@router.get("/spill/bulletin", summary="Warning bulletin of a spill, from query parameters")
def spill_bulletin(q: Annotated[SpillBulletinQuery, Query()], pool: PoolDep, identity: IdentityDep) -> Response:
    """The bulletin of ``POST /analysis/spill`` as a link: the same parameters in the query, plus ``f``."""
    return _bulletin(run_spill(pool, q.request(), identity), None, q.f)


@router.get("/plume/bulletin", summary="Warning bulletin of a release to air, from query parameters")
def plume_bulletin(q: Annotated[PlumeBulletinQuery, Query()], pool: PoolDep, identity: IdentityDep) -> Response:
    """The bulletin of ``POST /analysis/plume`` as a link: the same parameters in the query, plus ``f``."""
    return _bulletin(None, run_plume(pool, q.request(), identity), q.f)


def _bulletin(spill_result: dict[str, Any] | None, plume_result: dict[str, Any] | None, f: str) -> Response:
    b = notify.bulletin(spill_result, plume_result, notify.issued_now())
    if f == "csv":
        return Response(notify.to_csv(b), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="bulletin.csv"'})
    if f == "json":
        return JSONResponse(b)
    return PlainTextResponse(notify.to_text(b))
