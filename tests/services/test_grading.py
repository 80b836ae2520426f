"""Grading against a built world (two rivers, a protection zone, a forest park, a population raster
written here) with every expected grade worked out by hand; the set-based water facts against the
one-point river walk on the demo region; the explanation endpoint; scopes, history and bad data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from rasterio.transform import from_origin
from shapely.geometry import mapping, shape
from shapely.ops import substring

from etl.load import load_file
from etl.raster import register_raster
from layers import db
from layers.settings import DatabaseSettings
from services import grading
from services import river as rn
from services.web.app import create_app
from services.web.settings import APISettings
from tests.services.river_reference import features_along, jurisdictions_along

ROOT = Path(__file__).resolve().parents[2]
GEOD = Geod(ellps="WGS84")
ORIGIN = (118.3, 32.3)  # top-left of the test raster
CELL = 0.005
BASE_PER_CELL = 50.0
HOT_SPOT = 10_000.0
A = (118.6013, 32.0221)  # beside river 1, 4 km above a protection zone, on a crowded cell
RASTER_SHAPE = (180, 260)

SOURCES = {
    "A": (A, [{"name": "液氨", "cas": "7664-41-7", "quantity_t": 30.0}], 50),
    "B": ((118.9013, 32.0221), [{"name": "benzene", "cas": "71-43-2", "quantity_t": 25.0},
                                {"name": "甲烷", "cas": "74-82-8", "quantity_t": 40.0}], 20),
    "C": ((118.4613, 31.6121), [{"name": "toluene", "cas": "108-88-3", "quantity_t": 150.0}], 30),
    "D": ((119.2013, 31.5021), [{"name": "chlorine", "cas": "7782-50-5", "quantity_t": 150.0}], 70),
    "E": ((119.1013, 31.8021), [{"name": "某物质", "cas": "1234-56-7", "quantity_t": 1.0}], 40),
    "F": ((119.0013, 31.7021), [{"name": "苯", "cas": "71-43-2", "quantity_t": 5.0}], 40),
    "G": ((118.7513, 31.9021), [{"name": "苯", "cas": "71-43-2", "quantity_t": 1.0}], 90),
    # an M for each medium (HJ 941 §6.2, §7.2), no river within 2 km (water E3)
    "H": ((119.1513, 31.5521), [{"name": "甲苯", "cas": "108-88-3", "quantity_t": 300.0}], {"m_air": 30, "m_water": 10}),
    # no M at all: Q and E are graded, the level waits for M
    "I": ((119.2013, 31.5521), [{"name": "氨", "cas": "7664-41-7", "quantity_t": 10.0}], None),
}
# By hand: Q = q/Q per line (HJ 169; air and water each count their own substances, HJ 941 §6.1/§7.1),
# M band per medium, E from the facts built below, the matrix of DESIGN 8.1.
EXPECTED = {
    "A": ("major", "重大[重大-大气(Q1-M3-E1)+重大-水(Q1-M3-E1)]", 6.0, 6.0),
    "B": ("general", "一般[一般-大气(Q1-M1-E2)+一般-水(Q1-M1-E2)]", 6.5, 2.5),
    "C": ("larger", "较大[较大-大气(Q2-M2-E2)+较大-水(Q2-M2-E2)]", 15.0, 15.0),
    # 150 t of chlorine: 150 for air; chlorine is not among the gases §7.1 counts for water, so water is Q0
    "D": ("major", "重大[重大-大气(Q3-M4-E2)+一般-水(Q0)]", 150.0, 0.0),
    "G": ("general", "一般[一般-大气(Q0)+一般-水(Q0)]", 0.1, 0.1),
    # 300 t toluene / 10 t = 30 for both; air E2/Q2/M2 (m_air 30) larger, water E3/Q2/M1 (m_water 10) general
    "H": ("larger", "较大[较大-大气(Q2-M2-E2)+一般-水(Q2-M1-E3)]", 30.0, 30.0),
}
# 10 t ammonia / 5 t = 2 for both media (Q1), no M: air E2/Q1 could be general, larger, larger or major
# (M1..M4); water E3/Q1 general, general, larger or larger; the enterprise general to major.
PENDING_I = ("一般~重大[一般~重大-大气(Q1-M?-E2)+一般~较大-水(Q1-M?-E3)]", 2.0, ("general", "major"))


def _geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def _feature(geom: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def _population(path: Path) -> Path:
    values = np.full(RASTER_SHAPE, BASE_PER_CELL, dtype="float32")
    values[int((ORIGIN[1] - A[1]) / CELL), int((A[0] - ORIGIN[0]) / CELL)] += HOT_SPOT
    with rasterio.open(path, "w", driver="GTiff", width=RASTER_SHAPE[1], height=RASTER_SHAPE[0], count=1,
                       dtype="float32", crs="EPSG:4326", transform=from_origin(*ORIGIN, CELL, CELL)) as ds:
        ds.write(values, 1)
        ds.update_tags(unit="persons per cell")
    return path


def _m_fields(m: int | dict[str, int] | None) -> dict[str, int]:
    """A number is a file's one M (m_score); a dict gives each medium's own."""
    return {} if m is None else {"m_score": m} if isinstance(m, int) else m


def _sources(path: Path, keys: list[str]) -> Path:
    return _geojson(path, [_feature(shapely.Point(*SOURCES[k][0]), key=k, name=f"测试企业{k}", category="chemical",
                                    substances=SOURCES[k][1], status="active", **_m_fields(SOURCES[k][2]))
                           for k in keys])


@pytest.fixture
def world(fresh_db: DatabaseSettings, tmp_path: Path) -> DatabaseSettings:
    """River 1 runs east along 32.02°N in Nanjing; river 2 runs from Ma'anshan (Anhui) into Nanjing."""
    xs = [118.55, 118.85, 119.15, 119.45]
    reaches = [_feature(shapely.LineString([(xs[i], 32.02), (xs[i + 1], 32.02)]), key=f"R1-{i}", name="东西河",
                        river_class="major", velocity_ms=1.0) for i in range(3)]
    reaches += [_feature(shapely.LineString([(118.45, 31.60), (118.575, 31.725)]), key="R2-0", name="南北河",
                         river_class="major", velocity_ms=1.0),
                _feature(shapely.LineString([(118.575, 31.725), (118.70, 31.85)]), key="R2-1", name="南北河",
                         river_class="major", velocity_ms=1.0)]
    assert load_file(fresh_db, _geojson(tmp_path / "river.geojson", reaches), "river").rows_inserted == 5
    zone = shapely.box(118.64, 32.015, 118.66, 32.025)
    assert load_file(fresh_db, _geojson(tmp_path / "zone.geojson", [_feature(
        zone, key="PZ-1", reserve_key="W-1", name="测试一级保护区", level="1")]), "protection_zone").rows_inserted == 1
    park = shapely.box(118.95, 32.01, 118.97, 32.03)
    assert load_file(fresh_db, _geojson(tmp_path / "park.geojson", [_feature(
        park, key="FP-1", name="测试森林公园", kind="forest-park", rank="provincial")]),
        "protected_area").rows_inserted == 1
    register_raster(fresh_db, _population(tmp_path / "population.tif"), "population")
    assert load_file(fresh_db, _sources(tmp_path / "sources.geojson", list(SOURCES)), "risk_source").rows_inserted == 9
    with db.connect(fresh_db) as conn:  # a negative quantity the ETL would have refused, written behind its back
        conn.execute("""UPDATE riskatlas.risk_source SET substances = '[{"name": "苯", "cas": "71-43-2",
                        "quantity_t": -5}]'::jsonb WHERE key = 'F'""")
        conn.commit()
    return fresh_db


