"""What a file really is: the format follows from the extension, and the content must agree.

Every check here reads the file as data and nothing else: no GDAL, no entity resolution, no
network.  A refusal says what is wrong in words of its own and never quotes the refused content.
Each check gets a ``label`` ("file x.json:" or "file x.zip: member 'a.kml'") that starts its
messages, so no server path can appear in them.
"""

from __future__ import annotations

import json
import mmap
import re
import sqlite3
import urllib.parse
from pathlib import Path
from xml.parsers import expat

import orjson

from etl.errors import InputError
from etl.limits import ParseLimits

SUFFIX_KIND = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".shp": "shp", ".kml": "kml",
               ".csv": "csv", ".txt": "csv", ".zip": "zip", ".kmz": "kmz"}
ACCEPTED = [".csv", ".geojson", ".gpkg", ".json", ".kml", ".kmz", ".shp", ".zip"]
# KML goes to LIBKML: the plain KML driver drops ExtendedData, where bureaus keep their attributes.
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile", "kml": "LIBKML"}
NAMES = {"geojson": "GeoJSON", "gpkg": "a GeoPackage", "shp": "a Shapefile", "kml": "KML", "csv": "CSV text",
         "zip": "a zip archive", "kmz": "a KMZ archive"}

BOM = b"\xef\xbb\xbf"
SQLITE_HEADER = b"SQLite format 3\x00"
GPKG_APPLICATION_IDS = {0x47504B47, 0x47503130, 0x47503131}  # 'GPKG', 'GP10', 'GP11'
ZIP_HEADERS = (b"PK\x03\x04", b"PK\x05\x06")
DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0xCB, 0xE5, 0xF5, 0xFB}
VRT_MARKER = b"ogrvrtdatasource"
GEOJSON_TYPES = {"FeatureCollection", "Feature", "Point", "MultiPoint", "LineString", "MultiLineString",
                 "Polygon", "MultiPolygon", "GeometryCollection"}
CRS_NAME = re.compile(r"(?i)^(urn:ogc:def:crs:[a-z]+:[0-9.]*:[a-z0-9]+|epsg:[0-9]+)$")
TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"(\w+)"')
# a "crs" key as GDAL matches it: any case, letters possibly written as \u escapes
CRS_KEY = re.compile(rb'(?i)(?<!\\)"(?:c|\\u0063|\\u0043)(?:r|\\u0072|\\u0052)(?:s|\\u0073|\\u0053)"\s*:\s*')
KML_LINKS = {"NetworkLink", "NetworkLinkControl", "Link", "Url"}
CHUNK = 1 << 20


