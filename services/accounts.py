"""Accounts and API keys, kept in the database (issue: keys as slow hashes, revocation at once).

Everything here runs as the schema owner (the CLI, or the service importing a key file at start):
the application role can neither read nor change accounts and keys.  A key is shown once, when it
is created; the database keeps its bcrypt hash and 8 hex digits of its sha256 to find candidates.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from services.errors import Conflict, InvalidParameter, NotFound

ACCOUNT_ROLES = ("analyst", "inspector", "steward", "duty", "admin")
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
KEY_PREFIX = "ra_"
BCRYPT_COST = 8  # about 15 ms per check: slow for guessing, bearable once per cached context


@dataclass(frozen=True)
class NewKey:
    """A key as created: ``secret`` is shown once and never stored."""

    id: int
    account: str
    secret: str
    expires_at: datetime | None


def create_account(conn: psycopg.Connection, name: str, role: str, city: str | None = None) -> dict[str, Any]:
    """Create an account (or fail with a message naming what is wrong)."""
    _check_account(conn, name, role, city)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO riskatlas.account (name, role, city) VALUES (%s, %s, %s)", (name, role, city))
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"account {name!r} exists already") from None
    return {"name": name, "role": role, "city": city}


def _check_account(conn: psycopg.Connection, name: str, role: str, city: str | None) -> None:
    if not NAME_RE.match(name or ""):
        raise InvalidParameter(f"account name was {name!r} but must be 1-64 letters, digits or . _ @ -")
    if role not in ACCOUNT_ROLES:
        raise InvalidParameter(f"role was {role!r} but is expected to be one of {list(ACCOUNT_ROLES)}")
    if role in ("steward", "duty") and not city:
        raise InvalidParameter(f"a {role} account needs the city it acts for (--city, a 6-digit GB/T 2260 code)")
    if city is not None:
        if not re.fullmatch(r"[0-9]{6}", city):
            raise InvalidParameter(f"city was {city!r} but is expected to be a 6-digit GB/T 2260 code")
        cities = [_v(r) for r in conn.execute(
            "SELECT code FROM riskatlas.admin_area WHERE level = 'city' ORDER BY code").fetchall()]
        if cities and city not in cities:
            raise InvalidParameter(f"city was {city!r} but is expected to be one of the region's cities {cities}")


def create_key(conn: psycopg.Connection, account: str, *, label: str | None = None,
               expires_at: datetime | None = None, secret: str | None = None) -> NewKey:
    """Issue a key for ``account``; ``secret`` imports a given key instead of generating one."""
    if secret is None:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
    if not 8 <= len(secret) <= 256 or "\x00" in secret:
        raise InvalidParameter("a key must be 8 to 256 characters without NUL bytes")
    with conn.transaction():
        found = conn.execute("SELECT 1 FROM riskatlas.account WHERE name = %s", (account,)).fetchone()
        if not found:
            raise NotFound(f"account {account!r} does not exist; create it with `riskatlas users add`")
        row = conn.execute(
            """INSERT INTO riskatlas.api_key (account, label, lookup, hash, expires_at)
               VALUES (%s, %s, left(encode(public.digest(%s, 'sha256'), 'hex'), 8),
                       public.crypt(%s, public.gen_salt('bf', %s)), %s) RETURNING id""",
            (account, label, secret, secret, BCRYPT_COST, expires_at)).fetchone()
    return NewKey(_v(row), account, secret, expires_at)


def list_accounts(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every account with its keys (never the secrets): id, label, created, expires, revoked, state."""
    rows = conn.execute(
        """SELECT a.name, a.role, a.city, a.disabled, a.created_at,
                  coalesce(json_agg(json_build_object(
                      'id', k.id, 'label', k.label, 'created_at', k.created_at, 'expires_at', k.expires_at,
                      'revoked_at', k.revoked_at,
                      'state', CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                                    WHEN k.expires_at <= now() THEN 'expired' ELSE 'valid' END)
                      ORDER BY k.id) FILTER (WHERE k.id IS NOT NULL), '[]') AS keys
           FROM riskatlas.account a LEFT JOIN riskatlas.api_key k ON k.account = a.name
           GROUP BY a.name ORDER BY a.name""").fetchall()
    return [_row(r, ("name", "role", "city", "disabled", "created_at", "keys")) for r in rows]


def revoke_key(conn: psycopg.Connection, key_id: int) -> None:
    """Revoke a key: every request presenting it fails from the next statement on."""
    with conn.transaction():
        done = conn.execute("UPDATE riskatlas.api_key SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                            (key_id,))
    if done.rowcount == 0:
        raise NotFound(f"key {key_id} does not exist or is revoked already")


def expire_key(conn: psycopg.Connection, key_id: int, at: datetime) -> None:
    """Set (or move) a key's expiry."""
    with conn.transaction():
        done = conn.execute("UPDATE riskatlas.api_key SET expires_at = %s WHERE id = %s", (at, key_id))
    if done.rowcount == 0:
        raise NotFound(f"key {key_id} does not exist")


def set_disabled(conn: psycopg.Connection, name: str, disabled: bool) -> None:
    """Disable (or enable again) an account and so all its keys at once."""
    with conn.transaction():
        done = conn.execute("UPDATE riskatlas.account SET disabled = %s WHERE name = %s", (disabled, name))
    if done.rowcount == 0:
        raise NotFound(f"account {name!r} does not exist")


def import_key_file(conn: psycopg.Connection, path: Path) -> dict[str, int]:
    """Import ``{"key": {"user": ..., "role": ..., "city": ..., "expires_at": ..., "disabled": ...}}``.

    Accounts are created or updated; a key already stored is left alone.  A key listed as disabled
    or expired is imported revoked or expired, so an import never widens what the file says.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"key file {Path(path).name}: cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise InvalidParameter(f"key file {Path(path).name}: expected an object of keys")
    counts = {"accounts": 0, "keys": 0}
    for secret, v in doc.items():
        if not isinstance(v, dict):
            raise InvalidParameter(f"key file {Path(path).name}: the entry of a key must be an object")
        name, role, city = v.get("user", "unnamed"), v.get("role"), v.get("city")
        if role == "public":
            continue  # a key for the anonymous role grants nothing
        _check_account(conn, name, role, city)
        with conn.transaction():
            conn.execute("""INSERT INTO riskatlas.account (name, role, city, disabled) VALUES (%s, %s, %s, %s)
                            ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, city = EXCLUDED.city,
                                disabled = EXCLUDED.disabled""",
                         (name, role, city, bool(v.get("disabled", False))))
        counts["accounts"] += 1
        known = conn.execute(
            """SELECT id FROM riskatlas.api_key WHERE account = %s
                 AND lookup = left(encode(public.digest(%s, 'sha256'), 'hex'), 8) AND public.crypt(%s, hash) = hash""",
            (name, secret, secret)).fetchone()
        if known:
            continue
        create_key(conn, name, label=f"imported from {Path(path).name}", expires_at=v.get("expires_at"),
                   secret=secret)
        counts["keys"] += 1
    return counts


def _v(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _row(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return dict(row) if isinstance(row, dict) else dict(zip(names, row))
