"""Border-zone hazard flags, against an independent computation with shapely/pyproj in metric CRSs.

The reference below shares no code with services.hazards: it derives the border lines itself (A's
boundary within the tolerance of B, in the region's transverse Mercator), measures every distance in a
transverse Mercator centred on the source (true to a millimetre at these distances), walks the river
network in Python with geodesic reach lengths, and applies the thresholds and the severity rule as the
rules file states them (the rule is re-read from the file here, not taken from services.hazards).
Flags whose distance (or travel time) lies within 1 m (5 s) of a threshold are left out of the set
comparison: the two computations may round such a case either way.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import yaml
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import nearest_points

from etl.load import load_file
from gis.crs import from_metric, metric_crs_for, to_metric
from gis.river_transport import RIVER_CLASSES
from layers import cluster, db
from layers.settings import DatabaseSettings
from services.hazards import refresh_after_load, refresh_batch, refresh_full
from services.hazards.borders import ensure_borders, neighbours
from services.hazards.rules import KINDS, HazardRules, RulesError, load_rules, rules_from_dict
from services.river import downstream, snap
from services.web.app import create_app
from services.web.settings import APISettings
from tests.services.river_reference import jurisdictions_along

ROOT = Path(__file__).resolve().parents[2]
GEOD = Geod(ellps="WGS84")
NANJING, CHUZHOU, MAANSHAN, YANGZHOU = "320100", "341100", "340500", "321000"
JIANGSU, ANHUI = "320000", "340000"
RULES = load_rules()


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def hazard_db(cluster_settings: DatabaseSettings, demo_template: str) -> Iterator[DatabaseSettings]:
    """A copy of the demo region of this module's own, with risk levels spread and some sources closed, refreshed.

    A third each of the sources is set to general / larger / major here (whatever their grade) so that
    every threshold is exercised, and a few are closed.
    """
    name = f"riskatlas_test_hazards_{os.getpid()}"
    cluster.drop_database(cluster_settings, name)
    cluster.clone_database(cluster_settings, demo_template, name)
    s = cluster_settings.with_db(name)
    with db.transaction(s) as conn:
        conn.execute("""UPDATE riskatlas.risk_source
                        SET risk_level = (ARRAY['general', 'larger', 'major'])[1 + id % 3],
                            status = CASE WHEN id % 97 = 0 THEN 'closed' ELSE status END""")
    refresh_full(s)
    yield s
    cluster.drop_database(cluster_settings, name)


@pytest.fixture(scope="module")
def db_flags(hazard_db: DatabaseSettings) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    with db.connect(hazard_db) as conn:
        rows = conn.execute("SELECT * FROM riskatlas.hazard_flag").fetchall()
    return {(r["source_key"], r["kind"], r["other_code"], r["feature_key"]): dict(r) for r in rows}


@pytest.fixture(scope="module")
def reference(hazard_db: DatabaseSettings) -> Reference:
    return Reference.compute(hazard_db, RULES)


@pytest.fixture(scope="module")
def client(hazard_db: DatabaseSettings) -> Iterator[TestClient]:
    with TestClient(create_app(hazard_db, APISettings(default_limit=50, max_limit=5_000))) as c:
        yield c


# --------------------------------------------------------------------------------------------------
# the independent computation


def precise_distance(lon: float, lat: float, geom: shapely.Geometry) -> tuple[float, Point]:
    """Distance (m) from (lon, lat) to a lon/lat geometry and the nearest point (lon/lat), measured in a
    transverse Mercator centred on the point (scale error 1e-6 at 10 km)."""
    crs = metric_crs_for(lon, lat)
    near = shapely.clip_by_rect(geom, lon - 0.25, lat - 0.25, lon + 0.25, lat + 0.25)
    if near.is_empty:
        return math.inf, Point()
    g = to_metric([near], crs)[0]
    p = to_metric([Point(lon, lat)], crs)[0]
    d = float(g.distance(p))
    q = nearest_points(g, p)[0]
    return d, from_metric([q], crs)[0]


def along_m(coords: list[tuple[float, float]], pt: Point) -> float:
    """Geodesic metres along a lon/lat polyline from its start to ``pt`` (a point on it)."""
    best, best_i = math.inf, 0
    for i in range(len(coords) - 1):
        d = LineString(coords[i:i + 2]).distance(pt)
        if d < best:
            best, best_i = d, i
    path = list(coords[:best_i + 1]) + [(pt.x, pt.y)]
    lons, lats = zip(*path)
    return float(GEOD.line_length(lons, lats))


def linear(g: shapely.Geometry) -> list[LineString]:
    return [p for p in shapely.get_parts(g) if p.geom_type == "LineString" and not p.is_empty] if g is not None else []


@dataclass
class Reference:
    """Flags computed with shapely/pyproj: key (source_key, kind, other, feature_key) -> facts."""

    flags: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    unsure: set[tuple[str, str]] = field(default_factory=set)  # (source_key, kind) near a threshold
    borders: dict[tuple[str, str], shapely.Geometry] = field(default_factory=dict)

    @classmethod
    def compute(cls, s: DatabaseSettings, rules: HazardRules) -> Reference:
        ref = cls()
        with db.connect(s) as conn:
            admin = _frame(conn, "SELECT code, name, level, parent_code, geom FROM riskatlas.admin_area")
            sources = _frame(conn, """SELECT id, key, city_code, coalesce(risk_level, 'general') AS risk_level,
                                             status, geom FROM riskatlas.risk_source WHERE city_code IS NOT NULL""")
            zones = _frame(conn, """SELECT key, reserve_key, level, coalesce(owner_city, city_code) AS owner, geom
                                    FROM riskatlas.protection_zone""")
            areas = _frame(conn, "SELECT key, coalesce(owner_city, city_code) AS owner, geom FROM riskatlas.protected_area")
            rivers = _frame(conn, """SELECT id, key, name, river_class, velocity_ms, from_node, to_node, geom
                                     FROM riskatlas.river""")
        sources = sources[~sources["status"].isin(rules.skip_status)]
        parent = dict(zip(admin["code"], admin["parent_code"]))
        for level in ("city", "province"):
            ref.borders.update(derive_borders(admin[admin["level"] == level], rules.border_snap_tolerance_m))
        ref._borders(sources, admin, parent, rules)
        ref._features(sources, zones, "protection-zone", rules)
        ref._features(sources, areas, "protected-area", rules)
        ref._upstream(sources, rivers, admin[admin["level"] == "city"], rules)
        return ref

    def _add(self, rules: HazardRules, key: tuple[str, str, str, str], risk: str, d: float, *, threshold: float | None,
             own: str, travel_s: float | None = None, zone_level: str | None = None) -> None:
        sev = severity_from_file(key[1], risk, d, threshold, travel_s, rules.horizon_s, zone_level)
        close_edge = (threshold is not None and abs(d - rules.severity_rule.close_fraction * threshold) < 1) or (
            travel_s is not None and abs(travel_s - rules.severity_rule.close_fraction * rules.horizon_s) < 5)
        self.flags[key] = {"distance_m": d, "severity": None if close_edge else sev, "travel_time_s": travel_s,
                           "cross_border": key[2] != own, "zone_level": zone_level}

    def _borders(self, sources: gpd.GeoDataFrame, admin: gpd.GeoDataFrame, parent: dict[str, str],
                 rules: HazardRules) -> None:
        for kind, level in (("city-border", "city"), ("province-border", "province")):
            lines = {k: v for k, v in self.borders.items() if k[0] in set(admin.loc[admin["level"] == level, "code"])}
            coarse = {k: to_metric([v])[0] for k, v in lines.items()}
            for src, pt, pt_m in _points(sources):
                own = src["city_code"] if level == "city" else parent[src["city_code"]]
                t = rules.threshold(kind, src["risk_level"])
                for (a, b), line_m in coarse.items():
                    if a != own or line_m.distance(pt_m) > t * 1.01 + 10:
                        continue
                    d, _ = precise_distance(pt.x, pt.y, lines[(a, b)])
                    if abs(d - t) < 1:
                        self.unsure.add((src["key"], kind))
                    if d <= t:
                        self._add(rules, (src["key"], kind, b, ""), src["risk_level"], d, threshold=t,
                                  own=src["city_code"])

    def _features(self, sources: gpd.GeoDataFrame, features: gpd.GeoDataFrame, kind: str, rules: HazardRules) -> None:
        coarse = to_metric(features.geometry.to_numpy())
        for src, pt, pt_m in _points(sources):
            best: dict[str, tuple[int, float, Any]] = {}
            for i, f in enumerate(features.itertuples()):
                zone = getattr(f, "level", None)
                t = rules.threshold(kind, src["risk_level"], zone)
                if coarse[i].distance(pt_m) > t * 1.01 + 10:
                    continue
                d, _ = precise_distance(pt.x, pt.y, f.geom)
                if abs(d - t) < 1 and not (d == 0 and t == 0):
                    self.unsure.add((src["key"], kind))
                if d > t or not f.owner:
                    continue
                group = f.reserve_key if kind == "protection-zone" else f.key
                rank = ("1", "2", "quasi").index(zone) if zone else 0
                if group not in best or (rank, d) < best[group][:2]:
                    best[group] = (rank, d, (f, t))
            for _rank, d, (f, t) in best.values():
                self._add(rules, (src["key"], kind, f.owner, f.key), src["risk_level"], d, threshold=t,
                          own=src["city_code"], zone_level=getattr(f, "level", None))

    def _upstream(self, sources: gpd.GeoDataFrame, rivers: gpd.GeoDataFrame, cities: gpd.GeoDataFrame,
                  rules: HazardRules) -> None:
        reach = {}
        for r in rivers.itertuples():
            u = r.velocity_ms if r.velocity_ms is not None and not np.isnan(r.velocity_ms) else RIVER_CLASSES[r.river_class].u
            coords = list(r.geom.coords)
            lons, lats = zip(*coords)
            reach[r.id] = {"r": r, "u": float(u), "coords": coords, "len": float(GEOD.line_length(lons, lats)),
                           "pieces": []}
        # Each stretch of a reach inside a city, in geodesic metres from the reach start.  Where a reach
        # crosses a boundary is found on the stored geometry, whose segments are straight in degrees:
        # the same segment drawn straight in a metric CRS bows by up to a metre over 5 km, which a
        # crossing at a shallow angle turns into tens of metres along the river.
        city = dict(zip(cities["code"], cities.geometry))
        for info in reach.values():
            line = info["r"].geom
            for code, poly in city.items():
                if not line.intersects(poly):
                    continue
                for part in linear(line.intersection(poly)):
                    a, b = sorted(along_m(info["coords"], Point(c)) for c in (part.coords[0], part.coords[-1]))
                    info["pieces"].append((code, a, b))
        nexts: dict[int, list[int]] = {}
        for rid, info in reach.items():
            nexts[rid] = [o for o, oi in reach.items() if oi["r"].from_node == info["r"].to_node and o != rid]
        river_m = {rid: to_metric([info["r"].geom])[0] for rid, info in reach.items()}
        horizon = rules.horizon_s
        for src, pt, pt_m in _points(sources):
            best = (math.inf, None, None)
            for rid, line_m in river_m.items():
                if line_m.distance(pt_m) > rules.river_snap_m + 20:
                    continue
                d, q = precise_distance(pt.x, pt.y, reach[rid]["r"].geom)
                if d < best[0]:
                    best = (d, rid, q)
            d_snap, r0, q = best
            if r0 is None:
                continue
            if abs(d_snap - rules.river_snap_m) < 1:
                self.unsure.add((src["key"], "upstream"))
            if d_snap > rules.river_snap_m:
                continue
            pos = along_m(reach[r0]["coords"], q)
            u0 = reach[r0]["u"]
            start = {r0: (0.0, 0.0)}  # quickest (seconds, metres) from the start of r0 to each reach start
            heap = [(0.0, 0.0, r0)]
            while heap:
                t, m, rid = heapq.heappop(heap)
                if start.get(rid, (math.inf,))[0] < t:
                    continue
                t_end, m_end = t + reach[rid]["len"] / reach[rid]["u"], m + reach[rid]["len"]
                if t_end - reach[r0]["len"] / u0 >= horizon:
                    continue
                for n in nexts[rid]:
                    if n != r0 and t_end < start.get(n, (math.inf,))[0]:
                        start[n] = (t_end, m_end)
                        heapq.heappush(heap, (t_end, m_end, n))
            entry: dict[str, tuple[float, float]] = {}
            for rid, (t, m) in start.items():
                for code, a, b in reach[rid]["pieces"]:
                    if rid == r0:
                        if b <= pos:
                            continue
                        em = max(a - pos, 0.0)
                        et = em / u0
                    else:
                        em = m - pos + a
                        et = t - pos / u0 + a / reach[rid]["u"]
                    if code != src["city_code"] and et < entry.get(code, (math.inf,))[0]:
                        entry[code] = (et, em)
            for code, (et, em) in entry.items():
                if abs(et - horizon) < 5:
                    self.unsure.add((src["key"], "upstream"))
                if et <= horizon:
                    self._add(rules, (src["key"], "upstream", code, ""), src["risk_level"], em, threshold=None,
                              own=src["city_code"], travel_s=et)


RULES_DOC = yaml.safe_load((Path(__file__).resolve().parents[2] / "layers/data/hazard_thresholds.yaml")
                           .read_text(encoding="utf-8"))


def severity_from_file(kind: str, risk: str, d: float, threshold: float | None, travel_s: float | None,
                       horizon_s: float, zone_level: str | None) -> str:
    """The severity rule as the rules file's comment states it, read from the file itself.

    Start from `base` by risk level; one step up when the distance is at most `close_fraction` of the
    threshold (upstream: the travel time at most that share of the horizon); at least `inside_floor`
    inside a zone or protected area; at least `zone_floor[level]` for a protection-zone flag; never
    above the highest level.
    """
    rule = RULES_DOC["severity"]
    levels = list(rule["levels"])
    i = levels.index(rule["base"][risk])
    fraction = float(rule["close_fraction"])
    if kind == "upstream":
        i += 1 if travel_s is not None and travel_s <= fraction * horizon_s else 0
    elif threshold is not None and d <= fraction * threshold:
        i += 1
    if kind in ("protection-zone", "protected-area") and d == 0:
        i = max(i, levels.index(rule["inside_floor"]))
    if kind == "protection-zone" and zone_level in rule.get("zone_floor", {}):
        i = max(i, levels.index(rule["zone_floor"][zone_level]))
    return levels[min(i, len(levels) - 1)]


def derive_borders(areas: gpd.GeoDataFrame, tol: float) -> dict[tuple[str, str], shapely.Geometry]:
    """(code, other) -> the part of code's boundary within ``tol`` m of other, lon/lat."""
    metric = dict(zip(areas["code"], to_metric(areas.geometry.to_numpy())))
    out = {}
    for a, ga in metric.items():
        boundary = ga.boundary
        for b, gb in metric.items():
            if a == b or not shapely.box(*ga.bounds).buffer(tol).intersects(shapely.box(*gb.bounds)):
                continue
            if ga.distance(gb) > tol:
                continue
            parts = linear(boundary.intersection(gb.buffer(tol)))
            if parts:
                out[(a, b)] = from_metric([shapely.MultiLineString(parts)])[0]
    return out


