"""Observation files through the ETL: every bad observation rejected with its reason, the rest loaded in
one transaction; idempotent by station + parameter + time; corrections kept in history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.errors import InputError
from etl.load import Actor
from etl.observations import load_observation_file
from layers import db
from tests.observations.conftest import NANJING

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 2, 1, tzinfo=UTC)
STEWARD = Actor(user="nj", role="steward", city=NANJING)

LONG = """station,parameter,time,value,unit,flag
NJ-A,pm25,2026-01-05 08:00,75,μg/m³,
NJ-A,co,2026-01-05 08:00,1200,ug/m3,
NJ-A,PM10,2026-01-05T00:00Z,120,μg/m3,valid
NJ-A,pm25,2026-01-05T00:00:00+00:00,80,μg/m3,
NJ-A,xyz,2026-01-05 08:00,1,mg/L,
NJ-A,so2,2026-03-05 08:00,10,μg/m3,
NJ-A,no2,2026-01-05 08:00,-3,μg/m3,
NJ-A,o3,2026-01-05 08:00,99999,μg/m3,
CZ-A,pm25,2026-01-05 08:00,60,μg/m3,
NJ-W,nh3n,2026-01-05 08:00,0.8,mg/L,
NJ-A,co,2026-01-05 09:00,1.1,furlongs,
NJ-A,so2,2026-01-05 09:00,ten,μg/m3,
NOPE,so2,2026-01-05 09:00,10,μg/m3,
NJ-A,nh3n,2026-01-05 09:00,0.5,mg/L,
NJ-A,so2,yesterday,10,μg/m3,
NJ-A,so2,2026-01-05 10:00,10,μg/m3,bogus
NJ-A,so2,1899-01-05 10:00,10,μg/m3,
"""

EXPECTED = {  # row: (field, words of the reason)
    4: ("time", "duplicate"), 5: ("parameter", "unknown parameter 'xyz'"), 6: ("time", "in the future"),
    7: ("value", "cannot be negative"), 8: ("value", "outside the plausible range"),
    9: ("station", "belongs to city 341100"), 11: ("unit", "unit 'furlongs' is not accepted for co"),
    12: ("value", "'ten' is not a number"), 13: ("station", "'NOPE' is not in monitoring_station"),
    14: ("parameter", "measured in water, but station 'NJ-A' is an air station"),
    15: ("time", "'yesterday' is not a time"), 16: ("flag", "flag 'bogus'"), 17: ("time", "before 1970"),
}


def _file(tmp_path: Path, text: str, name: str = "obs.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_bad_observations_are_rejected_with_reasons_and_the_rest_loaded(stations, tmp_path):
    settings, _ = stations
    report = load_observation_file(settings, _file(tmp_path, LONG), actor=STEWARD, now=NOW)
    got = {r.row_no: (r.field, r.reason) for r in report.rejects}
    assert set(got) == set(EXPECTED), got
    for row, (fld, words) in EXPECTED.items():
        assert got[row][0] == fld and words in got[row][1], (row, got[row])
    assert (report.rows_in, report.rows_inserted, report.rows_rejected, report.status) == (17, 4, 13, "partial")
    assert any("3 observations had times without a zone: read as China Standard Time" in n for n in report.notes)
    assert any("co values converted from ug/m3 to mg/m³" in n for n in report.notes)
    with db.connect(settings) as conn:
        rows = {(r["station_key"], r["parameter"]): r for r in conn.execute(
            "SELECT station_key, parameter, observed_at, value, flag, owner_city, batch_id FROM riskatlas.observation"
        ).fetchall()}
        batch = conn.execute("SELECT * FROM riskatlas.load_batch WHERE id = %s", (report.batch_id,)).fetchone()
        rejects = conn.execute("SELECT count(*) AS n FROM riskatlas.load_reject WHERE batch_id = %s",
                               (report.batch_id,)).fetchone()["n"]
    assert set(rows) == {("NJ-A", "pm25"), ("NJ-A", "co"), ("NJ-A", "pm10"), ("NJ-W", "nh3n")}
    assert rows[("NJ-A", "pm25")]["observed_at"] == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # 08:00 CST
    assert rows[("NJ-A", "pm25")]["value"] == 75  # the first of the duplicates
    assert rows[("NJ-A", "co")]["value"] == pytest.approx(1.2)  # 1200 μg/m³ stored as mg/m³
    assert all(r["owner_city"] == NANJING and r["batch_id"] == report.batch_id for r in rows.values())
    assert (batch["layer"], batch["status"], batch["rows_in"], batch["rows_rejected"]) == ("observation", "partial",
                                                                                           17, 13)
    assert "China Standard Time" in batch["message"]
    assert rejects == 13


def test_a_resend_changes_nothing_and_a_changed_value_is_a_correction(stations, tmp_path):
    settings, _ = stations
    text = "station,parameter,time,value,unit\nNJ-A,pm25,2026-01-05 08:00,75,μg/m3\nNJ-A,pm10,2026-01-05 08:00,90,\n"
    first = load_observation_file(settings, _file(tmp_path, text), actor=STEWARD, now=NOW)
    again = load_observation_file(settings, _file(tmp_path, text), actor=STEWARD, now=NOW)
    assert (first.rows_inserted, again.rows_inserted, again.rows_updated, again.rows_unchanged) == (2, 0, 0, 2)
    # reordered, one value changed, the time given in UTC this time
    fixed = "station,parameter,time,value,unit\nNJ-A,pm10,2026-01-05T00:00Z,95,\nNJ-A,pm25,2026-01-05 08:00,75,μg/m3\n"
    corr = load_observation_file(settings, _file(tmp_path, fixed), actor=STEWARD, now=NOW)
    assert (corr.rows_inserted, corr.rows_updated, corr.rows_unchanged) == (0, 1, 1)
    with db.connect(settings) as conn:
        hist = conn.execute("SELECT parameter, old_value, new_value, old_batch_id, batch_id, changed_by, acting_city "
                            "FROM riskatlas.observation_history").fetchall()
        latest = conn.execute("SELECT value FROM riskatlas.observation_latest WHERE parameter = 'pm10'").fetchone()
    assert hist == [{"parameter": "pm10", "old_value": 90, "new_value": 95, "old_batch_id": first.batch_id,
                     "batch_id": corr.batch_id, "changed_by": "nj", "acting_city": NANJING}]
    assert latest["value"] == 95


def test_wide_gb18030_with_chinese_headers_and_units_in_the_header(stations, tmp_path):
    settings, _ = stations
    text = ("站点编码,监测时间,PM2.5,CO(μg/m³),臭氧(8h),备注\n"
            "NJ-A,2026-01-05 08:00,75,1200,100,晴\n"
            "NJ-A,2026-01-05 09:00,80,,110,\n"
            "NJ-A,2026-01-05 10:00,-1,900,,\n")
    report = load_observation_file(settings, _file(tmp_path, text, "宽表.csv", "gb18030"), actor=STEWARD, now=NOW)
    assert (report.rows_in, report.rows_inserted, report.rows_rejected) == (7, 6, 1)
    (bad,) = report.rejects
    assert (bad.row_no, bad.field) == (3, "PM2.5") and "cannot be negative" in bad.reason
    assert any("GB18030" in n for n in report.notes)
    with db.connect(settings) as conn:
        got = {(r["parameter"], r["h"]): r["value"] for r in conn.execute(
            """SELECT parameter, extract(hour FROM observed_at AT TIME ZONE 'Asia/Shanghai')::int AS h, value
               FROM riskatlas.observation""").fetchall()}
    assert got == {("pm25", 8): 75, ("pm25", 9): 80, ("co", 8): pytest.approx(1.2), ("co", 10): pytest.approx(0.9),
                   ("o3_8h", 8): 100, ("o3_8h", 9): 110}


def test_an_excel_workbook_wide_with_real_dates_and_a_damaged_one(stations, tmp_path):
    """The first sheet of an .xlsx (cells typed as Excel types them: dates, numbers, text) loads like a CSV;
    a damaged workbook, an .xls and a zip bomb are refused naming the file, nothing loaded."""
    import zipfile

    from openpyxl import Workbook

    settings, _ = stations
    wb = Workbook()
    ws = wb.active
    ws.append(["站点编码", "监测时间", "PM2.5", "CO(μg/m³)"])
    ws.append(["NJ-A", datetime(2026, 1, 5, 8, 0), 75, 1200])
    ws.append(["NJ-A", datetime(2026, 1, 5, 9, 0), "80", None])
    ws.append(["NJ-A", datetime(2026, 1, 5, 10, 0), -1, 900.5])
    wb.create_sheet("说明").append(["synthetic test workbook"])
    path = tmp_path / "观测.xlsx"
    wb.save(path)
    report = load_observation_file(settings, path, actor=STEWARD, now=NOW)
    assert (report.rows_in, report.rows_inserted, report.rows_rejected) == (5, 4, 1)
    assert report.rejects[0].field == "PM2.5" and "cannot be negative" in report.rejects[0].reason
    assert "read from the workbook's first sheet" in report.notes
    with db.connect(settings) as conn:
        got = {(r["parameter"], r["h"]): r["value"] for r in conn.execute(
            """SELECT parameter, extract(hour FROM observed_at AT TIME ZONE 'Asia/Shanghai')::int AS h, value
               FROM riskatlas.observation""").fetchall()}
    assert got == {("pm25", 8): 75, ("pm25", 9): 80, ("co", 8): pytest.approx(1.2), ("co", 10): pytest.approx(0.9005)}

    damaged = tmp_path / "坏.xlsx"
    damaged.write_bytes(path.read_bytes()[:400])
    with pytest.raises(InputError, match="坏.xlsx: not an Excel workbook"):
        load_observation_file(settings, damaged, actor=STEWARD, now=NOW)
    with pytest.raises(InputError, match="old.xls: the old Excel format"):
        load_observation_file(settings, _file(tmp_path, "x", "old.xls"), actor=STEWARD, now=NOW)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (600 * 2**20))
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(InputError, match="bomb.xlsx: the workbook expands to 600 MiB"):
        load_observation_file(settings, bomb, actor=STEWARD, now=NOW)
    with db.connect(settings) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"] == 4


def test_a_file_without_station_or_time_is_refused_whole(stations, tmp_path):
    settings, _ = stations
    with pytest.raises(InputError, match=r"no column for \['time'\]"):
        load_observation_file(settings, _file(tmp_path, "station,pm25\nNJ-A,3\n"), actor=STEWARD, now=NOW)
    with db.connect(settings) as conn:
        assert conn.execute("SELECT count(*) AS n FROM riskatlas.observation").fetchone()["n"] == 0


def test_cli_load_json(stations, tmp_path):
    settings, _ = stations
    path = _file(tmp_path, LONG)
    env = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_STATE_DIR": str(settings.state_dir)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "services.cli", "observations", "load", str(path), "--as-city",
                           NANJING, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # some rejected
    doc = json.loads(done.stdout)
    # the real clock: the March 2026 row is not in the future any more, the rest as with NOW
    assert doc["rows_rejected"] in (12, 13) and doc["rows_inserted"] >= 4
    assert {r["row_no"] for r in doc["rejects"]} >= set(EXPECTED) - {6}
