"""``riskatlas coverage``: where monitoring is blind (no station near a source, no section at a crossing)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, err, fail, out, print_json


def coverage(
    what: str = typer.Option("air", "--medium", help="air or water (sources without a station), or crossings "
                                                     "(river crossings of borders without a section)"),
    distance_m: float | None = typer.Option(None, "--distance-m", help="Air: metres around the source "
                                                                          "(5000); water: metres downstream "
                                                                          "(10000)"),
    level: str = typer.Option("city", "--level", help="Crossings: city or province borders"),
    within_m: float = typer.Option(3000.0, "--within-m", help="Crossings: a section this near covers one"),
    min_stay_m: float = typer.Option(5000.0, "--min-stay-m", help="Crossings: shorter stays on one side are "
                                                                  "ignored"),
    all_crossings: bool = typer.Option(False, "--all-crossings", help="Crossings: list covered ones too"),
    out_file: Path | None = typer.Option(None, "--out", help="Write the GeoJSON to this file (a map layer)"),
    limit: int = typer.Option(1_000_000, "--limit", help="At most this many sources"),
    as_json: bool = JsonOpt,
) -> None:
    """Where monitoring is blind: sources without a station of their medium, or border crossings of
    rivers without a cross-border section."""
    from layers import db
    from services import coverage as cov
    from services.errors import RiskAtlasError

    if what not in ("air", "water", "crossings"):
        fail(f"--medium was {what!r} but is expected to be air, water or crossings", as_json)
    try:
        with db.connect(DatabaseSettings(), "app") as conn, conn.transaction(force_rollback=True):
            if what == "crossings":
                doc = cov.crossing_gaps(conn, level, within_m=within_m, min_stay_m=min_stay_m,  # type: ignore[arg-type]
                                        gaps_only=not all_crossings)
            else:
                doc = cov.source_gaps(conn, what, distance_m, limit=limit)  # type: ignore[arg-type]
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    if out_file is not None:
        out_file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    if as_json:
        print_json(doc)
        return
    feats = doc["features"]
    if what == "crossings":
        t = Table(title=f"{level}-border river crossings: {doc['uncovered']} of {doc['crossings']} without a section "
                        f"within {within_m:g} m")
        for col in ("river", "from", "to", "covered", "nearest section", "m"):
            t.add_column(col)
        for f in feats:
            p = f["properties"]
            t.add_row(p["river"], p["from_name"] or "(outside)", p["to_name"] or "(outside)", str(p["covered"]),
                      p["station_name"] or "", f"{p['station_m'] or 0:.0f}")
    else:
        t = Table(title=f"{what} monitoring gaps: {doc['numberMatched']} sources")
        for col in ("source", "name", "city", "level"):
            t.add_column(col, overflow="fold")
        for f in feats[:50]:
            p = f["properties"]
            t.add_row(p["key"], p["name"], p["city_code"] or "", p["risk_level"] or "")
    out.print(t)
    if out_file is not None:
        err.print(f"wrote {len(feats)} features to {out_file}")