def _frame(conn, query: str) -> gpd.GeoDataFrame:
    """The rows of ``query`` (which selects ``geom``) as a GeoDataFrame, geometry column ``geom``."""
    rows = conn.execute(f"SELECT q.*, ST_AsBinary(q.geom) AS wkb FROM ({query}) q").fetchall()
    data = [{k: v for k, v in r.items() if k not in ("geom", "wkb")} for r in rows]
    geoms = [shapely.from_wkb(bytes(r["wkb"])) for r in rows]
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326").rename_geometry("geom")


def _points(sources: gpd.GeoDataFrame) -> Iterator[tuple[dict[str, Any], Point, Point]]:
    metric = to_metric(sources.geometry.to_numpy())
    for (_, row), pm in zip(sources.iterrows(), metric):
        yield row.to_dict(), row["geom"], pm


# --------------------------------------------------------------------------------------------------
# the demo region against the reference


def _compare(kind: str, db_flags: dict, ref: Reference) -> tuple[int, int]:
    ours = {k: v for k, v in db_flags.items() if k[1] == kind and (k[0], kind) not in ref.unsure}
    theirs = {k: v for k, v in ref.flags.items() if k[1] == kind and (k[0], kind) not in ref.unsure}
    assert set(ours) == set(theirs), (
        f"{kind}: only in the database {sorted(set(ours) - set(theirs))[:10]}, "
        f"only in the reference {sorted(set(theirs) - set(ours))[:10]}")
    for k, mine in ours.items():
        other = theirs[k]
        assert mine["distance_m"] == pytest.approx(other["distance_m"], abs=1.0), (k, mine["distance_m"], other)
        if other["severity"] is not None:
            assert mine["severity"] == other["severity"], (k, mine, other)
        if kind == "upstream":
            assert mine["travel_time_s"] == pytest.approx(other["travel_time_s"], abs=5.0), k
        assert mine["cross_border"] == other["cross_border"], k
        assert mine["zone_level"] == other["zone_level"], k
    return len(ours), len([k for k in db_flags if k[1] == kind])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_matches_the_independent_computation(kind, db_flags, reference):
    compared, total = _compare(kind, db_flags, reference)
    assert compared >= 10, f"too few {kind} flags in the demo region to mean anything ({compared})"
    assert compared >= 0.95 * total  # near-threshold cases are few


