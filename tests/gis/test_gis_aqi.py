"""gis.aqi against numbers worked out by hand from HJ 633-2012 Table 1 (the arithmetic is in each test).

Formula (1): IAQI = (IAQI_Hi − IAQI_Lo) / (BP_Hi − BP_Lo) × (C − BP_Lo) + IAQI_Lo, rounded up.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from gis.aqi import AqiTables, AqiTablesError, aqi, aqi_series, iaqi_array, iaqi_of, mean_concentrations

DATA = Path(__file__).resolve().parents[2] / "layers" / "data" / "hj633_aqi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def t(doc: dict) -> AqiTables:
    return AqiTables.from_dict(doc)


def test_pm25_between_breakpoints(t: AqiTables) -> None:
    # PM2.5 24-h 80 μg/m³ lies in 75..115 ↔ IAQI 100..150:
    # (150 − 100) / (115 − 75) × (80 − 75) + 100 = 50/40 × 5 + 100 = 6.25 + 100 = 106.25 → rounded up 107.
    assert iaqi_of(t, "pm25_24h", 80) == (107, False)
    # 36 μg/m³: (100 − 50)/(75 − 35) × (36 − 35) + 50 = 1.25 + 50 = 51.25 → 52.
    assert iaqi_of(t, "pm25_24h", 36) == (52, False)


def test_exactly_on_a_breakpoint(t: AqiTables) -> None:
    # On a breakpoint the IAQI is the breakpoint's: 75 → 100, 35 → 50, 0 → 0, 500 → 500 (not above the scale).
    assert iaqi_of(t, "pm25_24h", 75) == (100, False)
    assert iaqi_of(t, "pm25_24h", 35) == (50, False)
    assert iaqi_of(t, "pm25_24h", 0) == (0, False)
    assert iaqi_of(t, "pm25_24h", 500) == (500, False)
    # CO 1-h 10 mg/m³ is the 100 breakpoint; NO2 1-h 1200 is the 200 one.
    assert iaqi_of(t, "co_1h", 10) == (100, False)
    assert iaqi_of(t, "no2_1h", 1200) == (200, False)
    # Rounding up must not turn an exact 75.0 into 76: PM10 24-h 100 → (100−50)/(150−50) × (100 − 50) + 50
    # = 0.5 × 50 + 50 = 75 exactly.
    assert iaqi_of(t, "pm10_24h", 100) == (75, False)


def test_other_columns_by_hand(t: AqiTables) -> None:
    # SO2 1-h 600: 500..650 ↔ 100..150: 50/150 × 100 + 100 = 133.33 → 134.
    assert iaqi_of(t, "so2_1h", 600) == (134, False)
    # O3 8-h 180: 160..215 ↔ 100..150: 50/55 × 20 + 100 = 118.18 → 119.
    assert iaqi_of(t, "o3_8h", 180) == (119, False)
    # CO 24-h 5 mg/m³: 4..14 ↔ 100..150: 50/10 × 1 + 100 = 105.
    assert iaqi_of(t, "co_24h", 5) == (105, False)
    # O3 1-h 900: 800..1000 ↔ 300..400: 100/200 × 100 + 300 = 350.
    assert iaqi_of(t, "o3_1h", 900) == (350, False)
    # NO2 24-h 20: 0..40 ↔ 0..50: 50/40 × 20 = 25.
    assert iaqi_of(t, "no2_24h", 20) == (25, False)


def test_above_the_top_breakpoint(t: AqiTables) -> None:
    # A full column's top is IAQI 500: above it, 500 and marked above the scale.
    assert iaqi_of(t, "pm25_24h", 650) == (500, True)
    # A short column (SO2 1-h, O3 8-h end at 800 ↔ 200 / 300) has no IAQI above its end.
    assert iaqi_of(t, "so2_1h", 800) == (200, False)
    assert iaqi_of(t, "so2_1h", 801) is None
    assert iaqi_of(t, "o3_8h", 800) == (300, False)
    assert iaqi_of(t, "o3_8h", 850) is None


def test_negative_concentration_is_an_error(t: AqiTables) -> None:
    with pytest.raises(ValueError, match="negative"):
        iaqi_of(t, "pm25_24h", -1)


def test_hourly_aqi_primary_and_category(t: AqiTables) -> None:
    # Hourly: PM2.5 1-h 120 against the 24-h column: 115..150 ↔ 150..200: 50/35 × 5 + 150 = 157.14 → 158.
    # PM10 1-h 160: 150..250 ↔ 100..150: 50/100 × 10 + 100 = 105. NO2 1-h 90: 0..100 ↔ 0..50: 45.
    # O3 1-h 100: 0..160 ↔ 0..50: 31.25 → 32. CO 1-h 1.2: 0..5 ↔ 0..50: 12. SO2 1-h 10: 0..150: 3.33 → 4.
    r = aqi(t, {"pm25": 120, "pm10": 160, "no2": 90, "o3": 100, "co": 1.2, "so2": 10}, "hourly")
    assert r.iaqi["pm25"].value == 158 and r.iaqi["pm10"].value == 105 and r.iaqi["no2"].value == 45
    assert r.iaqi["o3"].value == 32 and r.iaqi["co"].value == 12 and r.iaqi["so2"].value == 4
    assert r.aqi == 158
    assert r.primary == ("pm25",)
    assert set(r.exceeding) == {"pm25", "pm10"}
    assert r.category is not None and r.category.level == "IV" and r.category.name_zh == "中度污染"
    assert r.category.hex == "#FF0000"
    assert "户外" in r.category.advice_zh and r.category.advice_en


def test_no_primary_pollutant_at_or_below_50(t: AqiTables) -> None:
    # PM2.5 35 → 50 exactly: AQI 50, category I, no primary pollutant (only AQI > 50 has one).
    r = aqi(t, {"pm25": 35, "no2": 50}, "hourly")
    assert r.aqi == 50 and r.primary == () and r.category is not None and r.category.level == "I"
    # 35.1 → 50.125 → 51: category II, primary PM2.5.
    r = aqi(t, {"pm25": 35.1}, "hourly")
    assert r.aqi == 51 and r.primary == ("pm25",) and r.category is not None and r.category.name_zh == "良"


def test_two_primary_pollutants_on_a_tie(t: AqiTables) -> None:
    # PM2.5 75 → 100, PM10 150 → 100: both primary.
    r = aqi(t, {"pm25": 75, "pm10": 150}, "daily")
    assert r.aqi == 100 and set(r.primary) == {"pm25", "pm10"}
    assert r.exceeding == ()  # exceeding means IAQI > 100


def test_missing_pollutants(t: AqiTables) -> None:
    r = aqi(t, {"pm25": None, "pm10": float("nan")}, "hourly")
    assert r.aqi is None and r.category is None and r.primary == ()
    r = aqi(t, {"pm10": 40}, "hourly")  # one pollutant is enough: 50/50 × 40 = 40
    assert r.aqi == 40 and list(r.iaqi) == ["pm10"]


def test_so2_hourly_above_800_uses_the_24h_mean(t: AqiTables) -> None:
    # SO2 1-h 900 > 800: no 1-h IAQI; the 24-h mean 500 → 475..800 ↔ 150..200: 50/325 × 25 + 150 = 153.85 → 154.
    r = aqi(t, {"so2": 900}, "hourly", so2_24h=500)
    assert r.iaqi["so2"].value == 154 and r.iaqi["so2"].column == "so2_24h" and r.aqi == 154
    assert any("note 1" in n for n in r.notes)
    # Without the 24-h mean there is no SO2 IAQI (and it says so).
    r = aqi(t, {"so2": 900, "pm10": 40}, "hourly")
    assert "so2" not in r.iaqi and r.aqi == 40 and any("no 24-hour mean" in n for n in r.notes)


def test_o3_8h_above_800_uses_the_1h(t: AqiTables) -> None:
    # Daily: O3 8-h 850 has no IAQI; O3 1-h daily max 1000 → IAQI 400 stands for ozone.
    r = aqi(t, {"o3_8h": 850, "o3": 1000}, "daily")
    assert "o3_8h" not in r.iaqi and r.iaqi["o3"].value == 400 and r.aqi == 400
    assert r.category is not None and r.category.level == "VI" and r.category.hex == "#7E0023"


def test_daily_uses_24h_columns(t: AqiTables) -> None:
    # Daily SO2 24-h mean 200 against the 24-h column: 150..475 ↔ 100..150: 50/325 × 50 + 100 = 107.69 → 108
    # (the hourly column would give 0..150..500 ↔ 50..100: 50/350 × 50 + 50 = 57.14 → 58).
    assert aqi(t, {"so2": 200}, "daily").aqi == 108
    assert aqi(t, {"so2": 200}, "hourly").aqi == 58


def test_categories_cover_every_aqi(t: AqiTables) -> None:
    expect = {0: "I", 50: "I", 51: "II", 100: "II", 101: "III", 150: "III", 151: "IV", 200: "IV", 201: "V",
              300: "V", 301: "VI", 500: "VI"}
    for value, level in expect.items():
        assert t.category(value).level == level, value
    colours = [c.hex for c in t.categories]
    assert colours == ["#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#99004C", "#7E0023"]


def test_series_agrees_with_single_values(t: AqiTables) -> None:
    pm25 = [80, 36, 75, np.nan, 650, 35]
    pm10 = [40, 200, 150, np.nan, 10, np.nan]
    so2 = [10, 900, 5, np.nan, 5, 5]
    so2_24h = [10, 500, 5, np.nan, 5, 5]
    s = aqi_series(t, {"pm25": pm25, "pm10": pm10, "so2": so2}, "hourly", so2_24h=so2_24h)
    for i in range(len(pm25)):
        one = aqi(t, {"pm25": pm25[i], "pm10": pm10[i], "so2": so2[i]}, "hourly", so2_24h=so2_24h[i])
        if one.aqi is None:
            assert math.isnan(s.aqi[i])
        else:
            assert s.aqi[i] == one.aqi, i
            assert set(s.primary[i]) == set(one.primary), i
    # Hour 1: SO2 900 → from the 24-h mean 500: 154; PM10 200 → 125; PM2.5 36 → 52: AQI 154, SO2 primary.
    assert s.aqi[1] == 154 and s.primary[1] == ("so2",)
    assert np.array_equal(iaqi_array(t, "o3_8h", [100, 801]), np.array([50, np.nan]), equal_nan=True)


def test_city_value_is_the_mean_of_concentrations(t: AqiTables) -> None:
    # Two stations: PM2.5 20 and 140 → mean 80 → 75..115: 50/40 × 5 + 100 = 106.25 → 107. The stations' own IAQI
    # are 50/35 × 20 = 28.57 → 29 and 115..150: 50/35 × 25 + 150 = 185.71 → 186: the city is neither the worst
    # station (186) nor the mean of the stations' IAQI ((29 + 186) / 2 = 107.5 → 108).
    means = mean_concentrations([{"pm25": 20, "no2": 30}, {"pm25": 140, "no2": None}])
    assert means == {"pm25": 80.0, "no2": 30.0}
    assert aqi(t, {"pm25": 20}, "hourly").aqi == 29 and aqi(t, {"pm25": 140}, "hourly").aqi == 186
    assert aqi(t, means, "hourly").aqi == 107


def test_tables_refuse_inconsistent_data(doc: dict) -> None:
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["breakpoints"]["pm25_24h"]["values"] = [0, 35, 30, 115]
    with pytest.raises(AqiTablesError, match="pm25_24h"):
        AqiTables.from_dict(bad)
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["categories"][2]["hex"] = "#FF7F00"
    with pytest.raises(AqiTablesError, match="III"):
        AqiTables.from_dict(bad)
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["hourly"]["columns"]["pm25"] = "pm25_1h"
    with pytest.raises(AqiTablesError, match="pm25_1h"):
        AqiTables.from_dict(bad)
