"""Readers: every file format a bureau sends, read into one ``RawTable``.

The format is decided from the extension and the content together (``etl.formats``), archives are
unpacked by hand (``etl.archives``) and vector formats are read by GDAL with one driver and no
network or file indirection; CSV is read by pandas, with the encoding found among UTF-8, UTF-8 with
BOM and GB18030.  By default the parse runs in a sandboxed child process (``etl.sandbox``) that
cannot read the state folder; ``sandbox=False`` parses in-process, for files the caller made.
Messages name the file by its base name only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from etl.errors import InputError
from etl.parse import CSV_ENCODINGS, Parsed, parse
from etl.settings import ReadSettings
from gis.repair import parse_geometries

__all__ = ["CSV_ENCODINGS", "RawTable", "read", "read_csv"]

LON_NAMES = ("lon", "lng", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "几何")


@dataclass
class RawTable:
    """Attributes as read, one geometry per row (None when absent), and the CRS the file states."""

    path: Path
    frame: pd.DataFrame
    geometry: np.ndarray  # object array of shapely geometries or None
    crs: str | None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    rings_closed: np.ndarray | None = None  # bool per row: a ring the file left open was closed

    def __len__(self) -> int:
        return len(self.frame)


def read(path: Path, *, source_layer: str | None = None, x: str | None = None, y: str | None = None,
         wkt: str | None = None, encoding: str | None = None, sandbox: bool = True,
         settings: ReadSettings | None = None) -> RawTable:
    """Read a vector file (GeoJSON, GeoPackage, Shapefile or zipped Shapefile, CSV, KML/KMZ).

    With ``sandbox`` (the default) the file is parsed in a separate, unprivileged process under the
    budgets of ``settings``; without it, in this process, with the same checks.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file {path.name}: no such file")
    settings = settings or ReadSettings()
    if sandbox:
        from etl.sandbox import parse_in_sandbox

        parsed = parse_in_sandbox(path, settings, source_layer=source_layer, encoding=encoding)
    else:
        parsed = _parse_here(path, settings, source_layer=source_layer, encoding=encoding)
    return _raw_table(path, parsed, x=x, y=y, wkt=wkt)


def read_csv(path: Path, *, x: str | None = None, y: str | None = None, wkt: str | None = None,
             encoding: str | None = None) -> RawTable:
    """Read a CSV with lon/lat columns (named or recognised) or a WKT column, in this process."""
    return read(path, x=x, y=y, wkt=wkt, encoding=encoding, sandbox=False)


def _parse_here(path: Path, settings: ReadSettings, *, source_layer: str | None,
                encoding: str | None) -> Parsed:
    with tempfile.TemporaryDirectory(prefix="riskatlas-parse-", dir=settings.scratch_dir) as scratch:
        return parse(path, path.name, Path(scratch), settings.limits(), source_layer=source_layer,
                     encoding=encoding)


def _raw_table(path: Path, parsed: Parsed, *, x: str | None, y: str | None, wkt: str | None) -> RawTable:
    if parsed.kind == "csv":
        frame = parsed.table.to_pandas()
        frame = frame.astype(object).where(frame.notna(), np.nan)
        return _csv_table(path, frame, parsed.encoding, x=x, y=y, wkt=wkt)
    table = parsed.table
    closed = None
    if parsed.geometry:
        geometry, closed = parse_geometries(table.column(parsed.geometry).to_numpy(zero_copy_only=False), "wkb")
        table = table.drop([parsed.geometry])
    else:
        geometry = np.full(table.num_rows, None, dtype=object)
    # Arrow-backed columns: text operations run vectorised in C++ during validation
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return RawTable(path, frame, np.asarray(geometry, dtype=object), parsed.crs, rings_closed=closed)


def _csv_table(path: Path, frame: pd.DataFrame, encoding: str | None, *, x: str | None, y: str | None,
               wkt: str | None) -> RawTable:
    """Geometry from lon/lat columns (named or recognised) or a WKT column; CRS comes from outside."""
    name = path.name
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = list(frame.columns)
    closed = None
    if wkt or (not x and not y and _find(cols, WKT_NAMES)):
        col = wkt or _find(cols, WKT_NAMES)
        if col not in cols:
            raise InputError(f"file {name}: WKT column {col!r} not found; columns are {cols}")
        values = frame.pop(col).to_numpy(dtype=object)
        geometry, closed = _parse_wkt(values)
    else:
        xc, yc = x or _find(cols, LON_NAMES), y or _find(cols, LAT_NAMES)
        if xc not in cols or yc not in cols:
            raise InputError(f"file {name}: coordinate columns not found (looked for {x or LON_NAMES} and "
                             f"{y or LAT_NAMES}); columns are {cols}. Name them in the mapping (x:, y:)")
        xs = pd.to_numeric(frame[xc], errors="coerce").to_numpy(dtype="float64")
        ys = pd.to_numeric(frame[yc], errors="coerce").to_numpy(dtype="float64")
        ok = np.isfinite(xs) & np.isfinite(ys)
        geometry = np.full(len(frame), None, dtype=object)
        geometry[ok] = shapely.points(xs[ok], ys[ok])
        frame = frame.drop(columns=[xc, yc])
    return RawTable(path, frame, geometry, None, encoding=encoding, rings_closed=closed)


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for n in names:
        if n.lower() in lowered:
            return lowered[n.lower()]
    return None


def _parse_wkt(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(values), None, dtype=object)
    closed = np.zeros(len(values), dtype=bool)
    present = np.array([isinstance(v, str) and v.strip() != "" for v in values], dtype=bool)
    if present.any():
        out[present], closed[present] = parse_geometries(values[present], "wkt")
    return out, closed