def test_flag_facts_are_complete_and_in_metres(db_flags):
    for f in db_flags.values():
        assert f["distance_m"] >= 0 and f["reason"] and f["reason_zh"] and f["severity"] in ("low", "medium", "high")
        assert f["other_name"] and f["other_level"] in ("city", "province")
        if f["kind"] in ("city-border", "province-border", "upstream"):
            assert f["cross_border"] and f["other_code"] != f["source_city"]
        if f["kind"] != "upstream":
            assert f["distance_m"] <= f["threshold_m"] + 1e-6
    sample = next(f for f in db_flags.values() if f["kind"] == "city-border")
    assert f"{math.floor(sample['distance_m'] + 0.5)} m" in sample["reason"] and "米" in sample["reason_zh"]


def test_closed_sources_are_not_flagged(hazard_db, db_flags):
    with db.connect(hazard_db) as conn:
        closed = {r["key"] for r in conn.execute("SELECT key FROM riskatlas.risk_source WHERE status = 'closed'")}
    assert closed and not closed & {k[0] for k in db_flags}


def test_demo_chu_river_sources_are_upstream_of_nanjing(db_flags):
    chu = [f for f in db_flags.values() if f["kind"] == "upstream" and f["source_city"] == CHUZHOU
           and f["other_code"] == NANJING and f["feature_name"] == "滁河"]
    assert chu, "the demo places sources along the Chu river in Chuzhou; some must be upstream of Nanjing"
    assert all(f["travel_time_s"] <= 24 * 3600 for f in chu)