def _overlay(lon: float, lat: float, radius_m: float) -> float:
    """Persons within the geodesic circle, cell by cell with shapely (independent of gis.grading)."""
    az = np.linspace(0, 360, 1440, endpoint=False)
    x, y, _ = GEOD.fwd(np.full(az.size, lon), np.full(az.size, lat), az, np.full(az.size, radius_m))
    circle = shapely.Polygon(np.column_stack([x, y]))
    total = 0.0
    minx, miny, maxx, maxy = circle.bounds
    for r in range(int((ORIGIN[1] - maxy) / CELL) - 1, int((ORIGIN[1] - miny) / CELL) + 2):
        for c in range(int((minx - ORIGIN[0]) / CELL) - 1, int((maxx - ORIGIN[0]) / CELL) + 2):
            cell = shapely.box(ORIGIN[0] + c * CELL, ORIGIN[1] - (r + 1) * CELL, ORIGIN[0] + (c + 1) * CELL,
                               ORIGIN[1] - r * CELL)
            value = BASE_PER_CELL + (HOT_SPOT if (r, c) == (int((ORIGIN[1] - A[1]) / CELL),
                                                            int((A[0] - ORIGIN[0]) / CELL)) else 0.0)
            total += value * cell.intersection(circle).area / cell.area
    return total


