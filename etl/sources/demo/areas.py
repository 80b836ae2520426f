"""Demo protected areas."""

from __future__ import annotations

from typing import Any

import shapely
from shapely import affinity
from shapely.geometry import Point
from shapely.ops import substring

from etl.sources.demo.common import _to_lonlat, _to_metric
from etl.sources.demo.network import _River
from etl.sources.demo.region import _Region

# --------------------------------------------------------------------------------------------------
# protected areas


def _protected_areas(
    specs: list[dict[str, Any]], rivers: dict[str, _River], region: _Region
) -> tuple[list[dict[str, Any]], list[shapely.Geometry]]:
    """Protected-area features (clipped to the region) and the lake polygons among them."""
    out, lakes = [], []
    seq: dict[str, int] = {}
    for spec in specs:
        if spec["shape"] == "ellipse":
            centre = _to_metric(Point(spec["at"]))
            disc = centre.buffer(1000.0, quad_segs=24)
            shape_m = affinity.rotate(
                affinity.scale(disc, spec["a_km"], spec["b_km"], origin=centre), spec["rotation"], origin=centre
            )
        else:
            river = rivers[spec["river"]]
            d0, d1 = sorted((river.distance_of(tuple(spec["from"])), river.distance_of(tuple(spec["to"]))))
            strip = substring(_to_metric(river.line()), d0, d1)
            shape_m = strip.buffer(float(river.spec["width_m"]) / 2.0, cap_style="flat")
        geom = region.clip(_to_lonlat(shape_m))
        if geom.is_empty:
            raise ValueError(f"protected area {spec['name']} lies outside the region")
        city = spec["city"]
        seq[city] = seq.get(city, 0) + 1
        out.append({
            "key": f"PA-{city}-{seq[city]:02d}", "name": spec["name"], "kind": spec["kind"],
            "rank": spec["rank"], "owner_city": city, "geometry": geom,
        })
        if spec.get("water"):
            lakes.append(geom)
    return out, lakes


