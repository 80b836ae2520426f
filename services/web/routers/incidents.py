"""Incidents (DESIGN 11): open, list, show, move on, acknowledge, CAP alerts, the consultation log, the
printable record, the one-time e-mail links and the live stream of new notices.

Thin handlers: each runs :mod:`services.incidents` on a connection of the application role that
presents the caller's verified context, so row-level security decides; an incident the caller's city
is not involved in is a 404 like one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypeVar

import psycopg
from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from layers import db
from layers.settings import DatabaseSettings
from services.errors import Forbidden, InvalidParameter, NotFound, Unauthorized
from services.identity import Identity, present_sync
from services.incidents import cap, consultation, store
from services.incidents.settings import DeliverySettings
from services.web.deps import DBSettingsDep, IdentityDep
from services.web.limits import apply_budget_sync

router = APIRouter(tags=["incidents"])
T = TypeVar("T")
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class StatusChange(BaseModel):
    """A new status, and what to tell the addressees."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "monitoring", "closed"]
    note: str = Field("", max_length=4000)


class Acknowledgement(BaseModel):
    """Which notice to acknowledge; without one, every open notice of the caller's city."""

    model_config = ConfigDict(extra="forbid")
    notice_id: int | None = Field(None, ge=1, le=2**63 - 1)


class LogEntry(BaseModel):
    """A message, decision or measurement for the consultation log."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["message", "decision", "measurement"] = "message"
    body: str = Field("", max_length=consultation.MAX_BODY_CHARS)
    corrects: int | None = Field(None, ge=1, le=2**63 - 1)
    measurement: dict[str, Any] | None = None


def run_as(settings: DatabaseSettings, identity: Identity, work: Callable[[psycopg.Connection], T]) -> T:
    """``work(conn)`` on a connection of the application role as ``identity``, committed."""
    with db.connect(settings, "app") as conn:
        present_sync(conn, identity)
        apply_budget_sync(conn, identity)
        conn.execute("SET LOCAL TimeZone = 'Asia/Shanghai'")  # times in China time, as the bureaus read them
        result = work(conn)  # one transaction: the context is transaction-local
        conn.commit()
        return result


def _known(identity: Identity) -> None:
    if identity.role == "public":
        raise Unauthorized("incidents concern the cities involved: present a key")


def _json(doc: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(doc, default=str, ensure_ascii=False)), status_code=status_code)


def open_from_analysis(settings: DatabaseSettings, identity: Identity, kind: str, analysis: dict[str, Any], *,
                       client_request_id: str, description: str = "", severity: str = "Severe",
                       delivery: DeliverySettings | None = None) -> dict[str, Any]:
    """Open an incident from a spill or plume result as ``identity`` (a duty officer or an administrator)."""
    if identity.role not in ("duty", "admin"):
        raise Forbidden(f"opening an incident needs a duty officer's or administrator's key; this request is "
                        f"{identity.role!r}")
    d = delivery or DeliverySettings()
    return run_as(settings, identity, lambda conn: store.open_incident(
        conn, kind, analysis, client_request_id=client_request_id, actor_city=identity.city,
        description=description, severity=severity, sender=d.sender_id))


@router.get("/incidents", summary="Incidents that concern the caller's city")
async def list_incidents(identity: IdentityDep, settings: DBSettingsDep,
                         status: Annotated[str | None, Query(max_length=20)] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    """Newest first: the incidents in the caller's city, opened by it, or naming it in the notify list."""
    _known(identity)
    rows = await run_in_threadpool(run_as, settings, identity,
                                   lambda conn: store.list_incidents(conn, status=status, limit=limit))
    return _json({"incidents": rows})