def _grades(s: DatabaseSettings) -> dict[str, dict[str, Any]]:
    with db.connect(s) as conn:
        rows = conn.execute("""SELECT s.key, s.q_value, s.q_band, s.air_level, s.water_level, s.risk_level, s.grade_label,
                                      s.grade_status, g.status, g.reasons, g.q_air, g.q_water, g.pop_far, g.pop_near,
                                      g.e_air, g.e_water, g.water, g.substances, g.air_cell, g.water_cell, g.label,
                                      g.m_score, g.m_air, g.m_water, g.m_air_band, g.m_water_band, g.m_note,
                                      g.level_min, g.level_max
                               FROM riskatlas.risk_source s LEFT JOIN riskatlas.risk_grade g ON g.source_key = s.key
                               ORDER BY s.key""").fetchall()
    return {r["key"]: r for r in rows}


def test_grades_match_the_hand_computation(world: DatabaseSettings) -> None:
    report = grading.grade_sources(world, scope="all")
    assert (report.sources, report.graded, report.pending, report.rejected, report.changed) == (9, 6, 1, 2, 7)
    assert report.one_m_for_both == 7  # A to G carry one M (m_score) for both media
    got = _grades(world)
    for key, (level, label, q_air, q_water) in EXPECTED.items():
        g = got[key]
        assert (g["risk_level"], g["grade_label"], g["status"], g["label"]) == (level, label, "graded", label), key
        assert g["grade_status"] == "graded" and (g["level_min"], g["level_max"]) == (level, level), key
        assert g["q_air"] == pytest.approx(q_air) and g["q_water"] == pytest.approx(q_water)
        assert g["q_value"] == pytest.approx(max(q_air, q_water))
        assert g["q_band"] == max(re.findall(r"\((Q\d)", label)), key  # the band of the larger Q
    assert [r["key"] for r in got["A"]["water"]["receptors"]] == ["PZ-1"]
    to_zone = GEOD.inv(A[0], 32.02, 118.64, 32.02)[2] - 500.0  # where the river first comes within 500 m
    assert got["A"]["water"]["receptors"][0]["at_m"] == pytest.approx(to_zone, abs=5.0)
    assert [r["key"] for r in got["B"]["water"]["receptors"]] == ["FP-1"]
    assert got["C"]["water"]["crosses_province"] and [p["code"] for p in got["C"]["water"]["provinces"]] == [
        "340000", "320000"]
    assert got["D"]["water"]["reach"] is None and got["D"]["e_water"] == "E3"
    assert got["A"]["substances"] == SOURCES["A"][1]  # the inventory as graded is kept with the grade


def test_water_q_counts_only_what_hj941_7_1_counts(world: DatabaseSettings) -> None:
    """10 t of liquid chlorine alone (q/Q = 10) made water Q2; §7.1 counts chlorine for air only."""
    with db.connect(world) as conn:
        conn.execute("""UPDATE riskatlas.risk_source SET substances = '[{"name": "液氯", "cas": "7782-50-5",
                        "quantity_t": 10}, {"name": "氨氮浓度≥2000mg/L的废液", "quantity_t": 15}]'::jsonb
                        WHERE key = 'D'""")
        conn.commit()
    grading.grade_sources(world, scope="keys", keys=["D"])
    d = _grades(world)["D"]
    # chlorine 10/1 = 10 for air only; the NH3-N waste liquor 15/5 = 3 for water only (§6.1 leaves it out of air)
    assert (d["q_air"], d["q_water"]) == (pytest.approx(10.0), pytest.approx(3.0))
    assert d["grade_label"] == "重大[重大-大气(Q2-M4-E2)+较大-水(Q1-M4-E3)]"


