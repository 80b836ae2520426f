"""The consultation log (会商) of an incident: append-only entries of every involved city, and the whole
incident as one printable HTML record.

The database signs each entry with the verified user and city and refuses any UPDATE or DELETE
(migration 0012); a correction is a new entry that refers to the entry it corrects.  Files are limited
in size and to a few types, recognised from their bytes, not their names.
"""

from __future__ import annotations

import hashlib
import html
import json
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.errors import InvalidParameter, NotFound, PayloadTooLarge
from services.incidents import store

KINDS = ("message", "decision", "measurement", "file")
MAX_FILE_BYTES = 768 * 1024  # within the API's request-body limit (max_body_bytes, 1 MiB) with the multipart framing
MAX_BODY_CHARS = 20_000
# type -> (magic bytes at the start or None for text, file name endings)
FILE_TYPES: dict[str, tuple[bytes | None, tuple[str, ...]]] = {
    "application/pdf": (b"%PDF-", (".pdf",)),
    "image/png": (b"\x89PNG\r\n\x1a\n", (".png",)),
    "image/jpeg": (b"\xff\xd8\xff", (".jpg", ".jpeg")),
    "text/csv": (None, (".csv",)),
    "text/plain": (None, (".txt",)),
}


def post(conn: psycopg.Connection, incident_id: int, kind: str, body: str = "", *, corrects: int | None = None,
         measurement: dict[str, Any] | None = None, file_name: str | None = None,
         file_bytes: bytes | None = None) -> dict[str, Any]:
    """Append an entry; the database records who, which city and when.  Returns the stored entry."""
    if kind not in KINDS:
        raise InvalidParameter(f"kind was {kind!r} but is expected to be one of {list(KINDS)}")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidParameter(f"body has {len(body)} characters; an entry holds at most {MAX_BODY_CHARS}")
    file_type = None
    if kind == "file":
        if file_bytes is None or not file_name:
            raise InvalidParameter("a file entry needs a file (multipart field 'file') with its name")
        file_type = check_file(file_name, file_bytes)
    elif file_bytes is not None:
        raise InvalidParameter(f"a {kind} entry carries no file; post it as kind 'file'")
    if kind == "measurement":
        if not isinstance(measurement, dict) or not measurement:
            raise InvalidParameter("a measurement entry needs 'measurement': {\"parameter\", \"value\", \"unit\", "
                                   "\"place\", \"time\"}")
    elif not body.strip() and kind != "file":
        raise InvalidParameter(f"a {kind} entry needs a body (its text)")
    cur = conn.cursor(row_factory=dict_row)
    with conn.transaction():
        store._visible(cur, incident_id)
        try:
            row = cur.execute(
                """INSERT INTO riskatlas.consultation_entry (incident_id, kind, body, corrects, measurement, file_name,
                       file_type, file_size, file_sha256, file_bytes, posted_by, posted_city)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, riskatlas.acting_user(),
                           coalesce(riskatlas.actor_city(), ''))
                   RETURNING id, kind, body, corrects, measurement, file_name, file_type, file_size, file_sha256,
                             posted_by, posted_city, posted_at""",
                (incident_id, kind, body, corrects, Jsonb(measurement) if measurement else None, file_name, file_type,
                 len(file_bytes) if file_bytes is not None else None,
                 hashlib.sha256(file_bytes).hexdigest() if file_bytes is not None else None, file_bytes)).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise InvalidParameter(f"corrects: entry {corrects} is not an entry of incident {incident_id}") from None
        except psycopg.errors.InsufficientPrivilege:
            raise NotFound(f"incident {incident_id} does not exist or does not concern your city") from None
    assert row is not None  # INSERT ... RETURNING
    return dict(row)


def check_file(name: str, data: bytes) -> str:
    """The type of an attached file, recognised from its bytes and agreeing with its name; else a 4xx."""
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"file {name!r} has {len(data)} bytes; the log takes files up to {MAX_FILE_BYTES}")
    if not data:
        raise InvalidParameter(f"file {name!r} is empty")
    lower = name.lower()
    for kind, (magic, endings) in FILE_TYPES.items():
        if not lower.endswith(endings):
            continue
        if magic is None:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidParameter(f"file {name!r} is not UTF-8 text, as its name says") from None
            if b"\x00" in data:
                raise InvalidParameter(f"file {name!r} holds NUL bytes: not text")
            return kind
        if not data.startswith(magic):
            raise InvalidParameter(f"file {name!r}: its bytes are not a {kind} file, as its name says")
        return kind
    allowed = sorted(e for _, ends in FILE_TYPES.values() for e in ends)
    raise InvalidParameter(f"file {name!r}: type not accepted; the log takes {allowed}")


def file_of(conn: psycopg.Connection, incident_id: int, entry_id: int) -> tuple[str, str, bytes]:
    """(name, type, bytes) of a file entry of a visible incident."""
    cur = conn.cursor(row_factory=dict_row)
    store._visible(cur, incident_id)
    row = cur.execute("""SELECT file_name, file_type, file_bytes FROM riskatlas.consultation_entry
                         WHERE id = %s AND incident_id = %s AND kind = 'file'""", (entry_id, incident_id)).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} has no file entry {entry_id}")
    return row["file_name"], row["file_type"], bytes(row["file_bytes"])


