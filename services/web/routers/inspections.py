"""Joint inspections and enforcement (issue 12): tasks, the phone's sync, photos, cases, a site's
history and the monthly reports.

Every handler runs its work on a connection of the application role presenting the caller's verified
context, so row-level security (migration 0014) decides what each city plans, writes and reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile

from layers.settings import DatabaseSettings
from services.errors import Forbidden, InvalidParameter, NotFound, PayloadTooLarge
from services.identity import Identity, present_sync
from services.inspections import cases, checklists, history, photos, records, reports, tasks
from services.web.deps import APISettingsDep, DBSettingsDep, IdentityDep, PoolDep, connection
from services.web.limits import apply_budget, apply_budget_sync
from services.web.validation import check_text

router = APIRouter(tags=["inspections"])
T = TypeVar("T")
FIELD_ROLES = ("inspector", "steward", "admin")
MAX_PHOTOS = 200


def _run(settings: DatabaseSettings, identity: Identity, work: Callable[[Any], T]) -> T:
    """``work(conn)`` on a connection of the application role as ``identity``, committed."""
    from layers import db

    with db.connect(settings, "app") as conn, conn.transaction():
        present_sync(conn, identity)
        apply_budget_sync(conn, identity)
        return work(conn)


def _json(doc: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(doc, default=str, ensure_ascii=False)), status_code=status)


def _known(identity: Identity) -> None:
    if identity.role == "public":
        raise Forbidden("inspections are for the cities' inspectors and stewards: present a key")


@router.get("/inspections/templates", summary="Checklist templates (every version) and finding types")
async def templates() -> JSONResponse:
    """The checklists the phone keeps offline: per site category, every version, and the finding types."""
    return _json({"templates": {name: [v.to_dict() for v in versions.values()]
                                for name, versions in checklists.templates().items()},
                  "finding_types": checklists.finding_types()})


@router.get("/inspections/tasks", summary="Inspection tasks the caller may see")
async def list_tasks(identity: IdentityDep, settings: DBSettingsDep,
                     status: Annotated[str | None, Query(max_length=20)] = None,
                     site: Annotated[str | None, Query(max_length=200)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
    _known(identity)
    rows = await run_in_threadpool(_run, settings, identity,
                                   lambda c: tasks.list_tasks(c, status=status, site=site, limit=limit))
    return _json({"tasks": rows})


@router.post("/inspections/tasks", summary="Plan a task (a steward for their city; joint: teams from several cities)",
             status_code=201)
async def create_task(identity: IdentityDep, settings: DBSettingsDep,
                      doc: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    _known(identity)
    row = await run_in_threadpool(_run, settings, identity, lambda c: tasks.create_task(c, identity, doc))
    return _json(row, 201)


@router.get("/inspections/tasks/{task_id}", summary="One task with its sites")
async def get_task(identity: IdentityDep, settings: DBSettingsDep,
                   task_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> JSONResponse:
    _known(identity)
    return _json(await run_in_threadpool(_run, settings, identity, lambda c: tasks.get_task(c, task_id)))


@router.patch("/inspections/tasks/{task_id}", summary="Change a task's status, window, title or inspectors")
async def update_task(identity: IdentityDep, settings: DBSettingsDep, task_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                      doc: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    if identity.role not in ("steward", "admin"):
        raise Forbidden(f"tasks are changed by the lead city's steward; this request is {identity.role!r}")
    return _json(await run_in_threadpool(_run, settings, identity, lambda c: tasks.update_task(c, task_id, doc)))


@router.post("/inspections/sync", summary="Sync a batch of inspection records with their photos (multipart)",
             responses={200: {"description": "each record saved, already synced or rejected (with the reason)"},
                        422: {"description": "no record of the batch could be saved"}})
async def sync(request: Request, identity: IdentityDep, settings: DBSettingsDep, api: APISettingsDep) -> JSONResponse:
    """Multipart: a field ``records`` (a JSON array of records) and files ``photos`` (JPEG or PNG) that
    the records name by file name.  A bad record, or one naming a bad photo, is reported (the reason
    names the file) and the good ones saved; 422 when none could be."""
    if identity.role not in FIELD_ROLES:
        raise Forbidden(f"records are synced by inspectors and stewards; this request is {identity.role!r}")
    form = await request.form(max_files=MAX_PHOTOS, max_fields=10, max_part_size=api.max_body_bytes)
    raw_records = form.get("records")
    if not isinstance(raw_records, str):
        raise InvalidParameter("form field records: expected a JSON array of records")
    check_text("records", raw_records)
    try:
        batch = json.loads(raw_records)
    except ValueError:
        raise InvalidParameter("form field records: not JSON") from None
    if not isinstance(batch, list) or not batch or len(batch) > records.MAX_RECORDS:
        raise InvalidParameter(f"form field records: expected an array of 1 to {records.MAX_RECORDS} records")
    uploads = [f for f in form.getlist("photos") if isinstance(f, UploadFile)]
    if len(form.getlist("photos")) != len(uploads):
        raise InvalidParameter("form field photos: expected files")
    raws: list[tuple[str, bytes]] = []
    for f in uploads:
        name = f.filename or ""
        check_text("photos", name)
        if not name or "/" in name or "\\" in name or len(name) > 200:
            raise InvalidParameter(f"photo {name!r}: expected a plain file name")
        if any(n == name for n, _ in raws):
            raise InvalidParameter(f"photo {name!r}: the same file name twice in one sync")
        raws.append((name, await f.read(photos.MAX_BYTES + 1)))
    # Pillow releases the GIL while it decodes and encodes: the photos are processed side by side.  A bad
    # photo rejects the records that name it (the reason names the file), so the rest of a phone's queue
    # is not held back by it.
    done = await asyncio.gather(*(run_in_threadpool(_photo, name, data) for name, data in raws))
    processed = {p.filename: p for p in done if isinstance(p, photos.Photo)}
    bad = {name: p for (name, _), p in zip(raws, done, strict=True) if isinstance(p, str)}
    doc = await run_in_threadpool(_run, settings, identity, lambda c: records.sync(c, identity, batch, processed, bad))
    return _json(doc, 422 if doc["saved"] + doc["already-synced"] == 0 else 200)


def _photo(name: str, data: bytes) -> photos.Photo | str:
    """The processed photo, or why it was refused (a sentence naming the file)."""
    if len(data) > photos.MAX_BYTES:
        return f"photo {name!r}: a photo is limited to {photos.MAX_BYTES} bytes"
    try:
        return photos.process(name, data)
    except (InvalidParameter, PayloadTooLarge) as exc:
        return exc.description


@router.get("/inspections/photos/{photo_id}", summary="A photo (re-encoded; for the cities that may read its record)")
async def photo(identity: IdentityDep, settings: DBSettingsDep,
                photo_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    _known(identity)

    def work(conn: Any) -> Any:
        return conn.execute("""SELECT p.media_type, p.sha256, b.bytes FROM riskatlas.inspection_photo p
                               JOIN riskatlas.inspection_photo_blob b ON b.photo_id = p.id WHERE p.id = %s""",
                            (photo_id,)).fetchone()

    row = await run_in_threadpool(_run, settings, identity, work)
    if row is None:
        raise NotFound(f"photo {photo_id}: no photo you may see has this id")
    return Response(bytes(row["bytes"]), media_type=row["media_type"],
                    headers={"ETag": f'"{row["sha256"]}"', "Cache-Control": "private, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})


@router.get("/inspections/cases", summary="Enforcement cases the caller may read")
async def list_cases(identity: IdentityDep, settings: DBSettingsDep,
                     status: Annotated[str | None, Query(max_length=20)] = None,
                     city: Annotated[str | None, Query(max_length=6)] = None,
                     overdue: Annotated[bool | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
    _known(identity)
    rows = await run_in_threadpool(_run, settings, identity, lambda c: cases.list_cases(
        c, status=status, city=city, overdue=overdue, limit=limit))
    return _json({"cases": rows})


@router.post("/inspections/cases", summary="Open a case from a finding (立案)", status_code=201)
async def open_case(identity: IdentityDep, settings: DBSettingsDep,
                    finding_id: Annotated[int, Body(ge=1, le=2**63 - 1)], deadline: Annotated[date, Body()],
                    measures: Annotated[str | None, Body(max_length=4000)] = None) -> JSONResponse:
    row = await run_in_threadpool(_run, settings, identity,
                                  lambda c: cases.open_case(c, identity, finding_id, deadline, measures))
    return _json(row, 201)


@router.get("/inspections/cases/{case_id}", summary="One case")
async def get_case(identity: IdentityDep, settings: DBSettingsDep,
                   case_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> JSONResponse:
    _known(identity)
    return _json(await run_in_threadpool(_run, settings, identity, lambda c: cases.get_case(c, case_id)))


@router.post("/inspections/cases/{case_id}/follow-up", summary="Record the follow-up inspection (复查)")
async def follow_up(identity: IdentityDep, settings: DBSettingsDep, case_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                    rectified: Annotated[bool, Body()], record: Annotated[str | None, Body(max_length=64)] = None,
                    note: Annotated[str | None, Body(max_length=4000)] = None) -> JSONResponse:
    return _json(await run_in_threadpool(_run, settings, identity,
                                         lambda c: cases.follow_up(c, identity, case_id, record, rectified, note)))


@router.post("/inspections/cases/{case_id}/close", summary="Close a rectified case (结案)")
async def close_case(identity: IdentityDep, settings: DBSettingsDep, case_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                     note: Annotated[str | None, Body(embed=True, max_length=4000)] = None) -> JSONResponse:
    return _json(await run_in_threadpool(_run, settings, identity,
                                         lambda c: cases.close_case(c, identity, case_id, note)))


@router.get("/sites/{key}/history", summary="A site's inspections, findings and cases, across cities, in time order")
async def site_history(identity: IdentityDep, pool: PoolDep,
                       key: Annotated[str, Path(max_length=200)]) -> JSONResponse:
    async with connection(pool, identity) as conn:
        await apply_budget(conn, identity)
        doc = await history.site_history_async(conn, key)
    return _json(doc)


@router.get("/inspections/reports", summary="Monthly report of a city or a city pair (JSON, CSV or HTML)")
async def report(identity: IdentityDep, settings: DBSettingsDep,
                 month: Annotated[str, Query(max_length=7, description="YYYY-MM (China Standard Time)")],
                 city: Annotated[str | None, Query(max_length=6, description="default: the caller's city")] = None,
                 other: Annotated[str | None, Query(max_length=6, description="the other city of a pair")] = None,
                 format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "json") -> Response:
    _known(identity)
    city = city or identity.city
    if city is None:
        raise InvalidParameter("city: give the city (6-digit code) the report is for")
    doc = await run_in_threadpool(_run, settings, identity, lambda c: reports.month_report(c, month, city, other))
    if format == "csv":
        return PlainTextResponse(reports.to_csv([doc]), media_type="text/csv; charset=utf-8")
    if format == "html":
        title = f"检查与执法月报 Inspections and enforcement {month}"
        return HTMLResponse(reports.to_html([doc], title))
    return _json(doc)
