"""The substance and water-class tables read from their data files."""

import pytest

from layers.substances import UnknownSubstance, lookup, substances, water_limits


def test_lookup_by_cas_name_and_alias():
    assert lookup("7782-50-5").critical_t == 1.0
    assert lookup("液氯") is lookup("chlorine")
    assert lookup("7664-41-7").endpoint1_mg_m3 == 770 and lookup("氨").endpoint2_mg_m3 == 110
    assert lookup("7647-01-0").name_en == "hydrogen chloride"  # the gas is listed first for its CAS
    assert lookup("hydrochloric-acid-37").critical_t == 7.5


def test_unknown_substance_names_examples():
    with pytest.raises(UnknownSubstance, match="not in the HJ 169-2018 table"):
        lookup("unobtainium")


def test_every_row_has_a_clause_and_positive_critical_quantity():
    assert len(substances()) >= 30
    ids = [s.id for s in substances()]
    assert len(ids) == len(set(ids))
    for s in substances():
        assert s.critical_t > 0 and s.clause.startswith("HJ 169-2018")


@pytest.mark.parametrize("factor,value,expected", [
    ("NH3-N", 0.1, "I"), ("NH3-N", 0.5, "II"), ("NH3-N", 1.2, "IV"), ("NH3-N", 2.5, "worse than V"),
    ("DO", 8.0, "I"), ("DO", 5.5, "III"), ("DO", 1.0, "worse than V"), ("COD", 15, "I"), ("COD", 25, "IV"),
])
def test_gb3838_classes(factor, value, expected):
    assert water_limits()[factor].water_class(value) == expected


def test_every_demo_substance_name_is_known():
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "etl/sources/data/demo_substances.csv"
    with data.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    for r in rows:
        assert lookup(r["name"]) is lookup(r["name_zh"])
