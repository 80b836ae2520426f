"""Exceedances at cross-border sections, sent as incidents and CAP notices (DESIGN 11 and 12).

The ingest raises an ``observation_event`` for every sample worse than its section's target
(:mod:`services.observations.events`); this module turns them into notices.  A pass
(:func:`notify_pending`) runs as the schema owner, like every delivery round (the app's worker runs one
whenever events are raised: ``observation_event`` wakes it with ``NOTIFY riskatlas_delivery``):

- the open events that went out with no notice yet are taken (``FOR UPDATE SKIP LOCKED``: two workers
  never send the same event) and grouped by section, parameter and downstream city;
- a group whose section and parameter have no open exceedance incident opens one (kind ``exceedance``:
  the measuring city opens it, the upstream and downstream cities are involved) with a CAP ``Alert`` to
  the downstream city's duty office (else its bureau); a group whose incident is open goes as a CAP
  ``Update`` referring to the earlier messages.  Each event keeps the notice it went out with;
- an open exceedance incident whose every event was withdrawn by a correction is all-cleared (CAP
  ``Cancel``) and closed.  Otherwise the all-clear is a duty officer's decision (``status closed``).

Acknowledging the notice acknowledges its events and the reverse (migration 0017); deliveries, overdue
resends and the per-city summary are the incident machinery's own.  Severity: ``Severe`` when a sample
is worse than class V, else ``Moderate``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.emergency.common import CHINA_TIME
from services.incidents import cap
from services.incidents.rules import rules
from services.incidents.store import agencies_for, insert_notices

ROMAN = ("I", "II", "III", "IV", "V", "劣V")
ROMAN_EN = ("I", "II", "III", "IV", "V", "worse than V")
CIRCLE_KM = 1.0       # the CAP circle around the section
LISTED_EVENTS = 20    # samples named one by one in a notice's description; the rest are counted
KIND = "exceedance at a cross-border section"
KIND_ZH = "跨界断面水质超标"


@dataclass
class Pass:
    """What one pass did."""

    events: int = 0
    incidents_opened: int = 0
    updates: int = 0
    cleared: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"events": self.events, "incidents_opened": self.incidents_opened, "updates": self.updates,
                "cleared": self.cleared}


def notify_pending(conn: psycopg.Connection, *, sender: str = "riskatlas.nanjing-metro",
                   web: str | None = None) -> Pass:
    """Send the notices of every open exceedance event that has none, and all-clear the incidents whose
    events were all withdrawn; one transaction, on a connection of the schema owner."""
    result = Pass()
    cur = conn.cursor(row_factory=dict_row)
    with conn.transaction():
        events = cur.execute(
            """SELECT e.id, e.station_key, e.parameter, e.observed_at, e.value, e.water_class, e.target_class,
                      e.owner_city, e.upstream_city, e.downstream_city, e.message_zh, e.message_en,
                      m.name AS station_name, ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat,
                      p.name_zh, p.name_en, p.unit, a.name AS down_name
               FROM riskatlas.observation_event e
               JOIN riskatlas.monitoring_station m ON m.key = e.station_key
               JOIN riskatlas.obs_parameter p ON p.code = e.parameter
               LEFT JOIN riskatlas.admin_area a ON a.code = e.downstream_city
               WHERE e.status = 'open' AND e.notice_id IS NULL AND e.downstream_city IS NOT NULL
               ORDER BY e.station_key, e.parameter, e.downstream_city, e.observed_at
               FOR UPDATE OF e SKIP LOCKED""").fetchall()
        result.events = len(events)
        now = datetime.now(CHINA_TIME)
        for (key, parameter, down), group in groupby(events, lambda e: (e["station_key"], e["parameter"],
                                                                         e["downstream_city"])):
            rows = list(group)
            incident = cur.execute(
                """SELECT id, severity FROM riskatlas.incident
                   WHERE kind = 'exceedance' AND status <> 'closed' AND analysis -> 'incident' ->> 'station_key' = %s
                     AND substance = %s ORDER BY id DESC LIMIT 1""", (key, parameter)).fetchone()
            if incident is None:
                incident_id, severity = _open(cur, rows, now)
                result.incidents_opened += 1
            else:
                incident_id, severity = incident["id"], incident["severity"]
                result.updates += 1
            notice_id = _send(cur, incident_id, "Alert" if incident is None else "Update", severity, rows, down,
                              now, sender, web)
            cur.execute("UPDATE riskatlas.observation_event SET notice_id = %s WHERE id = ANY(%s)",
                        (notice_id, [r["id"] for r in rows]))
        result.cleared = _clear_withdrawn(cur, now, sender, web)
    return result


def _open(cur: psycopg.Cursor[Any], rows: list[dict[str, Any]], now: datetime) -> tuple[int, str]:
    """A new exceedance incident for the section and parameter of ``rows``; (id, severity)."""
    first = rows[0]
    severity = _severity(rows)
    involved = sorted({c for c in (first["owner_city"], first["upstream_city"], first["downstream_city"]) if c})
    analysis = {
        "kind": "exceedance",
        "incident": {"kind": KIND, "kind_zh": KIND_ZH, "station_key": first["station_key"],
                     "station_name": first["station_name"],
                     "location": {"lon": first["lon"], "lat": first["lat"], "crs": "OGC:CRS84"},
                     "substance": {"id": first["parameter"], "name": first["name_en"], "name_zh": first["name_zh"],
                                   "unit": first["unit"]},
                     "release_time": first["observed_at"].isoformat(),
                     "target_class": ROMAN[first["target_class"] - 1]},
        "notify": [{"level": "city", "code": first["downstream_city"], "name": first["down_name"] or
                    first["downstream_city"], "name_en": None, "parent_code": None, "first_arrival_time": None}],
        "events": [_event_json(r) for r in rows],
        "features": [], "warnings": [],
    }
    row = cur.execute(
        """INSERT INTO riskatlas.incident (client_request_id, kind, title, substance, description, occurred_at, geom,
               severity, analysis, opened_city, involved)
           VALUES (%s, 'exceedance', %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, %s)
           RETURNING id""",
        (f"exceedance-{first['station_key']}-{first['parameter']}-{first['id']}",
         f"{first['station_name']}{first['name_zh']}超标 / {first['name_en']} over target at {first['station_key']}",
         first["parameter"], first["message_zh"] + "\n" + first["message_en"], first["observed_at"], first["lon"],
         first["lat"], severity, Jsonb(analysis), first["owner_city"], involved)).fetchone()
    return int(row["id"]), severity


def _send(cur: psycopg.Cursor[Any], incident_id: int, msg_type: str, severity: str, rows: list[dict[str, Any]],
          down: str, now: datetime, sender: str, web: str | None) -> int:
    """One notice of ``rows`` to the downstream city, referring to its earlier messages; its id."""
    first = rows[0]
    earlier = cur.execute(
        """SELECT cap_identifier, created_at FROM riskatlas.notice WHERE incident_id = %s AND jurisdiction = %s
           ORDER BY id""", (incident_id, down)).fetchall()
    ident = f"riskatlas-{incident_id}-{down}-{len(earlier) + 1}"
    refs = [(sender, r["cap_identifier"], r["created_at"]) for r in earlier]
    text_zh, text_en = _description(rows)
    worst = max(r["water_class"] for r in rows)
    down_name = first["down_name"] or down
    lead_zh = "新增超标样品" if msg_type == "Update" else "跨界断面超标"
    msg = cap.Message(
        identifier=ident, sender=sender, sent=now, msg_type=msg_type, severity=severity, certainty="Observed",
        event_zh=f"{KIND_ZH}：{first['name_zh']}", event_en=f"Water quality over target at a cross-border section: "
                                                            f"{first['name_en']}",
        headline_zh=f"{lead_zh}：{first['station_name']}{first['name_zh']}{ROMAN[worst - 1]}类，目标"
                    f"{ROMAN[first['target_class'] - 1]}类，请{down_name}关注",
        headline_en=f"{'More samples' if msg_type == 'Update' else 'Exceedance'} at {first['station_key']}: "
                    f"{first['name_en']} class {ROMAN_EN[worst - 1]} against target {ROMAN[first['target_class'] - 1]}",
        description_zh=text_zh, description_en=text_en,
        instruction_zh="请确认收到本通报；关注本市下游取水口，必要时加密监测，并在会商记录中与上游城市沟通。",
        instruction_en="Acknowledge this notice; watch your intakes downstream, monitor more often where needed, "
                       "and consult the upstream city in the consultation log.",
        area_zh=f"{first['station_name']}（{first['station_key']}）及其下游", area_en=f"{first['station_key']} and "
                                                                                 "downstream",
        polygon=None, circle=(first["lon"], first["lat"], CIRCLE_KM), onset=first["observed_at"],
        references=refs, incident_ref=f"riskatlas-{incident_id}", web=web)
    bulletin = (f"致 / To: {down_name} [{down}]\n\n{text_zh}\n\n{text_en}\n")
    (notice_id,) = insert_notices(cur, [{
        "incident_id": incident_id, "jurisdiction": down, "level": "city", "name": down_name, "city": down,
        "agency_id": agencies_for(cur, [down]).get(down), "msg_type": msg_type, "ident": ident,
        "refs": [i for _, i, _ in refs], "arrival": None, "basis": None, "bulletin": bulletin, "severity": severity,
        "xml": cap.to_xml(msg), "sent": now, "due": now + timedelta(minutes=rules().ack_minutes[severity])}])
    return notice_id


def _clear_withdrawn(cur: psycopg.Cursor[Any], now: datetime, sender: str, web: str | None) -> int:
    """All-clear and close the open exceedance incidents none of whose events still stands."""
    stale = cur.execute(
        """SELECT i.id, i.severity, i.analysis FROM riskatlas.incident i
           WHERE i.kind = 'exceedance' AND i.status <> 'closed'
             AND NOT EXISTS (SELECT 1 FROM riskatlas.observation_event e JOIN riskatlas.notice n ON n.id = e.notice_id
                             WHERE n.incident_id = i.id AND e.status <> 'withdrawn')
           FOR UPDATE OF i SKIP LOCKED""").fetchall()
    for inc in stale:
        earlier = cur.execute(
            """SELECT jurisdiction, jurisdiction_name, city, agency_id, array_agg(cap_identifier ORDER BY id) AS idents,
                      array_agg(created_at ORDER BY id) AS sents
               FROM riskatlas.notice WHERE incident_id = %s GROUP BY 1, 2, 3, 4""", (inc["id"],)).fetchall()
        a = inc["analysis"]["incident"]
        text = ("更正后的数据已无超标，解除通报。/ Corrected data show no exceedance any more: all clear.")
        notices = []
        for e in earlier:
            ident = f"riskatlas-{inc['id']}-{e['jurisdiction']}-{len(e['idents']) + 1}"
            refs = [(sender, i, t) for i, t in zip(e["idents"], e["sents"])]
            msg = cap.Message(
                identifier=ident, sender=sender, sent=now, msg_type="Cancel", severity=inc["severity"],
                certainty="Observed", event_zh=f"{KIND_ZH}：{a['substance']['name_zh']}",
                event_en=f"Water quality over target at a cross-border section: {a['substance']['name']}",
                headline_zh=f"{a['station_name']}{a['substance']['name_zh']}超标通报撤销（数据更正）",
                headline_en=f"{a['station_key']}: {a['substance']['name']} exceedance withdrawn (data corrected)",
                description_zh=text, description_en=text, instruction_zh="无需进一步行动。",
                instruction_en="No further action is needed.", area_zh=f"{a['station_name']}（{a['station_key']}）",
                area_en=a["station_key"], polygon=None,
                circle=(a["location"]["lon"], a["location"]["lat"], CIRCLE_KM), references=refs,
                incident_ref=f"riskatlas-{inc['id']}", web=web)
            notices.append({"incident_id": inc["id"], "jurisdiction": e["jurisdiction"], "level": "city",
                            "name": e["jurisdiction_name"], "city": e["city"], "agency_id": e["agency_id"],
                            "msg_type": "Cancel", "ident": ident, "refs": [i for _, i, _ in refs], "arrival": None,
                            "basis": None, "bulletin": text, "severity": inc["severity"], "xml": cap.to_xml(msg),
                            "sent": now, "due": None})
        insert_notices(cur, notices)
        cur.execute("UPDATE riskatlas.incident SET status = 'closed' WHERE id = %s", (inc["id"],))
    return len(stale)


def _severity(rows: list[dict[str, Any]]) -> str:
    return "Severe" if any(r["water_class"] >= 6 for r in rows) else "Moderate"


def _description(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """The samples of a notice, one per line (the first LISTED_EVENTS, then how many more)."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for r in rows[:LISTED_EVENTS]:
        by_lang["zh"].append(r["message_zh"] + f"（{r['observed_at'].astimezone(CHINA_TIME):%Y-%m-%d %H:%M}）")
        by_lang["en"].append(r["message_en"] + f" ({r['observed_at'].astimezone(CHINA_TIME):%Y-%m-%d %H:%M} CST)")
    if len(rows) > LISTED_EVENTS:
        by_lang["zh"].append(f"另有{len(rows) - LISTED_EVENTS}个超标样品。")
        by_lang["en"].append(f"and {len(rows) - LISTED_EVENTS} more samples over target.")
    return "\n".join(by_lang["zh"]), "\n".join(by_lang["en"])


def _event_json(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "observed_at": r["observed_at"].isoformat(), "value": r["value"], "unit": r["unit"],
            "water_class": ROMAN[r["water_class"] - 1], "target_class": ROMAN[r["target_class"] - 1]}
