"""Enforcement cases: opened from a finding (立案) with a rectification deadline, followed up (复查)
and closed (结案); overdue when open after the deadline.  A case belongs to the city where its site
lies (its steward writes it); the cities of the finding's task and the site's border neighbours read it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from services.errors import Conflict, Forbidden, InvalidParameter, NotFound
from services.identity import Identity

COLUMNS = sql.SQL("id, key, finding_id, task_id, site_key, owner_city, cities, status, overdue, opened_at, opened_by, "
           "deadline, measures, followup_record_id, followup_at, followup_by, rectified, followup_note, closed_at, "
           "closed_by, closing_note")


def open_case(conn: psycopg.Connection, identity: Identity, finding_id: int, deadline: date,
              measures: str | None) -> dict[str, Any]:
    """立案: a case from a finding the caller may read; 403 unless the caller's city owns the site."""
    _writer(identity)
    if conn.execute("SELECT 1 FROM riskatlas.inspection_finding WHERE id = %s", (finding_id,)).fetchone() is None:
        raise NotFound(f"finding {finding_id}: no finding you may see has this id")
    try:
        with conn.transaction():
            row = conn.execute("""INSERT INTO riskatlas.enforcement_case (finding_id, deadline, measures)
                                  VALUES (%s, %s, %s) RETURNING id""", (finding_id, deadline, measures)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"finding {finding_id}: a case is open for it already") from None
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden(f"finding {finding_id}: its site lies in another city, whose steward opens the case") from None
    return get_case(conn, row["id"])


def follow_up(conn: psycopg.Connection, identity: Identity, case_id: int, record_client_id: str | None,
              rectified: bool, note: str | None) -> dict[str, Any]:
    """复查: the follow-up inspection's record (by its client id, optional) and whether it was rectified."""
    _writer(identity)
    record_id = None
    if record_client_id is not None:
        row = conn.execute("SELECT id, site_key FROM riskatlas.inspection_record WHERE key = %s",
                           (record_client_id,)).fetchone()
        case = get_case(conn, case_id)
        if row is None or row["site_key"] != case["site_key"]:
            raise InvalidParameter(f"record {record_client_id!r}: no record of site {case['site_key']} you may see")
        record_id = row["id"]
    return _update(conn, case_id, sql.SQL("""followup_record_id = %(rec)s, followup_at = clock_timestamp(),
                   followup_by = riskatlas.acting_user(), rectified = %(ok)s, followup_note = %(note)s"""),
                   {"rec": record_id, "ok": rectified, "note": note})


def close_case(conn: psycopg.Connection, identity: Identity, case_id: int, note: str | None) -> dict[str, Any]:
    """结案: only after a follow-up found it rectified (409 otherwise)."""
    _writer(identity)
    case = get_case(conn, case_id)
    if not case["rectified"]:
        raise Conflict(f"case {case_id}: a follow-up (复查) must find it rectified before it is closed")
    return _update(conn, case_id, sql.SQL("""status = 'closed', closed_at = clock_timestamp(),
                   closed_by = riskatlas.acting_user(), closing_note = %(note)s"""), {"note": note})


def get_case(conn: psycopg.Connection, case_id: int) -> dict[str, Any]:
    row = conn.execute(sql.SQL("SELECT {} FROM riskatlas.enforcement_case_state WHERE id = %s").format(COLUMNS), (case_id,)).fetchone()
    if row is None:
        raise NotFound(f"case {case_id}: no case you may see has this id")
    return dict(row)


def list_cases(conn: psycopg.Connection, *, status: str | None = None, city: str | None = None,
               overdue: bool | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Cases the caller may read, newest first."""
    if status is not None and status not in ("open", "closed"):
        raise InvalidParameter(f"status was {status!r} but is expected to be one of ['open', 'closed']")
    return [dict(r) for r in conn.execute(
        sql.SQL("""SELECT {} FROM riskatlas.enforcement_case_state
            WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(city)s::text IS NULL OR owner_city = %(city)s)
              AND (%(overdue)s::boolean IS NULL OR overdue = %(overdue)s)
            ORDER BY opened_at DESC, id DESC LIMIT %(limit)s""").format(COLUMNS),
        {"status": status, "city": city, "overdue": overdue, "limit": limit}).fetchall()]


def _update(conn: psycopg.Connection, case_id: int, assignments: sql.SQL, params: dict[str, Any]) -> dict[str, Any]:
    try:
        with conn.transaction():
            row = conn.execute(sql.SQL("UPDATE riskatlas.enforcement_case SET {} WHERE id = %(id)s RETURNING id")
                               .format(assignments),
                               {**params, "id": case_id}).fetchone()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise Conflict(f"case {case_id}: the case is closed") from None
    if row is None:
        get_case(conn, case_id)  # 404 when it cannot be seen at all
        raise Forbidden(f"case {case_id}: only the steward of the city where its site lies changes it")
    return get_case(conn, case_id)


def _writer(identity: Identity) -> None:
    if identity.role not in ("steward", "admin"):
        raise Forbidden(f"cases are opened, followed up and closed by a city's steward; this request is {identity.role!r}")
