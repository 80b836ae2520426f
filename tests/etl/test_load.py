"""Loading files into PostGIS: readers, CRS paths, every rejection reason, idempotence, atomicity."""

from __future__ import annotations

import json
import zipfile

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from shapely.geometry import Point, Polygon

from etl.errors import InputError, LoadFailed
from etl.load import Actor, load_file
from gis.chinese_offsets import wgs84_to_bd09, wgs84_to_gcj02
from gis.crs import from_wgs84, parse_crs
from layers import db

# WGS84 points with known counties (checked against the AMap boundaries converted to WGS84)
PUKOU = (118.63, 32.06)  # Nanjing, Pukou district 320111
LIUHE = (118.83, 32.36)  # Nanjing, Liuhe district 320116
MAANSHAN = (118.51, 31.69)  # Ma'anshan city proper
CHUZHOU = (118.31, 32.30)  # Chuzhou city proper


def sources(points, **extra) -> gpd.GeoDataFrame:
    n = len(points)
    data = {
        "key": [f"T-{i:03d}" for i in range(n)],
        "name": [f"测试企业{i}" for i in range(n)],
        "category": ["chemical"] * n,
        "m_score": [20] * n,
        "substances": [json.dumps([{"name": "氨", "cas": "7664-41-7", "quantity_t": 3.0}])] * n,
    }
    data.update(extra)
    return gpd.GeoDataFrame(data, geometry=[Point(p) for p in points], crs="EPSG:4326")


def rows(settings, sql: str, *args):
    with db.connect(settings) as conn:
        return conn.execute(sql, args).fetchall()


def test_geojson_load_assigns_jurisdiction_from_location(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE, MAANSHAN]).to_file(path, driver="GeoJSON")
    report = load_file(fresh_db, path, "risk_source")
    assert (report.rows_in, report.rows_inserted, report.rows_rejected, report.exit_code) == (3, 3, 0, 0)
    got = {r["key"]: (r["city_code"], r["county_code"], r["owner_city"])
           for r in rows(fresh_db, "SELECT key, city_code, county_code, owner_city FROM riskatlas.risk_source")}
    assert got["T-000"] == ("320100", "320111", "320100")
    assert got["T-001"] == ("320100", "320116", "320100")
    assert got["T-002"][0] == "340500"
    batch = rows(fresh_db, "SELECT * FROM riskatlas.load_batch WHERE id = %s", report.batch_id)[0]
    assert (batch["status"], batch["rows_in"], batch["rows_inserted"], batch["layer"]) == ("committed", 3, 3,
                                                                                           "risk_source")
    assert len(batch["sha256"]) == 64
    passes = ["read", "validate", "stage", "jurisdiction", "upsert", "bookkeeping", "analyze"]
    assert list(report.seconds) == passes and all(v >= 0 for v in report.seconds.values())
    assert report.to_dict()["seconds"] == report.seconds


def test_reloading_the_same_file_changes_nothing(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE]).to_file(path, driver="GeoJSON")
    load_file(fresh_db, path, "risk_source")
    before = rows(fresh_db, "SELECT key, updated_at, batch_id FROM riskatlas.risk_source ORDER BY key")
    history = rows(fresh_db, "SELECT op, key FROM riskatlas.row_history ORDER BY key")
    assert history == [{"op": "insert", "key": k} for k in sorted(r["key"] for r in before)]
    again = load_file(fresh_db, path, "risk_source")
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 2)
    assert rows(fresh_db, "SELECT key, updated_at, batch_id FROM riskatlas.risk_source ORDER BY key") == before
    assert rows(fresh_db, "SELECT op, key FROM riskatlas.row_history ORDER BY key") == history


