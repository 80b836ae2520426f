"""``riskatlas flags refresh|list|matrix``: the border-zone hazard flags from the shell.

Every command prints tables for people, or one JSON document with ``--json``; bad input exits with
code 2 and the same message the API gives.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, err, fail, out, print_json

flags_app = typer.Typer(help="Border-zone hazard flags: refresh them, list them, sum them city x city.",
                        no_args_is_help=True)


@flags_app.command("refresh")
def refresh(
    full: bool = typer.Option(False, "--full", help="Recompute every flag (the default)"),
    batch: int | None = typer.Option(None, "--batch", help="Only what the load with this batch id touched"),
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the flags: all of them, or incrementally for one earlier load."""
    from services.errors import RiskAtlasError
    from services.hazards import refresh_batch, refresh_full
    from services.hazards.rules import RulesError

    if full and batch is not None:
        fail("give --full or --batch ID, not both", as_json)
    s = DatabaseSettings()
    try:
        report = refresh_full(s) if batch is None else refresh_batch(s, batch)
    except (LookupError, RulesError, RiskAtlasError) as exc:
        fail(str(exc), as_json)
    if report is None:
        data: dict[str, Any] = {"mode": "incremental", "batch_id": batch, "flags_written": 0,
                                "note": "that load's layer does not affect the flags"}
    else:
        data = report.to_dict()
    if as_json:
        print_json(data)
        return
    t = Table(title=f"flags refresh ({data['mode']})")
    for col in ("kind", "flags", "seconds"):
        t.add_column(col)
    for kind, n in data.get("by_kind", {}).items():
        t.add_row(kind, str(n), f"{data['seconds_by_kind'].get(kind, 0):.1f}")
    out.print(t)
    out.print(f"{data.get('sources', 0)} sources examined, {data.get('flags_deleted', 0)} flags removed, "
              f"{data['flags_written']} written in {data.get('seconds', 0):.1f} s")


@flags_app.command("list")
def list_flags(
    city: str | None = typer.Option(None, "--city", help="City or province code or name"),
    kind: list[str] = typer.Option([], "--kind", help="city-border, province-border, upstream, "
                                                      "protection-zone, protected-area (repeatable)"),
    severity: list[str] = typer.Option([], "--severity", help="low, medium, high (repeatable)"),
    level: str | None = typer.Option(None, "--level", help="city or province"),
    risk_level: list[str] = typer.Option([], "--risk-level", help="general, larger, major (repeatable)"),
    cross_border: bool | None = typer.Option(None, "--cross-border/--own-city",
                                                help="Only cross-border flags, or only own-city ones"),
    limit: int = typer.Option(50, "--limit", help="How many flags"),
    offset: int = typer.Option(0, "--offset"),
    out_file: Path | None = typer.Option(None, "--out", help="Write them to a .geojson, .csv or .gpkg file"),
    as_json: bool = JsonOpt,
) -> None:
    """The flags matching the filters, most severe first."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.hazards import query

    q = query.FlagQuery(city=city, kind=tuple(kind), severity=tuple(severity), risk_level=tuple(risk_level),
                        level=level, cross_border=cross_border, limit=limit, offset=offset)
    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            rows, matched = query.list_rows(conn, q, max_limit=1_000_000)
            collection = query.list_geojson(conn, q, max_limit=1_000_000) if (
                as_json or (out_file and out_file.suffix.lower() == ".geojson")) else None
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if out_file is not None:
        _write(out_file, rows, collection, as_json)
    if as_json:
        sys.stdout.write((collection or "") + "\n")
        return
    t = Table(title=f"hazard flags ({len(rows)} of {matched})")
    for col in ("severity", "kind", "source", "city", "other", "distance m", "reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["severity"], r["kind"], r["source_name"], r["source_city_name"], r["other_name"],
                  f"{float(r['distance_m']):.0f}", r["reason_zh"])
    out.print(t)


def _write(path: Path, rows: list[dict[str, Any]], collection: str | None, as_json: bool) -> None:
    from services.hazards import query

    suffix = path.suffix.lower()
    if suffix == ".geojson" and collection is not None:
        path.write_text(collection, encoding="utf-8")
    elif suffix == ".csv":
        path.write_text(query.to_csv(rows), encoding="utf-8")
    elif suffix == ".gpkg":
        path.write_bytes(query.to_gpkg(rows))
    else:
        fail(f"--out was {str(path)!r} but is expected to end in .geojson, .csv or .gpkg", as_json)
    if not as_json:
        err.print(f"wrote {len(rows)} flags to {path}")


@flags_app.command("matrix")
def matrix_cmd(
    level: str = typer.Option("city", "--level", help="city or province"),
    as_json: bool = JsonOpt,
) -> None:
    """Cross-border flags summed by (from, to) jurisdiction, kind and severity."""
    from layers import db
    from services.errors import RiskAtlasError
    from services.hazards.matrix import border_matrix

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            doc = border_matrix(conn, level)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if as_json:
        print_json(doc)
        return
    names = {j["code"]: j["name"] for j in doc["jurisdictions"]}
    codes = [j["code"] for j in doc["jurisdictions"]]
    t = Table(title=f"cross-border flags, {level} x {level} (row: the source's, column: the one named)")
    t.add_column("from \\ to")
    for c in codes:
        t.add_column(names[c], justify="right")
    for a in codes:
        t.add_row(names[a], *[str(doc["matrix"].get(a, {}).get(b, 0) or "") for b in codes])
    out.print(t)
    out.print(f"{doc['total']} flags; computed {doc['computed_at']}")
