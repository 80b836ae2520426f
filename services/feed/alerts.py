"""Subscriptions to the change feed and the in-app alerts they raise.

A city subscribes to "changes to <layer> rows of <min_level> or larger within N metres of my border"
(risk levels of HJ 941-2018: general < larger < major; ``others_only``: rows lying in another city).
:func:`match` turns every change since the last match into alerts, for every subscription at once: one
``INSERT ... SELECT`` joining the new history with the subscriptions and the subscribers' border pieces
(candidates from the EPSG:4549 index, decided by the geodesic distance: migration 0021). It runs after a
load (``services.after_load``) and as a periodic job (``riskatlas feed match``); a change already alerted is
never alerted twice. Subscriptions and alerts are scoped by row-level security (migration 0013): a steward manages and reads its city's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from layers.catalogue import LAYERS, RISK_LEVEL_LABELS, RISK_LEVELS, SCHEMA_SQL
from services.errors import Forbidden, InvalidParameter, NotFound
from services.feed.changes import COLUMNS, MAX_WITHIN_M, change_dict
from services.identity import Identity
from services.query.temporal import CST

#: Changes written by transactions still open when a match ran get ids below its high-water mark:
#: each match also looks back this far by time (a change already alerted is skipped).
LOOKBACK = dt.timedelta(minutes=30)


def check_subscription(layer: str, min_level: str | None, within_m: float) -> None:
    """``InvalidParameter`` naming what is wrong with a subscription's terms."""
    inventory = sorted(n for n, lay in LAYERS.items() if lay.inventory)
    if layer not in inventory:
        raise InvalidParameter(f"`layer` was {layer[:40]!r} but is expected to be one of {inventory}")
    if min_level is not None and min_level not in RISK_LEVELS:
        raise InvalidParameter(f"`min_level` was {min_level[:20]!r} but is expected to be one of {list(RISK_LEVELS)} "
                               "(HJ 941-2018: 一般/较大/重大)")
    if min_level is not None and layer != "risk_source":
        raise InvalidParameter("`min_level` applies to risk_source only (the layer graded by HJ 941-2018)")
    if not 0 < within_m <= MAX_WITHIN_M:
        raise InvalidParameter(f"`within_m` was {within_m:g} but is expected to be > 0 and <= {MAX_WITHIN_M:g}")


#: The roles that act for their city in subscriptions and alerts (the database's actor_duty_scope()).
CITY_ROLES = ("steward", "duty")


def subscription_city(identity: Identity, city: str | None) -> str:
    """The city a subscription or an alert list is for: a steward's or duty officer's own; an administrator
    names one."""
    if identity.role in CITY_ROLES and identity.city:
        if city is not None and city != identity.city:
            raise Forbidden(f"a {identity.role} of {identity.city} manages that city's subscriptions and alerts, "
                            f"not {city}'s")
        return identity.city
    if identity.role == "admin":
        if city is None or len(city) != 6 or not city.isdigit():
            raise InvalidParameter("`city` (a 6-digit city code) is needed when an administrator acts for a city")
        return city
    raise Forbidden(f"subscriptions and alerts are a city's: this needs a steward, duty officer or administrator "
                    f"key; this request is {identity.role!r}")


def require_city_actor(identity: Identity) -> None:
    """``Forbidden`` unless ``identity`` acts for a city (its steward or duty officer) or is an administrator."""
    if identity.role == "admin" or (identity.role in CITY_ROLES and identity.city):
        return
    raise Forbidden(f"subscriptions and alerts are a city's: this needs a steward, duty officer or administrator "
                    f"key; this request is {identity.role!r}")


_SUB_COLS = sql.SQL("id, city, layer, min_level, within_m, others_only, label, active, created_at, created_by")


def subscribe(conn: psycopg.Connection, city: str, layer: str = "risk_source", min_level: str | None = None,
              within_m: float = 5000.0, others_only: bool = True, label: str | None = None) -> dict[str, Any]:
    """Create a subscription for ``city`` (row-level security: the actor's own city) and return it."""
    check_subscription(layer, min_level, within_m)
    row = conn.cursor(row_factory=dict_row).execute(sql.SQL(
        """INSERT INTO {schema}.feed_subscription (city, layer, min_level, within_m, others_only, label)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING {cols}""").format(schema=SCHEMA_SQL, cols=_SUB_COLS),
        (city, layer, min_level, within_m, others_only, label)).fetchone()
    assert row is not None
    return _sub_dict(row)


async def subscribe_async(conn: psycopg.AsyncConnection, city: str, layer: str = "risk_source",
                          min_level: str | None = None, within_m: float = 5000.0, others_only: bool = True,
                          label: str | None = None) -> dict[str, Any]:
    """:func:`subscribe` on an asynchronous connection (the API)."""
    check_subscription(layer, min_level, within_m)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL(
        """INSERT INTO {schema}.feed_subscription (city, layer, min_level, within_m, others_only, label)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING {cols}""").format(schema=SCHEMA_SQL, cols=_SUB_COLS),
        (city, layer, min_level, within_m, others_only, label))
    row = await cur.fetchone()
    assert row is not None
    return _sub_dict(row)


