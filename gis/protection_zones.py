"""Drinking-water protection zones derived from an intake point, after HJ 338-2018 (DESIGN 8.3).

Pure geometry: the zone parameters are passed in (the project keeps them, with their clauses, in
``layers/data/hj338_protection_zones.yaml``; :func:`zone_parameters` flattens that parsed document).
Inputs and outputs are WGS84 lon/lat; all lengths and buffers are computed in the region's local
transverse Mercator (:data:`gis.crs.LOCAL_METRIC`), so distances are metres on the ground.

River sources (the river centreline digitised in flow direction, with a width):

* level 1: the river from ``up1`` m upstream to ``down1`` m downstream of the intake (measured
  along the centreline from the intake's projection on it), as wide as the river, plus ``land1`` m of
  land beyond each bank;
* level 2: from the ends of level 1 a further ``up2`` m upstream and ``down2`` m downstream, land
  ``land2`` m from each bank, minus level 1;
* quasi: a further ``up_quasi`` m upstream of level 2, land like level 2, minus levels 1 and 2.

Lake/reservoir sources: small -- level 1 is the water within ``r1_small`` m of the intake plus
``land1_small`` m of land around it; medium and large -- level 1 within ``r1_large`` m, level 2 the
ring from there to ``r1_large + r2_large`` m.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import substring

from gis.crs import LOCAL_METRIC

__all__ = [
    "RIVER_KEYS",
    "LAKE_KEYS",
    "zone_parameters",
    "river_zones",
    "lake_zones",
]

RIVER_KEYS = ("up1", "down1", "land1", "up2", "down2", "land2", "up_quasi")
LAKE_KEYS = ("r1_small", "land1_small", "r1_large", "r2_large")
LakeSize = Literal["small", "medium", "large"]

_TO_METRIC = Transformer.from_crs("EPSG:4326", LOCAL_METRIC, always_xy=True)
_TO_WGS84 = Transformer.from_crs(LOCAL_METRIC, "EPSG:4326", always_xy=True)
#: Segments per quarter circle for round joins and discs (a 2000 m disc is then within 0.6 m).
_QUAD_SEGS = 32


def zone_parameters(doc: Mapping[str, Any]) -> dict[str, float]:
    """Flatten the parsed ``hj338_protection_zones.yaml`` into ``{name: metres}``.

    Accepts the document's ``river`` and ``lake`` sections whose entries are either numbers or
    mappings with a ``value``. Promises every key of :data:`RIVER_KEYS` and :data:`LAKE_KEYS`, each a
    finite number >= 0; raises ``ValueError`` naming the first key that is missing or invalid.
    """
    out: dict[str, float] = {}
    for section, keys in (("river", RIVER_KEYS), ("lake", LAKE_KEYS)):
        entries = doc.get(section) or {}
        for key in keys:
            if key not in entries:
                raise ValueError(f"protection zone parameter {section}.{key} is missing")
            raw = entries[key]
            value = raw.get("value") if isinstance(raw, Mapping) else raw
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{section}.{key} was {value!r}, expected a number of metres") from None
            if not np.isfinite(number) or number < 0:
                raise ValueError(f"{section}.{key} was {number}, expected a finite number >= 0")
            out[key] = number
    return out


def _metric(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(_TO_METRIC.transform(c[:, 0], c[:, 1])))


def _wgs84(geom: shapely.Geometry) -> MultiPolygon:
    out = shapely.transform(geom, lambda c: np.column_stack(_TO_WGS84.transform(c[:, 0], c[:, 1])))
    if not out.is_valid:
        out = shapely.make_valid(out)
    polys = [p for p in shapely.get_parts(out) if p.geom_type == "Polygon" and not p.is_empty]
    return MultiPolygon(polys)


def _param(params: Mapping[str, float], key: str) -> float:
    try:
        value = float(params[key])
    except KeyError:
        raise ValueError(f"protection zone parameter {key!r} is missing") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"protection zone parameter {key!r} was {value}, expected >= 0 metres")
    return value


def _band(line: LineString, start: float, end: float, half_width: float) -> Polygon | MultiPolygon:
    """Flat-ended buffer of the part of ``line`` between distances start..end (clipped to the line)."""
    start, end = max(start, 0.0), min(end, line.length)
    if end - start <= 1e-6:
        return Polygon()
    part = substring(line, start, end)
    return part.buffer(half_width, quad_segs=_QUAD_SEGS, cap_style="flat", join_style="round")


def river_zones(
    intake_lonlat: tuple[float, float] | Point,
    river_line_lonlat: LineString,
    width_m: float,
    params: Mapping[str, float],
) -> dict[str, MultiPolygon]:
    """HJ 338 zones of a river intake, as WGS84 MultiPolygons keyed '1', '2' and 'quasi'.

    ``river_line_lonlat`` is the centreline in flow direction (first vertex upstream); pass a line
    that reaches at least ``up1 + up2 + up_quasi`` upstream and ``down1 + down2`` downstream of the
    intake (e.g. the river's consecutive reaches merged), because zones are clipped where the line
    ends. Zones are measured along the centreline from the intake's projection onto it; the water
    part is ``width_m`` wide and the land part extends ``land1`` / ``land2`` beyond each bank.
    Level 2 excludes level 1, quasi excludes both; the three never overlap (they may share edges).
    A zone with no area (e.g. the line ends right above level 2) is left out of the result.
    Raises ``ValueError`` if the intake lies farther than ``width_m / 2 + land1`` from the line, or
    the width or a parameter is negative or missing.
    """
    if width_m <= 0 or not np.isfinite(width_m):
        raise ValueError(f"width_m was {width_m}, expected a positive number of metres")
    p = {k: _param(params, k) for k in RIVER_KEYS}
    intake = intake_lonlat if isinstance(intake_lonlat, Point) else Point(intake_lonlat)
    line = _metric(river_line_lonlat)
    site = _metric(intake)
    half = width_m / 2.0
    if line.distance(site) > half + p["land1"]:
        raise ValueError(
            f"intake is {line.distance(site):.0f} m from the river line, expected within "
            f"{half + p['land1']:.0f} m (half the width plus the level 1 land strip)"
        )
    s0 = line.project(site)
    top1, bottom1 = s0 - p["up1"], s0 + p["down1"]
    top2, bottom2 = top1 - p["up2"], bottom1 + p["down2"]
    level1 = _band(line, top1, bottom1, half + p["land1"])
    outer2 = _band(line, top2, bottom2, half + p["land2"])
    level2 = outer2.difference(level1)
    quasi = _band(line, top2 - p["up_quasi"], top2, half + p["land2"]).difference(outer2).difference(level1)
    zones = {"1": level1, "2": level2, "quasi": quasi}
    return {k: _wgs84(g) for k, g in zones.items() if g.area > 1.0}


def lake_zones(
    intake_lonlat: tuple[float, float] | Point,
    size: LakeSize,
    params: Mapping[str, float],
    lake_lonlat: Polygon | MultiPolygon | None = None,
) -> dict[str, MultiPolygon]:
    """HJ 338 zones of a lake or reservoir intake, as WGS84 MultiPolygons keyed '1' (and '2').

    Small: level 1 only. Without ``lake_lonlat`` it is the disc of radius ``r1_small +
    land1_small`` around the intake (water disc plus its land margin, the conservative envelope
    when the shore is unknown); with it, the water of the lake within ``r1_small`` plus the land
    within ``land1_small`` of that water. Medium/large: level 1 the disc of ``r1_large``, level 2
    the ring out to ``r1_large + r2_large``; with ``lake_lonlat`` both are clipped to the lake's
    water. Raises ``ValueError`` for an unknown size or a missing/negative parameter.
    """
    if size not in ("small", "medium", "large"):
        raise ValueError(f"size was {size!r}, expected 'small', 'medium' or 'large'")
    intake = intake_lonlat if isinstance(intake_lonlat, Point) else Point(intake_lonlat)
    site = _metric(intake)
    lake = _metric(lake_lonlat) if lake_lonlat is not None else None
    if size == "small":
        r1, land = _param(params, "r1_small"), _param(params, "land1_small")
        if lake is None:
            return {"1": _wgs84(site.buffer(r1 + land, quad_segs=_QUAD_SEGS))}
        water = site.buffer(r1, quad_segs=_QUAD_SEGS).intersection(lake)
        shore = water.buffer(land, quad_segs=_QUAD_SEGS).difference(lake)
        return {"1": _wgs84(water.union(shore))}
    r1, r2 = _param(params, "r1_large"), _param(params, "r2_large")
    disc1 = site.buffer(r1, quad_segs=_QUAD_SEGS)
    disc2 = site.buffer(r1 + r2, quad_segs=_QUAD_SEGS)
    if lake is not None:
        disc1, disc2 = disc1.intersection(lake), disc2.intersection(lake)
    zones = {"1": disc1, "2": disc2.difference(disc1)}
    return {k: _wgs84(g) for k, g in zones.items() if g.area > 1.0}
