"""``riskatlas incidents``: open an incident from a spill or plume request, list, show, acknowledge, move
on or close it, deliver the queued notices, and load the directory of agencies.

Runs with the owner's credentials (the state folder's secrets).  ``--as-user NAME`` acts as that
account: the owner mints a context for it and the work runs as the application role, so row-level
security applies exactly as to the API (a duty officer of one city, a steward, ...).  Without it the
command acts as the administrator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import typer
from pydantic import ValidationError
from rich.table import Table

from layers import db
from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, print_json
from services.errors import NotFound, RiskAtlasError

incidents_app = typer.Typer(help="Incidents: notices to the cities concerned, CAP alerts, acknowledgements, the log.",
                            no_args_is_help=True)
T = TypeVar("T")
AsUserOpt = typer.Option(None, "--as-user", help="Act as this account (its role and city); default: administrator")


def _act(as_user: str | None, as_json: bool, work: Callable[[psycopg.Connection], T]) -> T:
    """``work(conn)`` committed, as ``as_user`` (application role, signed context) or as the owner."""
    s = DatabaseSettings()
    try:
        if as_user is None:
            with db.connect(s) as conn:
                conn.execute("SET TimeZone = 'Asia/Shanghai'")
                result = work(conn)
                conn.commit()
                return result
        with db.connect(s) as owner:
            acc: Any = owner.execute("SELECT name, role, city FROM riskatlas.account WHERE name = %s AND NOT disabled",
                                (as_user,)).fetchone()
            if acc is None:
                raise NotFound(f"account {as_user!r} does not exist or is disabled (`riskatlas users list`)")
            minted: Any = owner.execute("SELECT riskatlas.issue_context(%s, %s, %s) AS c",
                                        (acc["name"], acc["role"], acc["city"])).fetchone()
            ctx = minted["c"]
        with db.connect(s, "app") as conn:
            # for the whole session: an analysis may commit on the way (the connection is this command's own)
            conn.execute("SELECT set_config('riskatlas.ctx', %s, false)", (ctx,))
            conn.execute("SET TimeZone = 'Asia/Shanghai'")
            result = work(conn)
            conn.commit()
            return result
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    except psycopg.errors.InsufficientPrivilege:
        fail(f"refused by row-level security: {as_user or 'this account'} may not do that", as_json)
    except psycopg.OperationalError as exc:
        fail(f"the database is not reachable ({str(exc).splitlines()[0]}); start it with `riskatlas db start`",
             as_json)


def _actor_city(conn: psycopg.Connection) -> str | None:
    row: Any = conn.execute("SELECT riskatlas.actor_city() AS c").fetchone()
    return row["c"] if row else None


@incidents_app.command("open")
def open_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A spill or plume request (JSON)"),
             kind: str = typer.Option(..., "--kind", help="spill or plume"),
             client_request_id: str = typer.Option(..., "--id", help="Your id of this submission (idempotent)"),
             severity: str = typer.Option("Severe", "--severity", help="Extreme, Severe, Moderate or Minor"),
             description: str = typer.Option("", "--description", help="What is known, in words"),
             as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Run the analysis of FILE and open an incident from it, with one notice per jurisdiction to notify."""
    from services.emergency.plume import plume_zones
    from services.emergency.population import registered_raster
    from services.emergency.requests import PlumeRequest, SpillRequest, describe_errors
    from services.emergency.spill import trace_spill
    from services.incidents import store
    from services.incidents.settings import DeliverySettings

    if kind not in ("spill", "plume"):
        fail(f"--kind was {kind!r} but is expected to be 'spill' or 'plume'", as_json)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        req: Any = (SpillRequest if kind == "spill" else PlumeRequest).model_validate(doc)
    except ValueError as exc:
        detail = describe_errors(exc.errors()) if isinstance(exc, ValidationError) else str(exc)  # type: ignore[arg-type]
        fail(f"{file.name}: {detail}", as_json)
    sender = DeliverySettings().sender_id

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        analysis = trace_spill(conn, req) if kind == "spill" else plume_zones(conn, req, registered_raster(conn))
        return store.open_incident(conn, kind, analysis, client_request_id=client_request_id,
                                   actor_city=_actor_city(conn), description=description, severity=severity,
                                   sender=sender)

    result = _act(as_user, as_json, work)
    if as_json:
        print_json(result)
        return
    out.print(f"incident [bold]{result['id']}[/bold] {'opened' if result['created'] else 'exists already'}: "
              f"{result['notices']} notices")


