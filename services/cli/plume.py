"""``riskatlas plume``: a release to air: threat zones, population and receptors inside, whom to notify."""

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
    print_notify,
    run,
    validate,
    write_outputs,
)
from services.cli.output import out


def plume(
    x: float = XOpt,
    y: float = YOpt,
    substance: str = typer.Option(..., "--substance", "-s", help="CAS number or name with HJ 169 end-points"),
    rate_kg_s: float = typer.Option(..., "--rate-kg-s", help="Release rate, kg/s"),
    wind_from_deg: float = typer.Option(..., "--wind-from", help="Direction the wind blows from, degrees"),
    wind_speed_m_s: float = typer.Option(..., "--wind-speed", help="Wind speed at 10 m, m/s"),
    stability: str | None = typer.Option(None, "--stability", help="A-F; or derive it with --day/--night"),
    day: bool | None = typer.Option(None, "--day/--night", help="Daytime or night, to derive the stability"),
    insolation: str | None = typer.Option(None, "--insolation", help="By day: strong, moderate or slight"),
    cloud_cover_eighths: float | None = typer.Option(None, "--cloud", help="Cloud cover in eighths (0-8)"),
    terrain: str = typer.Option("rural", "--terrain", help="rural or urban"),
    crs: str = CrsOpt,
    release_time: datetime | None = ReleaseTimeOpt,
    endpoint1_mg_m3: float | None = typer.Option(None, "--endpoint1", help="Override end-point 1, mg/m³"),
    endpoint2_mg_m3: float | None = typer.Option(None, "--endpoint2", help="Override end-point 2, mg/m³"),
    map_file: Path | None = MapOpt,
    bulletin_file: Path | None = BulletinOpt,
    basemap: str | None = BasemapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Release to air: threat zones for end-points 1 and 2, population and receptors inside, whom to notify."""
    from services.emergency.plume import plume_zones
    from services.emergency.population import registered_raster
    from services.emergency.requests import PlumeRequest

    fields = dict(x=x, y=y, crs=crs, substance=substance, release_rate_kg_s=rate_kg_s, wind_from_deg=wind_from_deg,
                  wind_speed_m_s=wind_speed_m_s, stability=stability.upper() if stability else None, day=day,
                  insolation=insolation, cloud_cover_eighths=cloud_cover_eighths, terrain=terrain,
                  release_time=release_time, endpoint1_mg_m3=endpoint1_mg_m3, endpoint2_mg_m3=endpoint2_mg_m3)
    req = validate(PlumeRequest, fields, as_json, {"release_rate_kg_s": "--rate-kg-s", "cloud_cover_eighths": "--cloud",
                                                   "wind_from_deg": "--wind-from",
                                                   "wind_speed_m_s": "--wind-speed", "endpoint1_mg_m3": "--endpoint1",
                                                   "endpoint2_mg_m3": "--endpoint2", "day": "--day/--night"})
    result = run(lambda conn: plume_zones(conn, req, registered_raster(conn)), as_json)
    write_outputs(result, map_file, bulletin_file, basemap, as_json)
    if not as_json:
        _print_plume(result)


def _print_plume(r: dict[str, Any]) -> None:
    inc, model = r["incident"], r["model"]
    sub = inc["substance"]
    out.print(f"[bold]{inc['kind_zh']} / {inc['kind']}[/bold]: {sub['name_zh']} {sub['name']} "
              f"{inc['release_rate_kg_s']:g} kg/s, wind from {inc['wind_from_deg']:g}° "
              f"at {inc['wind_speed_m_s']:g} m/s, "
              f"stability {model['stability']} ({model['stability_source']}), {model['dispersion']}")
    t = Table(title="威胁区 threat zones")
    for c in ("zone", "LOC mg/m³", "far edge m", "half-width m", "area km²", "capped", "population (area-weighted)",
              "risk sources", "water sources", "protected areas"):
        t.add_column(c)
    for f in r["features"]:
        p = f["properties"]
        if p.get("role") != "zone":
            continue
        n = p["counts"]
        t.add_row(p["endpoint"], f"{p['loc_mg_m3']:g}", f"{p['far_edge_m']:.0f}", f"{p['max_half_width_m']:.0f}",
                  f"{p['area_km2']:.3g}", _capped(p),
                  "-" if p["population"] is None else f"{p['population']:,}",
                  str(n["risk_source"]), str(n["water_reserve"]), str(n["protected_area"]))
    out.print(t)
    print_notify(r)


def _capped(p: dict[str, Any]) -> str:
    """'no', or how far the centreline of a capped zone stays above its end-point."""
    if not p["capped"]:
        return "no"
    more = ">" if p.get("continues_past_followed_range") else ""
    return f"yes, continues to {more}{p['continues_to_m'] / 1000:.1f} km"