async def list_subscriptions(conn: psycopg.AsyncConnection, city: str) -> list[dict[str, Any]]:
    """The city's subscriptions (those the actor may see)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("SELECT {cols} FROM {schema}.feed_subscription WHERE city = %s ORDER BY id").format(
        schema=SCHEMA_SQL, cols=_SUB_COLS), (city,))
    return [_sub_dict(r) for r in await cur.fetchall()]


async def delete_subscription(conn: psycopg.AsyncConnection, sub_id: int) -> None:
    """Remove one of the actor's city's subscriptions (and its alerts); 404 when it is not the actor's."""
    cur = await conn.execute(sql.SQL("DELETE FROM {schema}.feed_subscription WHERE id = %s").format(
        schema=SCHEMA_SQL), (sub_id,))
    if cur.rowcount == 0:
        raise NotFound(f"no subscription {sub_id} of this city")


def _sub_dict(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["created_at"] = r["created_at"].astimezone(CST).isoformat()
    level = r["min_level"]
    km = f"{r['within_m'] / 1000:g}"
    what_zh = f"{RISK_LEVEL_LABELS[level].zh}及以上" if level else "全部"
    what_en = f"{level} or larger" if level else "all"
    out["description"] = {"zh": f"市界{km}公里内{what_zh}的{LAYERS[r['layer']].title_zh}变更",
                          "en": f"changes to {what_en} {LAYERS[r['layer']].title.lower()} within {km} km of the border"}
    return out


_MATCH_SQL = sql.SQL("""
WITH fresh AS MATERIALIZED (
    SELECT h.id, h.layer, h.geom_m, h.geom,
           coalesce(h.new_row ->> 'risk_level', h.old_row ->> 'risk_level') AS level,
           coalesce(h.new_row ->> 'city_code', h.old_row ->> 'city_code') AS city_code
    FROM {schema}.row_history h
    WHERE (h.id > %(last)s AND h.id <= %(high)s) OR (h.changed_at >= %(lookback)s AND h.id <= %(high)s)
), ins AS (
    INSERT INTO {schema}.feed_alert (city, subscription_id, history_id)
    SELECT s.city, s.id, f.id
    FROM {schema}.feed_subscription s
    JOIN fresh f ON f.layer = s.layer
    WHERE s.active
      AND (s.min_level IS NULL
           OR {schema}.risk_level_rank(f.level) >= {schema}.risk_level_rank(s.min_level))
      AND (NOT s.others_only OR f.city_code IS DISTINCT FROM s.city)
      AND EXISTS (SELECT 1 FROM {schema}.feed_border_piece b
                  WHERE b.code = s.city
                    AND ST_DWithin(b.geom_m, f.geom_m, {schema}.gk120_reach(b.geom_m, s.within_m))
                    AND ST_DWithin(b.geom::geography, f.geom::geography, s.within_m))
    ON CONFLICT (subscription_id, history_id) DO NOTHING
    RETURNING city
)
SELECT city, count(*) AS n FROM ins GROUP BY city ORDER BY city
""").format(schema=SCHEMA_SQL)


def match(conn: psycopg.Connection) -> dict[str, Any]:
    """Alerts for every change since the last match, for every active subscription, set-based; returns
    the history range read and the alerts written per city. Runs as the schema owner (a batch job), in
    the caller's transaction; concurrent matches wait for each other."""
    cur = conn.cursor(row_factory=dict_row)
    state = cur.execute(sql.SQL("SELECT last_history_id, matched_at FROM {schema}.feed_match_state WHERE id = 1 "
                                "FOR UPDATE").format(schema=SCHEMA_SQL)).fetchone()
    assert state is not None  # migration 0013 writes the row
    high = cur.execute(sql.SQL("SELECT coalesce(max(id), 0) AS m, clock_timestamp() AS now FROM {schema}.row_history"
                               ).format(schema=SCHEMA_SQL)).fetchone()
    assert high is not None
    last = state["last_history_id"]
    lookback = (state["matched_at"] or high["now"]) - LOOKBACK
    rows = cur.execute(_MATCH_SQL, {"last": last, "high": high["m"], "lookback": lookback}).fetchall()
    cur.execute(sql.SQL("UPDATE {schema}.feed_match_state SET last_history_id = %s, matched_at = %s WHERE id = 1"
                        ).format(schema=SCHEMA_SQL), (high["m"], high["now"]))
    return {"from_history_id": last, "to_history_id": high["m"],
            "alerts": {r["city"]: r["n"] for r in rows}, "written": sum(r["n"] for r in rows)}


def _alerts_clause(city: str, unseen_only: bool, limit: int) -> tuple[sql.Composed, tuple[Any, ...]]:
    text = sql.SQL("""SELECT a.id AS alert_id, a.subscription_id, a.created_at AS alerted_at, a.seen_at, a.seen_by,
            s.within_m, s.min_level, {cols},
            (SELECT min(ST_Distance(b.geom::geography, c.geom::geography)) FROM {schema}.feed_border_piece b
             WHERE b.code = a.city AND ST_DWithin(b.geom_m, c.geom_m, {schema}.gk120_reach(b.geom_m, s.within_m))
               AND ST_DWithin(b.geom::geography, c.geom::geography, s.within_m)) AS border_distance_m
        FROM {schema}.feed_alert a
        JOIN {schema}.feed_subscription s ON s.id = a.subscription_id
        JOIN {schema}.change_visible c ON c.id = a.history_id
        WHERE a.city = %s {unseen}
        ORDER BY a.history_id DESC, a.id DESC LIMIT %s""").format(
        cols=COLUMNS, schema=SCHEMA_SQL, unseen=sql.SQL("AND a.seen_at IS NULL" if unseen_only else ""))
    return text, (city, limit)


def _alert_dict(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["alert_id"], "subscription_id": r["subscription_id"],
            "alerted_at": r["alerted_at"].astimezone(CST).isoformat(),
            "seen_at": r["seen_at"].astimezone(CST).isoformat() if r["seen_at"] else None, "seen_by": r["seen_by"],
            "border_distance_m": round(r["border_distance_m"], 1) if r["border_distance_m"] is not None else None,
            "change": change_dict(r)}


async def list_alerts(conn: psycopg.AsyncConnection, city: str, unseen_only: bool = False,
                      limit: int = 100) -> list[dict[str, Any]]:
    """The city's alerts, newest first, with the change as the actor may see it (row-level security)."""
    text, params = _alerts_clause(city, unseen_only, limit)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(text, params)
    return [_alert_dict(r) for r in await cur.fetchall()]


def list_alerts_sync(conn: psycopg.Connection, city: str, unseen_only: bool = False,
                     limit: int = 100) -> list[dict[str, Any]]:
    """:func:`list_alerts` on a synchronous connection (the command line)."""
    text, params = _alerts_clause(city, unseen_only, limit)
    return [_alert_dict(r) for r in conn.cursor(row_factory=dict_row).execute(text, params).fetchall()]


async def mark_seen(conn: psycopg.AsyncConnection, alert_id: int, user: str) -> dict[str, Any]:
    """Mark one of the actor's city's alerts seen (the first time counts); 404 when it is not the city's."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""UPDATE {schema}.feed_alert SET seen_at = coalesce(seen_at, clock_timestamp()),
                                     seen_by = coalesce(seen_by, %s)
                                 WHERE id = %s RETURNING id, city, seen_at, seen_by""").format(schema=SCHEMA_SQL),
                      (user, alert_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id} of this city")
    return {"id": row["id"], "city": row["city"], "seen_at": row["seen_at"].astimezone(CST).isoformat(),
            "seen_by": row["seen_by"]}


