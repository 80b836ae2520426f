"""Hostile uploads: every indirection GDAL could follow is refused, nothing leaks, budgets hold.

Each hostile file is built here, in the test's own folder.  The files that would make GDAL read
another file point at a canary (a CSV holding a unique token) and the ones that would make it fetch
a URL point at a local HTTP server that records every request.  A refusal must name the file by its
base name, never show a server path and never echo the content it refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point

from etl import sandbox
from etl.errors import InputError
from etl.readers import read
from etl.settings import ReadSettings

ROOT = Path(__file__).resolve().parents[2]
PUKOU = (118.63, 32.06)
MiB = 1024**2


@pytest.fixture
def canary(tmp_path: Path) -> tuple[Path, str]:
    """A private CSV holding a unique token that must never come back out."""
    token = f"CANARY-{uuid.uuid4().hex}"
    path = tmp_path / "private" / "canary.csv"
    path.parent.mkdir()
    path.write_text(f"name,secret\nx,{token}\n", encoding="utf-8")
    return path, token


@pytest.fixture
def web() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server on an ephemeral port; yields its base URL and the paths requested."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def vrt(source: str, layer: str = "canary") -> str:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="leak"><SrcDataSource>{source}</SrcDataSource>'
            f"<SrcLayer>{layer}</SrcLayer></OGRVRTLayer></OGRVRTDataSource>\n")


def feature_collection(**extra: object) -> dict:
    return {"type": "FeatureCollection", **extra, "features": [
        {"type": "Feature", "properties": {"name": "浦口"}, "geometry": {"type": "Point", "coordinates": list(PUKOU)}}]}


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def small_gpkg(path: Path) -> Path:
    gpd.GeoDataFrame({"name": ["浦口"]}, geometry=[Point(PUKOU)], crs="EPSG:4326").to_file(
        path, driver="GPKG", layer="pts")
    return path


# Each builder gets (folder, canary path, base URL) and returns the hostile file.
Builder = Callable[[Path, Path, str], Path]


def _text(name: str, content: Callable[[Path, str], str]) -> Builder:
    def build(d: Path, canary: Path, url: str) -> Path:
        path = d / name
        path.write_text(content(canary, url), encoding="utf-8")
        return path
    return build


def _zip(name: str, members: Callable[[Path, str], dict[str, str | bytes]]) -> Builder:
    return lambda d, canary, url: write_zip(d / name, members(canary, url))


def _virtual_ogr_gpkg(d: Path, canary: Path, url: str) -> Path:
    path = small_gpkg(d / "virtual.gpkg")
    con = sqlite3.connect(path)
    con.execute("PRAGMA writable_schema=ON")
    con.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
                "('table', 'leak', 'leak', 0, ?)", (f"CREATE VIRTUAL TABLE leak USING VirtualOGR('{canary}')",))
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES ('leak', 'attributes', 'leak')")
    con.commit()
    con.close()
    return path


def _view_gpkg(d: Path, canary: Path, url: str) -> Path:
    path = small_gpkg(d / "view.gpkg")
    con = sqlite3.connect(path)
    con.execute("CREATE VIEW leak AS SELECT fid, name, geom FROM pts")
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                "VALUES ('leak', 'features', 'leak', 4326)")
    con.execute("INSERT INTO gpkg_geometry_columns VALUES ('leak', 'geom', 'POINT', 4326, 0, 0)")
    con.commit()
    con.close()
    return path


def _lying_geojson(d: Path, canary: Path, url: str) -> Path:
    path = small_gpkg(d / "real.gpkg")
    return path.rename(d / "lie.geojson")


def _symlink_zip(d: Path, canary: Path, url: str) -> Path:
    path = d / "symlink.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("leak.geojson")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, str(canary))
    return path


def _nested_zip(d: Path, canary: Path, url: str) -> Path:
    inner = write_zip(d / "inner.zip", {"pts.geojson": json.dumps(feature_collection())})
    path = write_zip(d / "nested.zip", {"inner.zip": inner.read_bytes()})
    inner.unlink()
    return path


KML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
PLACEMARK = f"<Placemark><name>{{name}}</name><Point><coordinates>{PUKOU[0]},{PUKOU[1]}</coordinates></Point></Placemark>"

HOSTILE: dict[str, Builder] = {
    "vrt-in-json": _text("x.json", lambda c, u: vrt(str(c))),
    "vrt-in-geojson": _text("x.geojson", lambda c, u: vrt(f"CSV:{c}")),
    "vrt-in-kml": _text("x.kml", lambda c, u: vrt(str(c))),
    "vrt-in-gpkg": _text("x.gpkg", lambda c, u: vrt(str(c))),
    "vrt-in-shp": _text("x.shp", lambda c, u: vrt(str(c))),
    "vrt-in-csv": _text("x.csv", lambda c, u: vrt(str(c))),
    "vrt-reads-passwd": _text("passwd.json", lambda c, u: vrt("CSV:/etc/passwd", "passwd")),
    "vrt-vsicurl": _text("remote.json", lambda c, u: vrt(f"/vsicurl/{u}/leak.csv", "leak")),
    "vrt-in-zip": _zip("x.zip", lambda c, u: {"data/leak.geojson": vrt(str(c))}),
    "vrt-shp-in-zip": _zip("shp.zip", lambda c, u: {"leak.shp": vrt(str(c)), "leak.dbf": b"\x03", "leak.shx": b""}),
    "vsicurl-in-zip": _zip("remote.zip", lambda c, u: {"leak.kml": vrt(f"/vsicurl/{u}/leak.csv", "leak")}),
    "vrt-in-kmz": _zip("x.kmz", lambda c, u: {"doc.kml": vrt(str(c))}),
    "kml-external-entity": _text("xxe.kml", lambda c, u: (
        f'{KML_HEAD}<!DOCTYPE kml [<!ENTITY leak SYSTEM "file://{c}">]>\n'
        f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{PLACEMARK.format(name="&leak;")}</Document></kml>')),
    "kml-passwd-entity": _text("passwd.kml", lambda c, u: (
        f'{KML_HEAD}<!DOCTYPE kml [<!ENTITY leak SYSTEM "file:///etc/passwd">]>\n'
        f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{PLACEMARK.format(name="&leak;")}</Document></kml>')),
    "kml-internal-entities": _text("laughs.kml", lambda c, u: (
        f'{KML_HEAD}<!DOCTYPE kml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{PLACEMARK.format(name="&b;")}</Document></kml>')),
    "kml-network-link": _text("link.kml", lambda c, u: (
        f'{KML_HEAD}<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<NetworkLink><Link><href>{u}/more.kml</href></Link></NetworkLink>{PLACEMARK.format(name='a')}"
        "</Document></kml>")),
    "kml-not-kml": _text("feed.kml", lambda c, u: (
        f'{KML_HEAD}<rss><channel><item><title>{c}</title></item></channel></rss>')),
    "geojson-crs-link": _text("crs.geojson", lambda c, u: json.dumps(feature_collection(
        crs={"type": "link", "properties": {"href": f"{u}/crs.prj", "type": "proj4"}}))),
    "geojson-crs-url": _text("crsname.geojson", lambda c, u: json.dumps(feature_collection(
        crs={"type": "name", "properties": {"name": f"{u}/crs.gml"}}))),
    "geojson-geometry-crs-link": _text("geomcrs.geojson", lambda c, u: json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": list(PUKOU),
                                                                     "crs": {"type": "link", "properties": {
                                                                         "href": f"{u}/geom.prj", "type": "proj4"}}}}]})),
    "geojson-escaped-crs-key": _text("esc.geojson", lambda c, u: json.dumps({"type": "Point", "coordinates": list(PUKOU),
        "CRS": {"type": "link", "properties": {"href": f"{u}/esc.prj", "type": "proj4"}}}).replace('"CRS"', '"\\u0043rs"')),
    "esri-json": _text("esri.json", lambda c, u: json.dumps({
        "geometryType": "esriGeometryPoint", "spatialReference": {"wkid": 4326},
        "fields": [{"name": "name", "type": "esriFieldTypeString"}],
        "features": [{"attributes": {"name": "a"}, "geometry": {"x": PUKOU[0], "y": PUKOU[1]}}]})),
    "topojson": _text("topo.json", lambda c, u: json.dumps({
        "type": "Topology", "objects": {"a": {"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": list(PUKOU), "properties": {"name": "a"}}]}}, "arcs": []})),
    "geojson-raw-nul": _text("nul.geojson", lambda c, u: json.dumps(feature_collection(), ensure_ascii=False).replace(
        "浦口", "a\x00b")),
    "geojson-escaped-nul": _text("nul2.geojson", lambda c, u: json.dumps(feature_collection(), ensure_ascii=False).replace(
        "浦口", "a\\u0000b")),
    "gpkg-that-is-csv": _text("table.gpkg", lambda c, u: f"name,category,lon,lat\na,chemical,{PUKOU[0]},{PUKOU[1]}\n"),
    "geojson-that-is-gpkg": _lying_geojson,
    "gpkg-virtual-ogr": _virtual_ogr_gpkg,
    "gpkg-view": _view_gpkg,
    "zip-parent-member": _zip("up.zip", lambda c, u: {"../leak.geojson": json.dumps(feature_collection())}),
    "zip-absolute-member": _zip("abs.zip", lambda c, u: {"/tmp/leak.geojson": json.dumps(feature_collection())}),
    "zip-symlink-member": _symlink_zip,
    "zip-nested-archive": _nested_zip,
}


@pytest.mark.parametrize("sandboxed", [False, True], ids=["in-process", "sandbox"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_is_refused_and_leaks_nothing(case, sandboxed, tmp_path, canary, web):
    canary_path, token = canary
    url, hits = web
    folder = tmp_path / "upload"
    folder.mkdir()
    path = HOSTILE[case](folder, canary_path, url)
    with pytest.raises(InputError) as caught:
        read(path, sandbox=sandboxed)
    message = str(caught.value)
    assert message.startswith(f"file {path.name}:"), message
    assert token not in message and "root:x:0" not in message
    assert str(tmp_path) not in message and "/tmp" not in message, message
    assert "OGRVRTDataSource" not in message and "<!ENTITY" not in message
    assert hits == [], f"the read sent HTTP requests: {hits}"


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few MB that unpack to 544 MiB of whitespace GeoJSON, past the default 512 MiB limit."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    spaces = b" " * MiB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("bomb.geojson", "w", force_zip64=True) as fh:
            fh.write(b'{"type": "FeatureCollection", "features": [')
            for _ in range(544):
                fh.write(spaces)
            fh.write(b"]}")
    return path


@pytest.mark.parametrize("sandboxed", [False, True], ids=["in-process", "sandbox"])
def test_zip_bomb_is_refused_before_unpacking(zip_bomb, sandboxed):
    assert zip_bomb.stat().st_size < 4 * MiB
    started = time.monotonic()
    with pytest.raises(InputError, match=r"^file bomb\.zip: .*(unpack|compress)") as caught:
        read(zip_bomb, sandbox=sandboxed)
    assert time.monotonic() - started < 10, "the bomb was refused, but only after unpacking it"
    assert str(zip_bomb.parent) not in str(caught.value)


def test_highly_compressed_member_is_refused_below_the_size_limit(tmp_path):
    path = tmp_path / "dense.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("dense.geojson", b'{"type": "FeatureCollection", "features": [' + b" " * (32 * MiB) + b"]}")
    with pytest.raises(InputError, match=r"^file dense\.zip: .*compress"):
        read(path, sandbox=False)


def test_unpacked_size_limit_is_a_setting(tmp_path):
    path = tmp_path / "big.zip"
    rng = np.random.default_rng(1)
    props = [{"type": "Feature", "properties": {"v": rng.random()}, "geometry": {
        "type": "Point", "coordinates": [float(rng.uniform(118, 119)), float(rng.uniform(31, 33))]}} for _ in range(3000)]
    write_zip(path, {"big.geojson": json.dumps({"type": "FeatureCollection", "features": props})})
    assert len(read(path, sandbox=False)) == 3000
    with pytest.raises(InputError, match=r"^file big\.zip: unpacks to .* more than the limit of 65536 bytes"):
        read(path, sandbox=False, settings=ReadSettings(max_unpacked_bytes=65536))


# ---- ordinary files still read, in and out of the sandbox, to the same table ----

def _sources() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": ["甲", "乙"], "category": ["chemical", "chemical"], "m_score": [20, 31]},
                            geometry=[Point(PUKOU), Point(PUKOU[0] + 0.1, PUKOU[1] + 0.1)], crs="EPSG:4326")


def _valid(kind: str, d: Path) -> Path:
    gdf = _sources()
    if kind in ("geojson", "json"):
        gdf.to_file(d / f"rs.{kind}", driver="GeoJSON")
        return d / f"rs.{kind}"
    if kind == "gpkg":
        gdf.to_file(d / "rs.gpkg", driver="GPKG")
        return d / "rs.gpkg"
    if kind in ("shp", "shp-zip"):
        gdf.to_crs("EPSG:4549").to_file(d / "rs.shp")
        if kind == "shp":
            return d / "rs.shp"
        return write_zip(d / "rs.zip", {f"inner/{p.name}": p.read_bytes() for p in d.glob("rs.*")})
    if kind == "geojson-zip":
        gdf.to_file(d / "rs.geojson", driver="GeoJSON")
        return write_zip(d / "rs.zip", {"rs.geojson": (d / "rs.geojson").read_bytes(), "readme.txt": "data"})
    if kind in ("kml", "kmz"):
        gdf[["name", "geometry"]].to_file(d / "rs.kml", driver="KML")
        if kind == "kml":
            return d / "rs.kml"
        return write_zip(d / "rs.kmz", {"doc.kml": (d / "rs.kml").read_bytes()})
    if kind == "csv":
        (d / "rs.csv").write_text(f"name,category,lon,lat,note\n甲,chemical,{PUKOU[0]},{PUKOU[1]},\n"
                                  f"乙,chemical,{PUKOU[0] + 0.1},{PUKOU[1] + 0.1},x\n", encoding="gb18030")
        return d / "rs.csv"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["geojson", "json", "gpkg", "shp", "shp-zip", "geojson-zip", "kml", "kmz", "csv"])
def test_valid_files_read_the_same_in_and_out_of_the_sandbox(kind, tmp_path):
    path = _valid(kind, tmp_path)
    inside, outside = read(path, sandbox=True), read(path, sandbox=False)
    assert len(inside) == len(outside) == 2
    assert inside.path == outside.path == path
    assert (inside.crs, inside.encoding) == (outside.crs, outside.encoding)
    pd.testing.assert_frame_equal(inside.frame, outside.frame)
    assert all(shapely.equals(a, b) for a, b in zip(inside.geometry, outside.geometry))
    name = "Name" if kind in ("kml", "kmz") else "name"  # KML keeps the name in <name>
    assert set(inside.frame[name].astype(str)) == {"甲", "乙"}


# ---- the sandbox itself ----

def test_parse_time_budget_gives_a_clear_error(tmp_path):
    path = _valid("geojson", tmp_path)
    with pytest.raises(InputError, match=r"^file rs\.geojson: parsing exceeded the time budget of 0\.05 s$"):
        read(path, sandbox=True, settings=ReadSettings(parse_seconds=0.05))


def test_parse_memory_budget_gives_a_clear_error(tmp_path):
    path = tmp_path / "heavy.geojson"
    features = [{"type": "Feature", "properties": {"name": f"n{i}", "note": "x" * 200},
                 "geometry": {"type": "Point", "coordinates": [PUKOU[0], PUKOU[1]]}} for i in range(60_000)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    assert len(read(path, sandbox=True)) == 60_000
    with pytest.raises(InputError, match=r"^file heavy\.geojson: parsing exceeded the memory budget of 32 MiB$"):
        read(path, sandbox=True, settings=ReadSettings(parse_memory_bytes=32 * MiB))


def test_parse_child_cannot_read_the_state_folder(tmp_path, web):
    secrets = ROOT / ".riskatlas" / "secrets.json"
    assert secrets.exists() and (secrets.stat().st_mode & 0o077) == 0
    url, hits = web
    probe = (
        "import json, os, sys, urllib.request\n"
        "out = {'uid': os.getuid(), 'env': sorted(os.environ)}\n"
        "try:\n"
        f"    open({str(secrets)!r}).read(); out['secrets'] = 'read'\n"
        "except PermissionError:\n"
        "    out['secrets'] = 'denied'\n"
        "try:\n"
        f"    urllib.request.urlopen({url + '/probe'!r}, timeout=2); out['net'] = 'reached'\n"
        "except OSError:\n"
        "    out['net'] = 'unreachable'\n"
        "import etl.parse, pyogrio\n"
        "out['imports'] = 'ok'\n"
        "print(json.dumps(out))\n")
    done = sandbox.run_child(["-c", probe], tmp_path, ReadSettings())
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["secrets"] == "denied"
    assert out["uid"] != 0
    assert not any(k.startswith(("RISKATLAS_", "DATABASE_URL", "PG")) for k in out["env"])
    assert out["imports"] == "ok"
    assert out["net"] == "unreachable" and hits == []


def test_cli_load_refuses_a_hostile_file_without_leaking(fresh_db, tmp_path, canary):
    canary_path, token = canary
    path = tmp_path / "x.json"
    path.write_text(vrt(str(canary_path)), encoding="utf-8")
    env = {**os.environ, "RISKATLAS_DB_NAME": fresh_db.db_name, "RISKATLAS_PG_PORT": str(fresh_db.pg_port),
           "RISKATLAS_STATE_DIR": str(fresh_db.state_dir)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "services.cli", "load", str(path), "--layer", "risk_source",
                           "--dry-run", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error.startswith("file x.json:")
    assert token not in done.stdout + done.stderr and str(tmp_path) not in done.stdout
