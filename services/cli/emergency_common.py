"""What ``riskatlas spill`` and ``riskatlas plume`` share: options, validation, the run, files, whom to tell.

Each prints tables for people, or the whole GeoJSON result with ``--json``; ``--map FILE.html`` writes
a self-contained folium map and ``--bulletin FILE`` the warning bulletin (``.csv`` or text).  Input is
validated by the same models as the API, so the messages are the same.  Exit code 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import fail, out

#: The release point, one spelling across commands and endpoints: x/y in crs (CRS84 by default).
XOpt = typer.Option(..., "--x", help="Longitude (or easting) of the release")
YOpt = typer.Option(..., "--y", help="Latitude (or northing) of the release")
CrsOpt = typer.Option("OGC:CRS84", "--crs", help="CRS of x/y: CRS84, EPSG:4326, EPSG:4549, gcj02, bd09")
ReleaseTimeOpt = typer.Option(None, "--release-time", help="Start (ISO 8601; default now)")
JsonOpt = typer.Option(False, "--json", help="Print the GeoJSON result instead of tables.")
MapOpt = typer.Option(None, "--map", help="Write a folium map of the result to this HTML file.")
BulletinOpt = typer.Option(None, "--bulletin", help="Write the warning bulletin to this file (.csv, else text).")
BasemapOpt = typer.Option(None, "--basemap", help="XYZ tile URL for the map's basemap (none by default: offline).")


def validate(model: Any, fields: dict[str, Any], as_json: bool, options: dict[str, str] | None = None) -> Any:
    """The request ``model`` from the given options, or exit 2 with the API's message.

    ``options`` names the command-line option of each request field whose spelling differs (the
    message then says ``--cloud``, not ``cloud_cover_eighths``); other fields are ``--field-name``.
    """
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        names = options or {}
        parts = []
        for e in exc.errors():
            loc = [names.get(str(p), f"--{str(p).replace('_', '-')}") for p in e.get("loc", ())]
            msg = str(e.get("msg", ""))
            for field, option in names.items():  # messages name the request's fields: name the options instead
                msg = msg.replace(field, option)
            where = ".".join(loc)
            parts.append(msg if where and msg.startswith(where) else f"{where or 'request'}: {msg}")
        fail("; ".join(parts), as_json)


def run(work: Any, as_json: bool) -> dict[str, Any]:
    """Run ``work(conn)`` on a connection of the application role; domain errors exit with 2."""
    from layers import db
    from services.errors import RiskAtlasError

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            return work(conn)
    except RiskAtlasError as exc:
        fail(exc.description, as_json)
    except Exception as exc:  # noqa: BLE001 - the database may be down: say so, briefly
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, as_json, code=1)


def write_outputs(result: dict[str, Any], map_file: Path | None, bulletin_file: Path | None,
                  basemap: str | None, as_json: bool) -> None:
    """Write the map and bulletin files asked for, then the JSON document when ``--json``."""
    from maps.emergency_context import emergency_context
    from maps.emergency_map import save_map
    from services.emergency import notify

    if map_file is not None:
        context = run(lambda conn: emergency_context(conn, result), as_json)
        save_map(result, map_file, tiles=basemap, context=context)
        if not as_json:
            out.print(f"map written to {map_file}")
    if bulletin_file is not None:
        spill_result = result if result["analysis"] == "spill" else None
        plume_result = result if result["analysis"] == "plume" else None
        b = notify.bulletin(spill_result, plume_result, notify.issued_now())
        text = notify.to_csv(b) if bulletin_file.suffix.lower() == ".csv" else notify.to_text(b)
        bulletin_file.write_text(text, encoding="utf-8")
        if not as_json:
            out.print(f"bulletin written to {bulletin_file}")
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")


def print_notify(r: dict[str, Any]) -> None:
    """The table of whom to tell, in order of first arrival, and the warnings."""
    t = Table(title="需通知 who must be told (in order of first arrival)")
    for c in ("#", "level", "code", "name", "first arrival", "via", "detail"):
        t.add_column(c)
    for e in r["notify"]:
        t.add_row(str(e["order"]), e["level"], e["code"], f"{e['name']} {e.get('name_en') or ''}",
                  hm(e["first_arrival_time"]), "/".join(e["via"]), e["detail"])
    out.print(t)
    for w in r["warnings"]:
        out.print(f"[yellow]提示 warning:[/yellow] {w['zh']} / {w['en']}")


def hm(iso: str | None) -> str:
    """An ISO time as ``MM-DD hh:mm``, or ``-``."""
    return "-" if not iso else iso[5:16].replace("T", " ")


def num(v: float | None) -> str:
    """A number to three significant digits, or ``-``."""
    return "-" if v is None else f"{v:.3g}"
