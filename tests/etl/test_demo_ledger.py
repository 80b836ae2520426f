"""The demo's synthetic section records: a labelled year per cross-border section, and a ledger with
pairs under both schemes."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from etl.sources.demo.ledger import FILE_NAME, YEAR, write_section_records
from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings
from tests.conftest import DEMO_REPORTS

CHUZHOU, NANJING = "341100", "320100"


def test_a_labelled_year_for_every_cross_border_section(demo_db: DatabaseSettings, tmp_path: Path) -> None:
    with db.connect(demo_db) as conn:
        rows = conn.execute(
            """SELECT m.key, count(r.month) AS n, bool_and(m.synthetic) AS synthetic,
                      min(to_char(r.month, 'YYYY-MM')) AS first, max(to_char(r.month, 'YYYY-MM')) AS last
               FROM riskatlas.monitoring_station m
               LEFT JOIN riskatlas.section_record r ON r.station_key = m.key
               WHERE m.kind = 'cross-border-section' GROUP BY m.key ORDER BY m.key""").fetchall()
        files = conn.execute("SELECT DISTINCT file_name FROM riskatlas.load_batch WHERE layer = 'section_record'"
                             ).fetchall()
    assert len(rows) >= 6
    assert all((r["n"], r["synthetic"], r["first"], r["last"]) == (12, True, f"{YEAR}-01", f"{YEAR}-12")
               for r in rows), rows
    assert [f["file_name"] for f in files] == [FILE_NAME]
    (load,) = [e for e in DEMO_REPORTS[demo_db.db_name].loads if e["layer"] == "section_record"]
    assert load["rows_rejected"] == 0 and load["rows_in"] == 12 * len(rows)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = write_section_records(demo_db, tmp_path / "a", seed=7)
    second, _ = write_section_records(demo_db, tmp_path / "b", seed=7)
    text = first.read_text(encoding="utf-8")
    assert text == second.read_text(encoding="utf-8")  # the same seed, the same file
    assert all(line.endswith(",true,riskatlas synthetic demo (seed 7)") for line in text.splitlines()[1:])


def test_the_demo_ledger_shows_pairs_under_both_schemes(demo_db: DatabaseSettings) -> None:
    with TestClient(create_app(demo_db, APISettings())) as client:
        doc = client.get("/analysis/ledger", params={"month": f"{YEAR}-06"}).json()
        whole = client.get("/analysis/ledger").json()
    assert {s for p in doc["pairs"] for s in p["by_scheme"]} == {"jiangsu-per-tonne", "anhui-jiangsu-index"}
    assert doc["pairs"] and all(p["synthetic"] for p in doc["pairs"])
    assert all(r["synthetic"] for r in doc["records"])
    chu = [p for p in doc["pairs"] if (p["upstream_code"], p["downstream_code"]) == (CHUZHOU, NANJING)]
    assert chu and "anhui-jiangsu-index" in chu[0]["by_scheme"]
    years = whole["years"]
    assert years and all(y["complete"] and y["months"] == 12 for y in years)
    assert all(abs(y["amount_yuan"]) == pytest.approx(40_000_000.0) for y in years)
    # Every per-tonne record of the month again from its own values: the sum over exceeding factors of
    # (measured − class limit) × flow × 30 days × 86 400 s ÷ 10⁶ × rate, nothing for a better factor.
    limits = {"II": {"CODMn": 4, "NH3-N": 0.5, "TP": 0.1}, "III": {"CODMn": 6, "NH3-N": 1.0, "TP": 0.2}}
    rates = {"CODMn": 15_000, "NH3-N": 100_000, "TP": 100_000}
    days = calendar.monthrange(YEAR, 6)[1]
    per_tonne = [r for r in doc["records"] if (r["scheme"] or {}).get("key") == "jiangsu-per-tonne"]
    assert per_tonne
    for r in per_tonne:
        expected = sum(max(r["values_mg_l"][f] - limits[r["target_class"]][f], 0.0) * r["flow_m3s"] * days
                       * 86_400 / 1e6 * rates[f] for f in rates)
        assert r["amount_yuan"] == pytest.approx(expected), r["station_key"]