def test_a_changed_row_keeps_its_previous_version(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE]).to_file(path, driver="GeoJSON")
    first = load_file(fresh_db, path, "risk_source")
    sources([PUKOU, LIUHE], m_score=[20, 55]).to_file(path, driver="GeoJSON")
    second = load_file(fresh_db, path, "risk_source")
    assert (second.rows_updated, second.rows_unchanged) == (1, 1)
    hist = rows(fresh_db, "SELECT * FROM riskatlas.row_history WHERE op <> 'insert'")
    assert len(hist) == 1
    assert hist[0]["key"] == "T-001" and hist[0]["op"] == "update"
    assert hist[0]["old_row"]["m_score"] == 20 and hist[0]["old_row"]["batch_id"] == first.batch_id
    assert hist[0]["new_row"]["m_score"] == 55 and hist[0]["new_row"]["batch_id"] == second.batch_id
    assert hist[0]["batch_id"] == second.batch_id
    # who acted: the loader's user and role, recorded with the old and the new row
    assert (hist[0]["changed_by"], hist[0]["acting_role"]) == ("riskatlas", "admin")
    inserted = rows(fresh_db, "SELECT key, new_row->>'m_score' AS m FROM riskatlas.row_history "
                              "WHERE op = 'insert' ORDER BY key")
    assert inserted == [{"key": "T-000", "m": "20"}, {"key": "T-001", "m": "20"}]


def test_every_rejection_reason_is_reported_and_nothing_else_is_lost(fresh_db, tmp_path):
    csv = tmp_path / "bad.csv"
    lines = [
        "key,name,category,m_score,lon,lat",
        f"A,好企业,chemical,10,{PUKOU[0]},{PUKOU[1]}",  # 1 fine
        f"B,,chemical,10,{PUKOU[0]},{PUKOU[1] + 0.01}",  # 2 missing name
        f"C,坐标错,chemical,10,{PUKOU[1]},{PUKOU[0]}",  # 3 swapped
        "D,远方,chemical,10,100.0,40.0",  # 4 outside envelope
        f"E,类别错,rocket,10,{LIUHE[0]},{LIUHE[1]}",  # 5 domain
        f"A,重复,chemical,10,{LIUHE[0]},{LIUHE[1]}",  # 6 duplicate key
        f"F,数字错,chemical,abc,{LIUHE[0]},{LIUHE[1]}",  # 7 not a number
        "G,无坐标,chemical,10,,",  # 8 missing geometry
        f"H,超范围,chemical,250,{LIUHE[0]},{LIUHE[1]}",  # 9 above maximum
    ]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_file(fresh_db, csv, "risk_source")
    reasons = {r.row_no: r.reason for r in report.rejects}
    assert report.rows_inserted == 1 and report.rows_rejected == 8 and report.exit_code == 1
    assert "missing required field 'name'" in reasons[2]
    assert "swapped" in reasons[3]
    assert "outside the region's envelope" in reasons[4]
    assert "'category' was 'rocket'" in reasons[5]
    assert "duplicate key 'A' (first at row 1)" in reasons[6]
    assert "'abc' is not a number" in reasons[7]
    assert "missing geometry" in reasons[8]
    assert "above the maximum" in reasons[9]
    stored = rows(fresh_db, "SELECT row_no, reason, record FROM riskatlas.load_reject WHERE batch_id = %s "
                            "ORDER BY row_no", report.batch_id)
    assert [r["row_no"] for r in stored] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert stored[0]["record"]["key"] == "B"  # the raw row is kept with its reason


def _twisted(x: float, y: float, d: float = 0.01) -> Polygon:
    """A square whose northern edge crosses itself once, inwards: make_valid moves a 0.003 % sliver."""
    return Polygon([(x, y), (x + d, y), (x + d, y + d), (x + 0.6 * d, y + d), (x + 0.49 * d, y + 0.97 * d),
                    (x + 0.51 * d, y + 0.97 * d), (x + 0.4 * d, y + d), (x, y + d), (x, y)])