def test_upstream_cities_agree_with_the_downstream_walk(hazard_db, db_flags):
    """For a sample of flagged sources, the single downstream walk meets the same cities."""
    sample = sorted({k[0] for k in db_flags if k[1] == "upstream"})[::15][:12]
    with db.connect(hazard_db) as conn:
        for key in sample:
            row = conn.execute("SELECT ST_X(geom) x, ST_Y(geom) y, city_code FROM riskatlas.risk_source WHERE key = %s",
                               (key,)).fetchone()
            start = snap(conn, row["x"], row["y"], RULES.river_snap_m)
            met = jurisdictions_along(conn, downstream(conn, start, RULES.horizon_s), "city")
            walked = {c.code for c in met if c.code != row["city_code"] and c.entry_s <= RULES.horizon_s - 600}
            flagged = {k[2] for k in db_flags if k[0] == key and k[1] == "upstream"}
            assert walked <= flagged, (key, walked, flagged)


# --------------------------------------------------------------------------------------------------
# borders


def test_borders_match_the_reference_lines(hazard_db, reference):
    with db.connect(hazard_db) as conn:
        rows = conn.execute("SELECT code, other_code, length_m, ST_AsBinary(geom) AS wkb FROM riskatlas.admin_border"
                            ).fetchall()
    ours = {(r["code"], r["other_code"]): r for r in rows}
    assert set(ours) == set(reference.borders)
    for key, r in ours.items():
        lons_lats = reference.borders[key]
        ref_len = sum(GEOD.line_length(*zip(*part.coords)) for part in shapely.get_parts(lons_lats))
        assert r["length_m"] == pytest.approx(ref_len, rel=2e-3), key
        mine = shapely.from_wkb(r["wkb"])
        assert to_metric([mine])[0].hausdorff_distance(to_metric([lons_lats])[0]) < 50, key


def test_neighbours_of_nanjing_and_the_province_pair(hazard_db):
    with db.connect(hazard_db) as conn:
        cities = neighbours(conn, "city")
        provinces = neighbours(conn, "province")
        state = conn.execute("SELECT level, tolerance_m FROM riskatlas.admin_border_state ORDER BY level").fetchall()
    nanjing = {r["code_b"] if r["code_a"] == NANJING else r["code_a"] for r in cities if NANJING in (r["code_a"], r["code_b"])}
    assert nanjing == {"320400", "321000", "321100", "340500", "341100", "341800"}
    assert [(r["code_a"], r["code_b"]) for r in provinces] == [(JIANGSU, ANHUI)]
    assert provinces[0]["shared_m"] > 500_000
    assert {r["tolerance_m"] for r in state} == {RULES.border_snap_tolerance_m} == {5.0}


