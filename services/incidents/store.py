"""Incidents, their notices and acknowledgements, on a connection that presents the actor.

Every function here runs on a connection of the application role on which the caller's verified
context is presented (or the owner's, for batch jobs): row-level security (migration 0012) decides
what is visible and what may change, so an incident of a city that is not involved simply is not
found (404), and only the addressed city's acknowledgement changes a row.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.emergency import notify
from services.emergency.common import CHINA_TIME
from services.errors import Conflict, Forbidden, InvalidParameter, NotFound
from services.incidents import cap
from services.incidents.rules import SEVERITIES, rules

STATUSES = ("open", "monitoring", "closed")
GEOGRAPHIC_OUTPUT = ("OGC:CRS84", "EPSG:4326", "EPSG:4490")
AREA_BUFFER_M = 500.0   # the CAP polygon: the hull of what the analysis reached, widened by this
SOURCE_RADIUS_KM = 1.0  # the CAP circle around the release


def open_incident(conn: psycopg.Connection, kind: str, analysis: dict[str, Any], *, client_request_id: str,
                  actor_city: str | None, description: str = "", severity: str = "Severe",
                  sender: str = "riskatlas.nanjing-metro", web: str | None = None) -> dict[str, Any]:
    """Open an incident from a spill or plume result, with one notice (and CAP alert) per jurisdiction
    of its notify list, in one transaction; the same ``client_request_id`` again returns the first one.

    Returns ``{"id", "created", "notices"}``.  Provinces in the notify list get no notice: notices go
    to the city and county agencies of the directory.
    """
    if kind not in ("spill", "plume"):
        raise InvalidParameter(f"kind was {kind!r} but is expected to be 'spill' or 'plume'")
    if severity not in SEVERITIES:
        raise InvalidParameter(f"severity was {severity!r} but is expected to be one of {list(SEVERITIES)}")
    if not client_request_id or len(client_request_id) > 128:
        raise InvalidParameter("client_request_id must be 1 to 128 characters (it makes a resubmission harmless)")
    inc = analysis["incident"]
    entries = [e for e in analysis.get("notify", []) if e["level"] in ("city", "county")]
    involved = sorted({_city_of(e) for e in entries})
    occurred = _parse_time(inc.get("release_time"))
    quantity, unit = (inc["mass_t"], "t") if "mass_t" in inc else (inc.get("release_rate_kg_s"), "kg/s")
    sub = inc["substance"]
    title = f"{sub['name_zh']}{inc['kind_zh']} / {sub['name']} {inc['kind']}"
    cur = conn.cursor(row_factory=dict_row)
    try:
        return _open(cur, conn, kind, analysis, client_request_id, actor_city, description, severity, sender, web,
                     entries, involved, occurred, quantity, unit, sub, inc, title)
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden("opening an incident needs a duty officer's or administrator's key "
                        "(refused by row-level security)") from None


def _open(cur: psycopg.Cursor[Any], conn: psycopg.Connection, kind: str, analysis: dict[str, Any],
          client_request_id: str, actor_city: str | None, description: str, severity: str, sender: str,
          web: str | None, entries: list[dict[str, Any]], involved: list[str], occurred: datetime | None,
          quantity: Any, unit: str, sub: dict[str, Any], inc: dict[str, Any], title: str) -> dict[str, Any]:
    """The insert of :func:`open_incident`, in one transaction."""
    with conn.transaction():
        row = cur.execute(
            """INSERT INTO riskatlas.incident (client_request_id, kind, title, substance, quantity, quantity_unit,
                   description, occurred_at, geom, severity, analysis, opened_city, involved)
               SELECT %(crid)s, %(kind)s, %(title)s, %(substance)s, %(quantity)s, %(unit)s, %(description)s,
                      %(occurred)s, g, %(severity)s, %(analysis)s, coalesce(%(city)s, riskatlas.city_at(g)),
                      %(involved)s
               FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
               ON CONFLICT (opened_by, client_request_id) DO NOTHING
               RETURNING id, opened_at, opened_city, territory_city""",
            {"crid": client_request_id, "kind": kind, "title": title, "substance": sub["id"] if "id" in sub else sub["name"],
             "quantity": quantity, "unit": unit, "description": description, "occurred": occurred,
             "severity": severity, "analysis": Jsonb(analysis), "city": actor_city, "involved": involved,
             "lon": inc["location"]["lon"], "lat": inc["location"]["lat"]}).fetchone()
        if row is None:
            found = cur.execute(
                """SELECT id, (SELECT count(*) FROM riskatlas.notice n WHERE n.incident_id = i.id AND n.msg_type = 'Alert') AS notices
                   FROM riskatlas.incident i WHERE opened_by = riskatlas.acting_user() AND client_request_id = %s""",
                (client_request_id,)).fetchone()
            if found is None:
                raise Conflict(f"client_request_id {client_request_id!r} was used for an incident you cannot see")
            return {"id": found["id"], "created": False, "notices": found["notices"]}
        incident_id = row["id"]
        area = _area(cur, analysis)
        sent = datetime.now(CHINA_TIME)
        b = notify.bulletin(analysis if kind == "spill" else None, analysis if kind == "plume" else None, sent)
        text = notify.to_text(b)
        agencies = agencies_for(cur, [e["code"] for e in entries])
        minutes = rules().ack_minutes[severity]
        notices = []
        for e in entries:
            ident = f"riskatlas-{incident_id}-{e['code']}-1"
            arrival = _parse_time(e.get("first_arrival_time"))
            msg = _message(ident, sender, sent, "Alert", severity, inc, e, area, text, [], incident_id, web)
            notices.append({"incident_id": incident_id, "jurisdiction": e["code"], "level": e["level"],
                            "name": e["name"], "city": _city_of(e), "agency_id": agencies.get(e["code"]),
                            "msg_type": "Alert", "ident": ident, "refs": [], "arrival": arrival,
                            "basis": e.get("first_arrival_basis"), "bulletin": _addressed(e, text), "severity": severity,
                            "xml": cap.to_xml(msg), "sent": sent, "due": sent + timedelta(minutes=minutes)})
        insert_notices(cur, notices)
    return {"id": incident_id, "created": True, "notices": len(notices)}


def insert_notices(cur: psycopg.Cursor[Any], notices: list[dict[str, Any]]) -> list[int]:
    """All notices in one statement (one trigger run queues their deliveries); their ids, in order."""
    if not notices:
        return []
    cur.execute(
        """INSERT INTO riskatlas.notice (incident_id, jurisdiction, jurisdiction_level, jurisdiction_name, city,
               agency_id, msg_type, cap_identifier, cap_references, expected_arrival, arrival_basis, bulletin,
               severity, cap_xml, created_at, ack_due_at)
           SELECT a, b, c, d, e, f, g, h, i::text[], j, k, l, m, n, o, p
           FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[],
                       %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[],
                       %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[])
                WITH ORDINALITY AS t (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, ord) ORDER BY ord
           RETURNING id""",
        ([n["incident_id"] for n in notices], [n["jurisdiction"] for n in notices], [n["level"] for n in notices],
         [n["name"] for n in notices], [n["city"] for n in notices], [n["agency_id"] for n in notices],
         [n["msg_type"] for n in notices], [n["ident"] for n in notices],
         ["{" + ",".join(json.dumps(r) for r in n["refs"]) + "}" for n in notices],
         [n["arrival"] for n in notices], [n["basis"] for n in notices], [n["bulletin"] for n in notices],
         [n["severity"] for n in notices], [n["xml"] for n in notices], [n["sent"] for n in notices],
         [n["due"] for n in notices]))
    return [int(_first(r)) for r in cur.fetchall()]


def set_status(conn: psycopg.Connection, incident_id: int, status: str, *, note: str = "",
               sender: str = "riskatlas.nanjing-metro", web: str | None = None) -> dict[str, Any]:
    """Move an incident on (open -> monitoring -> closed) and tell every addressee: a CAP ``Update`` for
    monitoring, a ``Cancel`` (all clear) for closed, each referring to that addressee's earlier messages."""
    if status not in STATUSES:
        raise InvalidParameter(f"status was {status!r} but is expected to be one of {list(STATUSES)}")
    cur = conn.cursor(row_factory=dict_row)
    with conn.transaction():
        inc = _visible(cur, incident_id)
        if inc["status"] == status:
            return {"id": incident_id, "status": status, "notices": 0}
        try:
            done = cur.execute("UPDATE riskatlas.incident SET status = %s WHERE id = %s RETURNING status",
                               (status, incident_id)).fetchone()
        except psycopg.errors.ObjectNotInPrerequisiteState:
            raise Conflict(f"incident {incident_id} is closed; nothing changes it any more") from None
        except psycopg.errors.InvalidParameterValue as exc:
            raise InvalidParameter(exc.diag.message_primary or "status cannot go back") from None
        if done is None:
            raise Forbidden(f"incident {incident_id}: only duty officers of the opening city or of the city it "
                            "lies in change its status")
        earlier = cur.execute(
            """SELECT jurisdiction, jurisdiction_level AS level, jurisdiction_name AS name, city, agency_id,
                      array_agg(cap_identifier ORDER BY id) AS idents, array_agg(created_at ORDER BY id) AS sents,
                      min(expected_arrival) AS arrival, min(arrival_basis) AS basis
               FROM riskatlas.notice WHERE incident_id = %s GROUP BY 1, 2, 3, 4, 5 ORDER BY 1""",
            (incident_id,)).fetchall()
        msg_type = "Cancel" if status == "closed" else "Update"
        sent = datetime.now(CHINA_TIME)
        analysis = inc["analysis"]
        area = _area(cur, analysis)
        head = {"monitoring": "事件转入监测阶段 / the incident is now under monitoring",
                "closed": "事件已关闭，解除预警 / the incident is closed: all clear"}[status]
        text = f"{head}\n{note}\n".strip() + "\n"
        notices = []
        for e in earlier:
            ident = f"riskatlas-{incident_id}-{e['jurisdiction']}-{len(e['idents']) + 1}"
            refs = [(sender, i, t) for i, t in zip(e["idents"], e["sents"])]
            entry = {"code": e["jurisdiction"], "level": e["level"], "name": e["name"], "name_en": None,
                     "first_arrival_time": e["arrival"].isoformat() if e["arrival"] else None}
            msg = _message(ident, sender, sent, msg_type, inc["severity"], analysis["incident"], entry, area, text,
                           refs, incident_id, web)
            notices.append({"incident_id": incident_id, "jurisdiction": e["jurisdiction"], "level": e["level"],
                            "name": e["name"], "city": e["city"], "agency_id": e["agency_id"], "msg_type": msg_type,
                            "ident": ident, "refs": [i for _, i, _ in refs], "arrival": e["arrival"],
                            "basis": e["basis"], "bulletin": text, "severity": inc["severity"],
                            "xml": cap.to_xml(msg), "sent": sent, "due": None})
        insert_notices(cur, notices)
    return {"id": incident_id, "status": status, "notices": len(notices)}


