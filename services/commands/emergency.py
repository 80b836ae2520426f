"""``riskatlas spill`` and ``riskatlas plume``: the emergency analyses from the command line.

Each prints tables for people, or the whole GeoJSON result with ``--json``; ``--map FILE.html`` writes
a self-contained folium map and ``--bulletin FILE`` the warning bulletin (``.csv`` or text).  Input is
validated by the same models as the API, so the messages are the same.  Exit code 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from layers.settings import DatabaseSettings
from services.commands.output import out
from services.commands.output import fail as _fail


JsonOpt = typer.Option(False, "--json", help="Print the GeoJSON result instead of tables.")
MapOpt = typer.Option(None, "--map", help="Write a folium map of the result to this HTML file.")
BulletinOpt = typer.Option(None, "--bulletin", help="Write the warning bulletin to this file (.csv, else text).")
BasemapOpt = typer.Option(None, "--basemap", help="XYZ tile URL for the map's basemap (none by default: offline).")


def spill(
    x: float = typer.Option(..., "--x", help="Longitude (or easting) of the release"),
    y: float = typer.Option(..., "--y", help="Latitude (or northing) of the release"),
    substance: str = typer.Option(..., "--substance", "-s", help="CAS number or name (HJ 169)"),
    mass_t: float = typer.Option(..., "--mass-t", help="Mass released, tonnes"),
    crs: str = typer.Option("OGC:CRS84", "--crs", help="CRS of x/y: CRS84, EPSG:4326, EPSG:4549, gcj02, bd09"),
    release_time: Optional[datetime] = typer.Option(None, "--release-time", help="Start (ISO 8601; default now)"),
    horizon_h: float = typer.Option(72.0, "--horizon-h", help="Hours to follow the cloud"),
    snap_distance_m: float = typer.Option(2_000.0, "--snap-m", help="Farthest a river may be from the point, m"),
    receptor_distance_m: float = typer.Option(1_000.0, "--receptor-m", help="Intakes/stations this close are met, m"),
    decay_per_day: float = typer.Option(0.0, "--decay-per-day", help="First-order decay rate k, 1/day"),
    dispersion_m2_s: Optional[float] = typer.Option(None, "--dispersion", help="D for every reach, m²/s"),
    map_file: Optional[Path] = MapOpt,
    bulletin_file: Optional[Path] = BulletinOpt,
    basemap: Optional[str] = BasemapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """River spill: downstream path, arrival times and peaks at intakes and sections, whom to notify."""
    from services.emergency.requests import SpillRequest
    from services.emergency.spill import trace_spill

    fields = dict(x=x, y=y, crs=crs, substance=substance, mass_t=mass_t, release_time=release_time,
                  horizon_h=horizon_h, snap_distance_m=snap_distance_m, receptor_distance_m=receptor_distance_m,
                  decay_per_day=decay_per_day, dispersion_m2_s=dispersion_m2_s)
    req = _validate(SpillRequest, fields, as_json)
    result = _run(lambda conn: trace_spill(conn, req), as_json)
    _outputs(result, map_file, bulletin_file, basemap, as_json)
    if not as_json:
        _print_spill(result)


def plume(
    x: float = typer.Option(..., "--x", help="Longitude (or easting) of the release"),
    y: float = typer.Option(..., "--y", help="Latitude (or northing) of the release"),
    substance: str = typer.Option(..., "--substance", "-s", help="CAS number or name with HJ 169 end-points"),
    rate_kg_s: float = typer.Option(..., "--rate-kg-s", help="Release rate, kg/s"),
    wind_from_deg: float = typer.Option(..., "--wind-from", help="Direction the wind blows from, degrees"),
    wind_speed_m_s: float = typer.Option(..., "--wind-speed", help="Wind speed at 10 m, m/s"),
    stability: Optional[str] = typer.Option(None, "--stability", help="A-F; or derive it with --day/--night"),
    day: Optional[bool] = typer.Option(None, "--day/--night", help="Daytime or night, to derive the stability"),
    insolation: Optional[str] = typer.Option(None, "--insolation", help="By day: strong, moderate or slight"),
    cloud_cover_eighths: Optional[float] = typer.Option(None, "--cloud", help="Cloud cover in eighths (0-8)"),
    terrain: str = typer.Option("rural", "--terrain", help="rural or urban"),
    crs: str = typer.Option("OGC:CRS84", "--crs", help="CRS of x/y: CRS84, EPSG:4326, EPSG:4549, gcj02, bd09"),
    release_time: Optional[datetime] = typer.Option(None, "--release-time", help="Start (ISO 8601; default now)"),
    endpoint1_mg_m3: Optional[float] = typer.Option(None, "--endpoint1", help="Override end-point 1, mg/m³"),
    endpoint2_mg_m3: Optional[float] = typer.Option(None, "--endpoint2", help="Override end-point 2, mg/m³"),
    map_file: Optional[Path] = MapOpt,
    bulletin_file: Optional[Path] = BulletinOpt,
    basemap: Optional[str] = BasemapOpt,
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
    req = _validate(PlumeRequest, fields, as_json)
    result = _run(lambda conn: plume_zones(conn, req, registered_raster(conn)), as_json)
    _outputs(result, map_file, bulletin_file, basemap, as_json)
    if not as_json:
        _print_plume(result)


def _validate(model: Any, fields: dict[str, Any], as_json: bool) -> Any:
    from services.emergency.requests import describe_errors

    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        _fail(describe_errors(exc.errors()), as_json)


def _run(work: Any, as_json: bool) -> dict[str, Any]:
    """Run ``work(conn)`` on a connection of the application role; domain errors exit with 2."""
    from layers import db
    from services.errors import RiskAtlasError

    try:
        with db.connect(DatabaseSettings(), "app") as conn:
            return work(conn)
    except RiskAtlasError as exc:
        _fail(exc.description, as_json)
    except Exception as exc:  # noqa: BLE001 - the database may be down: say so, briefly
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, as_json, code=1)


def _outputs(result: dict[str, Any], map_file: Path | None, bulletin_file: Path | None, basemap: str | None,
             as_json: bool) -> None:
    """Write the map and bulletin files asked for, then the JSON document when ``--json``."""
    from maps.emergency_map import save_map
    from services.emergency import notify

    if map_file is not None:
        save_map(result, map_file, tiles=basemap)
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


def _print_spill(r: dict[str, Any]) -> None:
    inc, snap = r["incident"], r["snap"]
    sub = inc["substance"]
    out.print(f"[bold]{inc['kind_zh']} / {inc['kind']}[/bold]: {sub['name_zh']} {sub['name']} "
              f"{inc['mass_t']:g} t at {inc['release_time']}; snapped to {snap['river']} ({snap['reach_key']}) "
              f"{snap['distance_m']:.0f} m away; horizon {inc['horizon_h']:g} h")
    t = Table(title="沿程受体 receptors along the path (in order of arrival)")
    for c in ("km", "receptor", "name", "first arrival", "peak", "peak mg/L", "tail", "class III"):
        t.add_column(c)
    for f in r["features"]:
        p = f["properties"]
        if p.get("role") != "receptor":
            continue
        over = "" if "exceeds_class_iii" not in p else ("EXCEEDED" if p["exceeds_class_iii"] else "ok")
        t.add_row(f"{p['at_m'] / 1000:.1f}", p["receptor"], str(p["name"]), _hm(p["leading_edge_time"]),
                  _hm(p["peak_time"]), _num(p.get("peak_mg_l")), _hm(p.get("tail_time")), over)
    out.print(t)
    _print_notify(r)


def _print_plume(r: dict[str, Any]) -> None:
    inc, model = r["incident"], r["model"]
    sub = inc["substance"]
    out.print(f"[bold]{inc['kind_zh']} / {inc['kind']}[/bold]: {sub['name_zh']} {sub['name']} "
              f"{inc['release_rate_kg_s']:g} kg/s, wind from {inc['wind_from_deg']:g}° "
              f"at {inc['wind_speed_m_s']:g} m/s, "
              f"stability {model['stability']} ({model['stability_source']}), {model['dispersion']}")
    t = Table(title="威胁区 threat zones")
    for c in ("zone", "LOC mg/m³", "far edge m", "half-width m", "area km²", "capped", "population",
              "risk sources", "water sources", "protected areas"):
        t.add_column(c)
    for f in r["features"]:
        p = f["properties"]
        if p.get("role") != "zone":
            continue
        n = p["counts"]
        t.add_row(p["endpoint"], f"{p['loc_mg_m3']:g}", f"{p['far_edge_m']:.0f}", f"{p['max_half_width_m']:.0f}",
                  f"{p['area_km2']:.3g}", "yes" if p["capped"] else "no",
                  "-" if p["population"] is None else f"{p['population']:,} / {p['population_area_weighted']:,}",
                  str(n["risk_source"]), str(n["water_reserve"]), str(n["protected_area"]))
    out.print(t)
    _print_notify(r)


def _print_notify(r: dict[str, Any]) -> None:
    t = Table(title="需通知 who must be told (in order of first arrival)")
    for c in ("#", "level", "code", "name", "first arrival", "via", "detail"):
        t.add_column(c)
    for e in r["notify"]:
        t.add_row(str(e["order"]), e["level"], e["code"], f"{e['name']} {e.get('name_en') or ''}",
                  _hm(e["first_arrival_time"]), "/".join(e["via"]), e["detail"])
    out.print(t)
    for w in r["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {w}")




def _hm(iso: str | None) -> str:
    return "-" if not iso else iso[5:16].replace("T", " ")


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"
