"""Parse one file into an Arrow table: the checks of ``etl.formats``, then exactly one reader.

The same code runs in-process and inside the sandboxed child (``etl.parse_child``).  It imports
pyogrio, pyarrow and pandas only when it reaches them, so the child can pin GDAL to a single
driver before GDAL registers any.  Vector formats are read by GDAL through a path of our own
making (absolute, inside the scratch folder for archives) with network and file indirection
switched off; CSV is read by pandas.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import archives, formats
from etl.errors import InputError
from etl.formats import DRIVERS, NAMES
from etl.limits import ParseLimits

if TYPE_CHECKING:
    import pyarrow as pa

CSV_ENCODINGS = ("utf-8-sig", "gb18030")
MULTI_LAYER = {"gpkg", "kml"}  # GeoJSON and Shapefile hold one layer, named by the file

# GDAL configuration for every read: no network, no directory listings, bounded JSON objects.
HARDENING = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".riskatlas-no-remote-files",
    "GDAL_HTTP_PROXY": "127.0.0.1:1",  # a closed port: any HTTP attempt fails at once
    "GDAL_HTTPS_PROXY": "127.0.0.1:1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "OGR_GEOJSON_MAX_OBJ_SIZE": "200",
    "OGR_SQLITE_ALLOW_EXTERNAL_ACCESS": "NO",
    "OGR_SQLITE_LIST_VIRTUAL_OGR": "NO",
    "LIBKML_RESOLVE_STYLE": "NO",
    "LIBKML_EXTERNAL_STYLE": "NO",
    "PROJ_NETWORK": "OFF",
}
_CONFIG_LOCK = threading.Lock()


@dataclass
class Parsed:
    """What a parse hands back: attributes (and WKB geometry) as Arrow, and what the file states."""

    table: pa.Table
    kind: str
    geometry: str | None = None  # name of the WKB column, if any
    crs: str | None = None
    encoding: str | None = None


def parse(path: Path, name: str, scratch: Path, limits: ParseLimits, *, source_layer: str | None = None,
          encoding: str | None = None, before_read: Callable[[str], None] | None = None) -> Parsed:
    """Check and parse ``path``, an upload called ``name``; archives unpack into ``scratch``.

    ``before_read(kind)`` runs once the format is known and before the content is checked or read
    (the sandboxed child pins GDAL's driver and tightens its memory limit there).
    """
    kind = formats.kind_for(name)
    label = f"file {name}:"
    target, check_label = path, label
    if kind in ("zip", "kmz"):
        formats.check_zip_header(path, label, limits)
        target, kind, check_label = archives.extract(path, kind, label, scratch, limits)
    if before_read is not None:
        before_read(kind)
    formats.check(target, kind, check_label, limits)
    if kind == "csv":
        return _parse_csv(target, label, encoding)
    return _parse_vector(target, kind, label, source_layer)


@contextmanager
def hardened_gdal() -> Iterator[None]:
    """Apply ``HARDENING`` for the duration of a read and restore what was set before."""
    import pyogrio

    with _CONFIG_LOCK:
        before = {k: pyogrio.get_gdal_config_option(k) for k in HARDENING}
        pyogrio.set_gdal_config_options(HARDENING)
        try:
            yield
        finally:
            pyogrio.set_gdal_config_options(before)


def _parse_vector(path: Path, kind: str, label: str, source_layer: str | None) -> Parsed:
    import pyogrio
    import pyogrio.raw

    driver = DRIVERS[kind]
    source = str(path.resolve())
    if not source.startswith("/") or source.startswith("/vsi"):
        raise InputError(f"{label} cannot be read from where it lies")
    with hardened_gdal():
        layer = _choose_layer(source, kind, label, source_layer) if kind in MULTI_LAYER else None
        try:
            info = pyogrio.read_info(source, layer=layer)
        except Exception as exc:  # noqa: BLE001 - GDAL's text may quote the content; say it in our words
            raise _failure(exc, f"{label} cannot be opened as {NAMES[kind]}") from None
        if info["driver"] != driver:
            raise InputError(f"{label} was claimed by GDAL's {info['driver']} driver, not {driver}; refused")
        if source_layer is not None and source_layer != info["layer_name"]:
            raise InputError(f"{label} has no layer {source_layer!r}; its layer is {info['layer_name']!r}")
        try:
            meta, table = pyogrio.raw.read_arrow(source, layer=layer)
        except Exception as exc:  # noqa: BLE001
            raise _failure(exc, f"{label} cannot be read as {NAMES[kind]}") from None
    geometry = meta.get("geometry_name") or "wkb_geometry"
    crs = meta.get("crs")
    if kind == "kml":
        crs = crs or "EPSG:4326"
    return Parsed(table, kind, geometry if geometry in table.column_names else None, crs)


def _choose_layer(source: str, kind: str, label: str, source_layer: str | None) -> str:
    import pyogrio

    try:
        names = [str(n) for n in pyogrio.list_layers(source)[:, 0]]
    except Exception as exc:  # noqa: BLE001
        raise _failure(exc, f"{label} cannot be opened as {NAMES[kind]}") from None
    if not names:
        raise InputError(f"{label} holds no layers")
    if source_layer is None:
        if len(names) > 1:
            raise InputError(f"{label} holds {len(names)} layers {_few(names)}; choose one with --source-layer")
        return names[0]
    if source_layer not in names:
        raise InputError(f"{label} has no layer {source_layer!r}; its layers are {_few(names)}")
    return source_layer


def _parse_csv(path: Path, label: str, encoding: str | None) -> Parsed:
    import pandas as pd
    import pyarrow as pa

    text, used = decode_text(path.read_bytes(), encoding, label)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise InputError(f"{label} holds no CSV header") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{label} is not a well-formed CSV: {str(exc).splitlines()[0][:200]}") from None
    return Parsed(pa.Table.from_pandas(frame, preserve_index=False), "csv", encoding=used)


def decode_text(raw: bytes, encoding: str | None, label: str) -> tuple[str, str]:
    """Decode CSV bytes with the given encoding, else the first of ``CSV_ENCODINGS`` that fits."""
    for enc in ([encoding] if encoding else CSV_ENCODINGS):
        try:
            return raw.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise InputError(f"{label} text is neither {' nor '.join(CSV_ENCODINGS)}; give the encoding in the mapping")


def _failure(exc: Exception, message: str) -> Exception:
    """A GDAL failure in our words; exhausted memory stays a ``MemoryError`` (the budget was hit)."""
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return MemoryError()
    return InputError(message)


def _few(names: list[str]) -> list[Any]:
    shown = [n if len(n) <= 60 else n[:57] + "..." for n in names[:10]]
    return shown + (["..."] if len(names) > 10 else [])
