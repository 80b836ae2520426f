"""Database connections: psycopg for riskatlas itself, a SQLAlchemy engine for notebooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Literal

import psycopg
from psycopg.rows import dict_row, tuple_row

from layers import cluster
from layers.settings import DatabaseSettings

Role = Literal["owner", "app"]


def url(settings: DatabaseSettings, role: Role = "owner") -> str:
    """The libpq URL for the schema owner or the application role."""
    return cluster.owner_url(settings) if role == "owner" else cluster.app_url(settings)


def connect(settings: DatabaseSettings, role: Role = "owner", **kw) -> psycopg.Connection:
    """A new psycopg connection; rows come back as dicts.

    With the project's own cluster, a failure to connect while that cluster is not running raises
    :class:`layers.cluster.DatabaseNotRunning` naming the state folder (or the port it listens on),
    not the server's message (which, when another cluster answers on the port, is a misleading
    "password authentication failed").
    """
    target = url(settings, role)
    try:
        return psycopg.connect(target, row_factory=dict_row, **kw)
    except psycopg.OperationalError as exc:
        why = cluster.unreachable(settings) if settings.managed else None
        if why is not None:
            raise why from exc
        raise


@contextmanager
def transaction(settings: DatabaseSettings, role: Role = "owner") -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on any error."""
    with connect(settings, role) as conn:
        with conn.transaction():
            yield conn


def set_actor(conn: psycopg.Connection, *, user: str, role: str, city: str | None = None,
              batch_id: int | None = None, ttl: timedelta | None = None) -> str:
    """As the schema owner, mint a signed context for an actor and act as it in this transaction.

    Only the owner can mint (``riskatlas.issue_context``); the application role presents a context
    obtained from ``riskatlas.authenticate`` with :func:`act_as`.  Returns the context, valid for
    ``ttl`` (the database's default, ten minutes, when None): a batch job whose one transaction may
    outlast that asks for longer, since every statement checks the context's expiry.
    """
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT riskatlas.issue_context(%s, %s, %s, 0, coalesce(%s::interval, interval '10 minutes'))",
        (user, role, city, ttl)).fetchone()
    assert row is not None  # a function call returns one row
    context = str(row[0])
    act_as(conn, context, batch_id=batch_id)
    return context


def act_as(conn: psycopg.Connection, context: str | None, *, batch_id: int | None = None) -> None:
    """Present a signed context for this transaction; row-level security and history verify it."""
    conn.execute("SELECT set_config('riskatlas.ctx', %s, true), set_config('riskatlas.batch_id', %s, true)",
                 (context or "", "" if batch_id is None else str(batch_id)))


@contextmanager
def indexes_rebuilt_after(conn: psycopg.Connection, table: str) -> Iterator[None]:
    """Drop ``table``'s secondary indexes and foreign keys, and build them once when the block ends.

    For bulk writes into an emptied table: one build is several times faster than maintaining an
    index row by row.  Run it inside a transaction, so that a failure restores them with the rest.
    ``table`` must come from the catalogue (it is interpolated).
    """
    cur = conn.cursor(row_factory=dict_row)
    indexes = cur.execute(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS ddl
           FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT i.indisunique""",
        (table,)).fetchall()
    keys = cur.execute("""SELECT conname, pg_get_constraintdef(oid) AS ddl FROM pg_constraint
                           WHERE conrelid = %s::regclass AND contype = 'f'""", (table,)).fetchall()
    for k in keys:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{k["conname"]}"')
    for i in indexes:
        conn.execute(f"DROP INDEX {i['name']}")
    yield
    for i in indexes:
        conn.execute(i["ddl"])
    for k in keys:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{k["conname"]}" {k["ddl"]}')


def engine(settings: DatabaseSettings, role: Role = "app"):
    """A SQLAlchemy engine on the same database, for analysts working in Python."""
    from sqlalchemy import create_engine

    return create_engine(url(settings, role).replace("postgresql://", "postgresql+psycopg://", 1))
