"""The demo population raster."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import rasterize

from etl.sources.boundaries import region_envelope
from etl.sources.demo.common import _KM_PER_DEG
from etl.sources.demo.region import _Region

# --------------------------------------------------------------------------------------------------
# population raster


def _population(places: dict[str, Any], region: _Region, path: Path, seed: int) -> dict[str, float]:
    """Write the synthetic population GeoTIFF; return its total and the part inside the region."""
    spec = places["population"]
    cell = float(spec["cell_deg"])
    minx, miny, maxx, maxy = region_envelope()
    width, height = math.ceil((maxx - minx) / cell), math.ceil((maxy - miny) / cell)
    transform = Affine(cell, 0.0, minx, 0.0, -cell, maxy)
    lat_c = maxy - (np.arange(height) + 0.5) * cell
    lon_c = minx + (np.arange(width) + 0.5) * cell
    side_km = _KM_PER_DEG * cell
    cell_km2 = (side_km * np.cos(np.radians(lat_c)) * side_km)[:, None] * np.ones((1, width))
    labels = list(spec["cities"])
    shapes = []
    for i, label in enumerate(labels, start=1):
        members = [p for c, p in zip(region.codes, region.polys) if c == label or region.owner[c] == label]
        shapes += [(p, i) for p in members]
    zone = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype="int32")
    grid = np.where(zone == 0, float(spec["outside_per_km2"]) * cell_km2, 0.0)
    for i, label in enumerate(labels, start=1):
        city = spec["cities"][label]
        seats_total = 0.0
        for lon0, lat0, sigma_km, pop in city["seats"]:
            sy = sigma_km / _KM_PER_DEG
            sx = sy / math.cos(math.radians(lat0))
            kx = np.exp(-0.5 * ((lon_c - lon0) / sx) ** 2)
            ky = np.exp(-0.5 * ((lat_c - lat0) / sy) ** 2)
            kernel = ky[:, None] * kx[None, :]
            grid += kernel * (float(pop) / kernel.sum())
            seats_total += float(pop)
        mask = zone == i
        rest = max(float(city["total"]) - seats_total, 0.0)
        grid[mask] += rest * cell_km2[mask] / cell_km2[mask].sum()
    data = grid.astype("float32")
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
        "crs": "EPSG:4326", "transform": transform, "compress": "deflate", "predictor": 3,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "nodata": None,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.update_tags(
            synthetic="true",
            description="Synthetic population (persons per cell) of the Nanjing metropolitan area, "
                        "Gaussian kernels around city and county seats; riskatlas demo, not census data",
            source=f"riskatlas synthetic demo (seed {seed})",
            unit="persons per cell",
        )
        ds.set_band_description(1, "population (persons per cell, synthetic)")
        ds.units = ("persons",)
    return {"total": float(data.sum(dtype="float64")), "region": float(data[zone > 0].sum(dtype="float64"))}


