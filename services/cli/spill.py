"""``riskatlas spill``: a river spill's downstream path, arrival times and peaks, and whom to notify."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from services.cli.emergency_common import (
    BasemapOpt,
    BulletinOpt,
    CrsOpt,
    JsonOpt,
    MapOpt,
    ReleaseTimeOpt,
    XOpt,
    YOpt,
    hm,
    num,
    print_notify,
    run,
    validate,
    write_outputs,
)
from services.cli.output import out


def spill(
    x: float = XOpt,
    y: float = YOpt,
    substance: str = typer.Option(..., "--substance", "-s", help="CAS number or name (HJ 169)"),
    mass_t: float = typer.Option(..., "--mass-t", help="Mass released, tonnes"),
    crs: str = CrsOpt,
    release_time: datetime | None = ReleaseTimeOpt,
    horizon_h: float = typer.Option(72.0, "--horizon-h", help="Hours to follow the cloud"),
    snap_distance_m: float = typer.Option(2_000.0, "--snap-m", help="Farthest a river may be from the point, m"),
    receptor_distance_m: float = typer.Option(1_000.0, "--receptor-m", help="Intakes/stations this close are met, m"),
    decay_per_day: float = typer.Option(0.0, "--decay-per-day", help="First-order decay rate k, 1/day"),
    dispersion_m2_s: float | None = typer.Option(None, "--dispersion", help="D for every reach, m²/s"),
    map_file: Path | None = MapOpt,
    bulletin_file: Path | None = BulletinOpt,
    basemap: str | None = BasemapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """River spill: downstream path, arrival times and peaks at intakes and sections, whom to notify."""
    from services.emergency.requests import SpillRequest
    from services.emergency.spill import trace_spill

    fields = dict(x=x, y=y, crs=crs, substance=substance, mass_t=mass_t, release_time=release_time,
                  horizon_h=horizon_h, snap_distance_m=snap_distance_m, receptor_distance_m=receptor_distance_m,
                  decay_per_day=decay_per_day, dispersion_m2_s=dispersion_m2_s)
    req = validate(SpillRequest, fields, as_json, {"snap_distance_m": "--snap-m", "receptor_distance_m": "--receptor-m",
                                                   "dispersion_m2_s": "--dispersion"})
    result = run(lambda conn: trace_spill(conn, req), as_json)
    write_outputs(result, map_file, bulletin_file, basemap, as_json)
    if not as_json:
        _print_spill(result)


def _print_spill(r: dict[str, Any]) -> None:
    inc, snap = r["incident"], r["snap"]
    sub = inc["substance"]
    out.print(f"[bold]{inc['kind_zh']} / {inc['kind']}[/bold]: {sub['name_zh']} {sub['name']} "
              f"{inc['mass_t']:g} t at {inc['release_time']}; snapped to {snap['river']} ({snap['reach_key']}) "
              f"{snap['distance_m']:.0f} m away; horizon {inc['horizon_h']:g} h")
    t = Table(title="沿程受体 receptors along the path (in order of arrival)")
    for c in ("km", "receptor", "name", "threshold mg/L", "above from", "peak", "peak mg/L", "back below",
              "threshold basis"):
        t.add_column(c)
    for f in r["features"]:
        p = f["properties"]
        if p.get("role") != "receptor":
            continue
        th = p.get("threshold")
        source = "-" if th is None else f"{th['basis']} {th['water_class'] or ''}".strip()
        above = (hm(p["exceeds_from_time"]) if p.get("exceeds_from_time") else
                 f">= {hm(p['not_before_time'])}" if p.get("exceeds") and p.get("not_before_time") else
                 "stays below" if p.get("exceeds") is False else "-")
        t.add_row(f"{p['at_m'] / 1000:.1f}", p["receptor"], str(p["name"]), num(p.get("threshold_mg_l")), above,
                  hm(p.get("peak_time")), num(p.get("peak_mg_l")), hm(p.get("exceeds_until_time")), source)
    out.print(t)
    print_notify(r)
