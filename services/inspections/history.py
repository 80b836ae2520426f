"""A site's history: every inspection, finding and case event, across every city, in time order.

One SQL statement builds the JSON; row-level security leaves out what the caller may not read.
The indexes (site_key, time) of migration 0014 keep it fast on a large store.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.errors import NotFound

HISTORY_SQL = """
WITH ev AS (
    SELECT r.device_time AS at, 0 AS rank, 'inspection' AS kind, r.site_city AS city, r.inspector AS who,
           jsonb_build_object('record', r.key, 'task_id', r.task_id, 'template', r.template,
                              'template_version', r.template_version, 'distance_m', round(r.distance_m::numeric, 1),
                              'far', r.far, 'accuracy_m', r.accuracy_m, 'note', r.note, 'answers', r.answers,
                              'photos', (SELECT count(*) FROM riskatlas.inspection_photo p WHERE p.record_id = r.id))
               AS detail
    FROM riskatlas.inspection_record r WHERE r.site_key = %(site)s
    UNION ALL
    SELECT r.device_time, 1, 'finding', f.site_city, r.inspector,
           jsonb_build_object('finding_id', f.id, 'record', r.key, 'type', f.kind, 'severity', f.severity,
                              'item', f.item, 'note', f.note)
    FROM riskatlas.inspection_finding f JOIN riskatlas.inspection_record r ON r.id = f.record_id
    WHERE f.site_key = %(site)s
    UNION ALL
    SELECT e.at, e.rank, e.kind, c.owner_city, e.who,
           jsonb_build_object('case_id', c.id, 'finding_id', c.finding_id, 'deadline', c.deadline,
                              'status', c.status, 'overdue', c.overdue, 'note', e.note)
    FROM riskatlas.enforcement_case_state c
    CROSS JOIN LATERAL (VALUES (c.opened_at, 2, 'case-opened', c.opened_by, c.measures),
                               (c.followup_at, 3, 'case-follow-up', c.followup_by, c.followup_note),
                               (c.closed_at, 4, 'case-closed', c.closed_by, c.closing_note)) AS e(at, rank, kind, who, note)
    WHERE c.site_key = %(site)s AND e.at IS NOT NULL
)
SELECT coalesce(jsonb_agg(jsonb_build_object('at', at, 'kind', kind, 'city', city, 'by', who, 'detail', detail)
                          ORDER BY at, rank), '[]'::jsonb) AS events
FROM ev
"""


SITE_SQL = """SELECT key, name, category, coalesce(owner_city, city_code) AS city, synthetic
               FROM riskatlas.risk_source WHERE key = %s"""


async def site_history_async(conn: psycopg.AsyncConnection, site_key: str) -> dict[str, Any]:
    """:func:`site_history` on a pooled asynchronous connection (the web's hot path)."""
    cur = conn.cursor(row_factory=dict_row)
    site = await (await cur.execute(SITE_SQL, (site_key,))).fetchone()
    if site is None:
        raise NotFound(f"site {site_key!r} is not a known risk source")
    row = await (await cur.execute(HISTORY_SQL, {"site": site_key})).fetchone()
    return {"site": dict(site), "events": row["events"] if row else []}


def site_history(conn: psycopg.Connection, site_key: str) -> dict[str, Any]:
    """The site (name, category, city) and its events the caller may read, oldest first; 404 for an
    unknown site."""
    site = conn.execute(SITE_SQL, (site_key,)).fetchone()
    if site is None:
        raise NotFound(f"site {site_key!r} is not a known risk source")
    events = conn.execute(HISTORY_SQL, {"site": site_key}).fetchone()["events"]
    return {"site": dict(site), "events": events}
