"""``riskatlas users``: accounts and API keys, kept in the database.

Runs with the owner's credentials (the state folder's secrets): only an administrator at the server
manages accounts.  A new key is printed once; the database keeps its slow hash.  Revoking a key or
disabling an account takes effect at the next statement of any request that presents it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import typer
from rich.table import Table

from layers import db
from layers.settings import DatabaseSettings
from services import accounts
from services.cli.output import JsonOpt, fail, out, print_json
from services.errors import RiskAtlasError

users_app = typer.Typer(help="Accounts and API keys (kept in the database as slow hashes).", no_args_is_help=True)


def _conn() -> psycopg.Connection:
    return db.connect(DatabaseSettings())


def _run(as_json: bool, work):  # type: ignore[no-untyped-def]
    try:
        with _conn() as conn:
            return work(conn)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    except psycopg.OperationalError as exc:
        fail(f"the database is not reachable ({str(exc).splitlines()[0]}); start it with `riskatlas db start`",
             as_json)


@users_app.command("add")
def add(name: str = typer.Argument(..., help="Account name (letters, digits, . _ @ -)"),
        role: str = typer.Option(..., "--role", help="analyst, inspector, steward or admin"),
        city: str | None = typer.Option(None, "--city", help="City code (GB/T 2260); required for stewards"),
        key: bool = typer.Option(True, "--key/--no-key", help="Also issue a first API key"),
        days: int | None = typer.Option(None, "--days", min=1, help="The key expires after this many days"),
        as_json: bool = JsonOpt) -> None:
    """Create an account (and a first key, printed once)."""
    def work(conn: psycopg.Connection) -> dict:
        acc = accounts.create_account(conn, name, role, city)
        if key:
            new = accounts.create_key(conn, name, label="first key", expires_at=_expiry(days))
            acc["key"] = {"id": new.id, "secret": new.secret, "expires_at": new.expires_at}
        return acc
    result = _run(as_json, work)
    if as_json:
        print_json(result)
        return
    out.print(f"account [bold]{name}[/bold] ({role}{', city ' + city if city else ''}) created")
    if "key" in result:
        out.print(f"API key {result['key']['id']} (shown once, keep it safe): [bold]{result['key']['secret']}[/bold]")


@users_app.command("key")
def new_key(name: str = typer.Argument(..., help="Account name"),
            label: str | None = typer.Option(None, "--label", help="What the key is for"),
            days: int | None = typer.Option(None, "--days", min=1, help="Expires after this many days"),
            as_json: bool = JsonOpt) -> None:
    """Issue another key for an account (printed once)."""
    new = _run(as_json, lambda conn: accounts.create_key(conn, name, label=label, expires_at=_expiry(days)))
    if as_json:
        print_json({"id": new.id, "account": new.account, "secret": new.secret, "expires_at": new.expires_at})
        return
    out.print(f"API key {new.id} for {name} (shown once, keep it safe): [bold]{new.secret}[/bold]")


@users_app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """Accounts with their keys' state (valid, expired, revoked); never the secrets."""
    rows = _run(as_json, accounts.list_accounts)
    if as_json:
        print_json({"accounts": rows})
        return
    table = Table("account", "role", "city", "disabled", "keys (id: state)")
    for r in rows:
        keys = ", ".join(f"{k['id']}: {k['state']}" for k in r["keys"]) or "-"
        table.add_row(r["name"], r["role"], r["city"] or "-", "yes" if r["disabled"] else "no", keys)
    out.print(table)


@users_app.command("revoke")
def revoke(key_id: int = typer.Argument(..., help="Key id (see `riskatlas users list`)"), as_json: bool = JsonOpt) -> None:
    """Revoke a key at once."""
    _run(as_json, lambda conn: accounts.revoke_key(conn, key_id))
    print_json({"revoked": key_id}) if as_json else out.print(f"key {key_id} revoked")


@users_app.command("expire")
def expire(key_id: int = typer.Argument(..., help="Key id"),
           at: datetime | None = typer.Option(None, "--at", help="When (ISO time); now when absent"),
           as_json: bool = JsonOpt) -> None:
    """Set when a key expires (now by default)."""
    when = at or datetime.now(UTC)
    _run(as_json, lambda conn: accounts.expire_key(conn, key_id, when))
    print_json({"key": key_id, "expires_at": when}) if as_json else out.print(f"key {key_id} expires at {when}")


@users_app.command("disable")
def disable(name: str = typer.Argument(..., help="Account name"),
            enable: bool = typer.Option(False, "--enable", help="Enable the account again"),
            as_json: bool = JsonOpt) -> None:
    """Disable an account (all its keys stop working at once), or enable it again."""
    _run(as_json, lambda conn: accounts.set_disabled(conn, name, not enable))
    state = "enabled" if enable else "disabled"
    print_json({"account": name, "state": state}) if as_json else out.print(f"account {name} {state}")


@users_app.command("import")
def import_(file: Path = typer.Argument(..., help='JSON: {"key": {"user", "role", "city"}}'),
            as_json: bool = JsonOpt) -> None:
    """Import a JSON key file into the database (the file is then no longer needed)."""
    counts = _run(as_json, lambda conn: accounts.import_key_file(conn, file))
    if as_json:
        print_json(counts)
        return
    out.print(f"{counts['accounts']} accounts, {counts['keys']} new keys imported")


def _expiry(days: int | None) -> datetime | None:
    return None if days is None else datetime.now(UTC) + timedelta(days=days)
