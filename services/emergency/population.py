"""Population inside polygons: the registered population raster summed over each (gis.zonal).

The raster is read with rasterio, windowed to each polygon's bounds (never the whole file).  A
raster whose unit says "per km2" holds densities and is multiplied by each cell's true area;
otherwise (the demo's "persons per cell") the cells are summed as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import rasterio
from affine import Affine
from rasterio.warp import transform_geom
from rasterio.windows import Window, from_bounds
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from gis.zonal import zonal_sum
from layers.catalogue import SCHEMA

__all__ = ["Population", "population_in", "is_density", "registered_raster"]


@dataclass(frozen=True)
class Population:
    """People inside one polygon: centre rule (``total``) and covered-fraction rule (``area_weighted``).

    ``complete`` is False when part of the polygon lies outside the raster (the sum is then too low).
    """

    total: float
    area_weighted: float
    cells: int
    complete: bool


def registered_raster(conn: psycopg.Connection, name: str = "population") -> Path | None:
    """The GeoTIFF registered under ``name`` (as etl.raster.raster_path finds it, on this connection), or None."""
    row = conn.execute(f"SELECT path FROM {SCHEMA}.raster_layer WHERE name = %s", (name,)).fetchone()
    return Path(row["path"]) if row else None


def is_density(unit: str | None) -> bool:
    """True when a raster's unit is a density (persons per km²) rather than a count per cell."""
    u = (unit or "").lower().replace(" ", "").replace("²", "2")
    return "perkm2" in u or "/km2" in u or "perkm^2" in u


def population_in(path: Path, polygons: Sequence[BaseGeometry]) -> list[Population]:
    """The population inside each WGS84 polygon, from the GeoTIFF at ``path``."""
    with rasterio.open(path) as ds:
        unit = ds.tags().get("unit") or (ds.units[0] if ds.units else None)
        density = is_density(unit)
        geographic = bool(ds.crs and ds.crs.is_geographic)
        extent = box(*ds.bounds)
        out = []
        for polygon in polygons:
            if polygon is None or polygon.is_empty:
                out.append(Population(0.0, 0.0, 0, True))
                continue
            local = polygon if ds.crs.to_epsg() == 4326 else shape(transform_geom("EPSG:4326", ds.crs,
                                                                                   mapping(polygon)))
            window = _window(ds, local)
            if window is None:
                out.append(Population(0.0, 0.0, 0, False))
                continue
            data = ds.read(1, window=window, masked=False)
            z = zonal_sum(data, _window_transform(ds.transform, window), local, nodata=ds.nodata,
                          density_per_km2=density, geographic=geographic)
            out.append(Population(z.total, z.area_weighted, z.cells, extent.contains(local)))
    return out


def _window(ds: rasterio.io.DatasetReader, polygon: BaseGeometry) -> Window | None:
    """The smallest whole-cell window covering the polygon, clipped to the raster (None if outside)."""
    w = from_bounds(*polygon.bounds, transform=ds.transform)
    col0 = max(math.floor(w.col_off) - 1, 0)
    row0 = max(math.floor(w.row_off) - 1, 0)
    col1 = min(math.ceil(w.col_off + w.width) + 1, ds.width)
    row1 = min(math.ceil(w.row_off + w.height) + 1, ds.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _window_transform(t: Affine, window: Window) -> Affine:
    """The affine transform of a window of a north-up raster (rasterio's own uses a deprecated operator)."""
    return Affine(t.a, t.b, t.c + window.col_off * t.a, t.d, t.e, t.f + window.row_off * t.e)