def test_invalid_polygon_is_repaired_when_the_repair_keeps_its_type(fresh_db, tmp_path):
    x, y = PUKOU
    line = shapely.LineString([(x, y), (x + 0.01, y)])
    gdf = gpd.GeoDataFrame({"name": ["扭结", "线"], "kind": ["wetland", "wetland"]},
                           geometry=[_twisted(x, y), line], crs="EPSG:4326")
    path = tmp_path / "pa.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = load_file(fresh_db, path, "protected_area")
    assert report.rows_inserted == 1 and report.repaired == 1
    assert "LineString" in report.rejects[0].reason
    [repair] = report.repairs
    assert (repair.row_no, repair.field) == (1, "geometry")
    assert repair.what.startswith("self-intersection at (") and " fixed by make_valid: area " in repair.what
    assert " km² -> " in repair.what and repair.what.endswith("%)")
    assert report.to_dict()["repairs"] == [{"row_no": 1, "field": "geometry", "what": repair.what}]
    valid = rows(fresh_db, "SELECT ST_IsValid(geom) AS ok, ST_GeometryType(geom) AS t FROM riskatlas.protected_area")
    assert valid == [{"ok": True, "t": "ST_MultiPolygon"}]


def test_repairs_that_would_guess_are_rejected_with_the_reason(fresh_db, tmp_path):
    x, y = PUKOU
    d = 0.01
    bowtie = Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d), (x, y)])
    stray_hole = Polygon([(x, y), (x + d, y), (x + d, y + d), (x, y + d)],
                         [[(x + 3 * d, y), (x + 4 * d, y), (x + 4 * d, y + d), (x + 3 * d, y + d)]])
    gdf = gpd.GeoDataFrame({"name": ["蝴蝶", "孤洞", "好"], "kind": ["wetland"] * 3},
                           geometry=[bowtie, stray_hole, shapely.box(x, y, x + d, y + d)], crs="EPSG:4326")
    path = tmp_path / "pa.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = load_file(fresh_db, path, "protected_area")
    assert (report.rows_inserted, report.rows_rejected, report.repaired, report.repairs) == (1, 2, 0, [])
    reasons = {r.row_no: r.reason for r in report.rejects}
    assert reasons[1].endswith("make_valid would turn its 1 part into 2; fix the geometry at the source")
    assert reasons[2].startswith(f"hole outside its shell at ({x + 3 * d:g}, {y:g}): a digitising error")
    assert {r.field for r in report.rejects} == {"geometry"}
    stored = rows(fresh_db, "SELECT row_no, reason, field FROM riskatlas.load_reject WHERE batch_id = %s "
                            "ORDER BY row_no", report.batch_id)
    assert [(r["row_no"], r["reason"], r["field"]) for r in stored] == [
        (1, reasons[1], "geometry"), (2, reasons[2], "geometry")]
    assert rows(fresh_db, "SELECT count(*) AS n FROM riskatlas.protected_area")[0]["n"] == 1


def test_rings_left_open_are_closed_and_listed(fresh_db, tmp_path):
    x, y = PUKOU
    d = 0.01
    square = [[x, y], [x + d, y], [x + d, y + d], [x, y + d]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "闭合", "kind": "wetland"},
         "geometry": {"type": "Polygon", "coordinates": [square + [square[0]]]}},
        {"type": "Feature", "properties": {"name": "未闭合", "kind": "wetland"},
         "geometry": {"type": "Polygon", "coordinates": [[[x + 2 * d, y]] + [[a + 2 * d, b] for a, b in square[1:]]]}},
    ]}
    path = tmp_path / "open.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = load_file(fresh_db, path, "protected_area")
    assert report.rows_inserted == 2 and report.rows_rejected == 0
    assert report.repaired == 1
    assert [(r.row_no, r.field, r.what) for r in report.repairs] == [(2, "geometry", "ring closed")]
    csv = tmp_path / "open.csv"
    csv.write_text(f'name,kind,wkt\n开口,wetland,"POLYGON(({x} {y + 2 * d},{x + d} {y + 2 * d},'
                   f'{x + d} {y + 3 * d}))"\n', encoding="utf-8")
    report = load_file(fresh_db, csv, "protected_area")
    assert report.rows_inserted == 1 and [(r.row_no, r.what) for r in report.repairs] == [(1, "ring closed")]


