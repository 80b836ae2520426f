"""The riskatlas command line, run as a real process: JSON output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "services.cli"]


def run(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKATLAS_DB_NAME": settings.db_name, "RISKATLAS_PG_PORT": str(settings.pg_port),
           "RISKATLAS_STATE_DIR": str(settings.state_dir)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_load_json_report_and_exit_codes(fresh_db, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("name,category,lon,lat\n甲,chemical,118.63,32.06\n", encoding="utf-8")
    done = run(fresh_db, "load", str(good), "--layer", "risk_source", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows_inserted"] == 1 and report["status"] == "committed" and report["exit_code"] == 0

    partial = tmp_path / "partial.csv"
    partial.write_text("name,category,lon,lat\n乙,chemical,118.64,32.06\n丙,rocket,118.65,32.06\n", encoding="utf-8")
    done = run(fresh_db, "load", str(partial), "--layer", "risk_source", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["rows_rejected"] == 1 and report["rejects"][0]["row_no"] == 2

    done = run(fresh_db, "load", str(partial), "--layer", "nonsense", "--json")
    assert done.returncode == 2 and "nonsense" in json.loads(done.stdout)["error"]


def test_human_output_lists_rejects(fresh_db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,category,lon,lat\n,chemical,118.63,32.06\n", encoding="utf-8")
    done = run(fresh_db, "load", str(bad), "--layer", "risk_source")
    assert done.returncode == 2
    assert "missing required field 'name'" in done.stdout
    assert "time: read" in done.stdout and "· total" in done.stdout  # the time of each pass


def test_load_lists_every_repair_by_row(fresh_db, tmp_path):
    x, y, d = 118.63, 32.06, 0.01
    square = [[x, y], [x + d, y], [x + d, y + d], [x, y + d]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"湿地{i}", "kind": "wetland"},
         "geometry": {"type": "Polygon", "coordinates": [[[a + 2 * i * d, b] for a, b in ring]]}}
        for i, ring in enumerate([square + [square[0]], square])]}
    path = tmp_path / "open.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    done = run(fresh_db, "load", str(path), "--layer", "protected_area", "--dry-run", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["repaired"] == 1
    assert report["repairs"] == [{"row_no": 2, "field": "geometry", "what": "ring closed"}]
    done = run(fresh_db, "load", str(path), "--layer", "protected_area")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repaired rows (1 repair)" in done.stdout
    line = next(ln for ln in done.stdout.splitlines() if "ring closed" in ln)
    assert "2" in line.split("ring closed")[0] and "geometry" in line


def test_db_status_and_layers(fresh_db):
    done = run(fresh_db, "db", "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    state = json.loads(done.stdout)
    assert state["reachable"] is True and state["schema_version"] >= 2 and state["running"] is True
    done = run(fresh_db, "layers", "--json")
    layers = {r["name"]: r["count"] for r in json.loads(done.stdout)}
    assert layers["admin_area"] == 71 and layers["risk_source"] == 0


EXAMPLE = ROOT / "etl/examples/synthetic_risk_source_chuzhou.csv"


def _ledger(settings) -> dict[str, int]:
    from tests.conftest import row_counts

    return row_counts(settings, ("risk_source", "load_batch", "load_reject", "row_history"))


def test_dry_run_as_a_city_steward_writes_nothing_and_reports_what_the_file_states(fresh_db):
    """The bureau's GB18030, GCJ-02 export with stated county codes: checked as Chuzhou's steward, nothing kept."""
    before = _ledger(fresh_db)
    done = run(fresh_db, "load", str(EXAMPLE), "--layer", "risk_source", "--mapping", "demo_chuzhou_risk_source",
               "--crs", "gcj02", "--as-city", "341100", "--dry-run", "--json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["rows_inserted"] == 46 - report["rows_rejected"] > 40
    # the file states two county codes that disagree with where the rows lie (the demo plants them)
    stated = [d for d in report["disagreements"] if "file_says" in d]
    assert len(stated) == 2, report["disagreements"]
    assert _ledger(fresh_db) == before, "a dry run keeps no row, batch, reject or history"

    # the same file as Nanjing's steward: every row lies in Chuzhou, so every row is refused; the
    # inventory and its history are untouched, the attempt and its rejects are on record
    done = run(fresh_db, "load", str(EXAMPLE), "--layer", "risk_source", "--mapping", "demo_chuzhou_risk_source",
               "--crs", "gcj02", "--as-city", "320100", "--json")
    assert done.returncode == 2, done.stdout
    report = json.loads(done.stdout)
    assert report["status"] == "rejected" and report["rows_rejected"] == 46
    assert all("320100" in r["reason"] for r in report["rejects"])
    after = _ledger(fresh_db)
    assert (after["risk_source"], after["row_history"]) == (before["risk_source"], before["row_history"])
    assert (after["load_batch"], after["load_reject"]) == (before["load_batch"] + 1, before["load_reject"] + 46)