@incidents_app.command("list")
def list_cmd(status: str | None = typer.Option(None, "--status", help="open, monitoring or closed"),
             as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Incidents the acting account may see, newest first."""
    from services.incidents import store

    rows = _act(as_user, as_json, lambda conn: store.list_incidents(conn, status=status))
    if as_json:
        print_json(rows)
        return
    t = Table(title="incidents")
    for c in ("id", "status", "title", "opened", "by", "city", "notices", "acknowledged"):
        t.add_column(c)
    for r in rows:
        t.add_row(str(r["id"]), r["status"], r["title"], str(r["opened_at"])[:16], r["opened_by"], r["opened_city"],
                  str(r["notices"]), str(r["acknowledged"]))
    out.print(t)


@incidents_app.command("show")
def show_cmd(incident_id: int = typer.Argument(..., min=1), as_user: str | None = AsUserOpt,
             as_json: bool = JsonOpt) -> None:
    """One incident: status history, per-city summary (sent / delivered / acknowledged / overdue), the log."""
    from services.incidents import store

    doc = _act(as_user, as_json, lambda conn: store.show(conn, incident_id, with_analysis=as_json))
    if as_json:
        print_json(doc)
        return
    out.print(f"[bold]#{doc['id']} {doc['title']}[/bold] — {doc['status']}, {doc['severity']}; opened "
              f"{str(doc['opened_at'])[:16]} by {doc['opened_by']} ({doc['opened_city']})")
    t = Table(title="通报 notices per city")
    for c in ("city", "jurisdictions", "sent", "e-mail", "webhook", "acknowledged", "overdue", "state"):
        t.add_column(c)
    for s in doc["summary"]:
        t.add_row(s["city"], ", ".join(s["jurisdictions"]), str(s["sent"]), str(s["delivered_email"]),
                  str(s["delivered_webhook"]), str(s["acknowledged"]), str(s["overdue"]), s["state"])
    out.print(t)
    for e in doc["log"]:
        out.print(f"  [{str(e['posted_at'])[:16]}] {e['posted_city']} {e['posted_by']} ({e['kind']}): {e['body']}")


@incidents_app.command("ack")
def ack_cmd(incident_id: int = typer.Argument(..., min=1),
            notice: int | None = typer.Option(None, "--notice", help="One notice; default every open one of the city"),
            as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Acknowledge the notices addressed to the acting account's city."""
    from services.incidents import store

    rows = _act(as_user, as_json, lambda conn: store.acknowledge(conn, incident_id, notice))
    if as_json:
        print_json(rows)
        return
    out.print(f"acknowledged {len(rows)} notice(s): {', '.join(str(r['id']) for r in rows)}")


@incidents_app.command("status")
def status_cmd(incident_id: int = typer.Argument(..., min=1),
               status: str = typer.Argument(..., help="monitoring or closed"),
               note: str = typer.Option("", "--note", help="What to tell the addressees"),
               as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Move an incident on; every addressee gets a CAP Update (monitoring) or Cancel (closed)."""
    from services.incidents import store
    from services.incidents.settings import DeliverySettings

    sender = DeliverySettings().sender_id
    result = _act(as_user, as_json, lambda conn: store.set_status(conn, incident_id, status, note=note, sender=sender))
    if as_json:
        print_json(result)
        return
    out.print(f"incident {incident_id}: {result['status']}; {result['notices']} notices queued")


@incidents_app.command("close")
def close_cmd(incident_id: int = typer.Argument(..., min=1), note: str = typer.Option("", "--note"),
              as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Close an incident: every addressee gets a CAP Cancel (all clear)."""
    status_cmd(incident_id, "closed", note, as_user, as_json)


@incidents_app.command("deliver")
def deliver_cmd(as_json: bool = JsonOpt) -> None:
    """One delivery round: notices of new exceedances at cross-border sections, overdue notices marked, what
    is due sent by e-mail and webhook (a batch job)."""
    from services.incidents import delivery
    from services.incidents.settings import DeliverySettings

    try:
        r = delivery.run_once(DatabaseSettings(), DeliverySettings())
    except psycopg.OperationalError as exc:
        fail(f"the database is not reachable ({str(exc).splitlines()[0]})", as_json)
    if as_json:
        print_json(r.to_dict())
        return
    x = r.exceedances
    if x.get("events"):
        out.print(f"断面超标 exceedances: {x['events']} samples, {x['incidents_opened']} incidents opened, "
                  f"{x['updates']} updates sent")
    if x.get("cleared"):
        out.print(f"断面超标撤销 withdrawn exceedances all-cleared: {x['cleared']}")
    out.print(f"taken {r.taken}, delivered {r.delivered}, failed (queued again) {r.failed}, overdue {r.overdue}")
    for e in r.errors[:10]:
        out.print(f"  {e}")


@incidents_app.command("agencies")
def agencies_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Directory CSV (UTF-8 or GB18030)"),
                 as_user: str | None = AsUserOpt, as_json: bool = JsonOpt) -> None:
    """Load the directory of agencies; a city's steward or duty officer changes its own entries only."""
    from etl.agencies import load_agencies
    from etl.errors import InputError, LoadFailed

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        try:
            return load_agencies(conn, file).to_dict()
        except (InputError, LoadFailed) as exc:
            fail(str(exc), as_json)

    report = _act(as_user, as_json, work)
    if as_json:
        print_json(report)
    else:
        out.print(f"{report['file']} ({report['encoding']}): {report['status']}, {report['rows_in']} rows, "
                  f"{report['rows_inserted']} new, {report['rows_updated']} changed, {report['rows_rejected']} rejected")
        for r in report["rejects"]:
            out.print(f"  row {r['row']} {r['field']}: {r['reason']}")
    if report["status"] != "loaded":
        raise typer.Exit(1)