CSS = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; border-bottom: 1px solid #999; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.4em; text-align: left; vertical-align: top; }
pre { white-space: pre-wrap; font-size: 0.85em; }
.synthetic { color: #a60; }
.correction { color: #555; font-style: italic; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; }
  @page { size: A4; margin: 15mm; } }
"""


def record_html(conn: psycopg.Connection, incident_id: int) -> str:
    """The whole incident as one HTML document for the files: what was known at opening, the status
    history, every notice with delivery and acknowledgement, and the consultation log."""
    inc = store.show(conn, incident_id)
    e = html.escape
    a = inc["analysis"]
    parts = [f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>事件记录 Incident record "
             f"{inc['id']}</title><style>{CSS}</style></head><body>",
             f"<h1>突发环境事件记录 / Incident record #{inc['id']}: {e(inc['title'])}</h1>",
             "<table>",
             *[f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in (
                 ("状态 Status", inc["status"]), ("级别 Severity", inc["severity"]),
                 ("发生时间 Occurred", inc["occurred_at"]), ("位置 Location (WGS84)", f"{inc['lon']:.6f}, {inc['lat']:.6f}"),
                 ("物质 Substance", inc["substance"]),
                 ("数量 Quantity", f"{inc['quantity']} {inc['quantity_unit'] or ''}"),
                 ("说明 Description", inc["description"]), ("所在市 Territory", inc["territory_city"]),
                 ("发起 Opened", f"{inc['opened_at']} — {inc['opened_by']} ({inc['opened_city']})"),
                 ("涉及城市 Involved cities", ", ".join(inc["involved"])))],
             "</table>",
             "<h2>状态变更 / Status history</h2><table><tr><th>状态 Status</th><th>时间 When</th><th>人员 Who</th>"
             "<th>城市 City</th></tr>",
             *[f"<tr><td>{e(s['status'])}</td><td>{e(str(s['changed_at']))}</td><td>{e(s['changed_by'])}</td>"
               f"<td>{e(str(s['changed_city']))}</td></tr>" for s in inc["status_history"]],
             "</table>",
             "<h2>通报情况 / Notices per city</h2><table><tr><th>城市 City</th><th>辖区 Jurisdictions</th>"
             "<th>已发 Sent</th><th>邮件 E-mail</th><th>Webhook</th><th>已确认 Acknowledged</th><th>逾期 Overdue</th>"
             "<th>状态 State</th></tr>",
             *[f"<tr><td>{e(s['city'])}</td><td>{e(', '.join(s['jurisdictions']))}</td><td>{s['sent']}</td>"
               f"<td>{s['delivered_email']}</td><td>{s['delivered_webhook']}</td><td>{s['acknowledged']}</td>"
               f"<td>{s['overdue']}</td><td>{e(s['state'])}</td></tr>" for s in inc["summary"]],
             "</table>",
             "<h2>通报 / Notices (CAP 1.2)</h2><table><tr><th>#</th><th>类型 Type</th><th>辖区 Jurisdiction</th>"
             "<th>预计到达 Expected arrival</th><th>发出 Sent</th><th>确认 Acknowledged</th><th>逾期 Overdue</th>"
             "<th>CAP</th></tr>",
             *[f"<tr><td>{n['id']}</td><td>{e(n['msg_type'])}</td><td>{e(n['jurisdiction_name'])} "
               f"({e(n['jurisdiction'])})</td><td>{e(str(n['expected_arrival'] or '-'))}</td>"
               f"<td>{e(str(n['created_at']))}</td>"
               f"<td>{e(str(n['acknowledged_at'] or '-'))} {e(n['acknowledged_by'] or '')}</td>"
               f"<td>{e(str(n['overdue_at'] or '-'))}</td><td>{e(n['cap_identifier'])}</td></tr>"
               for n in inc["notices"]],
             "</table>",
             "<h2>会商记录 / Consultation log</h2><table><tr><th>#</th><th>时间 When</th><th>城市 City</th>"
             "<th>人员 Who</th><th>类型 Kind</th><th>内容 Content</th></tr>"]
    for entry in inc["log"]:
        content = e(entry["body"])
        if entry["corrects"]:
            content = f"<span class=\"correction\">更正 #{entry['corrects']} / corrects #{entry['corrects']}:</span> " \
                      + content
        if entry["measurement"]:
            content += f"<br><code>{e(json.dumps(entry['measurement'], ensure_ascii=False))}</code>"
        if entry["file_name"]:
            content += (f"<br>附件 file: {e(entry['file_name'])} ({e(entry['file_type'])}, {entry['file_size']} bytes, "
                        f"sha256 {e(entry['file_sha256'])})")
        parts.append(f"<tr><td>{entry['id']}</td><td>{e(str(entry['posted_at']))}</td><td>{e(entry['posted_city'])}"
                     f"</td><td>{e(entry['posted_by'])}</td><td>{e(entry['kind'])}</td><td>{content}</td></tr>")
    parts.append("</table>")
    known = {k: a.get(k) for k in ("incident", "notify", "events", "warnings") if k in a}
    parts.append("<h2>开启时的分析 / Analysis at opening</h2>"
                 f"<pre>{e(json.dumps(known, ensure_ascii=False, indent=1, default=str))}</pre>")
    basis = ("监测数据超过断面目标。/ Measured samples over the section's target." if inc["kind"] == "exceedance"
             else "模型估算，仅供应急决策参考。/ Model estimates for emergency screening.")
    parts.append(f"<p class=\"synthetic\">{basis} 演示区数据为合成数据。/ The demo region's data are synthetic."
                 "</p></body></html>")
    return "\n".join(parts)