def test_failure_after_staging_leaves_no_trace(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE]).to_file(path, driver="GeoJSON")
    load_file(fresh_db, path, "risk_source")
    snapshot = rows(fresh_db, "SELECT key, m_score, updated_at FROM riskatlas.risk_source ORDER BY key")
    history = rows(fresh_db, "SELECT id FROM riskatlas.row_history ORDER BY id")
    # a trigger that fails on the second of three upserted rows, i.e. after staging and mid-upsert
    with db.connect(fresh_db) as conn:
        conn.execute("""CREATE FUNCTION riskatlas.boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.key = 'T-002' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON riskatlas.risk_source
            FOR EACH ROW EXECUTE FUNCTION riskatlas.boom()""")
        conn.commit()
    sources([PUKOU, LIUHE, MAANSHAN], m_score=[30, 31, 32]).to_file(path, driver="GeoJSON")
    with pytest.raises(LoadFailed, match="injected failure"):
        load_file(fresh_db, path, "risk_source")
    assert rows(fresh_db, "SELECT key, m_score, updated_at FROM riskatlas.risk_source ORDER BY key") == snapshot
    assert rows(fresh_db, "SELECT id FROM riskatlas.row_history ORDER BY id") == history
    assert rows(fresh_db, "SELECT count(*) AS n FROM riskatlas.load_reject")[0]["n"] == 0
    statuses = [r["status"] for r in rows(fresh_db, "SELECT status FROM riskatlas.load_batch ORDER BY id")]
    assert statuses[-1] == "failed"  # the attempt is audited; the data is untouched


def test_dry_run_counts_and_writes_nothing(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE]).to_file(path, driver="GeoJSON")
    report = load_file(fresh_db, path, "risk_source", dry_run=True)
    assert report.rows_inserted == 2 and report.batch_id is None
    assert rows(fresh_db, "SELECT count(*) AS n FROM riskatlas.risk_source")[0]["n"] == 0
    assert rows(fresh_db, "SELECT count(*) AS n FROM riskatlas.load_batch WHERE layer = 'risk_source'")[0]["n"] == 0


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "EPSG:4490", "EPSG:4549"])
def test_crs_paths_land_on_the_same_wgs84_point(fresh_db, tmp_path, crs):
    lon, lat = np.array([PUKOU[0]]), np.array([PUKOU[1]])
    x, y = from_wgs84(lon, lat, parse_crs(crs))
    path = tmp_path / "pts.csv"
    path.write_text(f"name,category,x,y\n浦口,chemical,{float(x[0])!r},{float(y[0])!r}\n", encoding="utf-8")
    report = load_file(fresh_db, path, "risk_source", crs=crs)
    assert report.rows_inserted == 1, report.rejects
    got = rows(fresh_db, "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)"
                         " AS d, county_code FROM riskatlas.risk_source", PUKOU[0], PUKOU[1])[0]
    assert got["d"] < 0.5 and got["county_code"] == "320111"


