"""Demo drinking-water sources and their protection zones (HJ 338-2018)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Point

from etl.sources.demo.common import Coord, _to_metric, _xy_to_lonlat
from etl.sources.demo.network import _River
from etl.sources.demo.region import _Region
from gis.protection_zones import (
    GroundwaterRules,
    Hydraulics,
    LakeClasses,
    groundwater_radii,
    groundwater_zones,
    lake_zones,
    river_zones,
    zone_parameters,
)
from layers.catalogue import ZONE_LEVEL_LABELS

# --------------------------------------------------------------------------------------------------
# water sources and zones


def _river_intake(river: _River, at: Coord, width: float) -> Point:
    """The intake: the river point nearest to ``at``, moved towards ``at`` by up to 0.3 x width."""
    line_m = _to_metric(river.line())
    target = _to_metric(Point(at))
    on = line_m.interpolate(line_m.project(target))
    dx, dy = target.x - on.x, target.y - on.y
    dist = math.hypot(dx, dy)
    shift = min(dist, 0.3 * width)
    p = Point(on.x + dx / dist * shift, on.y + dy / dist * shift) if dist > 0 else on
    lon, lat = _xy_to_lonlat(np.array([p.x]), np.array([p.y]))
    return Point(float(lon[0]), float(lat[0]))


_LEVEL_ZH = {v: lab.zh for v, lab in ZONE_LEVEL_LABELS.items()}


#: Water-source attributes of HJ 338 copied from demo_places.yaml to the features when given.
_HJ338_ATTRS = ("water_body_type", "storage_1e8_m3", "area_km2", "aquifer", "confinement", "aquifer_medium",
                "yield_m3_per_day", "k_m_per_day", "hydraulic_gradient", "effective_porosity")


def _derived_zones(
    spec: Mapping[str, Any], intake: Point, hj338: Mapping[str, Any]
) -> tuple[str | None, dict[str, MultiPolygon]]:
    """(size class or None, zones) of a lake-reservoir or groundwater source per HJ 338."""
    params = zone_parameters(hj338)
    if spec["kind"] == "groundwater":
        hyd = None
        if spec.get("k_m_per_day") is not None:
            hyd = Hydraulics(spec["k_m_per_day"], spec["hydraulic_gradient"], spec["effective_porosity"])
        radii = groundwater_radii(GroundwaterRules.from_doc(hj338["groundwater"]), spec["aquifer"],
                                  spec["confinement"], spec["yield_m3_per_day"], spec.get("aquifer_medium"), hyd)
        return None, groundwater_zones(intake, radii)
    classes = LakeClasses.from_doc(hj338["size_classes"])
    body = spec["water_body_type"]
    size = classes.size_of(body, storage_1e8_m3=spec.get("storage_1e8_m3"), area_km2=spec.get("area_km2"))
    return size, lake_zones(intake, classes.rule_of(body, size), params)


def _reserves_and_zones(
    specs: list[dict[str, Any]], rivers: dict[str, _River], region: _Region, params: Mapping[str, float],
    hj338: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Water-source features (intake points) and their derived HJ 338 protection zones."""
    reserves, zones = [], []
    seq: dict[str, int] = {}
    for spec in specs:
        city = spec["city"]
        seq[city] = seq.get(city, 0) + 1
        key = f"WR-{city}-{seq[city]:02d}"
        if spec["kind"] == "river":
            river = rivers[spec["river"]]
            width = float(river.spec["width_m"])
            intake = _river_intake(river, tuple(spec["at"]), width)
            derived = river_zones(intake, river.line(), width, params)
            size = None
        else:
            intake = Point(spec["at"])
            size, derived = _derived_zones(spec, intake, hj338)
        county = region.county_of(np.array([intake.x]), np.array([intake.y]))[0]
        if not county:
            raise ValueError(f"water source {spec['name']} at {intake.wkt} is outside the region")
        reserves.append({
            "key": key, "name": spec["name"], "kind": spec["kind"], "water_body": spec["water_body"],
            "size": size, "population_served": int(spec["population_served"]),
            "owner_city": city, "geometry": intake, "river_key": spec.get("river"),
            **{a: spec[a] for a in _HJ338_ATTRS if a in spec},
        })
        for level, geom in derived.items():
            zones.append({
                "key": f"{key}-{level}", "reserve_key": key, "name": f"{spec['name']}{_LEVEL_ZH[level]}",
                "level": level, "derived_zone": True, "owner_city": city, "geometry": geom,
            })
    return reserves, zones