def test_each_medium_has_its_own_m_and_one_m_serves_both(world: DatabaseSettings) -> None:
    grading.grade_sources(world, scope="all")
    got = _grades(world)
    h, a = got["H"], got["A"]
    assert (h["m_air"], h["m_water"], h["m_air_band"], h["m_water_band"]) == (30, 10, "M2", "M1")
    assert h["m_score"] is None and h["m_note"].startswith("m_air and m_water")
    assert (a["m_score"], a["m_air"], a["m_water"], a["m_air_band"], a["m_water_band"]) == (50, 50, 50, "M3", "M3")
    assert a["m_note"].startswith("one M for both media")


def test_a_source_without_m_gets_q_e_and_the_range_of_levels(world: DatabaseSettings, tmp_path: Path) -> None:
    report = grading.grade_sources(world, scope="all")
    i = _grades(world)["I"]
    label, q, (lo, hi) = PENDING_I
    assert (i["status"], i["grade_status"], i["grade_label"], i["label"]) == ("pending-m", "pending-m", label, label)
    assert (i["q_air"], i["q_water"], i["q_value"], i["q_band"]) == (
        pytest.approx(q), pytest.approx(q), pytest.approx(q), "Q1")
    assert (i["e_air"], i["e_water"], i["air_cell"], i["water_cell"]) == ("E2", "E3", "E2/Q1/M?", "E3/Q1/M?")
    assert (i["level_min"], i["level_max"], i["risk_level"], i["air_level"], i["water_level"]) == (
        lo, hi, None, None, None)
    assert report.rejected == 2 and "I" not in {r["key"] for r in report.rejects}
    with db.connect(world, "app") as conn:
        pending = grading.pending_sources(conn)
        assert [p["key"] for p in pending] == ["I"] and pending[0]["needs_m_for"] == ["air", "water"]
        assert grading.pending_sources(conn, city="320100") == []  # I lies in Liyang (Changzhou)
    # the steward scores M: the source leaves the list
    with db.connect(world) as conn:
        conn.execute("UPDATE riskatlas.risk_source SET m_air = 50, m_water = 20 WHERE key = 'I'")
        conn.commit()
    grading.grade_sources(world, scope="keys", keys=["I"])
    i = _grades(world)["I"]
    # air E2/Q1/M3 larger, water E3/Q1/M1 general
    assert (i["grade_status"], i["grade_label"]) == ("graded", "较大[较大-大气(Q1-M3-E2)+一般-水(Q1-M1-E3)]")


def test_the_load_report_says_when_one_m_serves_both_media(world: DatabaseSettings, tmp_path: Path) -> None:
    from services.after_load import after_load

    SOURCES["A"] = (A, SOURCES["A"][1], 55)
    try:
        load = load_file(world, _sources(tmp_path / "a.geojson", ["A", "H"]), "risk_source")
    finally:
        SOURCES["A"] = (A, SOURCES["A"][1], 50)
    derived = after_load(world, "risk_source", load.batch_id).to_dict()
    assert derived["grading"]["one_m_for_both"] == 1 and derived["grading"]["pending"] == 0
    assert any("1 source(s) give one M (m_score): it is used for both air and water" in n for n in derived["notes"])


