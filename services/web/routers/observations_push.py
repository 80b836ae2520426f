"""``POST /observations`` (automatic stations push batches) and ``/observations/events`` (exceedances at
cross-border sections, for the cities they concern).

A push is authenticated by the key of the station's owner city (a steward of that city, or an
administrator) and goes through the same checks and the same upsert as a file (``etl.observations``):
idempotent by station + parameter + time, a changed value kept in history, each rejected item reported
by its index.  A body that is not a batch of items (not JSON, an item that is not an object, a missing
member, a member of the wrong JSON type) is refused whole with a 4xx naming the item and member; with
``all_or_nothing`` one rejected item refuses the whole batch.  Nothing of a refused batch is written.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import pandas as pd
import psycopg
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from etl.errors import InputError, LoadFailed
from etl.load import Actor
from etl.observations import Batch, ingest
from services.errors import Conflict, Forbidden, InvalidParameter, NotFound
from services.identity import Identity, present_sync
from services.observations.events import acknowledge, after_ingest, list_events
from services.web.deps import DBSettingsDep, IdentityDep
from services.web.limits import apply_budget_sync
from services.web.validation import SELF_CHECKED, check_text

router = APIRouter(tags=["observations"])

MAX_ITEMS = 100_000
MEMBERS = {"station": str, "parameter": str, "time": str, "value": (int, float), "unit": str, "flag": str}
REQUIRED = ("station", "parameter", "time", "value")

PUSH_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["items"],
    "properties": {
        "items": {"type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "object", "required": list(REQUIRED),
            "properties": {
                "station": {"type": "string", "description": "monitoring_station key"},
                "parameter": {"type": "string", "description": "code (pm25, co, nh3n, ...) or name (PM2.5, NH3-N)"},
                "time": {"type": "string", "description": "ISO 8601; without a zone: China Standard Time"},
                "value": {"type": "number"},
                "unit": {"type": "string", "description": "default: the parameter's canonical unit"},
                "flag": {"type": "string", "description": "valid (default), estimated, suspect, invalid, "
                                                          "calibration, maintenance"}}}},
        "all_or_nothing": {"type": "boolean", "default": False,
                           "description": "refuse the whole batch when any item is rejected"}},
}


@router.post("/observations", summary="Push a batch of observations (the station's owner city's key)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": PUSH_SCHEMA}}}},
             responses={200: {"description": "what happened to the batch and each rejected item"},
                        422: {"description": "no item loaded, or a malformed batch (nothing written)"}})
async def push(request: Request, identity: IdentityDep, settings: DBSettingsDep) -> JSONResponse:
    """Load a batch: every item checked as a file's row; the rest upserted in one transaction."""
    identity.require_writer()
    body = await request.body()
    items, all_or_nothing = _parse(body)
    batch = _batch(items)
    actor = (Actor(user=identity.user, role="admin", context=identity.context) if identity.role == "admin"
             else Actor(user=identity.user, role="steward", city=identity.city, context=identity.context))
    try:
        report = await run_in_threadpool(ingest, settings, batch, source="push", actor=actor, hook=after_ingest,
                                         sha256=hashlib.sha256(body).hexdigest(), all_or_nothing=all_or_nothing)
    except InputError as exc:
        raise InvalidParameter(str(exc)) from None
    except LoadFailed as exc:
        raise Conflict(str(exc)) from None
    doc = report.to_dict()
    out = {k: doc[k] for k in ("status", "batch_id", "rows_in", "rows_inserted", "rows_updated", "rows_unchanged",
                               "rows_rejected", "notes", "derived")}
    out["rejects"] = [{"item": r["row_no"], "field": r["field"], "reason": r["reason"]} for r in doc["rejects"]]
    loaded = report.rows_loaded
    return JSONResponse(out, status_code=422 if report.rows_in and not loaded else 200)


