"""Demo monitoring stations: air quality and water sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from shapely.geometry import Point

from etl.sources.demo.common import _POINT_DIGITS
from etl.sources.demo.network import _River
from etl.sources.demo.region import _Region

# --------------------------------------------------------------------------------------------------
# monitoring stations


def _station_on_river(river: _River, d: float, region: _Region, prefer: int) -> Point | None:
    """A point on the river near distance ``d`` that lies in a county: ``d`` moved by 300, 600,
    1000 m in direction ``prefer`` (+1 downstream, -1 upstream), then the other way."""
    length = river.length()
    for step in (300.0, 600.0, 1000.0, -300.0, -600.0, -1000.0, 0.0):
        dd = min(max(d + prefer * step, 0.0), length)
        p = river.point_at(dd)
        lon, lat = round(p.x, _POINT_DIGITS), round(p.y, _POINT_DIGITS)
        if region.county_of(np.array([lon]), np.array([lat]))[0]:
            return Point(lon, lat)
    return None


def _stations(
    places: dict[str, Any], rivers: dict[str, _River], reserves: list[dict[str, Any]], region: _Region,
    short: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Air-quality stations, national sections, cross-border sections and automatic water stations."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for spec in places["air_stations"]:
        rows.append(("AQ", {"name": f"{spec['name']}空气质量监测站", "medium": "air", "kind": "air-quality",
                            "target_class": None, "geometry": Point(spec["at"])}))
    for spec in places["national_sections"]:
        river = rivers[spec["river"]]
        p = _station_on_river(river, river.distance_of(tuple(spec["at"])), region, +1)
        if p is not None:
            rows.append(("NS", {"name": spec["name"], "medium": "water", "kind": "national-section",
                                "target_class": spec["target_class"], "geometry": p}))
    for river in rivers.values():
        target = "II" if river.spec["river_class"] == "yangtze-main" else "III"
        for d, a, b in river.crossings:
            p = _station_on_river(river, d, region, +1 if b else -1)
            if p is None:
                continue
            name = river.spec["name"]
            if not a:
                label = f"{name}入境断面（{short[b]}）"
            elif not b:
                label = f"{name}出境断面（{short[a]}）"
            else:
                label = f"{name}{short[a]}—{short[b]}交界断面"
            if a and b and a[:2] != b[:2]:
                label += "（省界）"
            rows.append(("CB", {"name": label, "medium": "water", "kind": "cross-border-section",
                                "target_class": target, "geometry": p}))
    for res in reserves:
        if res["kind"] != "river":
            continue
        river = rivers[res["river_key"]]
        p = _station_on_river(river, river.distance_of((res["geometry"].x, res["geometry"].y)) - 800.0,
                              region, -1)
        if p is not None:
            target = "II" if river.spec["river_class"] == "yangtze-main" else "III"
            rows.append(("AW", {"name": f"{res['name'].removesuffix('水源地')}水质自动监测站", "medium": "water",
                                "kind": "automatic-water", "target_class": target, "geometry": p}))
    out = []
    seq: dict[tuple[str, str], int] = {}
    for prefix, row in rows:
        g = row["geometry"]
        city = region.city_of(np.array([g.x]), np.array([g.y]))[0]
        if not city:
            raise ValueError(f"station {row['name']} at {g.wkt} is outside the region")
        seq[(prefix, city)] = seq.get((prefix, city), 0) + 1
        out.append({"key": f"{prefix}-{city}-{seq[(prefix, city)]:02d}", **row, "owner_city": city})
    return out