def test_pending_sources_are_a_filter_of_the_api_and_a_cli_listing(world: DatabaseSettings, tmp_path: Path) -> None:
    grading.grade_sources(world, scope="all")
    with TestClient(create_app(world, APISettings())) as client:
        r = client.get("/collections/risk_source/items", params={"filter": "grade_status = 'pending-m'"})
        assert r.status_code == 200, r.text
        assert [f["properties"]["key"] for f in r.json()["features"]] == ["I"]
        props = r.json()["features"][0]["properties"]
        assert props["grade_label"] == PENDING_I[0] and props["q_band"] == "Q1" and "q_value" not in props
        q = client.get("/collections/risk_source/queryables").json()["properties"]
        assert q["grade_status"]["enum"] == ["graded", "pending-m"] and "m_air" in q and "m_water" in q
    env = {**os.environ, "RISKATLAS_DB_NAME": world.db_name, "RISKATLAS_PG_PORT": str(world.pg_port),
           "RISKATLAS_STATE_DIR": str(world.state_dir)}
    env.pop("DATABASE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "grade", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    done = cli("--pending", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["count"] == 1 and listing["sources"][0]["key"] == "I"
    assert listing["sources"][0]["levels"] == list(PENDING_I[2]) and listing["sources"][0]["label"] == PENDING_I[0]
    done = cli("--pending", "--city", "nanjing", "--json")
    assert done.returncode == 2 and "--city" in json.loads(done.stdout)["error"]
    done = cli("--pending", "--all", "--json")
    assert done.returncode == 2 and "--pending" in json.loads(done.stdout)["error"]


def test_population_matches_an_independent_overlay(world: DatabaseSettings) -> None:
    grading.grade_sources(world, scope="all")
    got = _grades(world)
    for key in ("A", "B", "D"):
        (lon, lat), _, _ = SOURCES[key]
        assert got[key]["pop_far"] == pytest.approx(_overlay(lon, lat, 5_000.0), rel=1e-3), key
        assert got[key]["pop_near"] == pytest.approx(_overlay(lon, lat, 500.0), rel=1e-3, abs=0.1), key
    assert got["A"]["e_air"] == "E1" and got["A"]["pop_near"] >= 1_000
    assert got["B"]["e_air"] == "E2" and 10_000 <= got["B"]["pop_far"] < 50_000


def test_bad_inventories_are_rejected_with_reasons_and_keep_their_levels(world: DatabaseSettings) -> None:
    grading.grade_sources(world, scope="all")
    got = _grades(world)
    assert got["E"]["status"] == "rejected" and "CAS '1234-56-7' is not in the HJ 169 table" in got["E"]["reasons"][0]
    assert got["F"]["status"] == "rejected" and "quantity -5 t is negative" in got["F"]["reasons"][0]
    for key in ("E", "F"):
        assert got[key]["risk_level"] is None and got[key]["grade_label"] is None


def test_batch_and_stale_scopes_and_history(world: DatabaseSettings, tmp_path: Path) -> None:
    first = grading.grade_sources(world, scope="all")
    assert grading.grade_sources(world, scope="stale").sources == 0
    with db.connect(world) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.row_history WHERE changed_by = 'riskatlas-grade'"
                            ).fetchone()["n"] == 0  # a first grade keeps no history, as an insert keeps none
    SOURCES["A"] = (A, SOURCES["A"][1], 70)  # M3 -> M4: the air part becomes major
    try:
        load = load_file(world, _sources(tmp_path / "a.geojson", ["A"]), "risk_source")
    finally:
        SOURCES["A"] = (A, SOURCES["A"][1], 50)
    assert load.rows_updated == 1
    tiles = "SELECT count(*) AS n FROM riskatlas.tile_change WHERE layer = 'risk_source'"
    with db.connect(world) as conn:
        tiles_before = conn.execute(tiles).fetchone()["n"]
    batch = grading.grade_sources(world, scope="batch", batch_id=load.batch_id)
    assert (batch.sources, batch.changed) == (1, 1)
    assert _grades(world)["A"]["grade_label"] == "重大[重大-大气(Q1-M4-E1)+重大-水(Q1-M4-E1)]"
    with db.connect(world) as conn:
        hist = conn.execute("""SELECT old_row->>'grade_label' AS label, new_row->>'grade_label' AS new_label,
                                      ST_AsText(geom) AS geom, geom_m IS NOT NULL AS metric, changed, acting_role
                               FROM riskatlas.row_history
                               WHERE changed_by = 'riskatlas-grade' AND key = 'A'""").fetchall()
        triggers = conn.execute("""SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = 'riskatlas.risk_source'::regclass
                                   AND tgenabled = 'D'""").fetchone()["n"]
        tiles_after = conn.execute(tiles).fetchone()["n"]
    assert [h["label"] for h in hist] == [EXPECTED["A"][1]] and triggers == 0
    # the history row is the one the history trigger writes: located, with the changed fields and the actor
    assert hist[0]["new_label"] == "重大[重大-大气(Q1-M4-E1)+重大-水(Q1-M4-E1)]"
    assert hist[0]["geom"] == f"POINT({A[0]} {A[1]})" and hist[0]["metric"] and hist[0]["acting_role"] == "admin"
    assert hist[0]["changed"] == ["grade_label"]  # A was major already: only the label's M3 became M4
    assert tiles_after == tiles_before + 1  # the z14 cell of the regraded source, for the tile cache
    assert grading.grade_sources(world, scope="stale").sources == 0
    again = grading.grade_sources(world, scope="all")
    assert again.changed == 0 and again.run_id > first.run_id
    with db.connect(world) as conn:  # nothing changed, so nothing was written: each grade keeps its run
        rewritten = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_grade WHERE run_id = %s",
                                 (again.run_id,)).fetchone()["n"]
        assert rewritten == 0 and conn.execute(tiles).fetchone()["n"] == tiles_after
    keys = grading.grade_sources(world, scope="keys", keys=["B", "E"])
    assert (keys.sources, keys.graded, keys.rejected) == (2, 1, 1)


