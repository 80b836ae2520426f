"""Monthly reports per city and per city pair: inspections done, findings by type, cases opened,
overdue and closed, joint tasks held.

A city's month counts what concerns the city (its sites' records, findings and cases; the joint tasks it
took part in); a pair's month counts what the two did together (the joint tasks naming both cities, and
their records, findings and cases).  Months are calendar months in China Standard Time.  The caller's
row-level security applies: a city counts only what it may read.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date
from typing import Any

import psycopg

from services.errors import InvalidParameter
from services.inspections import checklists

MONTH_RE = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")

REPORT_SQL = """
WITH m AS (
    SELECT (%(month)s::date::timestamp AT TIME ZONE 'Asia/Shanghai') AS t0,
           ((%(month)s::date + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai') AS t1,
           %(month)s::date AS d0, (%(month)s::date + interval '1 month')::date AS d1
), tasks AS (
    SELECT t.id, t.joint, t.starts_on, t.ends_on, t.status FROM riskatlas.inspection_task t
    WHERE CASE WHEN %(b)s::text IS NULL THEN %(a)s = ANY (t.cities)
               ELSE t.joint AND %(a)s = ANY (t.cities) AND %(b)s = ANY (t.cities) END
), recs AS (
    SELECT r.id FROM riskatlas.inspection_record r, m
    WHERE r.device_time >= m.t0 AND r.device_time < m.t1
      AND CASE WHEN %(b)s::text IS NULL THEN r.site_city = %(a)s ELSE r.task_id IN (SELECT id FROM tasks) END
), finds AS (
    SELECT f.kind, count(*) AS n FROM riskatlas.inspection_finding f WHERE f.record_id IN (SELECT id FROM recs)
    GROUP BY f.kind
), cases AS (
    SELECT c.* FROM riskatlas.enforcement_case c
    WHERE CASE WHEN %(b)s::text IS NULL THEN c.owner_city = %(a)s ELSE c.task_id IN (SELECT id FROM tasks) END
)
SELECT (SELECT count(*) FROM recs) AS inspections,
       (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb) FROM finds) AS findings_by_type,
       (SELECT count(*) FROM cases, m WHERE cases.opened_at >= m.t0 AND cases.opened_at < m.t1) AS cases_opened,
       -- became overdue in the month: a deadline in the month (and already past) not met by a closure
       (SELECT count(*) FROM cases, m WHERE cases.deadline >= m.d0 AND cases.deadline < m.d1
            AND cases.deadline < (clock_timestamp() AT TIME ZONE 'Asia/Shanghai')::date
            AND (cases.closed_at IS NULL OR (cases.closed_at AT TIME ZONE 'Asia/Shanghai')::date > cases.deadline))
           AS cases_overdue,
       (SELECT count(*) FROM cases, m WHERE cases.closed_at >= m.t0 AND cases.closed_at < m.t1) AS cases_closed,
       (SELECT count(*) FROM tasks, m WHERE tasks.joint AND tasks.status <> 'cancelled'
            AND tasks.starts_on < m.d1 AND tasks.ends_on >= m.d0) AS joint_tasks
"""

HEADERS = (("inspections", "检查次数", "inspections done"), ("findings", "发现问题", "findings"),
           ("cases_opened", "立案", "cases opened"), ("cases_overdue", "逾期", "cases overdue"),
           ("cases_closed", "结案", "cases closed"), ("joint_tasks", "联合检查任务", "joint tasks held"))


def month_report(conn: psycopg.Connection, month: str, city: str, other: str | None = None) -> dict[str, Any]:
    """The counts of ``month`` (YYYY-MM) for ``city``, or for the pair ``city``–``other``."""
    m = MONTH_RE.match(month or "")
    if not m:
        raise InvalidParameter(f"month was {month!r} but is expected as YYYY-MM")
    for name, code in (("city", city), ("other", other)):
        if code is not None and not re.fullmatch(r"[0-9]{6}", code):
            raise InvalidParameter(f"{name} was {code!r} but is expected to be a 6-digit city code")
    if other == city:
        raise InvalidParameter("other: a pair names two different cities")
    row = dict(conn.execute(REPORT_SQL, {"month": date(int(m[1]), int(m[2]), 1), "a": city, "b": other}).fetchone())
    by_type = {k: int(row["findings_by_type"].get(k, 0)) for k in checklists.finding_types()}
    return {"month": month, "city": city, "other": other, "inspections": row["inspections"],
            "findings": sum(by_type.values()), "findings_by_type": by_type, "cases_opened": row["cases_opened"],
            "cases_overdue": row["cases_overdue"], "cases_closed": row["cases_closed"],
            "joint_tasks": row["joint_tasks"]}


def to_csv(reports: list[dict[str, Any]]) -> str:
    """One row per report: scope, month, the counts, then one column per finding type."""
    types = list(checklists.finding_types())
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["city", "other", "month", *[h[0] for h in HEADERS], *[f"findings_{t}" for t in types]])
    for r in reports:
        w.writerow([r["city"], r["other"] or "", r["month"], *[r[h[0]] for h in HEADERS],
                    *[r["findings_by_type"][t] for t in types]])
    return out.getvalue()


def to_html(reports: list[dict[str, Any]], title: str) -> str:
    """A small standalone page: the counts (Chinese first, English alongside) and findings by type."""
    types = checklists.finding_types()
    e = html.escape
    head = "".join(f"<th>{e(zh)}<br><small>{e(en)}</small></th>" for _, zh, en in HEADERS)
    head += "".join(f"<th>{e(t['zh'])}<br><small>{e(t['en'])}</small></th>" for t in types.values())
    rows = []
    for r in reports:
        scope = r["city"] + (f" – {r['other']}" if r["other"] else "")
        cells = "".join(f"<td>{r[h[0]]}</td>" for h in HEADERS)
        cells += "".join(f"<td>{r['findings_by_type'][t]}</td>" for t in types)
        rows.append(f"<tr><th>{e(scope)}</th><td>{e(r['month'])}</td>{cells}</tr>")
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
            "padding:4px 6px;text-align:right}small{color:#555;font-weight:normal}</style></head><body>"
            f"<h1>{e(title)}</h1><table><thead><tr><th>城市<br><small>city</small></th><th>月份<br>"
            f"<small>month</small></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>")
