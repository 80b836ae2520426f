"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, each in a transaction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from layers import grants, obs_parameters
from layers.catalogue import relation
from layers.settings import DatabaseSettings

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """A migration failed or an applied one was edited afterwards."""


def available(folder: Path = MIGRATIONS) -> list[Migration]:
    """All migrations shipped with riskatlas, in version order."""
    out = []
    for f in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        out.append(Migration(int(f.name[:4]), f.stem[5:], f.read_text()))
    return out


def applied(conn: psycopg.Connection) -> dict[int, str]:
    """Versions applied to this database with their checksums."""
    conn.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""").format(relation("schema_migration")))
    rows = conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(relation("schema_migration"))).fetchall()
    return {r["version"] if isinstance(r, dict) else r[0]: r["checksum"] if isinstance(r, dict) else r[1]
            for r in rows}


def upgrade(conn: psycopg.Connection, settings: DatabaseSettings, target: int | None = None,
            migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations up to ``target``; return the versions applied.

    Existing data is kept: migrations only add or alter.  An applied migration whose file changed
    since is refused rather than silently diverging.
    """
    done = applied(conn)
    conn.commit()
    ran: list[int] = []
    for m in migrations or available():
        if target is not None and m.version > target:
            break
        if m.version in done:
            if done[m.version] != m.checksum:
                raise MigrationError(f"migration {m.version:04d}_{m.name} was edited after it was applied")
            continue
        with conn.transaction():
            conn.execute(m.sql)
            conn.execute(sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                relation("schema_migration")),
                         (m.version, m.name, m.checksum))
        ran.append(m.version)
    grant_app_role(conn, settings)
    obs_parameters.sync(conn)  # reference tables follow their data files
    return ran


def grant_app_role(conn: psycopg.Connection, settings: DatabaseSettings) -> None:
    """Give the application role what the catalogue says it needs and nothing more (it owns nothing)."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.app_role,)).fetchone()
    if exists:
        grants.apply(conn, settings.app_role)