def test_gb3838_table_1_item_numbers() -> None:
    """GB 3838-2002 Table 1: 3 DO, 4 CODMn, 5 COD, 6 BOD5, 7 NH3-N, 8 TP, 9 TN, ... 14 As, 15 Hg, 16 Cd."""
    from layers.substances import water_limits

    items = {f: int(w.clause.rsplit(" ", 1)[1]) for f, w in water_limits().items() if "Table 1 item" in w.clause}
    assert items == {"DO": 3, "CODMn": 4, "COD": 5, "NH3-N": 7, "TP": 8, "TP-lake": 8, "TN": 9, "arsenic": 14,
                     "mercury": 15, "cadmium": 16, "cyanide": 19, "volatile-phenol": 20, "petroleum": 21}


def test_substance_media_carry_their_clause() -> None:
    from layers.substances import lookup

    for name, media in (("chlorine", {"air"}), ("hydrogen sulfide", {"air"}), ("氯化氢", {"air", "water"}),
                        ("氨", {"air", "water"}), ("甲醛", {"air", "water"}), ("环氧乙烷", {"air", "water"}),
                        ("氨氮浓度≥2000mg/L的废液", {"water"}), ("COD浓度≥10000mg/L的有机废液", {"water"})):
        s = lookup(name)
        assert set(s.media) == media and s.media_clause.startswith("HJ 941-2018"), name


def test_grading_needs_the_population_raster(fresh_db: DatabaseSettings) -> None:
    with pytest.raises(grading.GradingError, match="no raster layer named 'population'"):
        grading.grade_sources(fresh_db, scope="all")


# --------------------------------------------------------------------------------------------------
# the set-based water facts against the one-point walk


def _clip(steps: list[rn.Step], limit: float, on: str) -> list[rn.Step]:
    out = []
    for st in steps:
        a0, a1 = (st.start_m, st.end_m) if on == "m" else (st.t_start_s, st.t_end_s)
        if a0 >= limit:
            continue
        if a1 <= limit:
            out.append(st)
            continue
        f = (limit - a0) / (a1 - a0)
        out.append(replace(st, end_m=st.start_m + f * (st.end_m - st.start_m),
                           t_end_s=st.t_start_s + f * (st.t_end_s - st.t_start_s),
                           geojson=mapping(substring(shape(st.geojson), 0, f, normalized=True))))
    return out


def test_water_facts_agree_with_the_one_point_walk_on_the_demo_region(demo_db: DatabaseSettings) -> None:
    """Receptors within 10 km and provinces within 24 h, set-based, against snap + downstream +
    features_along + jurisdictions_along for each source (every fourth source near a river)."""
    tables = grading.load_tables()
    with db.connect(demo_db, "app") as conn, conn.transaction(force_rollback=True):
        frame = grading.select_sources(conn, "all")
        facts = grading.water_facts(conn, tables)
        near = [pid for pid in sorted(facts)][::4]
        assert len(near) > 50
        horizon = tables.reach_s + tables.downstream_m / (rn.min_velocity(conn) or 0.1)
        for pid in near:
            row = frame.iloc[pid]
            start = rn.snap(conn, float(row["lon"]), float(row["lat"]), tables.snap_max_m)
            steps = rn.downstream(conn, start, horizon_s=horizon)
            within = _clip(steps, tables.downstream_m, "m")
            found = set()
            for rule in tables.receptors:
                cols = ("name", "kind") if rule.kind else ("name",)
                for m in features_along(conn, within, rule.layer, tables.near_m, columns=cols):
                    if rule.kind is None or m.properties.get("kind") == rule.kind:
                        found.add(m.key)
            provinces = {c.code for c in jurisdictions_along(conn, _clip(steps, tables.reach_s, "s"), "province")}
            f = facts[pid]
            assert f["reach"]["key"] == start.key
            assert {r["key"] for r in f["receptors"]} == found, row["key"]
            assert f["crosses_province"] == (len(provinces) >= 2), row["key"]