def test_borders_are_derived_again_only_when_boundaries_change(hazard_db):
    with db.connect(hazard_db) as conn:
        try:
            first = ensure_borders(conn, RULES.border_snap_tolerance_m)
            assert not any(b.derived for b in first)
            conn.execute("UPDATE riskatlas.admin_area SET updated_at = now() WHERE code = %s", (CHUZHOU,))
            again = {b.level: b.derived for b in ensure_borders(conn, RULES.border_snap_tolerance_m)}
            assert again == {"city": True, "province": False}
        finally:
            conn.rollback()  # the module's database stays as it was


# --------------------------------------------------------------------------------------------------
# hand-built cases


def _border_point(s: DatabaseSettings, code: str, other: str, offset_m: float, *, at: float,
                  slack: float = 2.0) -> Point:
    """A point ``offset_m`` (within ``slack``) inside ``code`` from the derived border with ``other``, near
    fraction ``at`` of it, on a straight stretch (the nearest border point is the foot of the perpendicular)."""
    with db.connect(s) as conn:
        wkb = conn.execute("SELECT ST_AsBinary(geom) AS g FROM riskatlas.admin_border WHERE code = %s AND other_code = %s",
                           (code, other)).fetchone()["g"]
        area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) AS g FROM riskatlas.admin_area WHERE code = %s",
                                             (code,)).fetchone()["g"])
    line = max(shapely.get_parts(shapely.from_wkb(wkb)), key=lambda g: g.length)
    for step in range(60):
        frac = (at + 0.013 * step) % 1.0
        mid = line.interpolate(frac, normalized=True)
        crs = metric_crs_for(mid.x, mid.y)
        line_m, mid_m = to_metric([line], crs)[0], to_metric([mid], crs)[0]
        s_m = line_m.project(mid_m)
        a, b = line_m.interpolate(s_m - 300), line_m.interpolate(s_m + 300)
        dx, dy = b.x - a.x, b.y - a.y
        n = math.hypot(dx, dy)
        for sign in (1, -1):
            p_m = Point(mid_m.x - sign * dy / n * offset_m, mid_m.y + sign * dx / n * offset_m)
            p = from_metric([p_m], crs)[0]
            d, _ = precise_distance(p.x, p.y, line)
            if area.contains(p) and abs(d - offset_m) < slack:
                return p
    raise AssertionError(f"no straight stretch of the {code}-{other} border found")


def _load(s: DatabaseSettings, tmp_path: Path, layer: str, rows: list[dict[str, Any]], name: str) -> int:
    gdf = gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows],
                           geometry=[r["geometry"] for r in rows], crs="EPSG:4326")
    path = tmp_path / f"{name}.geojson"
    gdf.to_file(path, driver="GeoJSON")
    report = load_file(s, path, layer)
    assert report.rows_rejected == 0, report.to_dict()
    return report.batch_id


def _flags(s: DatabaseSettings, key: str) -> dict[tuple[str, str], dict[str, Any]]:
    with db.connect(s) as conn:
        rows = conn.execute("SELECT * FROM riskatlas.hazard_flag WHERE source_key = %s", (key,)).fetchall()
    return {(r["kind"], r["other_code"]): dict(r) for r in rows}


def test_900_m_from_the_chuzhou_border_is_flagged_and_1100_m_is_not(fresh_db, tmp_path):
    assert RULES.threshold("city-border", "general") == 1000
    with db.transaction(fresh_db) as conn:
        ensure_borders(conn, RULES.border_snap_tolerance_m)
    near, far = (_border_point(fresh_db, NANJING, CHUZHOU, d, at=0.37) for d in (900, 1100))
    batch = _load(fresh_db, tmp_path, "risk_source", [
        {"key": "NEAR", "name": "界边900米", "category": "chemical", "risk_level": "general", "geometry": near},
        {"key": "FAR", "name": "界边1100米", "category": "chemical", "risk_level": "general", "geometry": far},
    ], "sources")
    report = refresh_after_load(fresh_db, "risk_source", batch)
    assert report is not None and report.mode == "incremental" and report.sources == 2
    flag = _flags(fresh_db, "NEAR")[("city-border", CHUZHOU)]
    assert flag["distance_m"] == pytest.approx(900, abs=2) and flag["other_name"] == "滁州市"
    assert flag["threshold_m"] == 1000 and flag["severity"] == "low" and "滁州市" in flag["reason_zh"]
    assert ("city-border", CHUZHOU) not in _flags(fresh_db, "FAR")
    # a major-risk source has a 5 km threshold, and 1,100 m is then close (severity one step up, capped)
    with db.transaction(fresh_db) as conn:
        conn.execute("UPDATE riskatlas.risk_source SET risk_level = 'major' WHERE key = 'FAR'")
    refresh_full(fresh_db)
    far_flag = _flags(fresh_db, "FAR")[("city-border", CHUZHOU)]
    assert far_flag["distance_m"] == pytest.approx(1100, abs=2) and far_flag["severity"] == "high"
    # the Nanjing-Chuzhou border is also the Jiangsu-Anhui border: a province-border flag names Anhui
    assert _flags(fresh_db, "NEAR")[("province-border", ANHUI)]["other_level"] == "province"


def _chu_course() -> list[tuple[float, float]]:
    """The course of the Chu river (滁河) as the demo region draws it: from Chuzhou into Nanjing."""
    import yaml

    from etl.sources.demo.courses import resolve_courses

    doc = yaml.safe_load((ROOT / "etl" / "sources" / "data" / "demo_rivers.yaml").read_text(encoding="utf-8"))
    return [tuple(c) for c in next(r for r in resolve_courses(doc["rivers"]) if r["key"] == "chu")["coords"]]


