"""Inspection records synced from the phone: a batch of records, each with its findings and photos.

Each record is saved in a savepoint of its own, so a bad record is reported (by its client id and
index) while the good ones are kept.  The client's UUID makes a resent record a no-op
(``already-synced``), so a retried sync never creates two.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.errors import InvalidParameter, RiskAtlasError
from services.identity import Identity
from services.inspections import checklists
from services.inspections.photos import Photo

CST = timezone(timedelta(hours=8))
MEMBERS = {"client_id", "task_id", "site_key", "template", "template_version", "answers", "note", "position",
           "accuracy_m", "device_time", "findings", "photos", "synthetic"}
MAX_RECORDS = 200
MAX_FINDINGS = 50


def sync(conn: psycopg.Connection, identity: Identity, records: list[Any], photos: dict[str, Photo],
         bad_photos: dict[str, str] | None = None) -> dict[str, Any]:
    """Save each record of the batch that passes; report every record as ``saved``, ``already-synced``
    or ``rejected`` with the reason.  ``photos`` maps an uploaded file name to the processed photo; a
    record names its photos by file name."""
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for i, rec in enumerate(records):
        cid = rec.get("client_id") if isinstance(rec, dict) else None
        try:
            with conn.transaction():
                status, rid = _save(conn, identity, i, rec, photos, bad_photos or {})
            out.append({"index": i, "client_id": cid, "status": status, "id": rid})
            used.update(rec.get("photos") or [])
        except RiskAtlasError as exc:
            out.append({"index": i, "client_id": cid, "status": "rejected", "reason": exc.description})
        except psycopg.errors.InsufficientPrivilege:
            site = rec.get("site_key") if isinstance(rec, dict) else None
            out.append({"index": i, "client_id": cid, "status": "rejected",
                        "reason": f"records[{i}]: site {site!r} is outside your scope (neither a site of your city "
                                  "nor of a task you are assigned to)"})
        except (psycopg.errors.ForeignKeyViolation, psycopg.errors.InvalidParameterValue,
                psycopg.errors.CheckViolation) as exc:
            out.append({"index": i, "client_id": cid, "status": "rejected",
                        "reason": f"records[{i}]: {exc.diag.message_primary}"})
    counts = {s: sum(1 for r in out if r["status"] == s) for s in ("saved", "already-synced", "rejected")}
    unused = sorted(set(photos) - used)
    return {**counts, "records": out, "unreferenced_photos": unused}


def _save(conn: psycopg.Connection, identity: Identity, i: int, rec: Any, photos: dict[str, Photo],
          bad_photos: dict[str, str]) -> tuple[str, int | None]:
    where = f"records[{i}]"
    if not isinstance(rec, dict):
        raise InvalidParameter(f"{where}: expected an object")
    unknown = sorted(set(rec) - MEMBERS)
    if unknown:
        raise InvalidParameter(f"{where}: unknown member {unknown[0]!r}; expected {sorted(MEMBERS)}")
    try:
        cid = uuid.UUID(str(rec.get("client_id")))
    except ValueError:
        raise InvalidParameter(f"{where}.client_id: expected a UUID generated on the device") from None
    site = rec.get("site_key")
    if not isinstance(site, str) or not 0 < len(site) <= 200:
        raise InvalidParameter(f"{where}.site_key: expected a risk source key")
    task_id = rec.get("task_id")
    if task_id is not None and (not isinstance(task_id, int) or isinstance(task_id, bool) or task_id < 1):
        raise InvalidParameter(f"{where}.task_id: expected a task id")
    version_no = rec.get("template_version")
    if not isinstance(version_no, int) or isinstance(version_no, bool):
        raise InvalidParameter(f"{where}.template_version: expected the version the checklist was filled with")
    version = checklists.get(str(rec.get("template")), version_no)
    answers = checklists.check_answers(version, rec.get("answers", {}), f"{where}.answers")
    lon, lat = _position(rec.get("position"), where)
    accuracy = rec.get("accuracy_m")
    if accuracy is not None and (not isinstance(accuracy, (int, float)) or accuracy < 0 or accuracy > 100_000):
        raise InvalidParameter(f"{where}.accuracy_m: expected metres between 0 and 100000")
    when = _time(rec.get("device_time"), f"{where}.device_time")
    note = rec.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 4000):
        raise InvalidParameter(f"{where}.note: expected text of at most 4000 characters")
    findings = rec.get("findings") or []
    if not isinstance(findings, list) or len(findings) > MAX_FINDINGS:
        raise InvalidParameter(f"{where}.findings: expected a list of at most {MAX_FINDINGS} findings")
    checked = [_finding(f, version, f"{where}.findings[{n}]") for n, f in enumerate(findings)]
    names = rec.get("photos") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidParameter(f"{where}.photos: expected a list of the file names of its photos")
    refused = [n for n in names if n in bad_photos]
    if refused:
        raise InvalidParameter(f"{where}.photos: {bad_photos[refused[0]]}")
    missing = [n for n in names if n not in photos]
    if missing:
        raise InvalidParameter(f"{where}.photos: file {missing[0]!r} is not in the upload")
    if task_id is not None:
        task = conn.execute("SELECT template FROM riskatlas.inspection_task WHERE id = %s", (task_id,)).fetchone()
        if task is None:
            raise InvalidParameter(f"{where}.task_id: no task {task_id} you may see")
        if task["template"] != version.template:
            raise InvalidParameter(f"{where}.template: task {task_id} uses checklist {task['template']!r}, "
                                   f"not {version.template!r}")
    row = conn.execute(
        """INSERT INTO riskatlas.inspection_record (key, client_id, task_id, site_key, inspector, template,
               template_version, answers, note, position, accuracy_m, device_time, synthetic)
           VALUES (%(key)s::text, %(key)s::text::uuid, %(task)s, %(site)s, '', %(template)s, %(version)s, %(answers)s, %(note)s,
                   ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(acc)s, %(when)s, %(synthetic)s)
           ON CONFLICT (client_id) DO NOTHING RETURNING id""",
        {"key": str(cid), "task": task_id, "site": site, "template": version.template, "version": version.version,
         "answers": Jsonb(answers), "note": note, "lon": lon, "lat": lat, "acc": accuracy, "when": when,
         "synthetic": bool(rec.get("synthetic", False))}).fetchone()
    if row is None:
        return "already-synced", None
    rid = row["id"]
    for n, f in enumerate(checked, start=1):
        conn.execute("""INSERT INTO riskatlas.inspection_finding (key, record_id, ordinal, kind, severity, item, note)
                        VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                     (f"{cid}:{n}", rid, n, f["kind"], f["severity"], f.get("item"), f.get("note")))
    for name in dict.fromkeys(names):
        p = photos[name]
        pid = conn.execute(
            """INSERT INTO riskatlas.inspection_photo (key, record_id, filename, media_type, sha256, sha256_in, width,
                   height, size, exif_lon, exif_lat) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (record_id, sha256_in) DO NOTHING RETURNING id""",
            (f"{cid}:{p.sha256_in}", rid, p.filename, p.media_type, p.sha256, p.sha256_in, p.width, p.height,
             len(p.data), p.exif_lon, p.exif_lat)).fetchone()
        if pid is not None:
            conn.execute("INSERT INTO riskatlas.inspection_photo_blob (photo_id, bytes) VALUES (%s, %s)",
                         (pid["id"], p.data))
    return "saved", rid


