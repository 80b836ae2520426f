"""Every tabular output in the two forms bureaus open: CSV for spreadsheets and GeoPackage for GIS.

Both are made from the GeoJSON FeatureCollection PostGIS already wrote (items, overlay results), so a
table and its GeoJSON always hold the same rows. CSV is UTF-8 with a byte-order mark (Excel reads the
Chinese only then); point layers get ``lon``/``lat`` columns, other geometries a ``wkt`` column; nested
values are JSON text. The GeoPackage keeps the geometries (EPSG:4326) and the same columns.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

#: The byte-order mark that tells spreadsheet programs the CSV is UTF-8.
BOM = "\ufeff"
CSV_MEDIA = "text/csv; charset=utf-8"
GPKG_MEDIA = "application/geopackage+sqlite3"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` under ``header`` as CSV text, UTF-8 with a byte-order mark; dicts and lists as JSON text."""
    buf = io.StringIO()
    buf.write(BOM)
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in row])
    return buf.getvalue()


def _features(collection: str | bytes) -> list[dict[str, Any]]:
    doc = orjson.loads(collection)
    return list(doc.get("features", []))


def _columns(features: Sequence[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for f in features:
        for k in f.get("properties") or {}:
            names.setdefault(k, None)
    return list(names)


def features_csv(collection: str | bytes) -> str:
    """The FeatureCollection as CSV: ``id``, the properties (in first-seen order), then the geometry."""
    import shapely.geometry

    features = _features(collection)
    columns = _columns(features)
    geoms = [f.get("geometry") for f in features]
    points = all(g is None or g.get("type") == "Point" for g in geoms)
    geometry_header = ["lon", "lat"] if points else ["wkt"]

    def geometry_cells(g: dict[str, Any] | None) -> list[Any]:
        if g is None:
            return [None] * len(geometry_header)
        if points:
            return list(g["coordinates"][:2])
        return [shapely.geometry.shape(g).wkt]

    rows = ([f.get("id"), *[(f.get("properties") or {}).get(c) for c in columns], *geometry_cells(f.get("geometry"))]
            for f in features)
    return csv_text(["id", *columns, *geometry_header], rows)


def features_gpkg(collection: str | bytes, layer: str) -> bytes:
    """The FeatureCollection as a GeoPackage layer named ``layer`` (EPSG:4326), written by pyogrio."""
    import geopandas as gpd
    import pandas as pd
    import shapely.geometry

    features = _features(collection)
    columns = _columns(features)
    records = [{"id": f.get("id"), **{c: _cell((f.get("properties") or {}).get(c)) for c in columns}} for f in features]
    frame = pd.DataFrame(records, columns=["id", *columns])
    geometry = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in features]
    return geopackage(gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326"), layer)


def geopackage(frame: Any, layer: str) -> bytes:
    """A GeoDataFrame as the bytes of a GeoPackage with one layer, written by pyogrio to a temporary file."""
    import pyogrio

    fd, path = tempfile.mkstemp(suffix=".gpkg")
    os.close(fd)
    os.unlink(path)  # pyogrio creates the file itself
    try:
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG")
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        if os.path.exists(path):
            os.unlink(path)


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