def test_explanation_endpoint(world: DatabaseSettings, tmp_path: Path) -> None:
    grading.grade_sources(world, scope="all")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"analyst-key": {"user": "ana", "role": "analyst"}}))
    app = create_app(world, APISettings(api_keys_file=keys))
    with TestClient(app) as client:
        r = client.get("/analysis/grade/A", headers={"X-API-Key": "analyst-key"})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["label"] == EXPECTED["A"][1] and doc["matches_stored"] is True
        steps = {s["step"]: s for s in doc["steps"]}
        assert steps[1]["substances"][0]["id"] == "ammonia" and steps[1]["substances"][0]["critical_t"] == 5.0
        assert steps[1]["clause"].startswith("HJ 941-2018") and "check" in steps[3]
        assert steps[4]["facts"]["receptors"][0]["key"] == "PZ-1"
        assert next(e["code"] for e in steps[4]["walk"]["entered"] if e["level"] == "city") == "320100"
        assert steps[5]["water"]["cell"] == "E1/Q1/M3" and steps[6]["level_zh"] == "重大"
        assert steps[1]["q_air"] == pytest.approx(6.0) and steps[1]["q_air_band"] == "Q1"
        public = client.get("/analysis/grade/A").json()
        assert isinstance(public["steps"][0]["substances"], str) and "quantity_t" not in json.dumps(public)
        assert "q_air" not in public["steps"][0] and public["steps"][0]["q_air_band"] == "Q1"
        # why E cannot be graded names its substance (a restricted field): analysts read it, the public
        # reads that the inventory has a problem
        bad = client.get("/analysis/grade/E", headers={"X-API-Key": "analyst-key"}).json()
        assert bad["status"] == "rejected" and "1234-56-7" in bad["reasons"][0]
        bad = client.get("/analysis/grade/E").json()
        assert bad["status"] == "rejected" and "1234-56-7" not in json.dumps(bad)
        assert bad["reasons"] == ["the substance inventory cannot be graded (the lines and their problems are "
                                  "shown to analysts, stewards and admins)"]
        # one M for both media, said so; the nature-reserve/wetland reading shown
        assert steps[2]["one_m_for_both"] is True and steps[2]["from"].startswith("one M for both media")
        assert (steps[2]["m_air_band"], steps[2]["m_water_band"]) == ("M3", "M3")
        assert steps[4]["reserve_wetland_reading"]["setting"] == "hj941-2018"
        assert steps[4]["reserve_wetland_reading"]["class"] == "E2"
        assert "大于" in steps[3]["rule"] and steps[1]["clause"].startswith("HJ 941-2018 §6.1 (air) and §7.1 (water)")
        h = client.get("/analysis/grade/H", headers={"X-API-Key": "analyst-key"}).json()
        h2 = {s["step"]: s for s in h["steps"]}[2]
        assert (h2["m_air"], h2["m_water"], h2["one_m_for_both"]) == (30, 10, False) and h["matches_stored"] is True
        assert h["label"] == EXPECTED["H"][1]
        for headers in ({"X-API-Key": "analyst-key"}, {}):  # pending M: explained to everyone, without Q
            i = client.get("/analysis/grade/I", headers=headers).json()
            assert (i["status"], i["label"], i["levels"]) == ("pending-m", PENDING_I[0], list(PENDING_I[2]))
            assert "M score" in i["pending_m"] and i["matches_stored"] is True
            i5 = {s["step"]: s for s in i["steps"]}[5]
            assert (i5["air"]["cell"], i5["water"]["cell"]) == ("E2/Q1/M?", "E3/Q1/M?")
        assert "q_air" not in {s["step"]: s for s in i["steps"]}[1]
        missing = client.get("/analysis/grade/NOPE")
        assert missing.status_code == 404 and missing.json()["code"] == "NotFound"