def _beside(coords: list[tuple[float, float]], at_m: float, side_m: float, inside: shapely.Geometry) -> Point:
    """A point ``side_m`` off the course, ``at_m`` geodesic metres from its start, inside ``inside``."""
    lons, lats = zip(*coords)
    seg = np.cumsum([0.0] + [GEOD.line_length(lons[i:i + 2], lats[i:i + 2]) for i in range(len(coords) - 1)])
    i = int(np.searchsorted(seg, at_m) - 1)
    f = (at_m - seg[i]) / (seg[i + 1] - seg[i])
    on = (lons[i] + f * (lons[i + 1] - lons[i]), lats[i] + f * (lats[i + 1] - lats[i]))
    crs = metric_crs_for(*on)
    a, b = to_metric([Point(coords[i]), Point(coords[i + 1])], crs)
    n = math.hypot(b.x - a.x, b.y - a.y)
    for sign in (1, -1):
        p = from_metric([Point(-sign * (b.y - a.y) / n * side_m, sign * (b.x - a.x) / n * side_m)], crs)[0]
        if inside.contains(p):
            return p
    raise AssertionError(f"neither side of the course at {at_m:.0f} m lies inside the area")


def test_a_source_on_the_chu_river_is_upstream_of_nanjing(fresh_db, tmp_path):
    course = _chu_course()
    with db.connect(fresh_db) as conn:
        nj, cz = (shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) g FROM riskatlas.admin_area WHERE code = %s",
                                                (code,)).fetchone()["g"]) for code in (NANJING, CHUZHOU))
    # where the river first enters Nanjing, on the stored (degree-straight) geometry, metres from its start
    entry = min(along_m(course, Point(c)) for part in linear(LineString(course).intersection(nj))
                for c in (part.coords[0], part.coords[-1]))
    assert 40_000 < entry < 80_000
    rows = [{"key": f"CHU-{i + 1}", "name": "滁河", "river_class": "major", "velocity_ms": 0.45,
             "geometry": LineString(part)} for i, part in enumerate((course[:7], course[6:]))]
    _load(fresh_db, tmp_path, "river", rows, "river")
    near_src, far_src = _beside(course, entry - 10_000, 300, cz), _beside(course, entry - 42_000, 300, cz)
    batch = _load(fresh_db, tmp_path, "risk_source", [
        {"key": "CHU-NEAR", "name": "滁河上游企业", "category": "chemical", "geometry": near_src},
        {"key": "CHU-FAR", "name": "滁河远上游企业", "category": "chemical", "geometry": far_src},
    ], "sources")
    refresh_after_load(fresh_db, "risk_source", batch)
    flag = _flags(fresh_db, "CHU-NEAR")[("upstream", NANJING)]
    d_snap, q = min(precise_distance(near_src.x, near_src.y, r["geometry"]) for r in rows)
    expected = entry - along_m(course, q)
    assert flag["distance_m"] == pytest.approx(expected, abs=1) and 9_000 < flag["distance_m"] < 11_000
    assert flag["travel_time_s"] == pytest.approx(expected / 0.45, abs=5)
    assert flag["detail"]["snap_m"] == pytest.approx(d_snap, abs=0.5) and flag["feature_name"] == "滁河"
    assert flag["cross_border"] and "南京市" in flag["reason_zh"] and "滁河" in flag["reason"]
    # 42 km up the river is 26 h away at 0.45 m/s: beyond the 24 h horizon
    assert ("upstream", NANJING) not in _flags(fresh_db, "CHU-FAR")
    # a faster river (the reaches loaded again) brings it within the horizon: the river load refreshes
    batch = _load(fresh_db, tmp_path, "river", [{**r, "velocity_ms": 0.9} for r in rows], "river2")
    report = refresh_after_load(fresh_db, "river", batch)
    assert report is not None and report.kinds == ["upstream"]
    far = _flags(fresh_db, "CHU-FAR")[("upstream", NANJING)]
    assert far["travel_time_s"] == pytest.approx(far["distance_m"] / 0.9, abs=5) and far["travel_time_s"] < 86_400


def _square(lon: float, lat: float, half_m: float) -> Polygon:
    crs = metric_crs_for(lon, lat)
    return from_metric([shapely.box(-half_m, -half_m, half_m, half_m)], crs)[0]


def test_own_city_protection_zone_is_a_zone_flag_not_a_cross_border_one(fresh_db, tmp_path):
    centre_mas, centre_nj = (118.52, 31.62), (118.95, 31.95)  # Dangtu (Ma'anshan), Jiangning (Nanjing)
    _load(fresh_db, tmp_path, "protection_zone", [
        {"key": "MAS-Z1", "reserve_key": "MAS-W", "name": "马鞍山水源一级保护区", "level": "1", "owner_city": MAANSHAN,
         "geometry": _square(*centre_mas, 800)},
        {"key": "MAS-Z2", "reserve_key": "MAS-W", "name": "马鞍山水源二级保护区", "level": "2", "owner_city": MAANSHAN,
         "geometry": _square(*centre_mas, 2500)},
        {"key": "MAS-FAR", "reserve_key": "MAS-V", "name": "马鞍山南京境内水源一级保护区", "level": "1",
         "owner_city": MAANSHAN, "geometry": _square(*centre_nj, 800)},
    ], "zones")
    batch = _load(fresh_db, tmp_path, "risk_source", [
        {"key": "MAS-IN", "name": "马鞍山保护区内企业", "category": "chemical", "geometry": Point(*centre_mas)},
        {"key": "NJ-IN", "name": "南京境内马鞍山保护区内企业", "category": "chemical", "geometry": Point(*centre_nj)},
    ], "sources")
    refresh_after_load(fresh_db, "risk_source", batch)
    own = _flags(fresh_db, "MAS-IN")
    zone = own[("protection-zone", MAANSHAN)]
    assert zone["cross_border"] is False and zone["distance_m"] == 0 and zone["zone_level"] == "1"
    assert zone["feature_key"] == "MAS-Z1" and zone["severity"] == "high" and "内" in zone["reason_zh"]
    assert not [k for k, f in own.items() if f["cross_border"]]
    other = _flags(fresh_db, "NJ-IN")[("protection-zone", MAANSHAN)]
    assert other["cross_border"] is True and other["source_city"] == NANJING
    with db.connect(fresh_db) as conn:
        from services.hazards.matrix import border_matrix

        m = border_matrix(conn, "city")
    assert m["matrix"][NANJING][MAANSHAN] >= 1 and m["matrix"][MAANSHAN].get(MAANSHAN, 0) == 0