def test_gcj02_offsets_are_real_and_round_trip(fresh_db, tmp_path):
    glon, glat = wgs84_to_gcj02(PUKOU[0], PUKOU[1])
    blon, blat = wgs84_to_bd09(PUKOU[0], PUKOU[1])
    assert abs(glon - PUKOU[0]) > 1e-3 and abs(blon - glon) > 1e-3  # several hundred metres apart
    path = tmp_path / "g.csv"
    path.write_text(f"name,category,经度,纬度\n火星,chemical,{float(glon)!r},{float(glat)!r}\n", encoding="utf-8")
    load_file(fresh_db, path, "risk_source", crs="gcj02")
    d = rows(fresh_db, "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) AS d"
                       " FROM riskatlas.risk_source", PUKOU[0], PUKOU[1])[0]["d"]
    assert d < 0.5


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_and_chinese_mapping(fresh_db, tmp_path, encoding):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("""
x: 经度
y: 纬度
key: 统一社会信用代码
columns: {企业名称: name, 类别: category, 风险等级: risk_level}
values:
  category: {化工: chemical}
  risk_level: {重大: major, 较大: larger, 一般: general}
substances: {name: 物质, cas: CAS, quantity: 存量(kg), unit: kg}
defaults: {status: active}
""", encoding="utf-8")
    path = tmp_path / "bureau.csv"
    path.write_text("统一社会信用代码,企业名称,类别,风险等级,物质,CAS,存量(kg),经度,纬度\n"
                    f"91320100X,南京某化工,化工,重大,氨;氯,7664-41-7;7782-50-5,5000;250,{PUKOU[0]},{PUKOU[1]}\n",
                    encoding=encoding)
    report = load_file(fresh_db, path, "risk_source", mapping=mapping)
    assert report.rows_inserted == 1, report.rejects
    r = rows(fresh_db, "SELECT key, name, category, risk_level, status, substances FROM riskatlas.risk_source")[0]
    assert (r["key"], r["name"], r["category"], r["risk_level"], r["status"]) == (
        "91320100X", "南京某化工", "chemical", "major", "active")
    assert r["substances"] == [{"name": "氨", "cas": "7664-41-7", "quantity_t": 5.0},
                               {"name": "氯", "cas": "7782-50-5", "quantity_t": 0.25}]


def test_wkt_csv(fresh_db, tmp_path):
    path = tmp_path / "wkt.csv"
    path.write_text(f'name,kind,WKT\n湿地,wetland,"POLYGON(({PUKOU[0]} {PUKOU[1]},{PUKOU[0]+0.01} {PUKOU[1]},'
                    f'{PUKOU[0]+0.01} {PUKOU[1]+0.01},{PUKOU[0]} {PUKOU[1]}))"\n', encoding="utf-8")
    report = load_file(fresh_db, path, "protected_area")
    assert report.rows_inserted == 1 and report.exit_code == 0


def test_shapefile_plain_and_zipped_with_projected_crs(fresh_db, tmp_path):
    gdf = sources([PUKOU, LIUHE]).to_crs("EPSG:4549")
    gdf = gdf.drop(columns=["substances"])
    shp = tmp_path / "rs.shp"
    gdf.to_file(shp)
    report = load_file(fresh_db, shp, "risk_source")
    assert report.rows_inserted == 2 and report.crs.endswith("4549")
    zpath = tmp_path / "rs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for part in tmp_path.glob("rs.*"):
            if part.suffix != ".zip":
                zf.write(part, arcname=f"inner/{part.name}")
    again = load_file(fresh_db, zpath, "risk_source")
    assert again.rows_unchanged == 2


def test_kml_and_kmz(fresh_db, tmp_path):
    kml = tmp_path / "st.kml"
    gdf = gpd.GeoDataFrame({"Name": ["站"], "name": ["浦口站"], "medium": ["air"], "kind": ["air-quality"]},
                           geometry=[Point(PUKOU)], crs="EPSG:4326").drop(columns=["Name"])
    gdf.to_file(kml, driver="KML")
    report = load_file(fresh_db, kml, "monitoring_station")
    assert report.rows_inserted == 1, (report.rejects, report.notes)
    kmz = tmp_path / "st.kmz"
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.write(kml, arcname="doc.kml")
    assert load_file(fresh_db, kmz, "monitoring_station").rows_unchanged == 1


