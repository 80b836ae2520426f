"""HJ 941-2018 grading, pure: Q, M, E, every cell of the level matrix, the label, and the population
within a radius against an independent geodesic-circle overlay."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from affine import Affine
from pyproj import Geod

from gis.grading import (
    Critical,
    CriticalTable,
    GradingProblem,
    GradingTables,
    TablesError,
    WaterReceptor,
    disk_sums,
    e_air,
    e_air_many,
    e_water,
    grade,
    grade_many,
    m_band,
    normalise_name,
    q_band,
    q_many,
    q_values,
)
from layers.substances import substances

ROOT = Path(__file__).resolve().parents[2]
GEOD = Geod(ellps="WGS84")

# DESIGN 8.1, typed here independently of the data file: cells for M1/M2/M3/M4.
L, G, M = "larger", "general", "major"
EXPECTED = {
    ("E1", "Q1"): (L, L, M, M), ("E1", "Q2"): (L, M, M, M), ("E1", "Q3"): (M, M, M, M),
    ("E2", "Q1"): (G, L, L, M), ("E2", "Q2"): (L, L, M, M), ("E2", "Q3"): (L, M, M, M),
    ("E3", "Q1"): (G, G, L, L), ("E3", "Q2"): (G, L, L, M), ("E3", "Q3"): (L, L, M, M),
}
ZH = {"general": "一般", "larger": "较大", "major": "重大"}
Q_OF = {"Q1": 3.0, "Q2": 30.0, "Q3": 300.0}
M_OF = {"M1": 10, "M2": 30, "M3": 50, "M4": 70}
POPULATION_OF = {"E1": (60_000.0, 200.0), "E2": (20_000.0, 200.0), "E3": (5_000.0, 100.0)}
RECEPTORS_OF = {
    "E1": [WaterReceptor("protection_zone", None, "PZ-1", "一级保护区", 2_000.0)],
    "E2": [WaterReceptor("protected_area", "forest-park", "FP-1", "森林公园", 3_000.0)],
    "E3": [],
}


@pytest.fixture(scope="module")
def tables() -> GradingTables:
    doc = yaml.safe_load((ROOT / "layers/data/hj941_grading.yaml").read_text(encoding="utf-8"))
    return GradingTables.from_dict(doc)


@pytest.fixture(scope="module")
def critical() -> CriticalTable:
    return CriticalTable(Critical(s.id, s.name_en, s.cas, s.critical_t, s.water, (s.name_zh, *s.aliases), s.air)
                         for s in substances())


CELLS = [(e, q, m, medium) for (e, q) in EXPECTED for m in ("M1", "M2", "M3", "M4") for medium in ("air", "water")]


@pytest.mark.parametrize("e,q,m,medium", CELLS, ids=[f"{md}-{e}-{q}-{m}" for e, q, m, md in CELLS])
def test_every_cell_of_the_matrix(tables: GradingTables, e: str, q: str, m: str, medium: str) -> None:
    """A hand-made source for each cell: Q, M and the receptor facts that give E, for air and for water."""
    expected = EXPECTED[(e, q)][("M1", "M2", "M3", "M4").index(m)]
    far, near = POPULATION_OF[e] if medium == "air" else POPULATION_OF["E3"]
    e_air_class, _ = e_air(far, near, tables)
    receptors = RECEPTORS_OF[e] if medium == "water" else []
    e_water_class, _ = e_water(receptors, False, False, tables)
    q_air, q_water = (Q_OF[q], 0.5) if medium == "air" else (0.5, Q_OF[q])
    g = grade(q_air, q_water, M_OF[m], e_air_class, e_water_class, tables)
    graded, other = (g.air, g.water) if medium == "air" else (g.water, g.air)
    assert (graded.e, graded.q_band, graded.m_band) == (e, q, m)
    assert graded.level == expected and graded.cell == f"{e}/{q}/{m}"
    assert other.q_band == "Q0" and other.level == "general" and other.cell is None
    assert g.level == expected
    zh_medium = {"air": "大气", "water": "水"}[medium]
    part = f"{ZH[expected]}-{zh_medium}({q}-{m}-{e})"
    other_part = f"一般-{'水' if medium == 'air' else '大气'}(Q0)"
    assert g.label == (f"{ZH[expected]}[{part}+{other_part}]" if medium == "air"
                       else f"{ZH[expected]}[{other_part}+{part}]")


def test_label_in_the_standards_format(tables: GradingTables) -> None:
    g = grade(30.0, 3.0, 30, "E3", "E3", tables, m_water=10)
    assert g.label == "较大[较大-大气(Q2-M2-E3)+一般-水(Q1-M1-E3)]"
    assert g.level == "larger"


def test_q_below_one_is_general_directly_without_m(tables: GradingTables) -> None:
    g = grade(0.99, 0.2, None, "E1", "E1", tables)
    assert (g.level, g.label, g.status) == ("general", "一般[一般-大气(Q0)+一般-水(Q0)]", "graded")


def test_without_m_q_and_e_are_graded_and_the_level_is_the_range_m_could_give(tables: GradingTables) -> None:
    # E1/Q1 over M1..M4 is larger, larger, major, major (DESIGN 8.1): pending M, larger to major
    g = grade(1.0, 0.2, None, "E1", "E1", tables)
    assert g.status == "pending-m" and g.level is None and g.levels == ("larger", "major")
    assert (g.air.q_band, g.air.e, g.air.m_band, g.air.cell, g.air.level) == ("Q1", "E1", None, "E1/Q1/M?", None)
    assert g.label == "较大~重大[较大~重大-大气(Q1-M?-E1)+一般-水(Q0)]"
    # E1/Q3 is major whatever M is: the level is known, M is still pending
    g = grade(0.5, 150.0, 30, "E3", "E1", tables, m_water=None)
    assert g.status == "pending-m" and g.level == "major" and g.water.level == "major"
    assert g.label == "重大[一般-大气(Q0)+重大-水(Q3-M?-E1)]"
    # air graded with its M, water pending: E3/Q1 over M1..M4 is general, general, larger, larger
    g = grade(30.0, 3.0, 30, "E3", "E3", tables, m_water=None)
    assert g.levels == ("larger", "larger") and g.level == "larger"
    assert g.label == "较大[较大-大气(Q2-M2-E3)+一般~较大-水(Q1-M?-E3)]"


def test_air_and_water_each_have_their_own_m(tables: GradingTables) -> None:
    # the example: air E3/Q2/M2 is larger, water E2/Q1/M1 is general
    g = grade(30.0, 3.0, 30, "E3", "E2", tables, m_water=10)
    assert g.label == "较大[较大-大气(Q2-M2-E3)+一般-水(Q1-M1-E2)]" and (g.air.m_band, g.water.m_band) == ("M2", "M1")


@pytest.mark.parametrize("q,band", [(0.0, "Q0"), (0.999, "Q0"), (1.0, "Q1"), (9.99, "Q1"), (10.0, "Q2"),
                                    (99.9, "Q2"), (100.0, "Q3"), (1e6, "Q3")])
def test_q_band_edges(tables: GradingTables, q: float, band: str) -> None:
    assert q_band(q, tables) == band


@pytest.mark.parametrize("score,band", [(0, "M1"), (24, "M1"), (25, "M2"), (44, "M2"), (45, "M3"), (59, "M3"),
                                        (60, "M4"), (100, "M4")])
def test_m_band_edges(tables: GradingTables, score: int, band: str) -> None:
    assert m_band(score, tables) == band


# HJ 941-2018 §6.3 says 大于 (more than): exactly a threshold does not reach its class.
@pytest.mark.parametrize("far,near,cls", [
    (50_000, 0, "E2"), (50_001, 0, "E1"), (50_000, 1_000, "E2"), (0, 1_000, "E2"), (0, 1_001, "E1"),
    (10_000, 0, "E3"), (10_001, 0, "E2"), (0, 500, "E3"), (0, 501, "E2"), (10_000, 500, "E3"), (0, 0, "E3")])
def test_air_sensitivity_thresholds(tables: GradingTables, far: float, near: float, cls: str) -> None:
    got, why = e_air(far, near, tables)
    assert got == cls and why


def test_e_air_many_equals_e_air_source_for_source(tables: GradingTables) -> None:
    rng = np.random.default_rng(5)
    edges = [0.0, 499.6, 500.0, 500.4, 1_000.0, 1_000.5, 10_000.0, 10_000.4, 50_000.0, 50_000.6, 2e5, math.nan]
    far = np.concatenate([rng.choice(edges, 3000), rng.lognormal(9, 2, 3000)])
    near = np.concatenate([rng.choice(edges, 3000), rng.lognormal(6, 2, 3000)])
    classes, reasons = e_air_many(far, near, tables)
    got = list(zip(classes.tolist(), reasons.tolist()))
    assert got == [e_air(f, n, tables) for f, n in zip(far.tolist(), near.tolist())]
    assert {c for c, _ in got} == {"E1", "E2", "E3"}


def test_water_sensitivity_rules(tables: GradingTables) -> None:
    pz, park = RECEPTORS_OF["E1"], RECEPTORS_OF["E2"]
    assert e_water([], False, True, tables)[0] == "E1"  # national border within 24 h
    assert e_water([], True, False, tables)[0] == "E2"  # provincial border within 24 h
    assert e_water(park, True, False, tables)[0] == "E2"
    cls, why = e_water(park + pz, True, False, tables)
    assert cls == "E1" and "一级保护区" in why[0]
    assert tables.water_reading == "hj941-2018"
    for kind in ("nature-reserve", "wetland"):  # E2 in HJ 941-2018's reading, the default
        cls, why = e_water([WaterReceptor("protected_area", kind, "X", None, 1.0)], False, False, tables)
        assert cls == "E2" and "under the hj941-2018 reading" in why[0]
    doc = yaml.safe_load((ROOT / "layers/data/hj941_grading.yaml").read_text(encoding="utf-8"))
    doc["e_water"]["reserve_wetland_reading"] = "guideline-2014"
    older = GradingTables.from_dict(doc)
    for kind in ("nature-reserve", "wetland"):  # E1 in the 2014 guideline's
        cls, why = e_water([WaterReceptor("protected_area", kind, "X", None, 1.0)], False, False, older)
        assert cls == "E1" and "under the guideline-2014 reading" in why[0]
    doc["e_water"]["reserve_wetland_reading"] = "2016"
    with pytest.raises(TablesError, match="reserve_wetland_reading was '2016'"):
        GradingTables.from_dict(doc)
    assert e_water([WaterReceptor("water_reserve", "river", "W", "取水口", 9_000.0)], False, False, tables)[0] == "E1"
    assert e_water([WaterReceptor("protected_area", "scenic", "S", None, 1.0)], False, False, tables)[0] == "E3"


def test_q_from_the_inventory(tables: GradingTables, critical: CriticalTable) -> None:
    items = [
        {"name": "液氨", "cas": "7664-41-7", "quantity_t": 10.0},       # ammonia, 5 t: 2.0, air and water
        {"name": "chlorine", "cas": None, "quantity_t": 0.5},           # 1 t: 0.5, air only (§7.1 lists it not)
        {"name": None, "cas": "74-82-8", "quantity_t": 15.0},           # methane, 10 t: 1.5, air only
        {"name": "盐酸（≥37%）", "cas": "7647-01-0", "quantity_t": 3.75},  # 7.5 t: 0.5 (not HCl gas's 2.5)
        {"name": "汞", "cas": "7439-97-6", "quantity_t": 0.25},          # 0.5 t: 0.5, water only (part 7)
        {"name": "氨氮浓度≥2000mg/L的废液", "quantity_t": 10.0},           # 5 t: 2.0, water only (§6.1 leaves it out)
    ]
    r = q_values(items, critical, tables)
    assert r.q_air == pytest.approx(2.0 + 0.5 + 1.5 + 0.5)
    assert r.q_water == pytest.approx(2.0 + 0.5 + 0.5 + 2.0)
    assert [p.id for p in r.parts] == ["ammonia", "chlorine", "methane", "hydrochloric-acid-37", "mercury",
                                       "waste-liquor-nh3-n-2000-mg-l"]
    assert q_values(None, critical, tables).q_air == 0 and q_values([], critical, tables).q_water == 0


@pytest.mark.parametrize("item,needle", [
    ({"name": "氨", "cas": "7664-41-7", "quantity_t": -1.0}, "quantity -1 t is negative"),
    ({"name": "氨", "cas": "7664-41-7", "quantity_t": None}, "is not a number of tonnes"),
    ({"name": "氨", "cas": "7664-41-7", "quantity_t": "5"}, "is not a number of tonnes"),
    ({"name": "某物质", "cas": "1234-56-7", "quantity_t": 1.0}, "CAS '1234-56-7' is not in the HJ 169 table"),
    ({"name": "氰化钾", "quantity_t": 1.0}, "is not in the HJ 169 table"),
    ({"name": "氨", "cas": "7782-50-5", "quantity_t": 1.0}, "which is chlorine in the HJ 169 table"),
    ("benzene", "is not a {name, cas, quantity_t} object"),
])
def test_bad_inventory_lines_are_rejected_with_reasons(tables: GradingTables, critical: CriticalTable,
                                                       item: object, needle: str) -> None:
    with pytest.raises(GradingProblem) as exc:
        q_values([{"name": "苯", "quantity_t": 1.0}, item], critical, tables)
    assert needle in str(exc.value)


def test_names_match_across_widths_and_symbols() -> None:
    assert normalise_name("盐酸（≥37%）") == normalise_name("盐酸(>=37%)") == "盐酸37"
    assert normalise_name("waste liquor NH3-N ≥ 2000 mg/L") == normalise_name("waste liquor NH3-N >= 2000 mg/L")


def test_q_many_equals_q_values_line_for_line(tables: GradingTables, critical: CriticalTable) -> None:
    rng = np.random.default_rng(3)
    table = substances()
    inventories: list[list[object]] = []
    for i in range(400):
        items: list[object] = []
        for _ in range(int(rng.integers(0, 5))):
            s = table[int(rng.integers(0, len(table)))]
            qty: object = round(float(s.critical_t * rng.lognormal(0, 1.5)), 3)
            items.append({"name": s.name_zh if rng.random() < 0.5 else s.name_en, "cas": s.cas, "quantity_t": qty})
        if i % 37 == 0:
            items.append({"name": "不存在的物质", "cas": None, "quantity_t": 1.0})
        if i % 41 == 0:
            items.append({"name": "苯", "cas": "71-43-2", "quantity_t": -2})
        if i % 43 == 0:
            items.append("not an object")
        inventories.append(items)
    src, pos, names, cas, values, objects = [], [], [], [], [], []
    for i, items in enumerate(inventories):
        for k, item in enumerate(items, start=1):
            src.append(i)
            pos.append(k)
            ok = isinstance(item, dict)
            names.append(item.get("name") if ok else None)  # type: ignore[union-attr]
            cas.append(item.get("cas") if ok else None)  # type: ignore[union-attr]
            values.append(item.get("quantity_t") if ok else None)  # type: ignore[union-attr]
            objects.append(ok)
    many = q_many(src, pos, names, cas, values, objects, len(inventories), critical, tables)
    for i, items in enumerate(inventories):
        try:
            one = q_values(items, critical, tables)  # type: ignore[arg-type]
        except GradingProblem as exc:
            assert "; ".join(many.problems[i]) == str(exc)
            continue
        assert i not in many.problems
        assert many.q_air[i] == one.q_air and many.q_water[i] == one.q_water


def test_grade_many_equals_grade(tables: GradingTables) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    qa = rng.choice([0.2, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0], n)
    qw = qa * rng.choice([0.0, 0.5, 1.0], n)
    m = rng.integers(0, 101, n).astype(float)
    m[::97] = np.nan
    mw = rng.integers(0, 101, n).astype(float)
    mw[::89] = np.nan
    ea = rng.choice(["E1", "E2", "E3"], n)
    ew = rng.choice(["E1", "E2", "E3"], n)
    many = grade_many(qa, qw, m, ea, ew, tables, mw)
    assert {"graded", "pending-m"} <= set(many.status)
    for i in range(n):
        try:
            g = grade(float(qa[i]), float(qw[i]), None if np.isnan(m[i]) else float(m[i]), str(ea[i]), str(ew[i]),
                      tables, m_water=None if np.isnan(mw[i]) else float(mw[i]))
        except GradingProblem as exc:
            assert many.problems[i] == str(exc) and many.label[i] is None
            continue
        assert (many.air_level[i], many.water_level[i], many.risk_level[i], many.label[i]) == (
            g.air.level, g.water.level, g.level, g.label)
        assert (many.air_cell[i], many.water_cell[i]) == (g.air.cell, g.water.cell)
        assert (many.m_air_band[i], many.m_water_band[i], many.status[i]) == (g.air.m_band, g.water.m_band, g.status)
        assert (many.level_min[i], many.level_max[i]) == g.levels


def test_incomplete_tables_are_refused(tables: GradingTables) -> None:
    doc = yaml.safe_load((ROOT / "layers/data/hj941_grading.yaml").read_text(encoding="utf-8"))
    del doc["matrix"]["cells"]["E2"]["Q3"]
    with pytest.raises(TablesError, match="E2/Q3"):
        GradingTables.from_dict(doc)
    doc = yaml.safe_load((ROOT / "layers/data/hj941_grading.yaml").read_text(encoding="utf-8"))
    doc["m"]["bands"][1]["lower"] = 26
    with pytest.raises(TablesError, match="contiguous"):
        GradingTables.from_dict(doc)


# --------------------------------------------------------------------------------------------------
# population within a radius, against an independent overlay


def _geodesic_circle(lon: float, lat: float, radius_m: float, n: int = 1440) -> shapely.Polygon:
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    x, y, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), az, np.full(n, radius_m))
    return shapely.Polygon(np.column_stack([x, y]))


def _overlay_sum(values: np.ndarray, transform: Affine, circle: shapely.Polygon) -> float:
    """Σ value × (area of cell ∩ circle) / (area of cell), cell by cell, with shapely."""
    rows, cols = values.shape
    total = 0.0
    for r in range(rows):
        for c in range(cols):
            x0, y0 = transform.c + c * transform.a, transform.f + r * transform.e
            x1, y1 = x0 + transform.a, y0 + transform.e
            cell = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            if cell.intersects(circle):
                total += values[r, c] * cell.intersection(circle).area / cell.area
    return total


@pytest.fixture(scope="module")
def small_raster() -> tuple[np.ndarray, Affine]:
    rng = np.random.default_rng(11)
    values = rng.gamma(2.0, 400.0, size=(30, 36))  # persons per cell, 0.005° cells near Nanjing
    values[4, 7] = np.nan  # no data counts as 0
    return values, Affine(0.005, 0.0, 118.70, 0.0, -0.005, 32.12)


@pytest.mark.parametrize("radius_m", [500.0, 5_000.0])
def test_disk_sums_match_a_geodesic_circle_overlay(small_raster: tuple[np.ndarray, Affine], radius_m: float) -> None:
    values, transform = small_raster
    lon = np.array([118.79, 118.8237, 118.7012, 118.8611, 118.7701])
    lat = np.array([32.05, 32.0313, 32.1190, 31.9741, 32.0049])
    got = disk_sums(values, transform, lon, lat, radius_m)
    clean = np.nan_to_num(values)
    for i in range(len(lon)):
        expected = _overlay_sum(clean, transform, _geodesic_circle(float(lon[i]), float(lat[i]), radius_m))
        assert got[i] == pytest.approx(expected, rel=1e-3), (lon[i], lat[i])


def test_disk_sums_outside_the_raster_are_zero_and_edges_partial(small_raster: tuple[np.ndarray, Affine]) -> None:
    values, transform = small_raster
    ones = np.ones_like(values)
    got = disk_sums(ones, transform, np.array([120.5, 118.70]), np.array([30.0, 32.05]), 500.0)
    assert got[0] == 0.0
    circle = _geodesic_circle(118.70, 32.05, 500.0)
    cell_deg2 = 0.005 * 0.005
    assert got[1] == pytest.approx(circle.area / 2 / cell_deg2, rel=2e-3)  # half the circle lies on the raster


def test_disk_sum_of_uniform_density_is_the_circle_area() -> None:
    """On a uniform raster the sum is the circle's area in cells: π r² over the cell area in m²."""
    transform = Affine(0.005, 0.0, 118.0, 0.0, -0.005, 33.0)
    ones = np.ones((400, 400))
    lat = 32.0
    got = disk_sums(ones, transform, np.array([119.0]), np.array([lat]), 5_000.0)[0]
    area, _ = GEOD.polygon_area_perimeter([0.0, 0.005, 0.005, 0.0], [lat - 0.0025, lat - 0.0025, lat + 0.0025,
                                                                     lat + 0.0025])
    assert got == pytest.approx(math.pi * 5_000.0**2 / abs(area), rel=2e-3)


def test_tables_have_every_cell(tables: GradingTables) -> None:
    cells = set(itertools.product(("E1", "E2", "E3"), ("Q1", "Q2", "Q3"), ("M1", "M2", "M3", "M4")))
    assert set(tables.cells) == cells
    for (e, q, m), level in tables.cells.items():
        assert level == EXPECTED[(e, q)][("M1", "M2", "M3", "M4").index(m)]