def test_zone_and_area_loads_refresh_the_sources_they_touch(fresh_db, tmp_path):
    centre = (118.80, 32.05)  # central Nanjing, far from every border
    batch = _load(fresh_db, tmp_path, "risk_source", [
        {"key": "S1", "name": "甲", "category": "chemical", "risk_level": "larger", "geometry": Point(*centre)}], "s")
    refresh_after_load(fresh_db, "risk_source", batch)
    assert _flags(fresh_db, "S1") == {}
    batch = _load(fresh_db, tmp_path, "protected_area", [
        {"key": "PA1", "name": "湿地", "kind": "wetland", "owner_city": YANGZHOU,
         "geometry": _square(centre[0] + 0.01, centre[1], 300)}], "pa")
    report = refresh_after_load(fresh_db, "protected_area", batch)
    assert report is not None and report.sources == 1 and report.kinds == ["protected-area"]
    flag = _flags(fresh_db, "S1")[("protected-area", YANGZHOU)]
    expected, _ = precise_distance(*centre, _square(centre[0] + 0.01, centre[1], 300))
    assert flag["distance_m"] == pytest.approx(expected, abs=1) and flag["cross_border"] is True
    # the area moves away: the same key, loaded again, releases the flag
    batch = _load(fresh_db, tmp_path, "protected_area", [
        {"key": "PA1", "name": "湿地", "kind": "wetland", "owner_city": YANGZHOU,
         "geometry": _square(centre[0] + 0.2, centre[1], 300)}], "pa2")
    assert refresh_after_load(fresh_db, "protected_area", batch).flags_deleted == 1
    assert _flags(fresh_db, "S1") == {}
    # a batch id of a load without flags-relevant layers, or unknown, says so
    assert refresh_after_load(fresh_db, "monitoring_station", batch) is None
    with pytest.raises(LookupError, match="not a recorded load"):
        refresh_batch(fresh_db, 987654)


def test_the_cli_load_refreshes_and_flags_commands_answer(fresh_db, tmp_path):
    centre_nj = (118.95, 31.95)
    zone = gpd.GeoDataFrame([{"key": "Z", "reserve_key": "W", "level": "1", "owner_city": MAANSHAN}],
                            geometry=[_square(*centre_nj, 800)], crs="EPSG:4326")
    zone.to_file(tmp_path / "z.geojson", driver="GeoJSON")
    src = tmp_path / "s.csv"
    src.write_text(f"name,category,lon,lat\n乙,chemical,{centre_nj[0]},{centre_nj[1]}\n", encoding="utf-8")
    assert _cli(fresh_db, "load", str(tmp_path / "z.geojson"), "--layer", "protection_zone", "--json").returncode == 0
    done = _cli(fresh_db, "load", str(src), "--layer", "risk_source", "--json")
    assert done.returncode == 0, done.stderr
    refresh = json.loads(done.stdout)["derived"]["hazards"]
    assert refresh["mode"] == "incremental" and refresh["by_kind"]["protection-zone"] == 1
    for city in ("南京市", "Nanjing", NANJING):  # a code, a Chinese or an English name
        listed = json.loads(_cli(fresh_db, "flags", "list", "--city", city, "--kind", "protection-zone",
                                 "--json").stdout)
        assert listed["numberMatched"] == 1 and listed["features"][0]["properties"]["other_code"] == MAANSHAN
    full = json.loads(_cli(fresh_db, "flags", "refresh", "--full", "--json").stdout)
    assert full["mode"] == "full" and full["by_kind"]["protection-zone"] == 1
    matrix = json.loads(_cli(fresh_db, "flags", "matrix", "--level", "city", "--json").stdout)
    assert matrix["matrix"][NANJING][MAANSHAN] == 1
    bad = _cli(fresh_db, "flags", "list", "--kind", "volcano", "--json")
    assert bad.returncode == 2 and "volcano" in json.loads(bad.stdout)["error"]
    out = tmp_path / "flags.gpkg"
    assert _cli(fresh_db, "flags", "list", "--kind", "protection-zone", "--out", str(out)).returncode == 0
    assert len(pyogrio.read_dataframe(out)) == 1