def test_bad_calls_raise_input_errors_that_name_the_problem(fresh_db, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_file(fresh_db, tmp_path / "nope.geojson", "risk_source")
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="junk.geojson"):
        load_file(fresh_db, junk, "risk_source")
    with pytest.raises(KeyError, match="expected to be one of"):
        load_file(fresh_db, junk, "rockets")
    path = tmp_path / "x.csv"
    path.write_text("name,category,a,b\nx,chemical,1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="coordinate columns not found"):
        load_file(fresh_db, path, "risk_source")
    nothing = tmp_path / "all_bad.csv"
    nothing.write_text("name,category,lon,lat\n,chemical,1,2\n", encoding="utf-8")
    assert load_file(fresh_db, nothing, "risk_source").exit_code == 2


def test_steward_writes_only_their_own_city(fresh_db, tmp_path):
    path = tmp_path / "rs.geojson"
    sources([PUKOU, CHUZHOU]).to_file(path, driver="GeoJSON")
    report = load_file(fresh_db, path, "risk_source", actor=Actor(user="nj", role="steward", city="320100"))
    assert report.rows_inserted == 1 and report.rows_rejected == 1
    assert "belongs to city 341100" in report.rejects[0].reason
    # the database itself refuses, whatever Python does: the application role under RLS, presenting a
    # steward's context that only the owner could sign
    with db.connect(fresh_db) as owner:
        context = db.set_actor(owner, user="nj", role="steward", city="320100")
    with db.connect(fresh_db, "app") as conn:
        db.act_as(conn, context)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, owner_city, geom)
                            VALUES ('X', 'x', 'other', '341100', ST_SetSRID(ST_MakePoint(118.3, 32.3), 4326))""")
    with db.connect(fresh_db, "app") as conn:
        db.act_as(conn, None)
        assert conn.execute("UPDATE riskatlas.risk_source SET m_score = 99").rowcount == 0


def _index_and_key_count(settings) -> tuple[int, int]:
    with db.connect(settings) as conn:
        i = conn.execute("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = 'riskatlas' "
                         "AND tablename = 'risk_source'").fetchone()["n"]
        k = conn.execute("SELECT count(*) AS n FROM pg_constraint WHERE conrelid = 'riskatlas.risk_source'::regclass "
                         "AND contype = 'f'").fetchone()["n"]
    return i, k


def test_bulk_path_into_an_empty_table_rebuilds_indexes_and_keys(fresh_db, tmp_path, monkeypatch):
    import etl.load

    monkeypatch.setattr(etl.load, "BULK_ROWS", 2)  # the path large loads take, on a small file
    before = _index_and_key_count(fresh_db)
    path = tmp_path / "rs.geojson"
    sources([PUKOU, LIUHE, MAANSHAN]).to_file(path, driver="GeoJSON")
    assert load_file(fresh_db, path, "risk_source").rows_inserted == 3
    assert _index_and_key_count(fresh_db) == before
    with db.connect(fresh_db) as conn:
        conn.execute("SET enable_seqscan = off")  # three rows: make the planner show the index it can use
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
            "EXPLAIN SELECT key FROM riskatlas.risk_source WHERE ST_DWithin(geom::geography, "
            "ST_MakePoint(118.6, 32.0)::geography, 1000)").fetchall())
    assert "risk_source_geog_gist" in plan  # the rebuilt geography index serves metric queries


def test_a_command_line_load_mints_a_context_that_outlasts_a_long_transaction(fresh_db):
    """Every statement of a load checks its context's expiry; the database's default is ten minutes, which a
    million rows on a busy machine can outlast, so a load at the command line mints one for two hours."""
    import time as _time
    from datetime import timedelta

    from etl.load import LOAD_CONTEXT_TTL, _with_context

    context = _with_context(fresh_db, Actor(user="cli")).context
    assert context is not None
    expires = int(context.split(":")[2])
    assert abs(expires - (_time.time() + LOAD_CONTEXT_TTL.total_seconds())) < 120
    with db.connect(fresh_db) as conn:
        short = db.set_actor(conn, user="cli", role="admin")
        assert abs(int(short.split(":")[2]) - (_time.time() + 600)) < 120
        longer = db.set_actor(conn, user="cli", role="admin", ttl=timedelta(minutes=30))
        assert abs(int(longer.split(":")[2]) - (_time.time() + 1800)) < 120
        assert conn.execute("SELECT (riskatlas.actor()).role AS r").fetchone()["r"] == "admin"
        conn.rollback()
