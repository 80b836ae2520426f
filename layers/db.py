"""Database connections: psycopg for riskatlas itself, a SQLAlchemy engine for notebooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import psycopg
from psycopg.rows import dict_row

from layers import cluster
from layers.settings import DatabaseSettings

Role = Literal["owner", "app"]


def url(settings: DatabaseSettings, role: Role = "owner") -> str:
    """The libpq URL for the schema owner or the application role."""
    return cluster.owner_url(settings) if role == "owner" else cluster.app_url(settings)


def connect(settings: DatabaseSettings, role: Role = "owner", **kw) -> psycopg.Connection:
    """A new psycopg connection; rows come back as dicts."""
    return psycopg.connect(url(settings, role), row_factory=dict_row, **kw)


@contextmanager
def transaction(settings: DatabaseSettings, role: Role = "owner") -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on any error."""
    with connect(settings, role) as conn:
        with conn.transaction():
            yield conn


def set_actor(conn: psycopg.Connection, *, user: str, role: str, city: str | None = None,
              batch_id: int | None = None) -> None:
    """Tell the database who acts in this transaction; row-level security and history read it."""
    conn.execute(
        "SELECT set_config('riskatlas.user', %s, true), set_config('riskatlas.role', %s, true),"
        " set_config('riskatlas.city', %s, true), set_config('riskatlas.batch_id', %s, true)",
        (user, role, city or "", "" if batch_id is None else str(batch_id)),
    )


def engine(settings: DatabaseSettings, role: Role = "app"):
    """A SQLAlchemy engine on the same database, for analysts working in Python."""
    from sqlalchemy import create_engine

    return create_engine(url(settings, role).replace("postgresql://", "postgresql+psycopg://", 1))