def _cli(s: DatabaseSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKATLAS_DB_NAME": s.db_name, "RISKATLAS_PG_PORT": str(s.pg_port),
           "RISKATLAS_STATE_DIR": str(s.state_dir)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "services.cli", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------------------------------
# the API


def test_border_hazards_filters(client, db_flags):
    r = client.get("/analysis/border-hazards", params={"city": NANJING, "kind": "city-border,upstream",
                                                       "severity": ["low", "medium"], "limit": 5000})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    expected = {k for k, f in db_flags.items() if k[1] in ("city-border", "upstream")
                and f["severity"] in ("low", "medium") and NANJING in (f["source_city"], f["other_code"])}
    got = {(f["properties"]["source_key"], f["properties"]["kind"], f["properties"]["other_code"],
            f["properties"]["feature_key"] or "") for f in doc["features"]}
    assert got == expected and doc["numberMatched"] == len(expected)
    assert all(f["geometry"]["type"] == "Point" for f in doc["features"])
    paged = client.get("/analysis/border-hazards", params={"limit": 7, "offset": 7}).json()
    assert paged["numberReturned"] == 7 and paged["next_offset"] == 14
    province = client.get("/analysis/border-hazards", params={"level": "province", "limit": 5000}).json()
    assert province["numberMatched"] == len([f for f in db_flags.values() if f["kind"] == "province-border"]) + len(
        [f for f in db_flags.values() if f["kind"] != "province-border" and f["other_code"][:2] != f["source_city"][:2]])


def test_border_hazards_csv_and_geopackage(client, tmp_path):
    r = client.get("/analysis/border-hazards", params={"kind": "protection-zone", "f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("\ufeffsource_key,source_name"), "UTF-8 with a byte-order mark (Excel reads it)"
    assert len(lines) - 1 == int(r.headers["X-Total-Count"])
    g = client.get("/analysis/border-hazards", params={"kind": "protection-zone", "f": "gpkg"})
    assert g.status_code == 200 and g.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "flags.gpkg"
    path.write_bytes(g.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == len(lines) - 1 and frame.crs.to_epsg() == 4326
    assert set(frame["kind"]) == {"protection-zone"}


def test_border_matrix_sums_the_cross_border_flags(client, db_flags):
    doc = client.get("/analysis/border-matrix", params={"level": "city"}).json()
    expected: dict[tuple[str, str], int] = {}
    for f in db_flags.values():
        if f["cross_border"] and f["other_level"] == "city":
            expected[(f["source_city"], f["other_code"])] = expected.get((f["source_city"], f["other_code"]), 0) + 1
    assert {(p["from"], p["to"]): p["count"] for p in doc["pairs"]} == expected
    assert doc["matrix"][CHUZHOU][NANJING] == expected[(CHUZHOU, NANJING)]
    assert sum(c["count"] for c in doc["cells"]) == doc["total"] == sum(expected.values())
    prov = client.get("/analysis/border-matrix", params={"level": "province"}).json()
    assert {p["from"] for p in prov["pairs"]} == {JIANGSU, ANHUI} and prov["total"] > 0


@pytest.mark.parametrize("params, word", [
    ({"kind": "volcano"}, "kind"), ({"severity": "dire"}, "severity"), ({"level": "county"}, "level"),
    ({"city": "Atlantis"}, "city"), ({"f": "shp"}, "`f`"), ({"limit": 0}, "limit"), ({"limit": 999_999}, "limit"),
    ({"risk_level": "huge"}, "risk_level"),
])
def test_border_hazards_bad_input_is_a_400_naming_it(client, params, word):
    r = client.get("/analysis/border-hazards", params=params)
    assert r.status_code == 400 and word in r.json()["description"], r.text


def test_border_matrix_bad_level(client):
    r = client.get("/analysis/border-matrix", params={"level": "county"})
    assert r.status_code == 400 and "level" in r.json()["description"]


# --------------------------------------------------------------------------------------------------
# the rules file


def test_rules_file_states_its_defaults():
    assert RULES.border_snap_tolerance_m == 5.0 and RULES.travel_time_horizon_h == 24.0
    assert RULES.threshold("protection-zone", "major", "1") == 3000 and RULES.threshold("protected-area", "general") == 500
    assert RULES.severity("city-border", "general", distance_m=400, threshold_m=1000) == "medium"
    assert RULES.severity("protection-zone", "general", distance_m=900, threshold_m=1000, zone_level="1") == "high"
    assert RULES.severity("protected-area", "general", distance_m=0, threshold_m=500) == "medium"
    assert RULES.severity("upstream", "major", distance_m=1, travel_time_s=3600) == "high"


@pytest.mark.parametrize("path, value, message", [
    (("thresholds_m", "city-border", "general"), -5, "expected to be a number >= 0"),
    (("thresholds_m", "city-border"), {"general": 1}, "expected to name"),
    (("severity", "base", "major"), "catastrophic", "expected to be one of"),
    (("severity", "close_fraction"), 2, "within [0, 1]"),
    (("unknown_risk_level",), "tiny", "unknown_risk_level"),
])
def test_malformed_rules_are_refused_with_the_entry_named(path, value, message):
    import yaml

    from services.hazards.rules import RULES_FILE

    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rules_from_dict(doc)


def test_a_boundary_load_derives_the_borders_and_refreshes_everything(fresh_db):
    with db.connect(fresh_db) as conn:
        batch = conn.execute("SELECT max(id) AS id FROM riskatlas.load_batch WHERE layer = 'admin_area'").fetchone()["id"]
    report = refresh_after_load(fresh_db, "admin_area", batch)
    assert report is not None and report.mode == "full" and report.kinds == list(KINDS)
    assert {b["level"]: (b["derived"], b["neighbours"]) for b in report.borders} == {
        "city": (True, 16), "province": (True, 1)}
    assert refresh_after_load(fresh_db, "admin_area", batch).borders[0]["derived"] is False