def _finding(f: Any, version: checklists.Version, where: str) -> dict[str, Any]:
    if not isinstance(f, dict):
        raise InvalidParameter(f"{where}: expected an object with kind, severity, note")
    unknown = sorted(set(f) - {"kind", "severity", "note", "item"})
    if unknown:
        raise InvalidParameter(f"{where}: unknown member {unknown[0]!r}; expected kind, severity, note, item")
    checklists.check_finding_type(f.get("kind"), f"{where}.kind")
    if f.get("severity") not in ("low", "medium", "high"):
        raise InvalidParameter(f"{where}.severity: expected low, medium or high")
    item = f.get("item")
    if item is not None and item not in {i.id for i in version.items}:
        raise InvalidParameter(f"{where}.item: question {item!r} is not in checklist {version.template!r} "
                               f"version {version.version}")
    note = f.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 4000):
        raise InvalidParameter(f"{where}.note: expected text of at most 4000 characters")
    return f


def _position(pos: Any, where: str) -> tuple[float, float]:
    if not isinstance(pos, dict) or not all(isinstance(pos.get(k), (int, float)) and not isinstance(pos.get(k), bool)
                                            for k in ("lon", "lat")):
        raise InvalidParameter(f"{where}.position: expected {{\"lon\": ..., \"lat\": ...}} in WGS 84 degrees")
    lon, lat = float(pos["lon"]), float(pos["lat"])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter(f"{where}.position: ({lon}, {lat}) are not longitude and latitude")
    return lon, lat


def _time(value: Any, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        t = None
    if t is None:
        raise InvalidParameter(f"{where}: expected an ISO 8601 time (without a zone: China Standard Time)")
    if t.tzinfo is None:
        t = t.replace(tzinfo=CST)
    if t > datetime.now(UTC) + timedelta(days=1) or t.year < 2000:
        raise InvalidParameter(f"{where}: {value!r} lies in the future or before 2000")
    return t