@pytest.fixture
def demo_client(demo_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_db, APISettings())) as c:
        yield c


def test_explanation_on_the_demo_region_is_computed_live(demo_client: TestClient) -> None:
    doc = demo_client.get("/analysis/grade/RS-320100-0013").json()
    # the demo is graded as `riskatlas demo` leaves it: the live explanation matches what is stored
    assert doc["stored"]["label"] == doc["label"] and doc["matches_stored"] is True
    assert doc["status"] == "graded" and doc["label"].startswith(("一般[", "较大[", "重大["))
    assert {s["step"] for s in doc["steps"]} == {1, 2, 3, 4, 5, 6}


def test_bulk_snap_equals_the_one_point_snap_on_the_demo_region(demo_db: DatabaseSettings) -> None:
    """snap_points finds each position in the reach's UTM zone as snap() does for one point: the same
    reach, and a position that is snap()'s fraction of the reach's geodesic length."""
    tables = grading.load_tables()
    with db.connect(demo_db, "app") as conn, conn.transaction(force_rollback=True):
        grading.select_sources(conn, "all")
        grading.water_facts(conn, tables)
        rows = conn.execute(
            """SELECT s.pid, s.reach_id, s.position_m, ST_X(g.geom) AS x, ST_Y(g.geom) AS y,
                      ST_Length(r.geom::geography) AS length_m
               FROM point_snap s JOIN grade_src g ON g.pid = s.pid JOIN riskatlas.river r ON r.id = s.reach_id
               WHERE s.pid % 16 = 0""").fetchall()
        assert len(rows) > 10
        for r in rows:
            one = rn.snap(conn, r["x"], r["y"], 50_000)
            assert one.reach_id == r["reach_id"], r
            assert r["position_m"] == pytest.approx(one.fraction * r["length_m"], abs=1e-6), r


def test_a_run_reports_the_time_of_each_pass(world: DatabaseSettings) -> None:
    report = grading.grade_sources(world, scope="all")
    passes = {k for k in report.seconds if k.startswith("compute: ")}
    assert {"compute: q", "compute: population", "compute: rivers: snap", "compute: rivers: receptors",
            "compute: levels"} <= passes
    assert all(v >= 0 for v in report.seconds.values()) and report.seconds["total"] >= report.seconds["compute"]


def test_one_point_snap_is_true_on_the_ground_far_from_the_home_region(demo_db: DatabaseSettings) -> None:
    """A reach along the meridian of Urumqi (87.6 E, 31 degrees west of the home region): a point 300 m
    east of it snaps at the geodesic distance from the reach's start to its own latitude (pyproj's
    Geod, computed apart from PostGIS) and 300 m away, each within 1 m."""
    geod = Geod(ellps="WGS84")
    lon, lat0, lat1 = 87.6, 43.70, 43.90
    with db.connect(demo_db) as conn, conn.transaction(force_rollback=True):
        conn.execute("""INSERT INTO riskatlas.river (key, name, river_class, synthetic, geom)
                        VALUES ('test-urumqi', '测试河 (test)', 'minor', true,
                                ST_MakeLine(ARRAY[ST_MakePoint(%(x)s, %(a)s), ST_MakePoint(%(x)s, %(m)s),
                                                  ST_MakePoint(%(x)s, %(b)s)])::geometry(LineString, 4326))""",
                     {"x": lon, "a": lat0, "m": (lat0 + lat1) / 2, "b": lat1})
        east, north, _ = geod.fwd(lon, 43.81, 90.0, 300.0)
        got = rn.snap(conn, east, north, 2_000)
        length = geod.inv(lon, lat0, lon, lat1)[2]
        along = geod.inv(lon, lat0, lon, north)[2]
    assert got.key == "test-urumqi"
    assert got.fraction * length == pytest.approx(along, abs=1.0)
    assert got.distance_m == pytest.approx(300.0, abs=1.0)