@router.get("/incidents/stream", summary="New notices as they happen (server-sent events)")
async def stream(request: Request, identity: IdentityDep, settings: DBSettingsDep) -> StreamingResponse:
    """One ``notice`` event per notice addressed to the caller's city (every one for an admin),
    as the database announces it; a comment line every 15 s keeps the connection open."""
    _known(identity)

    async def events() -> AsyncIterator[bytes]:
        conn = await psycopg.AsyncConnection.connect(db.url(settings, "app"), autocommit=True)
        try:
            await conn.execute("LISTEN riskatlas_notice")
            yield b": listening\n\n"
            while not await request.is_disconnected():
                got = False
                async for n in conn.notifies(timeout=15.0, stop_after=1):
                    got = True
                    doc = json.loads(n.payload)
                    if identity.role == "admin" or doc.get("city") == identity.city:  # addressed to the caller's city
                        yield f"event: notice\ndata: {json.dumps(doc)}\n\n".encode()
                if not got:
                    yield b": keep-alive\n\n"
        finally:
            await conn.close()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/incidents/ack/{token}", summary="The one-time acknowledgement link of an e-mail", response_class=HTMLResponse)
async def ack_link_page(token: Annotated[str, Path(min_length=20, max_length=128)]) -> HTMLResponse:
    """A page with one button: opening a link does not acknowledge (mail scanners open links)."""
    return HTMLResponse(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>确认收到 Acknowledge</title>"
        "<body><h1>确认收到通报 / Acknowledge the notice</h1>"
        f"<form method=\"post\" action=\"/incidents/ack/{token}\"><button type=\"submit\">确认收到 / Acknowledge"
        "</button></form></body></html>")


@router.post("/incidents/ack/{token}", summary="Acknowledge by the one-time link of an e-mail")
async def ack_link(token: Annotated[str, Path(min_length=20, max_length=128)], settings: DBSettingsDep) -> Response:
    """Acknowledges the notice the link was sent with, once; a used or unknown link is a 404."""
    def work(conn: psycopg.Connection) -> int | None:
        return store.acknowledge_by_token(conn, token)
    nid = await run_in_threadpool(run_as, settings, Identity(), work)
    if nid is None:
        raise NotFound("this acknowledgement link is unknown or was used already")
    return HTMLResponse(f"<!doctype html><meta charset=\"utf-8\"><p>已确认 / Acknowledged: notice {nid}</p>")


@router.get("/incidents/{incident_id}", summary="One incident: status, notices per city, the log")
async def show(incident_id: IncidentId, identity: IdentityDep, settings: DBSettingsDep,
               f: Annotated[Literal["json", "html"], Query()] = "json") -> Response:
    """The incident as the caller may see it, with the per-city summary (sent / delivered / acknowledged /
    overdue); ``f=html`` gives the printable record."""
    _known(identity)
    if f == "html":
        page = await run_in_threadpool(run_as, settings, identity,
                                       lambda conn: consultation.record_html(conn, incident_id))
        return HTMLResponse(page)
    doc = await run_in_threadpool(run_as, settings, identity, lambda conn: store.show(conn, incident_id))
    return _json(doc)


@router.get("/incidents/{incident_id}/record.html", summary="The whole incident as one printable HTML record",
            response_class=HTMLResponse)
async def record(incident_id: IncidentId, identity: IdentityDep, settings: DBSettingsDep) -> HTMLResponse:
    """What was known at opening, the status history, every notice, and the consultation log."""
    _known(identity)
    page = await run_in_threadpool(run_as, settings, identity, lambda conn: consultation.record_html(conn, incident_id))
    return HTMLResponse(page, headers={"Content-Disposition": f'inline; filename="incident-{incident_id}.html"'})


@router.post("/incidents/{incident_id}/status", summary="Move an incident on: monitoring, closed")
async def change_status(incident_id: IncidentId, change: StatusChange, identity: IdentityDep,
                        settings: DBSettingsDep) -> JSONResponse:
    """Records who and when; every addressee gets a CAP Update (monitoring) or Cancel (closed)."""
    _known(identity)
    sender = DeliverySettings().sender_id
    out = await run_in_threadpool(run_as, settings, identity, lambda conn: store.set_status(
        conn, incident_id, change.status, note=change.note, sender=sender))
    return _json(out)


@router.post("/incidents/{incident_id}/acknowledge", summary="Acknowledge a notice addressed to the caller's city")
async def acknowledge(incident_id: IncidentId, identity: IdentityDep, settings: DBSettingsDep,
                      ack: Acknowledgement | None = None) -> JSONResponse:
    """Only the addressed city acknowledges (its duty officers and stewards); the database keeps who and when."""
    _known(identity)
    nid = ack.notice_id if ack else None
    rows = await run_in_threadpool(run_as, settings, identity, lambda conn: store.acknowledge(conn, incident_id, nid))
    return _json({"acknowledged": rows})


