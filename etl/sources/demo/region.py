"""The region of the demo: counties, cities and which county a point lies in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from etl.sources.boundaries import METRO_CITIES, METRO_EXTRA_COUNTIES, region_boundaries
from etl.sources.demo.common import CHANGZHOU, _multipolygon, _to_metric

# --------------------------------------------------------------------------------------------------
# the region: counties, cities and "which county is this point in"


@dataclass
class _Region:
    """Counties of the metropolitan area with their owning city and metric city polygons."""

    codes: list[str]
    names: dict[str, str]
    owner: dict[str, str]  # county code -> owning city code (Jintan/Liyang -> Changzhou)
    polys: list[shapely.Geometry]  # county polygons, WGS84, prepared
    city_metric: dict[str, shapely.Geometry]  # owning city code -> metric polygon
    city_names: dict[str, str]
    province_names: dict[str, str]
    neighbours: dict[str, list[str]]

    def county_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """County code of each point ('' outside every county); the first county wins on a border."""
        out = np.full(len(lon), "", dtype=object)
        for code, poly in zip(self.codes, self.polys):
            hit = (out == "") & shapely.contains_xy(poly, lon, lat)
            out[hit] = code
        return out

    def city_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Owning city code of each point ('' outside the region)."""
        counties = self.county_of(lon, lat)
        return np.array([self.owner.get(c, "") for c in counties], dtype=object)

    def clip(self, geom: shapely.Geometry) -> MultiPolygon:
        """The part of a WGS84 polygon inside the region's counties."""
        parts = [geom.intersection(p) for p in self.polys if p.intersects(geom)]
        return _multipolygon(shapely.union_all(parts)) if parts else MultiPolygon()


def _load_region() -> _Region:
    gdf = region_boundaries()
    by_code = {r.code: r for r in gdf.itertuples()}
    counties = gdf[gdf["level"] == "county"]
    codes = list(counties["code"])
    owner = {c: (CHANGZHOU if c in METRO_EXTRA_COUNTIES else by_code[c].parent_code) for c in codes}
    polys = list(counties.geometry)
    for p in polys:
        shapely.prepare(p)
    city_metric = {c: _to_metric(by_code[c].geometry) for c in METRO_CITIES}
    city_metric[CHANGZHOU] = _to_metric(shapely.union_all([by_code[c].geometry for c in METRO_EXTRA_COUNTIES]))
    tree = shapely.STRtree(polys)
    neighbours: dict[str, list[str]] = {}
    for i, code in enumerate(codes):
        hits = tree.query(polys[i].buffer(0.002), predicate="intersects")
        neighbours[code] = [codes[j] for j in sorted(hits) if j != i]
    return _Region(
        codes=codes,
        names={c: by_code[c].name for c in by_code},
        owner=owner,
        polys=polys,
        city_metric=city_metric,
        city_names={c: by_code[c].name for c in by_code if by_code[c].level == "city"},
        province_names={c: by_code[c].name for c in by_code if by_code[c].level == "province"},
        neighbours=neighbours,
    )


