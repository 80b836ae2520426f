"""The demo's joint inspection: a synthetic Nanjing–Chuzhou task along their border, so the screens show
something.  Everything it writes is labelled synthetic (``synthetic = true``, titles marked 合成 synthetic)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

NANJING, CHUZHOU = "320100", "341100"
TITLE = "宁滁边界联合执法检查（合成演示）"
TITLE_EN = "Nanjing–Chuzhou border joint inspection (synthetic demo)"


def plan_demo_task(conn: psycopg.Connection, today: date | None = None) -> dict[str, Any]:
    """Plan the joint task on up to four sites flagged near the Nanjing–Chuzhou border (two per side when
    there are), with two synthetic records 80 m from the first two sites, a finding and its open case.
    Run as the schema owner (the demo's batch); a second run changes nothing."""
    today = today or date.today()
    done = conn.execute("SELECT id FROM riskatlas.inspection_task WHERE title = %s AND synthetic", (TITLE,)).fetchone()
    if done:
        return {"task_id": done["id"], "created": False}
    sites = [r["key"] for r in conn.execute(
        """SELECT source_key AS key FROM (
               SELECT DISTINCT ON (source_key) source_key, source_city, distance_m FROM riskatlas.hazard_flag
               WHERE kind = 'city-border' AND ((source_city = %(nj)s AND other_code = %(cz)s)
                                               OR (source_city = %(cz)s AND other_code = %(nj)s))
               ORDER BY source_key, distance_m) f
           ORDER BY row_number() OVER (PARTITION BY source_city ORDER BY distance_m), source_city DESC
           LIMIT 4""", {"nj": NANJING, "cz": CHUZHOU}).fetchall()]
    if not sites:
        return {"task_id": None, "created": False, "note": "no site is flagged near the Nanjing–Chuzhou border"}
    task = conn.execute(
        """INSERT INTO riskatlas.inspection_task (title, title_en, lead_city, cities, teams, site_keys, starts_on, ends_on,
               template, template_version, synthetic)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'chemical', 2, true) RETURNING id""",
        (TITLE, TITLE_EN, NANJING, [NANJING, CHUZHOU],
         Jsonb([{"city": NANJING, "name": "南京市联合检查组（合成）", "members": []},
                {"city": CHUZHOU, "name": "滁州市联合检查组（合成）", "members": []}]),
         sites, today - timedelta(days=3), today + timedelta(days=11))).fetchone()["id"]
    first = None
    for n, site in enumerate(sites[:2]):
        cid = str(uuid.uuid4())
        rid = conn.execute(
            """INSERT INTO riskatlas.inspection_record (key, client_id, task_id, site_key, inspector, template,
                   template_version, answers, note, position, accuracy_m, device_time, synthetic)
               SELECT %s, %s::uuid, %s, key, '', 'chemical', 2, %s, '合成演示记录 synthetic demo record',
                      ST_Project(geom::geography, 80, radians(45))::geometry, 6, now() - interval '2 days', true
               FROM riskatlas.risk_source WHERE key = %s RETURNING id""",
            (cid, cid, task, Jsonb({"emergency-plan": n != 0, "cofferdam": True, "drill-count": 1}), site)).fetchone()["id"]
        if n == 0:
            first = conn.execute(
                """INSERT INTO riskatlas.inspection_finding (key, record_id, ordinal, kind, severity, item, note)
                   VALUES (%s, %s, 1, 'emergency-plan', 'high', 'emergency-plan', '应急预案未备案（合成）')
                   RETURNING id""", (cid + ":1", rid)).fetchone()["id"]
    case = conn.execute("""INSERT INTO riskatlas.enforcement_case (finding_id, deadline, measures)
                           VALUES (%s, %s, '30日内完成应急预案备案（合成）') RETURNING id""",
                        (first, today + timedelta(days=30))).fetchone()["id"]
    return {"task_id": task, "created": True, "sites": sites, "case_id": case}
