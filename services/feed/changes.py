"""The change feed: inserts, updates and deletions of inventory rows, from the row history.

Read through the view ``change_visible`` (migration 0013): restricted fields are gone from old, new and
the list of changed fields for a role that may not see them, and an update that changed only restricted
fields is not listed at all for that role. ``near_city`` + ``within_m`` keep the changes whose row (old
or new location) lies within that many metres of the city's border with its neighbours (geodesic metres on
the ellipsoid; each border piece probes the history's GiST index in EPSG:4549 for candidates, migration
0021). Pages follow the history id: ``after`` is the last id of the previous page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from layers.catalogue import LAYERS, SCHEMA_SQL, Label, labelled
from services.errors import InvalidParameter, NotFound, Unavailable
from services.query.clauses import Clause, all_of
from services.query.temporal import CST, interval

#: What a history row's operation is called, Chinese first.
OP_LABELS = labelled({"insert": ("新增", "added"), "update": ("变更", "changed"), "delete": ("删除", "deleted")})
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_WITHIN_M = 200_000.0


@dataclass(frozen=True)
class ChangeQuery:
    """What a caller asks of the feed, validated."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    layer: str | None = None
    near_city: str | None = None
    within_m: float | None = None
    after: int = 0
    limit: int = DEFAULT_LIMIT

    def params(self) -> dict[str, str]:
        """The query as URL parameters (without ``after``), for the ``next`` link of a page."""
        out: dict[str, str] = {}
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.layer:
            out["layer"] = self.layer
        if self.near_city:
            out["near_city"] = self.near_city
            out["within_m"] = f"{self.within_m:g}"
        out["limit"] = str(self.limit)
        return out


@dataclass
class ChangePage:
    """One page of changes, oldest first, and the cursor of the next page (None on the last)."""

    query: ChangeQuery
    changes: list[dict[str, Any]] = field(default_factory=list)
    next_after: int | None = None
    city_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"changes": self.changes, "numberReturned": len(self.changes), "next_after": self.next_after,
                "near_city": self.query.near_city, "near_city_name": self.city_name,
                "within_m": self.query.within_m, "crs": "EPSG:4326 (WGS84 lon/lat)"}


def _time(raw: str | None, name: str) -> dt.datetime | None:
    if raw is None or raw.strip() in ("", ".."):
        return None
    try:
        start, _end, _exclusive = interval(raw.strip())
    except InvalidParameter:
        raise InvalidParameter(f"`{name}`: {raw[:40]!r} is not an RFC 3339 date-time (e.g. 2026-11-01T08:00:00Z) "
                               "or date; a time without an offset is China Standard Time") from None
    if start is None or "/" in raw:
        raise InvalidParameter(f"`{name}` is one instant (e.g. 2026-11-01T08:00:00+08:00), not an interval")
    return start


def parse_query(since: str | None = None, until: str | None = None, layer: str | None = None,
                near_city: str | None = None, within_m: float | None = None, after: int | None = None,
                limit: int | None = None) -> ChangeQuery:
    """A :class:`ChangeQuery` from raw parameters; ``InvalidParameter`` naming the parameter otherwise."""
    start, end = _time(since, "since"), _time(until, "until")
    if start is not None and end is not None and end < start:
        raise InvalidParameter(f"`until` ({end.isoformat()}) is before `since` ({start.isoformat()})")
    inventory = sorted(n for n, lay in LAYERS.items() if lay.inventory)
    if layer is not None and layer not in inventory:
        raise InvalidParameter(f"`layer` was {layer[:40]!r} but is expected to be one of {inventory}")
    if near_city is not None and (len(near_city) != 6 or not near_city.isdigit()):
        raise InvalidParameter(f"`near_city` was {near_city[:20]!r} but is expected to be a 6-digit city code "
                               "(GB/T 2260), e.g. 320100")
    if (near_city is None) != (within_m is None):
        raise InvalidParameter("`near_city` and `within_m` go together: the city whose border, and the distance "
                               "from it in metres")
    if within_m is not None and not 0 < within_m <= MAX_WITHIN_M:
        raise InvalidParameter(f"`within_m` was {within_m:g} but is expected to be > 0 and <= {MAX_WITHIN_M:g}")
    if after is not None and after < 0:
        raise InvalidParameter(f"`after` was {after} but is expected to be a history id >= 0")
    n = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidParameter(f"`limit` was {n} but is expected to be between 1 and {MAX_LIMIT}")
    return ChangeQuery(start, end, layer, near_city, within_m, after or 0, n)


def near_border(q: ChangeQuery) -> Clause:
    """The ids of the page (``q.limit`` + 1 at most, in order): the changes of ``q``'s time, layer and cursor
    within ``q.within_m`` metres of ``q.near_city``'s border, found from the border's side: each of its pieces
    probes the GiST index on (changed_at, geom_m) of the history once (EPSG:4549, migration 0013, within
    the planar reach that covers the distance anywhere in China, migration 0021) and the geodesic distance
    on the ellipsoid decides. The page's limit is inside, so the planner fetches only those rows afterwards."""
    parts = [Clause(sql.SQL("b.code = %s"), (q.near_city,)),
             Clause(sql.SQL("h.id > %s"), (q.after,))]
    if q.since is not None:
        parts.append(Clause(sql.SQL("h.changed_at >= %s"), (q.since,)))
    if q.until is not None:
        parts.append(Clause(sql.SQL("h.changed_at < %s"), (q.until,)))
    if q.layer is not None:
        parts.append(Clause(sql.SQL("h.layer = %s"), (q.layer,)))
    where = all_of(parts)
    # MATERIALIZED: the set near the border first, whatever the limit (with a small limit the planner
    # would otherwise walk the whole history in id order hoping to meet the near rows early)
    text = sql.SQL("""WITH near AS MATERIALIZED (SELECT DISTINCT h.id FROM {schema}.feed_border_piece b
            JOIN {schema}.change_visible h
              ON ST_DWithin(b.geom_m, h.geom_m, {schema}.gk120_reach(b.geom_m, %s::float8))
             AND ST_DWithin(b.geom::geography, h.geom::geography, %s::float8)
            WHERE {where})
        SELECT id FROM near ORDER BY id LIMIT %s""").format(schema=SCHEMA_SQL, where=where.text)
    return Clause(text, (q.within_m, q.within_m) + where.params + (q.limit + 1,))


