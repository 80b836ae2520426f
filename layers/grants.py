"""What the application role may do, generated from the catalogue and applied after every migration.

The application role owns nothing and holds no city's rights by itself: writes pass row-level
security only with a context the database verified (migration 0005).  Its read rights are generated
here so the catalogue stays the one truth:

* every table of the schema is readable except the private ones (accounts, keys, the signing
  secret, the row history that holds old values of restricted fields);
* restricted fields (``Field.restricted``) and the derived columns that would reveal them are not
  readable in the base table; a view ``<table>_visible`` shows them only to actors allowed to see
  them, and NULL to everyone else;
* inventory layers are writable (rows scoped by policy), load audit tables insertable.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from layers.catalogue import LAYERS, SCHEMA

# Tables the application role may not read at all.
PRIVATE_TABLES = ("account", "api_key", "auth_secret", "row_history", "tile_change", "tile_epoch", "agency_history")

# Columns outside the catalogue's layers that hold or reveal restricted values.
EXTRA_RESTRICTED = {
    "risk_grade": ("q_air", "q_water", "substances"),  # Q times a critical quantity gives tonnes
    "load_reject": ("record",),  # the rejected row as read: may hold quantities and contacts
    "agency": ("duty_phone", "duty_email", "webhook_url", "on_duty", "webhook_secret"),  # migration 0012
    "delivery": ("target", "last_error"),  # an e-mail address or webhook URL, and errors naming them
    "notice": ("ack_token_sha256",),
}

# Restricted columns that no client reads, not even through ``<table>_visible`` (the delivery worker,
# which runs as the owner, signs with them).
NEVER_SHOWN = {"agency": ("webhook_secret",)}

# Tables outside the catalogue's layers that the application role writes (rows scoped by policy), and
# how: privileges, or privileges with the only columns an UPDATE may set.
APP_WRITES = {
    "agency": "INSERT, UPDATE, DELETE",
    "incident": "INSERT, UPDATE (status, description, severity, involved)",
    "notice": "INSERT, UPDATE (acknowledged_at)",
    "consultation_entry": "INSERT",
    # inspections and enforcement cases (migration 0014)
    "inspection_task": "INSERT, UPDATE", "inspection_record": "INSERT", "inspection_finding": "INSERT",
    "inspection_photo": "INSERT", "inspection_photo_blob": "INSERT", "enforcement_case": "INSERT, UPDATE",
}

# Functions the application role calls directly (the rest of the auth machinery stays the owner's).
APP_FUNCTIONS = ("authenticate(text)", "ensure_observation_partitions(date, date)", "acknowledge_by_token(text)",
                 "tile_version()", "tile_fresh(uuid, pg_snapshot, text[], integer, integer, integer, double precision)")


def restricted_columns() -> dict[str, tuple[str, ...]]:
    """Table name -> columns the application role reads only through ``<table>_visible``."""
    out = {name: tuple(f.name for f in layer.fields if f.restricted) for name, layer in LAYERS.items()}
    out = {k: v for k, v in out.items() if v}
    for table, cols in EXTRA_RESTRICTED.items():
        out[table] = tuple(dict.fromkeys(out.get(table, ()) + cols))
    return out


def visible_view(table: str) -> str:
    """The qualified name of the view that shows ``table``'s restricted columns to allowed actors."""
    return f"{SCHEMA}.{table}_visible"


