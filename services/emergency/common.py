"""Small things the spill and the plume share: the release point in WGS84, clock times, output CRS."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from shapely.geometry import mapping, shape

from gis.crs import CRS84, parse_crs, to_wgs84, transform_geometries
from services.errors import InvalidParameter

CHINA_TIME = timezone(timedelta(hours=8), "CST")


def release_point(x: float, y: float, crs: str) -> tuple[float, float]:
    """The release point as WGS84 (lon, lat); 400 if it does not land on the globe."""
    lon, lat = to_wgs84(x, y, parse_crs(crs))
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter(f"the point ({x}, {y}) in {crs} is not a place on the globe "
                               f"(got lon {lon}, lat {lat}); check x/y and crs")
    return float(lon), float(lat)


def release_clock(release_time: datetime | None, now: datetime | None = None) -> datetime:
    """The release time, aware: naive times are China time (+08:00); default now."""
    t = release_time or now or datetime.now(CHINA_TIME)
    return t if t.tzinfo is not None else t.replace(tzinfo=CHINA_TIME)


def clock(t0: datetime, seconds: float | None) -> str | None:
    """``t0`` plus ``seconds`` as an ISO 8601 string to the minute, in t0's offset."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return (t0 + timedelta(seconds=float(seconds))).isoformat(timespec="minutes")


def duration(seconds: float | None) -> str:
    """Seconds as '3 h 05 min' (or '12 min'), for people."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    minutes = int(round(seconds / 60.0))
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def reproject(features: list[dict[str, Any]], output_crs: str) -> None:
    """Move every feature's geometry from WGS84 to ``output_crs`` in place (a no-op for WGS84)."""
    dst = parse_crs(output_crs)
    if dst.offset is None:
        return
    located = [f for f in features if f.get("geometry")]
    geoms = np.array([shape(f["geometry"]) for f in located], dtype=object)
    for f, g in zip(located, transform_geometries(geoms, CRS84, dst)):
        f["geometry"] = rounded(mapping(g))


def rounded(geometry: dict[str, Any], digits: int = 7) -> dict[str, Any]:
    """A GeoJSON geometry dict with its coordinates rounded to ``digits`` decimals (1 cm at 7)."""
    def r(c: Any) -> Any:
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            return [round(float(v), digits) for v in c]
        return [r(v) for v in c]

    return {"type": geometry["type"], "coordinates": r(geometry["coordinates"])}


def crs_uri(output_crs: str) -> str:
    """The URI a response names its coordinates' CRS with."""
    return parse_crs(output_crs).uri


def warning(code: str, zh: str, en: str) -> dict[str, str]:
    """A warning as every output carries it: a stable code, the Chinese text first, the English alongside."""
    return {"code": code, "zh": zh, "en": en}
