"""Raster layers (population density, land use): GeoTIFFs registered in the catalogue.

The file is copied into the project's state folder and described in ``raster_layer`` (size, CRS,
footprint, checksum); analyses read it with rasterio.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import rasterio
from psycopg import sql
from rasterio.warp import transform_bounds

from etl.errors import InputError
from etl.load import file_sha256
from layers import db
from layers.catalogue import RASTER_KINDS, relation
from layers.settings import DatabaseSettings


@dataclass
class RasterReport:
    name: str
    kind: str
    path: str
    crs: str
    width: int
    height: int
    sha256: str
    synthetic: bool
    status: str = "committed"
    exit_code: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def register_raster(settings: DatabaseSettings, path: str | Path, kind: str, *, name: str | None = None,
                    source: str | None = None) -> RasterReport:
    """Copy a GeoTIFF into the state folder and register it under ``name`` (default: the kind)."""
    path = Path(path)
    if kind not in RASTER_KINDS:
        raise InputError(f"raster kind was {kind!r} but is expected to be one of {list(RASTER_KINDS)}")
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{path}: raster layers are read from GeoTIFF (.tif) files")
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise InputError(f"{path}: the GeoTIFF states no CRS")
            crs = ds.crs.to_string()
            bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
            width, height = ds.width, ds.height
            tags = ds.tags()
            unit = (ds.units or [None])[0] or tags.get("unit")
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: not a readable GeoTIFF: {exc}") from None
    synthetic = str(tags.get("synthetic", "")).lower() in ("true", "1", "yes")
    sha = file_sha256(path)
    store = settings.state_dir.resolve() / "rasters"
    store.mkdir(parents=True, exist_ok=True)
    target = store / f"{name or kind}-{sha[:12]}.tif"
    if not target.exists():
        shutil.copyfile(path, target)
    with db.transaction(settings) as conn:
        batch = conn.execute(
            sql.SQL("""INSERT INTO {} (layer, file_name, sha256, status, rows_in, rows_inserted,
                    finished_at) VALUES (%s, %s, %s, 'committed', 1, 1, clock_timestamp()) RETURNING id"""
                    ).format(relation("load_batch")),
            (name or kind, path.name, sha)).fetchone()["id"]
        conn.execute(
            sql.SQL("""INSERT INTO {} (name, kind, title, path, crs, width, height, unit, sha256,
                    synthetic, source, batch_id, footprint)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ST_MakeEnvelope(%s, %s, %s, %s, 4326))
                ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, title = EXCLUDED.title,
                    path = EXCLUDED.path, crs = EXCLUDED.crs, width = EXCLUDED.width, height = EXCLUDED.height,
                    unit = EXCLUDED.unit, sha256 = EXCLUDED.sha256, synthetic = EXCLUDED.synthetic,
                    source = EXCLUDED.source, batch_id = EXCLUDED.batch_id, footprint = EXCLUDED.footprint,
                    updated_at = now()""").format(relation("raster_layer")),
            (name or kind, kind, tags.get("description") or f"{kind} raster", str(target), crs, width, height,
             unit, sha, synthetic, source or tags.get("source"), batch, *bounds))
    return RasterReport(name or kind, kind, str(target), crs, width, height, sha, synthetic)


def raster_path(settings: DatabaseSettings, name: str) -> Path:
    """The stored file of a registered raster."""
    with db.connect(settings, "app") as conn:
        row = conn.execute(sql.SQL("SELECT path FROM {} WHERE name = %s").format(relation("raster_layer")),
                           (name,)).fetchone()
    if row is None:
        raise InputError(f"no raster layer named {name!r} is registered")
    return Path(row["path"])