def _where(q: ChangeQuery) -> Clause:
    parts = [Clause(sql.SQL("c.id > %s"), (q.after,))]
    if q.since is not None:
        parts.append(Clause(sql.SQL("c.changed_at >= %s"), (q.since,)))
    if q.until is not None:
        parts.append(Clause(sql.SQL("c.changed_at < %s"), (q.until,)))
    if q.layer is not None:
        parts.append(Clause(sql.SQL("c.layer = %s"), (q.layer,)))
    return all_of(parts)


#: The columns of a change as the view gives them; the point is a representative point of where the
#: row is now (where it was, for a deletion).
COLUMNS = sql.SQL("""c.id, c.layer, c.key, c.op, c.changed_at, c.changed_by, c.acting_role, c.acting_city,
    c.batch_id, c.city_code, c.name, c.changed, c.old_row, c.new_row,
    ST_AsGeoJSON(ST_PointOnSurface(ST_GeometryN(c.geom, ST_NumGeometries(c.geom))), 6)::jsonb AS point""")


def changes_clause(q: ChangeQuery) -> Clause:
    """The page's SQL: one row more than the limit, to know whether a next page exists."""
    if q.near_city is not None:
        near = near_border(q)
        text = sql.SQL("SELECT {cols} FROM ({near}) page JOIN {schema}.change_visible c ON c.id = page.id "
                       "ORDER BY c.id").format(cols=COLUMNS, schema=SCHEMA_SQL, near=near.text)
        return Clause(text, near.params)
    where = _where(q)
    text = sql.SQL("SELECT {cols} FROM {schema}.change_visible c WHERE {where} ORDER BY c.id LIMIT %s").format(
        cols=COLUMNS, schema=SCHEMA_SQL, where=where.text)
    return Clause(text, where.params + (q.limit + 1,))


_CITY_SQL = sql.SQL("""SELECT a.name,
    EXISTS (SELECT 1 FROM {schema}.feed_border_piece b WHERE b.code = a.code) AS has_border
    FROM {schema}.admin_area a WHERE a.code = %s AND a.level = 'city'""").format(schema=SCHEMA_SQL)


def _city_checked(row: dict[str, Any] | None, code: str) -> str:
    if row is None:
        raise NotFound(f"`near_city`: no city with code {code} is loaded (admin_area, level city)")
    if not row["has_border"]:
        raise Unavailable(f"the borders of city {code} with its neighbours are not derived yet: run "
                          "`riskatlas flags refresh` (or load the inventory) once")
    return str(row["name"])


async def read_changes(conn: psycopg.AsyncConnection, q: ChangeQuery) -> ChangePage:
    """One page of the changes ``q`` selects, as the connection's actor may see them."""
    cur = conn.cursor(row_factory=dict_row)
    page = ChangePage(q)
    if q.near_city is not None:
        await cur.execute(_CITY_SQL, (q.near_city,))
        page.city_name = _city_checked(await cur.fetchone(), q.near_city)
    clause = changes_clause(q)
    await cur.execute(clause.text, clause.params)
    return _page(page, await cur.fetchall())


def read_changes_sync(conn: psycopg.Connection, q: ChangeQuery) -> ChangePage:
    """:func:`read_changes` on a synchronous connection (the command line)."""
    cur = conn.cursor(row_factory=dict_row)
    page = ChangePage(q)
    if q.near_city is not None:
        page.city_name = _city_checked(cur.execute(_CITY_SQL, (q.near_city,)).fetchone(), q.near_city)
    clause = changes_clause(q)
    return _page(page, cur.execute(clause.text, clause.params).fetchall())


def _page(page: ChangePage, rows: list[dict[str, Any]]) -> ChangePage:
    more = len(rows) > page.query.limit
    rows = rows[:page.query.limit]
    page.changes = [change_dict(r) for r in rows]
    page.next_after = rows[-1]["id"] if more and rows else None
    return page


def change_dict(r: dict[str, Any]) -> dict[str, Any]:
    """One change as the API gives it: what, where, who, when, old and new, and its title in zh and en."""
    layer = LAYERS[r["layer"]]
    op = OP_LABELS[r["op"]]
    name = r["name"] or r["key"]
    point = r.get("point")
    return {
        "id": r["id"], "layer": r["layer"], "key": r["key"], "op": r["op"],
        "changed_at": r["changed_at"].astimezone(CST).isoformat(),
        "changed_by": r["changed_by"], "acting_role": r["acting_role"], "acting_city": r["acting_city"],
        "batch_id": r["batch_id"], "city_code": r["city_code"], "name": r["name"],
        "changed": r["changed"], "old": r["old_row"], "new": r["new_row"],
        "point": point["coordinates"] if point else None,
        "title": title(layer.title_zh, layer.title, op, name),
    }


def title(layer_zh: str, layer_en: str, op: Label, name: str) -> dict[str, str]:
    """A change's title: Chinese first, English alongside (``zh / en`` in ``text``)."""
    zh = f"{op.zh}{layer_zh}：{name}"
    en = f"{layer_en} {op.en}: {name}"
    return {"zh": zh, "en": en, "text": f"{zh} / {en}"}
