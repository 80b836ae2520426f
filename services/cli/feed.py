"""``riskatlas feed changes|subscribe|alerts|digest|match``: the change feed for neighbours from the shell."""

from __future__ import annotations

import sys

import psycopg
import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, print_json

feed_app = typer.Typer(help="The change feed: what changed in the inventory near a city's border, cities' "
                            "subscriptions and their alerts.", no_args_is_help=True)


@feed_app.command("changes")
def feed_changes(
    since: str | None = typer.Option(None, "--since", help="RFC 3339 instant or date (no offset: China Standard Time)"),
    until: str | None = typer.Option(None, "--until", help="RFC 3339 instant or date, exclusive"),
    layer: str | None = typer.Option(None, "--layer", help="Only this inventory layer"),
    near_city: str | None = typer.Option(None, "--near-city", help="City code whose border the rows lie near"),
    within_m: float | None = typer.Option(None, "--within-m", help="Distance from that border, metres"),
    after: int = typer.Option(0, "--after", help="The last history id already read (paging)"),
    limit: int = typer.Option(100, "--limit", help="At most this many changes"),
    role: str = typer.Option("public", "--role", help="Read as this role (public sees no restricted field)"),
    as_json: bool = JsonOpt,
) -> None:
    """Inserts, updates and deletions from the row history, oldest first, as ROLE may see them."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.feed import parse_query, read_changes_sync
    from services.identity import check_role

    try:
        q = parse_query(since, until, layer, near_city, within_m, after, limit)
        with db.transaction(DatabaseSettings(), role="app") as conn:
            _act_as_role(conn, check_role(role))
            page = read_changes_sync(conn, q)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json(page.to_dict())
        return
    t = Table(title=f"changes ({len(page.changes)}" + (f", next: --after {page.next_after})" if page.next_after else ")"))
    for col in ("id", "when (CST)", "what", "by", "fields"):
        t.add_column(col, overflow="fold")
    for c in page.changes:
        t.add_row(str(c["id"]), c["changed_at"][:19], c["title"]["text"],
                  c["changed_by"] + (f" ({c['acting_city']})" if c["acting_city"] else ""),
                  ", ".join(c["changed"] or []))
    out.print(t)


def _act_as_role(conn: psycopg.Connection, role: str) -> None:
    """The application role's connection acting as ``role`` (a context minted by the owner)."""
    from layers import db

    if role == "public":
        return
    with db.connect(DatabaseSettings()) as owner:
        ctx = owner.execute("SELECT riskatlas.issue_context('cli', %s, NULL) AS c", (role,)).fetchone()["c"]
    db.act_as(conn, ctx)


@feed_app.command("subscribe")
def feed_subscribe(
    city: str = typer.Option(..., "--city", help="The subscribing city's code (acts as its steward)"),
    within_km: float = typer.Option(5.0, "--within-km", help="Distance from the city's border, km"),
    min_level: str | None = typer.Option(None, "--min-level", help="general, larger or major (HJ 941-2018)"),
    layer: str = typer.Option("risk_source", "--layer", help="Inventory layer"),
    include_own: bool = typer.Option(False, "--include-own", help="Also rows lying in the city itself"),
    label: str | None = typer.Option(None, "--label", help="A name for the subscription"),
    as_json: bool = JsonOpt,
) -> None:
    """Subscribe CITY to changes of LAYER rows of MIN_LEVEL or larger within N km of its border."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.feed import subscribe

    try:
        with db.transaction(DatabaseSettings()) as conn:
            db.set_actor(conn, user="cli", role="steward", city=city)
            sub = subscribe(conn, city, layer, min_level, within_km * 1000, not include_own, label)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json(sub)
        return
    out.print(f"subscription {sub['id']} for {city}: {sub['description']['zh']} / {sub['description']['en']}")


@feed_app.command("match")
def feed_match(as_json: bool = JsonOpt) -> None:
    """Turn every change since the last match into alerts for the subscriptions it matches (set-based)."""
    from layers import db
    from services.feed import match

    with db.transaction(DatabaseSettings()) as conn:
        report = match(conn)
    if as_json:
        print_json(report)
        return
    out.print(f"history {report['from_history_id']} → {report['to_history_id']}: {report['written']} alert(s) "
              + ", ".join(f"{c}: {n}" for c, n in report["alerts"].items()))


@feed_app.command("alerts")
def feed_alerts(
    city: str = typer.Option(..., "--city", help="The city whose alerts"),
    unseen: bool = typer.Option(False, "--unseen", help="Only alerts nobody has marked seen"),
    limit: int = typer.Option(100, "--limit", help="At most this many, newest first"),
    as_json: bool = JsonOpt,
) -> None:
    """The city's alerts from its subscriptions, newest first."""
    from layers import db
    from services.feed import list_alerts_sync

    with db.transaction(DatabaseSettings()) as conn:
        alerts = list_alerts_sync(conn, city, unseen_only=unseen, limit=limit)
    if as_json:
        print_json({"city": city, "alerts": alerts})
        return
    t = Table(title=f"alerts of {city} ({len(alerts)})")
    for col in ("alert", "when (CST)", "change", "from border", "seen"):
        t.add_column(col, overflow="fold")
    for a in alerts:
        d = a["border_distance_m"]
        t.add_row(str(a["id"]), a["change"]["changed_at"][:19], a["change"]["title"]["text"],
                  "" if d is None else f"{d / 1000:.1f} km", a["seen_at"] or "")
    out.print(t)


@feed_app.command("digest")
def feed_digest(
    city: str = typer.Option(..., "--city", help="The city whose unseen alerts"),
    as_json: bool = JsonOpt,
) -> None:
    """The city's unseen alerts as plain text for an e-mail (Chinese first, English alongside)."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.feed import digest

    try:
        with db.transaction(DatabaseSettings()) as conn:
            text = digest(conn, city)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json({"city": city, "text": text})
        return
    sys.stdout.write(text)