def kind_for(name: str) -> str:
    """The format an upload claims by its extension; unknown extensions are refused."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIX_KIND:
        raise InputError(f"file {name}: format {suffix or '(none)'} is not supported; expected one of {ACCEPTED}")
    return SUFFIX_KIND[suffix]


def looks_like(head: bytes) -> str:
    """A few words on what some leading bytes are, for messages that must not quote them."""
    if head.startswith(SQLITE_HEADER):
        return "a SQLite database"
    if head[:4] in ZIP_HEADERS:
        return "a zip archive"
    if len(head) >= 4 and int.from_bytes(head[:4], "big") == 9994:
        return "a shapefile"
    if b"\x00" in head:
        return "binary data"
    text = head.removeprefix(BOM).lstrip()
    if not text:
        return "empty"
    if text[:1] == b"<":
        return "XML"
    if text[:1] in (b"{", b"["):
        return "JSON"
    return "plain text"


def refuse(label: str, text: str) -> InputError:
    """The error for a refused file."""
    return InputError(f"{label} {text}")


def check(path: Path, kind: str, label: str, limits: ParseLimits) -> None:
    """Refuse ``path`` unless its content is ``kind`` and holds nothing GDAL would follow elsewhere."""
    checks = {"geojson": check_geojson, "gpkg": check_gpkg, "shp": check_shapefile, "kml": check_kml,
              "csv": check_csv, "zip": check_zip_header, "kmz": check_zip_header}
    checks[kind](path, label, limits)


def _head(path: Path, n: int = 4096) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _mismatch(path: Path, kind: str, label: str) -> InputError:
    return refuse(label, f"is not {NAMES[kind]}: its content looks like {looks_like(_head(path))}")


def scan_text(path: Path, label: str, *, escaped_nul: bool = False) -> None:
    """Refuse text holding NUL bytes or VRT markup (and, for JSON, the escape ``\\u0000``)."""
    keep = len(VRT_MARKER) - 1
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if b"\x00" in chunk:
                raise refuse(label, "holds NUL bytes, which text data may not contain")
            window = (tail + chunk).lower()
            if VRT_MARKER in window:
                raise refuse(label, "holds GDAL VRT markup; virtual datasets are not accepted")
            if escaped_nul and b"\\u0000" in window:
                raise refuse(label, "holds an escaped NUL character, which text data may not contain")
            tail = window[-keep:]


def check_csv(path: Path, label: str, limits: ParseLimits) -> None:
    """CSV is text: no NUL bytes, no VRT markup."""
    head = _head(path)
    if head.startswith(SQLITE_HEADER) or head[:4] in ZIP_HEADERS:
        raise _mismatch(path, "csv", label)
    scan_text(path, label)


def check_zip_header(path: Path, label: str, limits: ParseLimits) -> None:
    """A zip archive starts with a local file header (or is an empty archive)."""
    if _head(path, 4) not in ZIP_HEADERS:
        raise _mismatch(path, "zip" if path.suffix.lower() != ".kmz" else "kmz", label)


# ---- GeoJSON ----

def check_geojson(path: Path, label: str, limits: ParseLimits) -> None:
    """JSON whose top level is a FeatureCollection, a Feature or a geometry; every CRS object named.

    The top-level type is read from the head when it comes first (as every common writer puts it),
    else from a full parse (for files up to ``limits.json_full_check_bytes``).  CRS objects are
    checked wherever they appear: GDAL fetches the ``href`` of a "link" CRS, at the top level and
    on any geometry.
    """
    head = _head(path, CHUNK).removeprefix(BOM)
    if head.lstrip()[:1] != b"{":
        raise _mismatch(path, "geojson", label)
    scan_text(path, label, escaped_nul=True)
    first = TYPE_FIRST.match(head)
    if first:
        kind = first.group(1).decode("ascii")
    elif path.stat().st_size <= limits.json_full_check_bytes:
        top = _load_json(path, label)
        kind = top.get("type") if isinstance(top, dict) else None
    else:
        raise refuse(label, 'is too large to check in full and does not start with its "type" member')
    if kind not in GEOJSON_TYPES:
        raise refuse(label, "is not GeoJSON: its top level is not a FeatureCollection, a Feature or a geometry")
    _check_every_crs(path, label)


def _load_json(path: Path, label: str) -> object:
    try:
        return orjson.loads(path.read_bytes().removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        if "memory" in str(exc).lower():
            raise MemoryError(str(exc)) from None
        raise refuse(label, f"is not well-formed JSON (at character {exc.pos})") from None


def _check_every_crs(path: Path, label: str) -> None:
    if path.stat().st_size == 0:
        return
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for found in CRS_KEY.finditer(data):
            value = data[found.end():found.end() + 4096].decode("utf-8", errors="replace")
            try:
                crs, _ = json.JSONDecoder().raw_decode(value)
            except ValueError:
                if value.startswith("{"):
                    raise refuse(label, "states a CRS object too large or malformed to check") from None
                continue
            if isinstance(crs, dict):
                _check_crs(crs, label)


def _check_crs(crs: object, label: str) -> None:
    """Only a CRS name (EPSG:n, urn:ogc:def:crs:...) is accepted: GDAL fetches 'link' CRSs and URLs."""
    ok = False
    if isinstance(crs, dict) and set(crs) == {"type", "properties"} and isinstance(crs["properties"], dict):
        props = crs["properties"]
        if crs["type"] == "name" and set(props) == {"name"}:
            ok = isinstance(props["name"], str) and bool(CRS_NAME.match(props["name"]))
        elif crs["type"] == "EPSG" and set(props) == {"code"}:
            ok = isinstance(props["code"], int)
    if crs is not None and not ok:
        raise refuse(label, "states its CRS in a form that is not accepted; give a CRS name such as EPSG:4326 "
                            "or urn:ogc:def:crs:OGC:1.3:CRS84")


# ---- KML ----

class _KmlRefused(Exception):
    pass


def check_kml(path: Path, label: str, limits: ParseLimits) -> None:
    """Well-formed XML with a kml root; no DOCTYPE or entities, no NetworkLink or linked content."""
    if looks_like(_head(path)) != "XML":
        raise _mismatch(path, "kml", label)
    scan_text(path, label)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[str] = []

    def doctype(*_: object) -> None:
        raise _KmlRefused("declares a DOCTYPE or entities, which are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        local = tag.rsplit(":", 1)[-1]
        if not stack and local.lower() != "kml":
            raise _KmlRefused("is not KML: its root element is not <kml>")
        if local in KML_LINKS:
            raise _KmlRefused(f"holds a <{local}> element; linked content is not accepted")
        if local == "href" and (not stack or stack[-1] not in ("Icon", "ItemIcon")):
            raise _KmlRefused("holds a link (<href>) outside an icon; linked content is not accepted")
        stack.append(local)

    def end(tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack and stack[-1] == "href" and data.strip().lower().startswith(("/vsi", "file:")):
            raise _KmlRefused("holds an icon link to a local or virtual file")

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.ExternalEntityRefHandler = lambda *_: 0
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _KmlRefused as exc:
        raise refuse(label, str(exc)) from None
    except expat.ExpatError as exc:
        raise refuse(label, f"is not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno})") from None


# ---- GeoPackage ----

def check_gpkg(path: Path, label: str, limits: ParseLimits) -> None:
    """A SQLite file marked as GeoPackage, holding tables only: no views, virtual or generated columns.

    Views and generated columns run SQL when read and virtual tables run module code; a GeoPackage
    from a bureau needs none of them (the R-tree spatial index is the one virtual table allowed).
    """
    head = _head(path, 100)
    if not head.startswith(SQLITE_HEADER) or len(head) < 100:
        raise _mismatch(path, "gpkg", label)
    application_id = int.from_bytes(head[68:72], "big")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        raise refuse(label, "is not a readable GeoPackage") from None
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        objects = con.execute("SELECT type, name, coalesce(sql, '') FROM sqlite_master").fetchall()
        tables = {name for kind, name, _ in objects if kind == "table"}
        if "gpkg_contents" not in tables and application_id not in GPKG_APPLICATION_IDS:
            raise refuse(label, "is not a GeoPackage: a SQLite database without the GeoPackage tables")
        for kind, name, sql in objects:
            if kind == "view":
                raise refuse(label, "holds SQL views; only tables are read from a GeoPackage")
            virtual = re.match(r"(?is)\s*create\s+virtual\s+table\s+.*?\busing\s+(\w+)", sql)
            if virtual and virtual.group(1).lower() != "rtree":
                raise refuse(label, "holds a virtual table; only the R-tree spatial index is accepted")
            if kind == "table" and not virtual:
                quoted = '"' + name.replace('"', '""') + '"'
                if any(col[6] in (2, 3) for col in con.execute(f"PRAGMA table_xinfo({quoted})")):
                    raise refuse(label, "holds generated columns; only stored values are read")
    except sqlite3.Error:
        raise refuse(label, "is not a readable GeoPackage") from None
    finally:
        con.close()


# ---- Shapefile ----

def sidecar(shp: Path, suffix: str) -> Path | None:
    """The file next to ``shp`` with the same stem and ``suffix`` (any case), if there is one."""
    exact = shp.with_suffix(suffix)
    if exact.is_file():
        return exact
    for p in shp.parent.iterdir():
        if p.stem == shp.stem and p.suffix.lower() == suffix and p.is_file():
            return p
    return None


def check_shapefile(path: Path, label: str, limits: ParseLimits) -> None:
    """A .shp and .shx with the shapefile header, a .dbf table beside them, a short text .prj/.cpg."""
    for suffix in (".shp", ".shx"):
        part = path if suffix == ".shp" else sidecar(path, suffix)
        if part is None:
            raise refuse(label, f"has no {suffix} file beside it; send the .shp, .shx, .dbf and .prj together")
        head = _head(part, 100)
        if len(head) < 100 or int.from_bytes(head[:4], "big") != 9994 or int.from_bytes(head[28:32], "little") != 1000:
            raise refuse(label, f"is not a Shapefile: its {suffix} content looks like {looks_like(head)}")
    dbf = sidecar(path, ".dbf")
    if dbf is None:
        raise refuse(label, "has no .dbf file beside it; send the .shp, .shx, .dbf and .prj together")
    head = _head(dbf, 32)
    if len(head) < 32 or head[0] not in DBF_VERSIONS:
        raise refuse(label, "is not a Shapefile: its .dbf is not a dBase table")
    for suffix, largest in ((".prj", 64 * 1024), (".cpg", 256)):
        part = sidecar(path, suffix)
        if part is not None:
            if part.stat().st_size > largest:
                raise refuse(label, f"has a {suffix} file too large to be what it claims")
            scan_text(part, label)