def acknowledge(conn: psycopg.Connection, incident_id: int, notice_id: int | None = None) -> list[dict[str, Any]]:
    """Acknowledge a notice (or, without ``notice_id``, every unacknowledged notice of the caller's city) of
    a visible incident; the database records who and when.  403 when the notice is addressed elsewhere."""
    cur = conn.cursor(row_factory=dict_row)
    with conn.transaction():
        _visible(cur, incident_id)
        wanted = cur.execute(
            """SELECT id, city, acknowledged_at FROM riskatlas.notice WHERE incident_id = %s
                 AND (%s::bigint IS NULL OR id = %s) AND msg_type <> 'Cancel'""",
            (incident_id, notice_id, notice_id)).fetchall()
        if notice_id is not None and not wanted:
            raise NotFound(f"incident {incident_id} has no notice {notice_id}")
        rows = cur.execute(
            """UPDATE riskatlas.notice SET acknowledged_at = clock_timestamp()
               WHERE incident_id = %s AND (%s::bigint IS NULL OR id = %s) AND acknowledged_at IS NULL
                 AND msg_type <> 'Cancel'
               RETURNING id, jurisdiction, city, acknowledged_at, acknowledged_by""",
            (incident_id, notice_id, notice_id)).fetchall()
        if not rows:
            if notice_id is not None and wanted[0]["acknowledged_at"] is not None:
                raise Conflict(f"notice {notice_id} was acknowledged already, at {wanted[0]['acknowledged_at']}")
            raise Forbidden(f"incident {incident_id}: no unacknowledged notice addressed to your city"
                            + (f" with id {notice_id}" if notice_id is not None else "")
                            + "; only the addressed city acknowledges")
    return rows