def apply(conn: psycopg.Connection, app_role: str) -> None:
    """Revoke everything from ``app_role`` on the schema, then grant what the catalogue says."""
    role = sql.Identifier(app_role)
    schema = sql.Identifier(SCHEMA)
    tables = [r[0] if not isinstance(r, dict) else r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (SCHEMA,)).fetchall()]
    restricted = restricted_columns()
    found = conn.cursor(row_factory=tuple_row).execute(
        "SELECT to_regprocedure('riskatlas.actor_sees_restricted()') IS NOT NULL").fetchone()
    verified = bool(found and found[0])
    if not verified:
        restricted = {}  # a schema older than 0005 (upgrading step by step): no verified actor to show them to
    with conn.transaction():
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role))
        for table in tables:
            ident = sql.Identifier(SCHEMA, table)
            if table in PRIVATE_TABLES:
                continue
            hidden = restricted.get(table, ())
            if hidden:
                cols = _columns(conn, table)
                shown = [c for c in cols if c not in hidden]
                conn.execute(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, shown)), ident, role))
                _create_visible_view(conn, table, cols, hidden)
                conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.Identifier(SCHEMA, f"{table}_visible"), role))
            else:
                conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(ident, role))
        for layer in LAYERS.values():
            if layer.inventory and layer.name in tables:
                conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(
                    sql.Identifier(SCHEMA, layer.name), role))
        # observations and their events: rows scoped by policy (migration 0010); history and the latest
        # values are written by the owner's trigger only
        for table, privileges in (("observation", "INSERT, UPDATE"), ("observation_event", "INSERT, UPDATE")):
            if table in tables:
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(privileges), sql.Identifier(SCHEMA, table), role))
        if "enforcement_case" in tables:  # the cases with their overdue flag (a security-invoker view)
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(SCHEMA, "enforcement_case_state"), role))
        for table, privileges in APP_WRITES.items():
            if table in tables:
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(privileges), sql.Identifier(SCHEMA, table), role))
        for table in ("load_batch", "load_reject"):
            conn.execute(sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(sql.Identifier(SCHEMA, table), role))
        _change_feed(conn, role, tables)
        conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, role))
        for fn in APP_FUNCTIONS if verified else ():
            if not _exists(conn, f"{SCHEMA}.{fn}"):  # a schema upgraded step by step may not have it yet
                continue
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {}.{} TO {}").format(schema, sql.SQL(fn), role))


def _change_feed(conn: psycopg.Connection, role: sql.Identifier, tables: list[str]) -> None:
    """The change feed (migration 0013): the catalogue's restricted fields written where the view
    ``change_visible`` reads them, that view readable, subscriptions managed and alerts marked seen
    (rows scoped by policy)."""
    if "restricted_field" not in tables:
        return
    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(SCHEMA, "restricted_field")))
    for name, layer in LAYERS.items():
        hidden = [f.name for f in layer.fields if f.restricted]
        if hidden:
            conn.execute(sql.SQL("INSERT INTO {} (layer, fields) VALUES (%s, %s)").format(
                sql.Identifier(SCHEMA, "restricted_field")), (name, hidden))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(SCHEMA, "change_visible"), role))
    conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(
        sql.Identifier(SCHEMA, "feed_subscription"), role))
    conn.execute(sql.SQL("GRANT UPDATE (seen_at, seen_by) ON {} TO {}").format(
        sql.Identifier(SCHEMA, "feed_alert"), role))


def _exists(conn: psycopg.Connection, signature: str) -> bool:
    row = conn.cursor(row_factory=tuple_row).execute("SELECT to_regprocedure(%s) IS NOT NULL", (signature,)).fetchone()
    return bool(row and row[0])


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""", (f"{SCHEMA}.{table}",)).fetchall()
    return [r[0] if not isinstance(r, dict) else r["attname"] for r in rows]


def _create_visible_view(conn: psycopg.Connection, table: str, cols: list[str], hidden: tuple[str, ...]) -> None:
    """``<table>_visible``: every column; restricted ones NULL unless the verified actor may see them.

    The check is a scalar subquery, so it runs once per query (an InitPlan), and the view stays a
    simple view: the planner inlines it and uses the base table's indexes.
    """
    parts = []
    for c in cols:
        if c in hidden:
            parts.append(sql.SQL("CASE WHEN (SELECT {}.actor_sees_restricted()) THEN t.{} END AS {}").format(
                sql.Identifier(SCHEMA), sql.Identifier(c), sql.Identifier(c)))
        else:
            parts.append(sql.SQL("t.{}").format(sql.Identifier(c)))
    never = NEVER_SHOWN.get(table, ())
    parts = [p for c, p in zip(cols, parts) if c not in never]
    view = sql.Identifier(SCHEMA, f"{table}_visible")
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    conn.execute(sql.SQL("CREATE VIEW {} AS SELECT {} FROM {} t").format(
        view, sql.SQL(", ").join(parts), sql.Identifier(SCHEMA, table)))
