"""``riskatlas load FILE --layer L``: load a file into a layer, then regrade and reflag what it touched."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from layers.settings import DatabaseSettings
from services.cli.output import JsonOpt, fail, out, progress


def load(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage, Shapefile (.shp or .zip), CSV, KML/KMZ or GeoTIFF"),
    layer: str = typer.Option(..., "--layer", "-l", help="Target layer (see `riskatlas layers`), or a raster kind"),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Mapping YAML file or built-in name"),
    source_layer: str | None = typer.Option(None, "--source-layer", help="Layer inside a multi-layer file"),
    crs: str | None = typer.Option(None, "--crs", help="Override the CRS: EPSG:4326, EPSG:4490, EPSG:4549, gcj02, bd09"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count, then roll back"),
    as_city: str | None = typer.Option(None, "--as-city", help="Load as the steward of this city code"),
    show: int = typer.Option(20, "--show", help="How many rejected rows to list"),
    derive: bool = typer.Option(True, "--derive/--no-derive",
                                help="Regrade touched sources and refresh their hazard flags after the load"),
    as_json: bool = JsonOpt,
) -> None:
    """Load a file into a layer: validated, upserted by stable key, all or nothing."""
    from etl.errors import InputError, LoadFailed
    from etl.load import Actor, load_file
    from etl.raster import register_raster
    from layers.catalogue import RASTER_KINDS, UnknownLayer

    s = DatabaseSettings()
    try:
        if layer in RASTER_KINDS:
            report: Any = register_raster(s, file, layer)
        else:
            actor = Actor(user="cli", role="steward", city=as_city) if as_city else Actor(user="cli")
            with progress(not as_json) as step:
                report = load_file(s, file, layer, mapping=mapping, crs=crs, source_layer=source_layer,
                                   dry_run=dry_run, actor=actor, progress=step, sandbox=True)
    except (InputError, UnknownLayer) as exc:
        fail(str(exc).strip('"'), as_json)
    except LoadFailed as exc:
        fail(str(exc), as_json)
    data = report.to_dict()
    if (derive and layer not in RASTER_KINDS and not dry_run and report.batch_id
            and report.rows_inserted + report.rows_updated):
        from services.after_load import after_load

        data["derived"] = after_load(s, layer, report.batch_id).to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        _print_load(data, show)
    raise typer.Exit(data["exit_code"])


LOAD_COLUMNS = {"status": "status", "rows_in": "in", "rows_inserted": "new", "rows_updated": "changed",
                "rows_unchanged": "same", "rows_rejected": "rejected", "repaired": "repaired", "crs": "crs",
                "batch_id": "batch"}


def _print_load(d: dict[str, Any], show: int) -> None:
    t = Table(title=f"{d.get('file')} → {d.get('layer', d.get('name'))}")
    present = [c for c in LOAD_COLUMNS if c in d]
    for c in present:
        t.add_column(LOAD_COLUMNS[c])
    t.add_row(*[str(d[c]) for c in present])
    out.print(t)
    if d.get("seconds"):
        passes = " · ".join(f"{k} {v:.1f} s" for k, v in d["seconds"].items())
        out.print(f"用时 time: {passes} · total {sum(d['seconds'].values()):.1f} s")
    if d.get("dry_run"):
        out.print("[yellow]dry run: nothing was written[/yellow]")
    for note in d.get("notes", []):
        out.print(f"note: {note}")
    if d.get("disagreements"):
        out.print(f"{len(d['disagreements'])} rows state a jurisdiction their location does not lie in "
                  f"(first: {d['disagreements'][0]})")
    repairs = d.get("repairs", [])
    if repairs:
        n = len(repairs)
        r = Table(title=f"repaired rows ({n} repair{'s' if n != 1 else ''}"
                        f"{f', showing {show}' if n > show else ''})")
        r.add_column("row")
        r.add_column("field")
        r.add_column("what changed")
        for item in repairs[:show]:
            r.add_row(str(item["row_no"]), item.get("field") or "", item["what"])
        out.print(r)
    rejects = d.get("rejects", [])
    if rejects:
        r = Table(title=f"rejected rows (showing {min(show, len(rejects))} of {len(rejects)} reasons)")
        r.add_column("row")
        r.add_column("field")
        r.add_column("reason")
        for item in rejects[:show]:
            r.add_row(str(item["row_no"]), item.get("field") or "", item["reason"])
        out.print(r)