def acknowledge_by_token(conn: psycopg.Connection, token: str) -> int | None:
    """The notice a one-time e-mail link acknowledged, or None (unknown, used or malformed token)."""
    with conn.transaction():
        row = conn.execute("SELECT riskatlas.acknowledge_by_token(%s) AS id", (token,)).fetchone()
    return _first(row)


def list_incidents(conn: psycopg.Connection, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Incidents the caller may see, newest first, with per-incident notice counts."""
    if status is not None and status not in STATUSES:
        raise InvalidParameter(f"status was {status!r} but is expected to be one of {list(STATUSES)}")
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        """SELECT i.id, i.title, i.kind, i.status, i.severity, i.substance, i.occurred_at, i.opened_at, i.opened_by,
                  i.opened_city, i.territory_city, i.involved,
                  ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
                  (SELECT count(*) FROM riskatlas.notice n WHERE n.incident_id = i.id AND n.msg_type = 'Alert')
                      AS notices,
                  (SELECT count(*) FROM riskatlas.notice n WHERE n.incident_id = i.id AND n.msg_type = 'Alert'
                      AND n.acknowledged_at IS NOT NULL) AS acknowledged
           FROM riskatlas.incident i WHERE (%s::text IS NULL OR i.status = %s)
           ORDER BY i.opened_at DESC LIMIT %s""", (status, status, limit)).fetchall()


def show(conn: psycopg.Connection, incident_id: int, *, with_analysis: bool = True) -> dict[str, Any]:
    """One incident as the caller may see it: status history, notices with their deliveries, the per-city
    summary (sent / delivered / acknowledged / overdue) and the consultation log (files without bytes)."""
    cur = conn.cursor(row_factory=dict_row)
    inc = _visible(cur, incident_id)
    if not with_analysis:
        inc.pop("analysis")
    inc["status_history"] = cur.execute(
        """SELECT status, changed_at, changed_by, changed_city FROM riskatlas.incident_status
           WHERE incident_id = %s ORDER BY changed_at, id""", (incident_id,)).fetchall()
    inc["notices"] = cur.execute(
        """SELECT n.id, n.jurisdiction, n.jurisdiction_level, n.jurisdiction_name, n.city, n.agency_id, n.msg_type,
                  n.cap_identifier, n.cap_references, n.expected_arrival, n.arrival_basis, n.severity, n.created_at,
                  n.delivered_app_at, n.ack_due_at, n.acknowledged_at, n.acknowledged_by, n.acknowledged_via,
                  n.overdue_at, n.resent,
                  coalesce((SELECT json_agg(json_build_object('id', d.id, 'channel', d.channel, 'status', d.status,
                                'attempts', d.attempts, 'reason', d.reason, 'delivered_at', d.delivered_at,
                                'next_attempt_at', d.next_attempt_at, 'target', d.target,
                                'last_error', d.last_error) ORDER BY d.id)
                            FROM riskatlas.delivery_visible d WHERE d.notice_id = n.id), '[]') AS deliveries
           FROM riskatlas.notice n WHERE n.incident_id = %s ORDER BY n.id""", (incident_id,)).fetchall()
    inc["summary"] = summary(inc["notices"])
    inc["log"] = log_entries(conn, incident_id)
    return inc


def summary(notices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per addressed city: notices sent, delivered (in the application, and every outside channel that
    went through), acknowledged, overdue; from the notices of :func:`show`."""
    out: dict[str, dict[str, Any]] = {}
    for n in notices:
        if n["msg_type"] != "Alert":
            continue
        s = out.setdefault(n["city"], {"city": n["city"], "jurisdictions": [], "sent": 0, "delivered_app": 0,
                                       "delivered_email": 0, "delivered_webhook": 0, "undelivered": 0,
                                       "acknowledged": 0, "overdue": 0, "resent": 0})
        s["jurisdictions"].append(n["jurisdiction_name"])
        s["sent"] += 1
        s["delivered_app"] += 1
        s["resent"] += n["resent"]
        for d in n["deliveries"]:
            if d["reason"] != "notice":
                continue
            if d["status"] == "delivered":
                s[f"delivered_{d['channel']}"] += 1
            else:
                s["undelivered"] += 1
        s["acknowledged"] += n["acknowledged_at"] is not None
        s["overdue"] += n["overdue_at"] is not None and n["acknowledged_at"] is None
    for s in out.values():
        s["state"] = ("acknowledged" if s["acknowledged"] == s["sent"] else "overdue" if s["overdue"]
                      else "undelivered" if s["undelivered"] else "delivered")
    return sorted(out.values(), key=lambda s: s["city"])


def cap_xml(conn: psycopg.Connection, incident_id: int, notice_id: int) -> str:
    """The CAP 1.2 alert of one notice of a visible incident."""
    cur = conn.cursor(row_factory=dict_row)
    _visible(cur, incident_id)
    row = cur.execute("SELECT cap_xml FROM riskatlas.notice WHERE id = %s AND incident_id = %s",
                      (notice_id, incident_id)).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} has no notice {notice_id}")
    return str(row["cap_xml"])


