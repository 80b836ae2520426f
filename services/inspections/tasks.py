"""Inspection tasks: planned by a city's steward, or jointly with teams from several cities.

Row-level security (migration 0014) decides who plans and who sees; the checks here only turn a
request into the row and say clearly what is wrong before the database is asked.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from services.errors import Forbidden, InvalidParameter, NotFound
from services.identity import Identity
from services.inspections import checklists

CITY_RE = re.compile(r"^[0-9]{6}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
STATUSES = ("planned", "done", "cancelled")
COLUMNS = sql.SQL("id, key, title, title_en, lead_city, cities, joint, teams, site_keys, starts_on, ends_on, template, "
           "template_version, inspectors, status, synthetic, created_at, created_by, updated_at")


def create_task(conn: psycopg.Connection, identity: Identity, doc: Any) -> dict[str, Any]:
    """Plan a task from ``doc``; the lead city is the first of ``cities`` (a steward's own city).

    A joint task names at least two cities and a team from each.  Raises 400 naming the member at
    fault, 403 when the caller may not plan for the lead city.
    """
    if identity.role not in ("steward", "admin"):
        raise Forbidden(f"tasks are planned by a city's steward or an administrator; this request is {identity.role!r}")
    if not isinstance(doc, dict):
        raise InvalidParameter("body: expected a task object")
    allowed = {"title", "title_en", "cities", "teams", "site_keys", "starts_on", "ends_on", "template",
               "template_version", "inspectors", "synthetic"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InvalidParameter(f"body: unknown member {unknown[0]!r}; expected {sorted(allowed)}")
    title = _text(doc, "title", required=True)
    title_en = _text(doc, "title_en")
    cities = doc.get("cities") or ([identity.city] if identity.city else None)
    if not isinstance(cities, list) or not cities or not all(isinstance(c, str) and CITY_RE.match(c) for c in cities):
        raise InvalidParameter("cities: expected a list of 6-digit city codes, the lead city first")
    if len(set(cities)) != len(cities):
        raise InvalidParameter("cities: a city is named twice")
    if identity.role == "steward" and cities[0] != identity.city:
        raise Forbidden(f"cities: the lead city (first) must be your city {identity.city}, not {cities[0]}")
    teams = doc.get("teams", [])
    if not isinstance(teams, list) or not all(isinstance(t, dict) and isinstance(t.get("city"), str)
                                              and isinstance(t.get("name"), str) for t in teams):
        raise InvalidParameter("teams: expected a list of {\"city\", \"name\", \"members\"}")
    if len(cities) >= 2:
        missing = [c for c in cities if c not in {t["city"] for t in teams}]
        if missing:
            raise InvalidParameter(f"teams: a joint task needs a team from each of its cities; none from {missing}")
    sites = doc.get("site_keys")
    if not isinstance(sites, list) or not sites or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in sites):
        raise InvalidParameter("site_keys: expected a non-empty list of risk source keys")
    known = {r["key"] for r in conn.execute("SELECT key FROM riskatlas.risk_source WHERE key = ANY(%s)",
                                           (sites,)).fetchall()}
    unknown_sites = [s for s in sites if s not in known]
    if unknown_sites:
        raise InvalidParameter(f"site_keys: {unknown_sites[0]!r} is not a known risk source")
    starts, ends = _date(doc, "starts_on"), _date(doc, "ends_on")
    if ends < starts or (ends - starts).days > 366:
        raise InvalidParameter(f"ends_on {ends}: the window from starts_on {starts} must end on or after its start "
                               "and last at most a year")
    template = doc.get("template")
    if not isinstance(template, str) or template not in checklists.templates():
        raise InvalidParameter(f"template was {str(template)[:40]!r} but is expected to be one of "
                               f"{sorted(checklists.templates())}")
    version = doc.get("template_version", checklists.latest(template).version)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidParameter("template_version: expected a version number")
    checklists.get(template, version)
    inspectors = doc.get("inspectors", [])
    if not isinstance(inspectors, list) or not all(isinstance(n, str) and NAME_RE.match(n) for n in inspectors):
        raise InvalidParameter("inspectors: expected a list of account names")
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL("""INSERT INTO riskatlas.inspection_task (title, title_en, lead_city, cities, teams, site_keys,
                        starts_on, ends_on, template, template_version, inspectors, synthetic)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}""").format(COLUMNS),
                (title, title_en, cities[0], cities, Jsonb(teams), sites, starts, ends, template, version,
                 inspectors, bool(doc.get("synthetic", False)))).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden(f"you may not plan a task led by city {cities[0]}") from None
    except psycopg.errors.ForeignKeyViolation:
        raise InvalidParameter(f"cities: {cities[0]} is not a city of the region") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidParameter(f"body: {exc.diag.message_primary}") from None
    return dict(row)


def list_tasks(conn: psycopg.Connection, *, status: str | None = None, site: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
    """The tasks the caller may see (its cities', or those it is assigned to), newest window first."""
    if status is not None and status not in STATUSES:
        raise InvalidParameter(f"status was {status!r} but is expected to be one of {list(STATUSES)}")
    return [dict(r) for r in conn.execute(
        sql.SQL("""SELECT {} FROM riskatlas.inspection_task
            WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(site)s::text IS NULL OR %(site)s = ANY(site_keys))
            ORDER BY starts_on DESC, id DESC LIMIT %(limit)s""").format(COLUMNS),
        {"status": status, "site": site, "limit": limit}).fetchall()]


def get_task(conn: psycopg.Connection, task_id: int) -> dict[str, Any]:
    """One task the caller may see, with its sites (name, category, position); 404 otherwise."""
    row = conn.execute(sql.SQL("SELECT {} FROM riskatlas.inspection_task WHERE id = %s").format(COLUMNS), (task_id,)).fetchone()
    if row is None:
        raise NotFound(f"task {task_id}: no task you may see has this id")
    out = dict(row)
    out["sites"] = [dict(r) for r in conn.execute(
        """SELECT key, name, category, coalesce(owner_city, city_code) AS city, ST_X(geom) AS lon, ST_Y(geom) AS lat
           FROM riskatlas.risk_source WHERE key = ANY(%s) ORDER BY key""", (out["site_keys"],)).fetchall()]
    return out


def update_task(conn: psycopg.Connection, task_id: int, doc: Any) -> dict[str, Any]:
    """Change a task's status, window, title or inspectors (the lead city's steward); 404 when the caller
    may not change it."""
    if not isinstance(doc, dict) or not doc:
        raise InvalidParameter("body: expected an object with status, ends_on, title, title_en or inspectors")
    sets: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "status":
            if value not in STATUSES:
                raise InvalidParameter(f"status was {value!r} but is expected to be one of {list(STATUSES)}")
            sets[name] = value
        elif name in ("starts_on", "ends_on"):
            sets[name] = _date(doc, name)
        elif name in ("title", "title_en"):
            sets[name] = _text(doc, name, required=name == "title")
        elif name == "inspectors":
            if not isinstance(value, list) or not all(isinstance(n, str) and NAME_RE.match(n) for n in value):
                raise InvalidParameter("inspectors: expected a list of account names")
            sets[name] = value
        else:
            raise InvalidParameter(f"body: member {name!r} cannot be changed; expected status, starts_on, ends_on, "
                                   "title, title_en or inspectors")
    assignments = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in sets)
    try:
        with conn.transaction():
            row = conn.execute(sql.SQL("UPDATE riskatlas.inspection_task SET {}, updated_at = clock_timestamp() "
                                       "WHERE id = {} RETURNING id").format(assignments, sql.Placeholder("_id")),
                               {**sets, "_id": task_id}).fetchone()
    except psycopg.errors.CheckViolation:
        raise InvalidParameter("ends_on: the window must end on or after its start and last at most a year") from None
    if row is None:
        raise NotFound(f"task {task_id}: no task of your city has this id")
    return get_task(conn, task_id)


def _text(doc: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidParameter(f"{name}: expected text of 1 to 200 characters")
    return value.strip()


def _date(doc: dict[str, Any], name: str) -> date:
    value = doc.get(name)
    try:
        return date.fromisoformat(value) if isinstance(value, str) else _raise()
    except ValueError:
        raise InvalidParameter(f"{name}: expected a date YYYY-MM-DD, got {str(value)[:30]!r}") from None


def _raise() -> date:
    raise ValueError