def _parse(body: bytes) -> tuple[list[Any], bool]:
    """The items and the all-or-nothing switch of a push body; 400/422 naming what is wrong."""
    assert ("POST", "/observations") in SELF_CHECKED  # the edge check leaves this body to us
    try:
        doc = json.loads(body, parse_constant=_not_json)
    except ValueError as exc:
        raise InvalidParameter(f"body: not JSON ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if isinstance(doc, list):
        doc = {"items": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise InvalidParameter("body: expected {\"items\": [{\"station\", \"parameter\", \"time\", \"value\", "
                               "\"unit\", \"flag\"}, ...]}")
    unknown = sorted(set(doc) - {"items", "all_or_nothing"})
    if unknown:
        raise InvalidParameter(f"body: unknown member {unknown[0]!r}; expected 'items' and 'all_or_nothing'")
    switch = doc.get("all_or_nothing", False)
    if not isinstance(switch, bool):
        raise InvalidParameter(f"body member all_or_nothing: expected true or false, got {switch!r}")
    items = doc["items"]
    if not items:
        raise InvalidParameter("body member items: the batch is empty")
    if len(items) > MAX_ITEMS:
        raise InvalidParameter(f"body member items: {len(items)} items; a batch holds at most {MAX_ITEMS}")
    return items, switch


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _batch(items: list[Any]) -> Batch:
    """Items as a :class:`etl.observations.Batch` numbered by their index; a malformed item is a 400."""
    cols: dict[str, list[str]] = {k: [] for k in MEMBERS}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidParameter(f"items[{i}]: expected an object, got {type(item).__name__}")
        for name in REQUIRED:
            if name not in item:
                raise InvalidParameter(f"items[{i}]: member {name!r} is missing")
        for name, v in item.items():
            kind = MEMBERS.get(name)
            if kind is None:
                raise InvalidParameter(f"items[{i}]: unknown member {name!r}; expected {list(MEMBERS)}")
            if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
                expected = "a number" if name == "value" else "a string"
                raise InvalidParameter(f"items[{i}].{name}: expected {expected}, got {json.dumps(v)[:40]}")
        for name in MEMBERS:
            v = item.get(name)
            cols[name].append("" if v is None else (repr(v) if name == "value" else str(v).strip()))
    for name in ("station", "parameter", "time", "unit", "flag"):  # the edge rules (NUL, lone surrogates)
        try:
            check_text(name, "".join(cols[name]))
        except InvalidParameter:
            for i, v in enumerate(cols[name]):
                check_text(f"items[{i}].{name}", v)
    obs = pd.DataFrame({"row_no": range(len(items)), **cols, "field": None})

    def records(row_no: int) -> dict[str, Any]:
        return dict(items[row_no])

    return Batch(obs, records, "push")


def _run(settings: Any, identity: Identity, work: Any) -> Any:
    """``work(conn)`` on a connection of the application role as ``identity``, committed."""
    from layers import db

    with db.connect(settings, "app") as conn, conn.transaction():
        present_sync(conn, identity)
        apply_budget_sync(conn, identity)
        return work(conn)


@router.get("/observations/events", summary="Exceedances at cross-border sections that concern the caller's city",
            response_description="events: sample, GB 3838 class against the target, upstream and downstream city")
async def events(
    identity: IdentityDep, settings: DBSettingsDep,
    city: Annotated[str | None, Query(max_length=6, description="only events addressed to this city")] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, acknowledged or withdrawn")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> JSONResponse:
    """Events a city may see (its own sections', and those upstream or downstream of it); row-level
    security decides, so an anonymous caller sees none.  The notice machinery for incidents does not
    exist yet: this list is how the downstream city is told."""
    if identity.role == "public":
        raise Forbidden("section events are for the cities they concern: present a key")
    rows = await run_in_threadpool(_run, settings, identity,
                                   lambda conn: list_events(conn, city=city, status=status, limit=limit))
    return JSONResponse({"events": json.loads(json.dumps(rows, default=str, ensure_ascii=False))})


@router.post("/observations/events/{event_id}/acknowledge", summary="Acknowledge an exceedance event")
async def acknowledge_event(
    identity: IdentityDep, settings: DBSettingsDep,
    event_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> JSONResponse:
    """The addressed (downstream) city, or the measuring city, marks an open event acknowledged."""
    identity.require_writer()
    try:
        row = await run_in_threadpool(_run, settings, identity, lambda conn: acknowledge(conn, event_id, identity.user))
    except psycopg.errors.InsufficientPrivilege:
        row = None
    if row is None:
        raise NotFound(f"event {event_id}: no open event of your city with this id")
    return JSONResponse(json.loads(json.dumps(row, default=str)))