@router.get("/incidents/{incident_id}/notices/{notice_id}.cap", summary="A notice as a CAP 1.2 alert",
            responses={200: {"content": {cap.MEDIA_TYPE: {}}}})
async def notice_cap(incident_id: IncidentId, notice_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                     identity: IdentityDep, settings: DBSettingsDep) -> Response:
    """The OASIS CAP 1.2 XML of one notice (zh-CN and en info blocks, area as polygon and circle)."""
    _known(identity)
    xml = await run_in_threadpool(run_as, settings, identity, lambda conn: store.cap_xml(conn, incident_id, notice_id))
    return Response(xml, media_type=cap.MEDIA_TYPE)


@router.post("/incidents/{incident_id}/log", summary="Post to the consultation log (会商)")
async def post_log(incident_id: IncidentId, entry: LogEntry, identity: IdentityDep,
                   settings: DBSettingsDep) -> JSONResponse:
    """A message, decision or measurement, signed by the caller's user and city; a correction names the
    entry it corrects (nothing is edited or deleted)."""
    _known(identity)
    row = await run_in_threadpool(run_as, settings, identity, lambda conn: consultation.post(
        conn, incident_id, entry.kind, entry.body, corrects=entry.corrects, measurement=entry.measurement))
    return _json(row, status_code=201)


@router.post("/incidents/{incident_id}/log/file", summary="Attach a file to the consultation log")
async def post_log_file(incident_id: IncidentId, identity: IdentityDep, settings: DBSettingsDep,
                        file: Annotated[UploadFile, File(description="PDF, PNG, JPEG, CSV or text")],
                        body: Annotated[str, Form(max_length=consultation.MAX_BODY_CHARS)] = "",
                        corrects: Annotated[int | None, Form(ge=1)] = None) -> JSONResponse:
    """A file entry: type recognised from its bytes, size limited (``consultation.MAX_FILE_BYTES``)."""
    _known(identity)
    data = await file.read(consultation.MAX_FILE_BYTES + 1)
    name = file.filename or ""
    if not name:
        raise InvalidParameter("file: the multipart part needs a filename")
    row = await run_in_threadpool(run_as, settings, identity, lambda conn: consultation.post(
        conn, incident_id, "file", body, corrects=corrects, file_name=name, file_bytes=data))
    return _json(row, status_code=201)


@router.get("/incidents/{incident_id}/log/{entry_id}/file", summary="A file of the consultation log")
async def log_file(incident_id: IncidentId, entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                   identity: IdentityDep, settings: DBSettingsDep) -> Response:
    """The file as it was posted."""
    _known(identity)
    name, kind, data = await run_in_threadpool(run_as, settings, identity,
                                               lambda conn: consultation.file_of(conn, incident_id, entry_id))
    return Response(data, media_type=kind,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}"})


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@router.get("/agencies", summary="The directory of agencies (contacts for duty officers, stewards, analysts)")
async def agencies(identity: IdentityDep, settings: DBSettingsDep,
                   jurisdiction: Annotated[str | None, Query(max_length=6)] = None) -> JSONResponse:
    """Every agency; duty phone, e-mail, webhook and the people on duty only for roles that may see them."""
    def work(conn: psycopg.Connection) -> list[dict[str, Any]]:
        cur = conn.cursor(row_factory=dict_row)
        cur.execute("""SELECT key, jurisdiction, kind, name, name_en, duty_phone, duty_email, webhook_url, on_duty,
                              synthetic, owner_city, updated_at, updated_by
                       FROM riskatlas.agency_visible WHERE (%s::text IS NULL OR jurisdiction = %s)
                       ORDER BY jurisdiction, kind, key""", (jurisdiction, jurisdiction))
        return list(cur.fetchall())
    rows = await run_in_threadpool(run_as, settings, identity, work)
    return _json({"agencies": rows})