def log_entries(conn: psycopg.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The consultation log of an incident, oldest first (files described, not their bytes)."""
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        """SELECT id, kind, body, corrects, measurement, file_name, file_type, file_size, file_sha256,
                  posted_by, posted_city, posted_at
           FROM riskatlas.consultation_entry WHERE incident_id = %s ORDER BY posted_at, id""",
        (incident_id,)).fetchall()


def _visible(cur: psycopg.Cursor[Any], incident_id: int) -> dict[str, Any]:
    """The incident row if the caller may see it; else NotFound, whether it exists or not."""
    row = cur.execute(
        """SELECT id, client_request_id, kind, title, substance, quantity, quantity_unit, description, occurred_at,
                  ST_X(geom) AS lon, ST_Y(geom) AS lat, severity, status, territory_city, opened_city, involved,
                  opened_by, opened_at, updated_at, analysis
           FROM riskatlas.incident WHERE id = %s""", (incident_id,)).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist or does not concern your city")
    return dict(row)


def agencies_for(cur: psycopg.Cursor[Any], codes: list[str]) -> dict[str, int]:
    """The agency to address per jurisdiction: its duty office, else its bureau."""
    rows = cur.execute(
        """SELECT DISTINCT ON (jurisdiction) jurisdiction, id FROM riskatlas.agency
           WHERE jurisdiction = ANY(%s) ORDER BY jurisdiction, (kind = 'duty_office') DESC, id""",
        (codes,)).fetchall()
    return {r["jurisdiction"]: r["id"] for r in rows}


def _area(cur: psycopg.Cursor[Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """The CAP area: the hull of the analysis' features widened by AREA_BUFFER_M (when its coordinates
    are geographic WGS84/CGCS2000), and a circle around the release point."""
    loc = analysis["incident"]["location"]
    polygon = None
    features = [f for f in analysis.get("features", []) if f.get("geometry")]
    crs = str(analysis.get("crs") or "CRS84")  # the result's output_crs, as a URI (GCJ-02/BD-09 are not WGS84)
    if features and any(c in crs for c in ("CRS84", "4326", "4490")):
        row = cur.execute(
            """SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Buffer(ST_ConvexHull(ST_Collect(
                          ST_SetSRID(ST_GeomFromGeoJSON(f), 4326)))::geography, %s)::geometry, 0.0005), 5) AS g
               FROM unnest(%s::text[]) f""",
            (AREA_BUFFER_M, [json.dumps(f["geometry"]) for f in features])).fetchone()
        if row and row["g"]:
            g = json.loads(row["g"])
            if g["type"] == "Polygon":
                polygon = [tuple(p) for p in g["coordinates"][0]]
    return {"polygon": polygon, "circle": (loc["lon"], loc["lat"], SOURCE_RADIUS_KM)}


def _message(ident: str, sender: str, sent: datetime, msg_type: str, severity: str, inc: dict[str, Any],
             e: dict[str, Any], area: dict[str, Any], text: str, refs: list[tuple[str, str, datetime]],
             incident_id: int, web: str | None) -> cap.Message:
    sub = inc["substance"]
    arrival = e.get("first_arrival_time") or "-"
    name_en = e.get("name_en") or e["name"]
    return cap.Message(
        identifier=ident, sender=sender, sent=sent, msg_type=msg_type, severity=severity,
        event_zh=f"突发环境事件：{sub['name_zh']}{inc['kind_zh']}", event_en=f"Environmental emergency: {sub['name']} "
                                                                         f"{inc['kind']}",
        headline_zh=f"{sub['name_zh']}{inc['kind_zh']}，" + (f"预计{arrival}影响{e['name']}" if arrival != "-"
                                                            else f"涉及{e['name']}"),
        headline_en=f"{sub['name']} {inc['kind']}: " + (f"expected to reach {name_en} at {arrival}" if arrival != "-"
                                                        else f"concerns {name_en}"),
        description_zh=text, description_en=text,
        instruction_zh="请核实并确认收到本通报，启动本辖区应急监测，关注取水口与跨界断面。",
        instruction_en="Acknowledge this notice, start emergency monitoring in your jurisdiction, watch the "
                       "intakes and cross-border sections.",
        area_zh=f"{e['name']}及事发地周边", area_en=f"{name_en} and the area around the release",
        polygon=area["polygon"], circle=area["circle"], onset=_parse_time(inc.get("release_time")),
        references=refs, incident_ref=f"riskatlas-{incident_id}", web=web)


def _addressed(e: dict[str, Any], text: str) -> str:
    """The bulletin with a first line for its addressee."""
    en = f" {e['name_en']}" if e.get("name_en") else ""
    head = (f"致 / To: {e['name']}{en} [{e['code']}] — 预计首次到达 expected first arrival "
            f"{e.get('first_arrival_time') or '-'}")
    return f"{head}\n\n{text}"


def _city_of(e: dict[str, Any]) -> str:
    return str(e["code"] if e["level"] == "city" else e["parent_code"])


def _parse_time(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    t = datetime.fromisoformat(str(v))
    return t if t.tzinfo else t.replace(tzinfo=CHINA_TIME)


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def token_hash(token: str) -> str:
    """The stored form of an acknowledgement token."""
    return hashlib.sha256(token.encode()).hexdigest()