def digest(conn: psycopg.Connection, city: str, limit: int = 200) -> str:
    """The city's unseen alerts as plain text for an e-mail, Chinese first, English alongside."""
    name_row = conn.cursor(row_factory=dict_row).execute(sql.SQL(
        "SELECT name, name_en FROM {schema}.admin_area WHERE code = %s").format(schema=SCHEMA_SQL), (city,)).fetchone()
    if name_row is None:
        raise NotFound(f"no city with code {city} is loaded (admin_area)")
    alerts = list_alerts_sync(conn, city, unseen_only=True, limit=limit)
    zh, en = name_row["name"], name_row["name_en"] or city
    lines = [f"{zh}（{city}）邻市变更提醒摘要 / Neighbour change digest for {en} ({city})",
             f"未读提醒 {len(alerts)} 条 / {len(alerts)} unseen alert(s)", ""]
    for i, a in enumerate(reversed(alerts), 1):
        c = a["change"]
        level = (c["new"] or c["old"] or {}).get("risk_level")
        lvl = f"，风险等级 {RISK_LEVEL_LABELS[level].zh} / risk level {level}" if level in RISK_LEVEL_LABELS else ""
        dist = a["border_distance_m"]
        where = f"距市界 {dist / 1000:.1f} 公里 / {dist / 1000:.1f} km from the border" if dist is not None else ""
        lines.append(f"{i}. [{c['changed_at']}] {c['title']['zh']}（{c['city_code'] or '?'}{lvl}）")
        lines.append(f"   {c['title']['en']}; {where}; by {c['changed_by']}; alert #{a['id']}")
    if not alerts:
        lines.append("没有未读提醒。 / Nothing unseen.")
    return "\n".join(lines) + "\n"
