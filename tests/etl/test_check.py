"""``riskatlas check``: a load's validation without a database, and near-duplicate facilities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.check import check_file, normalise_name
from etl.errors import InputError
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "services.cli", "check"]

MAPPING = """layer: risk_source
x: 经度
y: 纬度
key: 编码
columns: {企业名称: name, 类别: category}
values:
  category: {化工: chemical, 其他: other}
"""

# row: (编码, 企业名称, 类别, 经度, 纬度); row numbers count data rows from 1, as a load reports them
ROWS = [
    ("A1", "南京某某化工有限公司", "化工", 118.700000, 32.100000),  # 1: near-duplicate of 2
    ("A2", "南京某某化工", "化工", 118.700000, 32.100360),          # 2: ~40 m north of 1
    ("A3", "浦口精细制药厂", "制药品", 118.650000, 32.050000),       # 3: bad category
    ("A4", "六合电镀有限公司", "其他", 32.300000, 118.800000),        # 4: lon/lat swapped
    ("A5", "西安某厂", "其他", 108.900000, 34.300000),               # 5: outside the region
    ("A6", "", "化工", 118.750000, 32.200000),                     # 6: name missing
    ("A1", "重复编码企业", "其他", 118.900000, 32.000000),            # 7: key of row 1 again
    ("A8", "江北新材料股份有限公司", "化工", 118.600000, 32.250000),   # 8: same name as 9, 5 km apart
    ("A9", "江北新材料股份有限公司", "化工", 118.600000, 32.295000),   # 9
    ("A10", "马鞍山钢铁配套", "其他", 118.510000, 31.690000),         # 10: fine
]


def write_csv(path: Path, rows: list[tuple]) -> Path:
    """A bureau-style CSV in GB18030."""
    lines = ["编码,企业名称,类别,经度,纬度"] + [f"{k},{n},{c},{x:.6f},{y:.6f}" for k, n, c, x, y in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    mapping = tmp_path / "bureau.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return {"mapping": mapping, "bad": write_csv(tmp_path / "风险源.csv", ROWS),
            "clean": write_csv(tmp_path / "clean.csv",
                               [ROWS[0], ROWS[2][:2] + ("化工",) + ROWS[2][3:], ROWS[9]]),
            "hopeless": write_csv(tmp_path / "hopeless.csv", [ROWS[4], ROWS[5]])}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with the database settings pointing at a closed port."""
    env = {**os.environ, "RISKATLAS_PG_PORT": str(free_port())}
    for name in ("DATABASE_URL", "RISKATLAS_APP_DATABASE_URL"):
        env.pop(name, None)
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def reasons(report) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in report.rejects:
        out.setdefault(r.row_no, []).append(r.reason)
    return out


def test_every_reason_on_its_row(files):
    report = check_file(files["bad"], "risk_source", mapping=files["mapping"])
    got = reasons(report)
    assert report.rows_in == 10
    assert set(got) == {3, 4, 5, 6, 7}
    assert any("'category'" in r and "制药品" in r for r in got[3])
    assert any("swapped" in r for r in got[4])
    assert any("outside the region's envelope" in r for r in got[5])
    assert any("missing required field 'name'" in r for r in got[6])
    assert any("duplicate key 'A1' (first at row 1)" in r for r in got[7])
    assert (report.rows_rejected, report.rows_ok, report.exit_code) == (5, 5, 1)


def test_near_duplicates_found_and_far_pair_not(files):
    report = check_file(files["bad"], "risk_source", mapping=files["mapping"])
    assert [(p.row_a, p.row_b) for p in report.duplicates] == [(1, 2)]
    pair = report.duplicates[0]
    assert (pair.name_a, pair.name_b) == ("南京某某化工有限公司", "南京某某化工")
    assert 38 < pair.distance_m < 42
    assert pair.similarity == 1.0
    # the same name 5 km apart is two sites, and is found when the distance allows it
    wide = check_file(files["bad"], "risk_source", mapping=files["mapping"], within_m=6000)
    assert (8, 9) in {(p.row_a, p.row_b) for p in wide.duplicates}


