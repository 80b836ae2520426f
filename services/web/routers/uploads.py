"""Uploads: a data steward loads a file into their own city's rows through the ordinary ETL."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from etl.errors import InputError, LoadFailed
from etl.load import Actor, load_file
from layers.catalogue import LAYERS, UnknownLayer
from services.after_load import after_load
from services.errors import Conflict, InvalidParameter, PayloadTooLarge
from services.web.deps import APISettingsDep, DBSettingsDep, IdentityDep
from services.web.validation import check_text

router = APIRouter(tags=["uploads"])

ALLOWED_SUFFIXES = {".geojson", ".json", ".gpkg", ".zip", ".csv", ".kml", ".kmz"}
CHUNK = 1 << 20


@router.post("/uploads", summary="Load a file into a layer (stewards: their own city's rows only)",
             responses={200: {"description": "load report"}, 422: {"description": "no row could be loaded"}})
async def upload(
    identity: IdentityDep, db_settings: DBSettingsDep, api: APISettingsDep,
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, CSV, KML or KMZ")],
    layer: Annotated[str, Form(description="Target layer")],
    mapping: Annotated[str | None, Form(description="Name of a built-in mapping")] = None,
    crs: Annotated[str | None, Form(description="CRS override: EPSG:4326, EPSG:4490, gcj02, bd09, ...")] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> Any:
    identity.require_writer()
    for field, value in (("layer", layer), ("mapping", mapping), ("crs", crs), ("file", file.filename)):
        if value is not None:  # multipart fields pass the edge checks of services.web.validation unread
            check_text(field, value)
    if layer not in LAYERS or not LAYERS[layer].inventory:
        allowed = sorted(n for n, lay in LAYERS.items() if lay.inventory)
        raise InvalidParameter(f"layer was {layer!r} but is expected to be one of {allowed}")
    name = Path(file.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise InvalidParameter(f"file {name!r}: format {suffix or '(none)'} is not accepted; "
                               f"expected one of {sorted(ALLOWED_SUFFIXES)}")
    if mapping is not None and ("/" in mapping or "\\" in mapping or mapping.startswith(".")):
        raise InvalidParameter("mapping must be the name of a built-in mapping, not a path")
    # the load runs as the application role and presents the context the database issued for this key
    actor = (Actor(user=identity.user, role="admin", context=identity.context) if identity.role == "admin"
             else Actor(user=identity.user, role="steward", city=identity.city, context=identity.context))
    folder = Path(tempfile.mkdtemp(prefix="riskatlas-upload-"))
    try:
        target = folder / name
        size = 0
        with target.open("wb") as fh:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > api.max_upload_bytes:
                    raise PayloadTooLarge(f"file {name!r} exceeds the upload limit of {api.max_upload_bytes} bytes")
                fh.write(chunk)
        try:
            report = await run_in_threadpool(load_file, db_settings, target, layer, mapping=mapping, crs=crs,
                                             dry_run=dry_run, actor=actor, sandbox=True)
        except (InputError, UnknownLayer) as exc:
            raise InvalidParameter(_without(folder, str(exc).strip('"'))) from None
        except LoadFailed as exc:
            raise Conflict(_without(folder, str(exc))) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = report.to_dict()
    body["file"] = name
    if not dry_run and report.batch_id is not None and report.rows_inserted + report.rows_updated:
        body["derived"] = (await run_in_threadpool(after_load, db_settings, layer, report.batch_id)).to_dict()
    return JSONResponse(body, status_code=422 if report.exit_code == 2 else 200)


def _without(folder: Path, message: str) -> str:
    """``message`` without the server's temporary folder (errors never show server paths)."""
    return message.replace(str(folder) + "/", "").replace(str(folder), "")
