"""The cross-border section ledger on a built case, against a hand computation; the loader's
rejections with reasons; the CSV and JSON outputs by API and command line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import mapping

from etl.errors import InputError
from etl.load import load_file
from etl.section_records import load_section_records, parse_month
from layers import db
from layers.settings import DatabaseSettings
from services.ledger import CONFIG_FILE, LedgerConfig, build_ledger, ledger_csv, section_cities
from services.web.app import create_app
from services.web.settings import APISettings

ROOT = Path(__file__).resolve().parents[2]
GEOD = Geod(ellps="WGS84")
RIVER_1 = [(118.55, 32.02), (118.85, 32.02), (119.15, 32.02)]   # Nanjing → Zhenjiang at 119.091
RIVER_2 = [(118.45, 31.60), (118.575, 31.725), (118.70, 31.85)]  # Ma'anshan → Nanjing at 118.607

GOOD = """station_key,month,flow_m3s,codmn,cod,nh3n,tp,tn
X1,2024-05,100,7.0,,1.2,0.25,2.0
X1,2024-06,50,5.0,18,0.8,0.15,
Y1,2024年5月,20,,25,0.5,,
"""
# By hand, X1 (Nanjing → Zhenjiang, both Jiangsu: the Jiangsu per-tonne scheme) and, with the scheme
# set per station, Y1 (target III: CODMn 6, COD 20, NH3-N 1.0, TP 0.2 mg/L; rates 15 000 / 15 000 /
# 100 000 / 100 000 yuan/t; TN not compensated; load t = Δc mg/L × flow m³/s × days × 86 400 / 10⁶;
# each exceeding factor pays, a factor better than its target pays nothing and offsets nothing):
#   X1 2024-05: volume 100×31×86400 = 267 840 000 m³; CODMn +1.0 → 267.84 t → 4 017 600;
#               NH3-N +0.2 → 53.568 t → 5 356 800; TP +0.05 → 13.392 t → 1 339 200; total 10 713 600
#   X1 2024-06: volume 50×30×86400 = 129 600 000 m³; CODMn −1.0, NH3-N −0.2, TP −0.05: every factor
#               better than target (COD not counted: CODMn given) → 0 each; total 0
#   Y1 2024-05: volume 20×31×86400 = 53 568 000 m³; COD +5 → 267.84 t → 4 017 600; NH3-N −0.5 → 0;
#               total 4 017 600
# Y1 lies between Ma'anshan (Anhui) and Nanjing (Jiangsu): by its province pair it follows the
# Anhui–Jiangsu index agreement, whose index needs CODMn, NH3-N, TN and TP; its record gives COD and
# NH3-N only, so under the shipped configuration it has no amount and says why.
HAND = {("X1", "2024-05"): (10_713_600.0, "IV"), ("X1", "2024-06"): (0.0, "III"),
        ("Y1", "2024-05"): (4_017_600.0, "IV")}
NANJING, ZHENJIANG, MAANSHAN = "320100", "321100", "340500"


def _geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def _f(geom: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


@pytest.fixture
def sections(fresh_db: DatabaseSettings, tmp_path: Path) -> DatabaseSettings:
    reaches = []
    for name, coords in (("R1", RIVER_1), ("R2", RIVER_2)):
        reaches += [_f(shapely.LineString(coords[i:i + 2]), key=f"{name}-{i}", name=name, river_class="major")
                    for i in range(len(coords) - 1)]
    load_file(fresh_db, _geojson(tmp_path / "river.geojson", reaches), "river")
    x1 = GEOD.fwd(119.0910, 32.02, 90.0, 300.0)[:2]
    y1 = GEOD.fwd(118.6074, 31.7574, 45.0, 300.0)[:2]
    stations = [_f(shapely.Point(x1), key="X1", name="东西交界断面", medium="water", kind="cross-border-section",
                   target_class="III"),
                _f(shapely.Point(y1), key="Y1", name="南北省界断面", medium="water", kind="cross-border-section",
                   target_class="III"),
                _f(shapely.Point(118.70, 32.05), key="AQ1", name="空气站", medium="air", kind="air-quality")]
    load_file(fresh_db, _geojson(tmp_path / "stations.geojson", stations), "monitoring_station")
    return fresh_db


def test_cities_of_a_section_come_from_the_network(sections: DatabaseSettings) -> None:
    with db.connect(sections, "app") as conn:
        got = section_cities(conn, ["X1", "Y1"], 2_000.0)
    assert (got["X1"].upstream, got["X1"].downstream) == (NANJING, ZHENJIANG)
    assert (got["Y1"].upstream, got["Y1"].downstream) == (MAANSHAN, NANJING)


def _config(**changes: Any) -> LedgerConfig:
    """The shipped configuration with top-level entries replaced."""
    doc = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    doc.update(changes)
    return LedgerConfig.from_dict(doc)


def test_ledger_matches_the_hand_computation(sections: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(GOOD, encoding="utf-8")
    report = load_section_records(sections, path)
    assert (report.status, report.rows_inserted, report.rows_rejected) == ("committed", 3, 0)
    with db.connect(sections, "app") as conn:
        shipped = build_ledger(conn)
        ledger = build_ledger(conn, config=_config(sections={"Y1": "jiangsu-per-tonne"}))
    y1 = {(r["station_key"], r["month"]): r for r in shipped.records}[("Y1", "2024-05")]
    assert y1["scheme"]["key"] == "anhui-jiangsu-index" and y1["scheme_by"] == "province pair 34-32"
    assert y1["amount_yuan"] is None and "lacks CODMn, TN, TP" in y1["note"]
    assert [(p["month"], p["upstream_code"]) for p in shipped.pairs] == [("2024-05", NANJING), ("2024-06", NANJING)]
    got = {(r["station_key"], r["month"]): r for r in ledger.records}
    for k, (amount, cls) in HAND.items():
        assert got[k]["amount_yuan"] == pytest.approx(amount, abs=0.01), k
        assert got[k]["class"] == cls and got[k]["target_class"] == "III"
        assert got[k]["scheme"]["key"] == "jiangsu-per-tonne"
    assert got[("Y1", "2024-05")]["scheme_by"] == "station Y1"
    x1 = got[("X1", "2024-06")]
    assert [f["factor"] for f in x1["factors"]] == ["CODMn", "NH3-N", "TP"]  # COD not counted, TN disabled
    assert x1["factor_classes"]["COD"] == "III" and x1["meets_target"] is True
    assert [f["factor"] for f in got[("Y1", "2024-05")]["factors"]] == ["COD", "NH3-N"]
    pairs = {(p["month"], p["upstream_code"], p["downstream_code"]): p for p in ledger.pairs}
    assert pairs[("2024-05", NANJING, ZHENJIANG)]["amount_yuan"] == pytest.approx(10_713_600.0)
    assert pairs[("2024-06", NANJING, ZHENJIANG)]["amount_yuan"] == pytest.approx(0.0)
    assert pairs[("2024-05", MAANSHAN, NANJING)]["by_factor"] == pytest.approx({"COD": 4_017_600.0,
                                                                                "NH3-N": 0.0})
    text = ledger_csv(ledger)
    assert text.startswith("\ufeffmonth,"), "UTF-8 with a byte-order mark, for spreadsheet programs"
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [(r["month"], r["upstream_code"], r["downstream_code"], r["amount_yuan"]) for r in rows] == [
        ("2024-05", NANJING, ZHENJIANG, "10713600.0"), ("2024-05", MAANSHAN, NANJING, "4017600.0"),
        ("2024-06", NANJING, ZHENJIANG, "0.0")]
    detail = list(csv.DictReader(io.StringIO(ledger_csv(ledger, detail=True).removeprefix("\ufeff"))))
    assert len(detail) == 8 and {r["factor"] for r in detail} == {"CODMn", "COD", "NH3-N", "TP"}
    with db.connect(sections, "app") as conn:
        only = build_ledger(conn, month="2024-05", pair=f"{MAANSHAN}-{NANJING}",
                            config=_config(sections={"Y1": "jiangsu-per-tonne"}))
    assert [r["station_key"] for r in only.records] == ["Y1"] and len(only.pairs) == 1


ISSUE = """station_key,month,flow_m3s,codmn,nh3n
X1,2024-06,100,4.0,1.2
"""


def test_a_better_factor_does_not_offset_an_exceeding_one(sections: DatabaseSettings, tmp_path: Path) -> None:
    """The case of the issue "Numbers a bureau can trust": NH3-N over a class III target, CODMn under it.

    By hand: volume 100 m³/s × 30 days × 86 400 s = 259 200 000 m³; NH3-N (1.2 − 1.0) mg/L → 51.84 t ×
    100 000 yuan/t = 5 184 000 yuan owed by the upstream city; CODMn (4.0 − 6.0) mg/L is better than
    target and owes nothing.  (The old rule netted −7 776 000 for CODMn against it: −2 592 000, the
    downstream city paying although the section exceeds its NH3-N target.)
    """
    path = tmp_path / "issue.csv"
    path.write_text(ISSUE, encoding="utf-8")
    load_section_records(sections, path)
    with db.connect(sections, "app") as conn:
        ledger = build_ledger(conn, month="2024-06")
    (x1,) = ledger.records
    by = {f["factor"]: f for f in x1["factors"]}
    assert by["NH3-N"]["amount_yuan"] == pytest.approx(5_184_000.0)
    assert by["CODMn"]["amount_yuan"] == 0.0 and by["CODMn"]["excess_mg_l"] == pytest.approx(-2.0)
    assert x1["amount_yuan"] == pytest.approx(5_184_000.0) and x1["meets_target"] is False
    (pair,) = ledger.pairs
    assert (pair["upstream_code"], pair["downstream_code"]) == (NANJING, ZHENJIANG)
    assert pair["amount_yuan"] == pytest.approx(5_184_000.0)


INDEX = """station_key,month,flow_m3s,codmn,nh3n,tp,tn
Y1,2024-07,20,4.5,0.8,0.15,1.2
Y1,2024-08,20,7.5,1.3,0.18,1.4
"""


def test_the_anhui_jiangsu_index_by_hand(sections: DatabaseSettings, tmp_path: Path) -> None:
    """Y1 lies between Ma'anshan (Anhui, upstream) and Nanjing (Jiangsu): the two-way fixed-amount
    agreement, P = K × Σ 0.25 × Cᵢ/Sᵢ over CODMn, NH3-N, TN, TP, Sᵢ the class III limits 6, 1.0, 1.0, 0.2.

    By hand, K = 1, 40 000 000 yuan a year each way, a month accruing a twelfth (3 333 333.33):
      2024-07: 4.5/6 = 0.75, 0.8/1.0 = 0.8, 1.2/1.0 = 1.2, 0.15/0.2 = 0.75; Σ 3.5 × 0.25 = 0.875 ≤ 1
               → downstream (Nanjing) pays: −3 333 333.33
      2024-08: 7.5/6 = 1.25, 1.3, 1.4, 0.18/0.2 = 0.9; Σ 4.85 × 0.25 = 1.2125 > 1 → upstream pays
               +3 333 333.33
      year 2024 (2 months): means CODMn 6.0, NH3-N 1.05, TN 1.3, TP 0.165 → 1.0 + 1.05 + 1.3 + 0.825
               = 4.175 × 0.25 = 1.04375 > 1 → upstream pays 2/12 × 40 000 000 = 6 666 666.67
    The Xin'an River agreement's K = 0.85 and 100 000 000 a year (scheme set for the station):
      2024-07: 0.85 × 0.875 = 0.74375 ≤ 1 → −8 333 333.33; 2024-08: 0.85 × 1.2125 = 1.030625 > 1 →
      +8 333 333.33.
    """
    path = tmp_path / "index.csv"
    path.write_text(INDEX, encoding="utf-8")
    load_section_records(sections, path)
    month = 40_000_000 / 12
    with db.connect(sections, "app") as conn:
        ledger = build_ledger(conn)
        xinan = build_ledger(conn, config=_config(sections={"Y1": "xinan-index"}))
    got = {r["month"]: r for r in ledger.records}
    july, august = got["2024-07"], got["2024-08"]
    assert july["scheme"]["key"] == "anhui-jiangsu-index"
    assert [(t["factor"], t["ratio"]) for t in july["index"]["terms"]] == [
        ("CODMn", pytest.approx(0.75)), ("NH3-N", pytest.approx(0.8)), ("TN", pytest.approx(1.2)),
        ("TP", pytest.approx(0.75))]
    assert july["index"]["p"] == pytest.approx(0.875) and july["index"]["payer"] == "downstream"
    assert july["amount_yuan"] == pytest.approx(-month)
    assert august["index"]["p"] == pytest.approx(1.2125) and august["amount_yuan"] == pytest.approx(month)
    pairs = {p["month"]: p for p in ledger.pairs}
    assert pairs["2024-07"]["by_scheme"] == pytest.approx({"anhui-jiangsu-index": -month})
    assert (pairs["2024-08"]["upstream_code"], pairs["2024-08"]["downstream_code"]) == (MAANSHAN, NANJING)
    (year,) = ledger.years
    assert (year["station_key"], year["year"], year["months"], year["complete"]) == ("Y1", "2024", 2, False)
    assert year["p"] == pytest.approx(1.04375) and year["amount_yuan"] == pytest.approx(2 * month)
    detail = list(csv.DictReader(io.StringIO(ledger_csv(ledger, detail=True).removeprefix("\ufeff"))))
    assert [r["factor"] for r in detail if r["month"] == "2024-07"] == ["CODMn", "NH3-N", "TN", "TP", "P"]
    assert detail[4]["index_p"] == "0.875" and detail[4]["amount_yuan"] == "-3333333.33"
    by = {r["month"]: r for r in xinan.records}
    assert by["2024-07"]["index"]["p"] == pytest.approx(0.74375)
    assert by["2024-07"]["amount_yuan"] == pytest.approx(-100_000_000 / 12)
    assert by["2024-08"]["index"]["p"] == pytest.approx(1.030625)
    assert by["2024-08"]["amount_yuan"] == pytest.approx(100_000_000 / 12)


def test_configuration_changes_targets_and_reward(sections: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(GOOD, encoding="utf-8")
    load_section_records(sections, path)
    doc = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    doc["targets"] = {"X1": "II"}  # CODMn 4, NH3-N 0.5, TP 0.1
    config = LedgerConfig.from_dict(doc)
    with db.connect(sections, "app") as conn:
        ledger = build_ledger(conn, month="2024-06", config=config)
    (x1,) = [r for r in ledger.records if r["station_key"] == "X1"]
    volume = 50 * 30 * 86_400
    expected = (1.0 * 15_000 + 0.3 * 100_000 + 0.05 * 100_000) * volume / 1e6
    assert x1["target_class"] == "II" and x1["amount_yuan"] == pytest.approx(expected)
    # A scheme whose text rewards better-than-target water: X1 2024-06 against III, every factor better
    # (CODMn −1.0 → −1 944 000; NH3-N −0.2 → −2 592 000; TP −0.05 → −648 000): −5 184 000, owed to the
    # upstream city.
    doc["targets"] = {}
    doc["schemes"]["jiangsu-per-tonne"]["reward_for_better_than_target"] = True
    with db.connect(sections, "app") as conn:
        rewarded = build_ledger(conn, month="2024-06", config=LedgerConfig.from_dict(doc))
    (x1,) = [r for r in rewarded.records if r["station_key"] == "X1"]
    assert x1["amount_yuan"] == pytest.approx(-5_184_000.0)
    doc["schemes"]["jiangsu-per-tonne"]["factors"][0]["rate_yuan_per_t"] = "not a number"
    with pytest.raises(ValueError):
        LedgerConfig.from_dict(doc)
    doc = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    doc["pairs"] = {f"{NANJING}-{ZHENJIANG}": "no-such-scheme"}
    with pytest.raises(ValueError, match="no-such-scheme"):
        LedgerConfig.from_dict(doc)
    doc = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    doc["schemes"]["anhui-jiangsu-index"]["factors"][0]["standard_mg_l"] = 0
    with pytest.raises(ValueError, match="must be > 0"):
        LedgerConfig.from_dict(doc)
    # A section whose pair has no scheme is listed without an amount, saying why, and owes nothing.
    with db.connect(sections, "app") as conn:
        none = build_ledger(conn, month="2024-06", config=_config(province_pairs={}))
    (x1,) = none.records
    assert x1["scheme"] is None and x1["amount_yuan"] is None and none.pairs == []
    assert x1["note"] == (f"no scheme is configured for station X1, city pair {NANJING}-{ZHENJIANG} or province "
                          "pair 32-32")


BAD = """断面编码,月份,流量,高锰酸盐指数,氨氮,总磷
X1,2024-07,80,5.5,0.9,0.18
NOPE,2024-07,80,5.5,0.9,0.18
AQ1,2024-07,80,5.5,0.9,0.18
X1,2024-13,80,5.5,0.9,0.18
Y1,2024-07,,5.5,0.9,0.18
Y1,2024-08,80,-1.5,0.9,0.18
Y1,2024-09,80,,,
Y1,2024-10,eighty,5.5,0.9,0.18
X1,2024-07,81,5.5,0.9,0.18
"""


def test_bad_records_are_rejected_with_reasons(sections: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD, encoding="gb18030")
    report = load_section_records(sections, path)
    why = {r.row_no: r.reason for r in report.rejects}
    assert report.status == "partial" and report.rows_inserted == 1 and report.rows_rejected == 8
    assert "station 'NOPE' is not in monitoring_station" in why[2]
    assert "is an air station" in why[3]
    assert "month '2024-13' is not a month" in why[4]
    assert why[5].startswith("no flow for 2024-07")
    assert "'codmn' is -1.5" in why[6] and "cannot be negative" in why[6]
    assert why[7].startswith("no concentration given")
    assert "'eighty' is not a number" in why[8]
    assert "duplicate station and month X1 2024-07 (first at row 1)" in why[9]
    with db.connect(sections) as conn:
        batch = conn.execute("SELECT * FROM riskatlas.load_batch WHERE id = %s", (report.batch_id,)).fetchone()
        rejects = conn.execute("SELECT row_no, reason, record FROM riskatlas.load_reject WHERE batch_id = %s "
                               "ORDER BY row_no", (report.batch_id,)).fetchall()
    assert (batch["layer"], batch["status"], batch["rows_rejected"]) == ("section_record", "partial", 8)
    assert rejects[0]["row_no"] == 2 and rejects[0]["record"]["station_key"] == "NOPE"
    again = load_section_records(sections, path)
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 1)
    dry = load_section_records(sections, path, dry_run=True)
    assert dry.batch_id is None
    with pytest.raises(InputError, match="no column"):
        (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
        load_section_records(sections, tmp_path / "x.csv")


@pytest.mark.parametrize("text,month", [("2024-05", "2024-05-01"), ("202405", "2024-05-01"), ("2024/5", "2024-05-01"),
                                        ("2024年5月", "2024-05-01"), ("2024-05-01", "2024-05-01"), ("2024-5-17", None),
                                        ("2024-00", None), ("May 2024", None)])
def test_months(text: str, month: str | None) -> None:
    assert parse_month(text) == month


@pytest.fixture
def client(sections: DatabaseSettings, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "records.csv"
    path.write_text(GOOD, encoding="utf-8")
    load_section_records(sections, path)
    with TestClient(create_app(sections, APISettings())) as c:
        yield c


def test_ledger_endpoint_json_and_csv(client: TestClient) -> None:
    doc = client.get("/analysis/ledger", params={"month": "2024-05", "pair": f"{NANJING}-{ZHENJIANG}"}).json()
    assert doc["pairs"][0]["amount_yuan"] == pytest.approx(10_713_600.0) and "load_formula" in doc["units"]
    assert doc["records"][0]["scheme"]["key"] == "jiangsu-per-tonne" and doc["records"][0]["synthetic"] is False
    assert "jiangsu-per-tonne" in doc["rule"]["schemes"] and doc["years"] == []
    r = client.get("/analysis/ledger", params={"f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("\ufeffmonth,upstream_code,upstream_name"), "UTF-8 with a byte-order mark"
    assert client.get("/analysis/ledger", params={"month": "2024-5"}).status_code == 400
    assert client.get("/analysis/ledger", params={"pair": "Nanjing"}).json()["code"] == "InvalidParameterValue"


def test_ledger_commands(sections: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD, encoding="utf-8")
    env = {**os.environ, "RISKATLAS_DB_NAME": sections.db_name, "RISKATLAS_PG_PORT": str(sections.pg_port),
           "RISKATLAS_STATE_DIR": str(sections.state_dir)}
    env.pop("DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    done = run("ledger", "load", str(path), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["rows_rejected"] == 8
    done = run("ledger", "show", "--csv")
    assert done.returncode == 0 and done.stdout.splitlines()[1].startswith(f"2024-07,{NANJING},")
    done = run("ledger", "show", "--month", "2024-07")
    assert done.returncode == 0 and "jiangsu-per-tonne" in done.stdout
    done = run("ledger", "show", "--pair", "x", "--json")
    assert done.returncode == 2 and "pair" in json.loads(done.stdout)["error"]
    done = run("grade", "--all", "--json")
    assert done.returncode == 2 and "population" in json.loads(done.stdout)["error"]
    done = run("coverage", "--medium", "crossings", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["type"] == "FeatureCollection"