def test_names_are_normalised_before_comparing():
    assert normalise_name("南京某某化工有限公司") == normalise_name(" 南京某某化工 ") == "南京某某化工"
    assert normalise_name("江北新材料股份有限公司") == "江北新材料"
    assert normalise_name("六合（电镀）厂") == "六合电镀"
    assert normalise_name("ACME Chemical Co., Ltd.") == normalise_name("Acme chemical") == "acmechemical"
    assert normalise_name("Disco") == "disco"


def test_a_clean_file_passes(files):
    report = check_file(files["clean"], "risk_source", mapping=files["mapping"])
    assert (report.rows_in, report.rows_rejected, report.duplicates, report.exit_code) == (3, 0, [], 0)


def test_wrong_calls_raise_naming_the_problem(files, tmp_path):
    with pytest.raises(InputError, match="nowhere.csv"):
        check_file(tmp_path / "nowhere.csv", "risk_source")
    with pytest.raises(InputError, match="expected to be one of"):
        check_file(files["bad"], "no_such_layer")


def test_cli_exit_codes_without_a_database(files, tmp_path):
    m = ["--layer", "risk_source", "--mapping", str(files["mapping"])]
    clean = run(str(files["clean"]), *m)
    assert clean.returncode == 0, clean.stderr
    assert "every row would load" in clean.stdout

    bad = run(str(files["bad"]), *m, "--json")
    assert bad.returncode == 1, bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["exit_code"] == 1 and doc["rows_in"] == 10 and doc["rows_rejected"] == 5
    assert {r["row_no"] for r in doc["rejects"]} == {3, 4, 5, 6, 7}
    assert [(p["row_a"], p["row_b"], p["name_a"]) for p in doc["duplicates"]] == [(1, 2, "南京某某化工有限公司")]

    human = run(str(files["bad"]), *m)
    assert human.returncode == 1
    assert "probable duplicate facilities" in human.stdout and "南京某某化工有限公司" in human.stdout

    hopeless = run(str(files["hopeless"]), *m)
    assert hopeless.returncode == 2, hopeless.stderr

    unreadable = tmp_path / "broken.geojson"
    unreadable.write_bytes(b"\x00\x01 not geojson")
    broken = run(str(unreadable), "--layer", "risk_source")
    assert broken.returncode == 2 and "broken.geojson" in broken.stderr

    missing = run(str(tmp_path / "nowhere.csv"), "--layer", "risk_source", "--json")
    assert missing.returncode == 2 and "nowhere.csv" in json.loads(missing.stdout)["error"]

    layer = run(str(files["bad"]), "--layer", "no_such_layer")
    assert layer.returncode == 2 and "no_such_layer" in layer.stderr


def test_invalid_geometry_and_repairs_of_a_polygon_layer(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text(
        "reserve_key,level,wkt\n"
        'R1,1,"POLYGON((118.60 32.00, 118.62 32.02, 118.62 32.00, 118.60 32.02, 118.60 32.00))"\n'
        'R2,1,"LINESTRING(118.60 32.00, 118.62 32.02)"\n'
        'R3,2,"POLYGON((118.70 32.00, 118.72 32.00, 118.72 32.02, 118.70 32.02))"\n'
        'R4,quasi,"POLYGON((118.80 32.00, 118.82 32.00, 118.82 32.02, 118.80 32.02, 118.80 32.00))"\n',
        encoding="utf-8")
    report = check_file(path, "protection_zone")
    got = reasons(report)
    assert set(got) == {1, 2}
    assert any(r.startswith("invalid geometry (Self-intersection") for r in got[1])
    assert any("LineString but layer expects MultiPolygon" in r for r in got[2])
    assert [(r.row_no, r.what) for r in report.repairs] == [(3, "ring closed")]
    assert report.duplicates == [] and any("named point layers" in n for n in report.notes)
    assert (report.rows_ok, report.exit_code) == (2, 1)
