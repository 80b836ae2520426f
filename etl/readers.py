"""Readers: every file format a bureau sends, read into one ``RawTable``.

Vector formats go through pyogrio (GDAL) with the driver pinned by extension, so a crafted file
cannot route a read through drivers that open other files or the network (VRT, WFS, ...).  CSV is
read by pandas, with the encoding found among UTF-8, UTF-8 with BOM and GB18030.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

from etl.errors import InputError

MAX_UNPACKED_BYTES = 2 * 1024**3
VECTOR_DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".kml": "KML",
}
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
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

    def __len__(self) -> int:
        return len(self.frame)


def read(path: Path, *, source_layer: str | None = None, x: str | None = None, y: str | None = None,
         wkt: str | None = None, encoding: str | None = None) -> RawTable:
    """Read a vector file (GeoJSON, GeoPackage, Shapefile or zipped Shapefile, CSV, KML/KMZ)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_csv(path, x=x, y=y, wkt=wkt, encoding=encoding)
    if suffix == ".zip":
        member = _zip_member(path, (".shp", ".gpkg", ".geojson", ".kml"))
        return _read_ogr(path, f"/vsizip/{path.resolve()}/{member}", VECTOR_DRIVERS[Path(member).suffix.lower()],
                         source_layer)
    if suffix == ".kmz":
        member = _zip_member(path, (".kml",))
        return _read_ogr(path, f"/vsizip/{path.resolve()}/{member}", "KML", source_layer)
    if suffix not in VECTOR_DRIVERS:
        raise InputError(f"{path}: format {suffix or '(none)'} is not supported; expected one of "
                         f"{sorted([*VECTOR_DRIVERS, '.csv', '.zip', '.kmz'])}")
    return _read_ogr(path, str(path), VECTOR_DRIVERS[suffix], source_layer)


def _zip_member(path: Path, wanted: tuple[str, ...]) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise InputError(f"{path}: unpacks to {total} bytes, more than the limit of {MAX_UNPACKED_BYTES}")
    for i in infos:
        if i.filename.startswith("/") or ".." in Path(i.filename).parts:
            raise InputError(f"{path}: archive member {i.filename!r} has an unsafe path")
    members = [i.filename for i in infos if Path(i.filename).suffix.lower() in wanted]
    if len(members) != 1:
        raise InputError(f"{path}: expected exactly one {'/'.join(wanted)} file in the archive, "
                         f"found {len(members)}: {members[:5]}")
    return members[0]


def _read_ogr(path: Path, source: str, driver: str, source_layer: str | None) -> RawTable:
    try:
        layers = pyogrio.list_layers(source)
    except Exception as exc:  # GDAL raises DataSourceError and friends with useful text
        raise InputError(f"{path}: cannot be opened as {driver}: {exc}") from None
    names = [str(n) for n in layers[:, 0]]
    if source_layer is None:
        if len(names) > 1:
            raise InputError(f"{path}: holds {len(names)} layers {names}; choose one with --source-layer")
        source_layer = names[0]
    elif source_layer not in names:
        raise InputError(f"{path}: has no layer {source_layer!r}; its layers are {names}")
    try:
        meta, table = pyogrio.raw.read_arrow(source, layer=source_layer)
    except Exception as exc:
        raise InputError(f"{path}: layer {source_layer!r} cannot be read: {exc}") from None
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    if geom_col in table.column_names:
        geometry = _from_wkb(path, table.column(geom_col).to_numpy(zero_copy_only=False))
        table = table.drop([geom_col])
    else:
        geometry = np.full(table.num_rows, None, dtype=object)
    # Arrow-backed columns: text operations run vectorised in C++ during validation
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    crs = meta.get("crs")
    if driver == "KML":
        crs = crs or "EPSG:4326"
    return RawTable(path, frame, np.asarray(geometry, dtype=object), crs)


def _from_wkb(path: Path, wkb: np.ndarray) -> np.ndarray:
    """Geometries of the WKB GDAL produced; a malformed one (e.g. a polygon ring that is not closed,
    which GDAL passes through from GeoJSON) is an InputError naming the feature, not a GEOS exception."""
    try:
        return shapely.from_wkb(wkb)
    except shapely.errors.GEOSException:
        pass
    for i, value in enumerate(wkb):
        try:
            shapely.from_wkb(value)
        except shapely.errors.GEOSException as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise InputError(f"{path}: feature {i + 1}: geometry is not valid: {reason}") from None
    return shapely.from_wkb(wkb)  # pragma: no cover - the loop above found no culprit: raise as is


def read_csv(path: Path, *, x: str | None = None, y: str | None = None, wkt: str | None = None,
             encoding: str | None = None) -> RawTable:
    """Read a CSV with lon/lat columns (named or recognised) or a WKT column; CRS comes from outside."""
    raw = path.read_bytes()
    text, used = _decode(path, raw, encoding)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a well-formed CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = list(frame.columns)
    if wkt or (not x and not y and _find(cols, WKT_NAMES)):
        col = wkt or _find(cols, WKT_NAMES)
        if col not in cols:
            raise InputError(f"{path}: WKT column {col!r} not found; columns are {cols}")
        values = frame.pop(col).to_numpy(dtype=object)
        geometry = _parse_wkt(values)
    else:
        xc, yc = x or _find(cols, LON_NAMES), y or _find(cols, LAT_NAMES)
        if xc not in cols or yc not in cols:
            raise InputError(f"{path}: coordinate columns not found (looked for {x or LON_NAMES} and "
                             f"{y or LAT_NAMES}); columns are {cols}. Name them in the mapping (x:, y:)")
        xs = pd.to_numeric(frame[xc], errors="coerce").to_numpy(dtype="float64")
        ys = pd.to_numeric(frame[yc], errors="coerce").to_numpy(dtype="float64")
        ok = np.isfinite(xs) & np.isfinite(ys)
        geometry = np.full(len(frame), None, dtype=object)
        geometry[ok] = shapely.points(xs[ok], ys[ok])
        frame = frame.drop(columns=[xc, yc])
    return RawTable(path, frame, geometry, None, encoding=used)


def _decode(path: Path, raw: bytes, encoding: str | None) -> tuple[str, str]:
    for enc in ([encoding] if encoding else CSV_ENCODINGS):
        try:
            return raw.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise InputError(f"{path}: text is neither {' nor '.join(CSV_ENCODINGS)}; give the encoding in the mapping")


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for n in names:
        if n.lower() in lowered:
            return lowered[n.lower()]
    return None


def _parse_wkt(values: np.ndarray) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    present = np.array([isinstance(v, str) and v.strip() != "" for v in values], dtype=bool)
    if present.any():
        out[present] = shapely.from_wkt(values[present], on_invalid="ignore")
    return out
