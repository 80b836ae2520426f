"""GeoTIFF raster layers registered in the catalogue."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from etl.errors import InputError
from etl.raster import raster_path, register_raster
from layers import db


def write_tif(path, crs="EPSG:4326", tags=None):
    data = np.arange(20, dtype="float32").reshape(4, 5)
    profile = {"driver": "GTiff", "width": 5, "height": 4, "count": 1, "dtype": "float32",
               "transform": from_origin(118.5, 32.2, 0.01, 0.01)}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.update_tags(**(tags or {}))
    return path


def test_register_population_raster(fresh_db, tmp_path):
    tif = write_tif(tmp_path / "pop.tif", tags={"synthetic": "true", "description": "test population"})
    report = register_raster(fresh_db, tif, "population")
    assert report.synthetic and (report.width, report.height) == (5, 4)
    with db.connect(fresh_db) as conn:
        row = conn.execute("SELECT kind, title, ST_AsText(footprint) AS fp FROM riskatlas.raster_layer").fetchone()
    assert row["kind"] == "population" and row["title"] == "test population"
    assert row["fp"].startswith("POLYGON((118.5 32.16")
    with rasterio.open(raster_path(fresh_db, "population")) as ds:
        assert float(ds.read(1).sum()) == float(np.arange(20).sum())
    assert register_raster(fresh_db, tif, "population").sha256 == report.sha256  # again: same row


def test_bad_rasters_are_refused_with_reasons(fresh_db, tmp_path):
    with pytest.raises(InputError, match="states no CRS"):
        register_raster(fresh_db, write_tif(tmp_path / "nocrs.tif", crs=None), "population")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="not a readable GeoTIFF"):
        register_raster(fresh_db, junk, "population")
    with pytest.raises(InputError, match="expected to be one of"):
        register_raster(fresh_db, write_tif(tmp_path / "x.tif"), "rainfall")
