"""Air threat zone of a continuous release, and what lies inside it (DESIGN 5, 8.4).

The footprints come from :mod:`gis.plume` (Gaussian plume, Briggs sigmas, far edge where the
centreline concentration falls to the level of concern, cut at 10 km); this module places them on
the map, finds the receptors and jurisdictions inside (``sql/plume_*.sql``, PostGIS) and sums the
population raster over each zone and each jurisdiction's covered part.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from shapely.geometry import Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from gis.plume import MAX_CONTINUATION_M, ThreatZone, place_centreline, place_zone, stability_class, threat_zone
from layers.substances import Substance, lookup
from services.emergency import notify
from services.emergency.common import clock, crs_uri, release_clock, release_point, reproject, rounded, warning
from services.emergency.population import Population, population_in
from services.emergency.requests import PlumeRequest

SQL = Path(__file__).with_name("sql")
POPULATION_BASIS = "area_weighted"
ENDPOINT_ZH = {"endpoint-1": "毒性终点浓度-1", "endpoint-2": "毒性终点浓度-2"}
LAYER_ZH = {"risk_source": "环境风险源", "water_reserve": "饮用水水源地", "monitoring_station": "空气质量监测站",
            "protected_area": "生态保护区域"}


@lru_cache(maxsize=4)
def _sql(name: str) -> str:
    return (SQL / name).read_text(encoding="utf-8")


def plume_zones(conn: psycopg.Connection, req: PlumeRequest, population_raster: Path | None, *,
                now: datetime | None = None) -> dict[str, Any]:
    """Threat zones for end-points 1 and 2 (GeoJSON, WGS84 unless asked otherwise) with what is inside.

    Inside each zone: population (the area-weighted zonal sum of ``population_raster``, the one
    figure used everywhere; None without one), risk sources, drinking-water sources, air-quality
    stations, protected areas and jurisdictions, each with its nearest distance from the source.
    Nothing is drawn beyond ``max_distance_m`` (10 km); when a zone is cut there, the jurisdictions
    its centreline enters before it falls below the end-point are listed too, marked
    ``beyond_modelled_range``.
    """
    sub = lookup(req.substance)
    t0 = release_clock(req.release_time, now)
    lon, lat = release_point(req.x, req.y, req.crs)
    stability, stability_source = _stability(req)
    zones = _zones(req, sub, stability, lon, lat)
    warnings = list({w["code"] + w["en"]: w for _, _, _, z, _ in zones for w in z.warnings}.values())
    wkt = {name: poly.wkt if not poly.is_empty else "POLYGON EMPTY" for name, _, _, _, poly in zones}
    params = {"ep1": wkt["endpoint-1"], "ep2": wkt["endpoint-2"], "lon": lon, "lat": lat}
    receptors = [dict(r) for r in conn.execute(_sql("plume_receptors.sql"), params).fetchall()]
    juris = [dict(r) for r in conn.execute(_sql("plume_jurisdictions.sql"), params).fetchall()]

    # one population figure per zone, the area-weighted sum: for each zone, and for each jurisdiction
    # the part of each zone inside it (the end-point-2 zone contains the end-point-1 zone)
    ep1 = zones[0][4]
    parts2 = [shape(json.loads(j["part"])) for j in juris]
    parts1 = [part.intersection(ep1) if j["in_ep1"] else Polygon() for j, part in zip(juris, parts2)]
    pops = _population(population_raster, [poly for *_, poly in zones] + parts1 + parts2, warnings)
    zone_pops, part1_pops, part2_pops = pops[:2], pops[2:2 + len(juris)], pops[2 + len(juris):]

    u = req.wind_speed_m_s
    features = [_source_feature(lon, lat, sub, req, t0)]
    zone_features = [_zone_feature(name, loc, src, z, poly, pop, receptors)
                     for (name, loc, src, z, poly), pop in zip(zones, zone_pops)]
    features += zone_features[::-1]  # end-point 2 (the larger) first, so that 1 is drawn over it
    features += [_receptor_feature(r, u, t0) for r in receptors]
    jurisdictions = [_jurisdiction(j, p1, p2, u, t0) for j, p1, p2 in zip(juris, part1_pops, part2_pops)]
    jurisdictions += _beyond(conn, zones, req, lon, lat, {j["code"] for j in juris}, t0)
    jurisdictions.sort(key=lambda j: (j["first_arrival_s"], ("province", "city", "county").index(j["level"])))
    reproject(features, req.output_crs)
    return {
        "type": "FeatureCollection",
        "analysis": "plume",
        "crs": crs_uri(req.output_crs),
        "incident": {
            "kind": "release to air", "kind_zh": "大气污染（气体泄漏）",
            "location": {"x": req.x, "y": req.y, "crs": req.crs, "lon": round(lon, 7), "lat": round(lat, 7)},
            "substance": {"id": sub.id, "name": sub.name_en, "name_zh": sub.name_zh, "cas": sub.cas},
            "release_rate_kg_s": req.release_rate_kg_s, "release_time": clock(t0, 0),
            "wind_from_deg": req.wind_from_deg, "wind_speed_m_s": u,
        },
        "model": _model(req, sub, stability, stability_source, zones),
        "capped": any(z.capped for _, _, _, z, _ in zones),
        "features": features,
        "jurisdictions": jurisdictions,
        "notify": notify.from_plume(jurisdictions),
        "warnings": warnings,
    }


def _stability(req: PlumeRequest) -> tuple[str, str]:
    """The stability class and where it came from (given, or Turner's table)."""
    if req.stability is not None:
        return req.stability, "given"
    cls = stability_class(req.wind_speed_m_s, bool(req.day), req.insolation, req.cloud_cover_eighths)
    sky = (f"insolation {req.insolation}" if req.day and req.insolation else
           f"cloud cover {req.cloud_cover_eighths:g}/8")
    return cls, f"derived (Turner 1970): {'day' if req.day else 'night'}, wind {req.wind_speed_m_s:g} m/s, {sky}"


def _zones(req: PlumeRequest, sub: Substance, stability: str, lon: float, lat: float
           ) -> list[tuple[str, float, str, ThreatZone, Polygon]]:
    """(name, LOC, LOC source, local zone, WGS84 polygon) for end-points 1 and 2."""
    out = []
    for name, given, table in (("endpoint-1", req.endpoint1_mg_m3, sub.endpoint1_mg_m3),
                               ("endpoint-2", req.endpoint2_mg_m3, sub.endpoint2_mg_m3)):
        loc = given if given is not None else table
        source = "given" if given is not None else "HJ 169-2018 Table H.1"
        z = threat_zone(req.release_rate_kg_s, req.wind_speed_m_s, stability, float(loc),  # type: ignore[arg-type]
                        urban=req.terrain == "urban", max_distance_m=req.max_distance_m)
        placed = place_zone(z, lon, lat, req.wind_from_deg)
        out.append((name, float(loc), source, z, placed))
    return out


def _population(raster: Path | None, polygons: list[BaseGeometry], warnings: list[dict[str, str]]
                ) -> list[Population | None]:
    if raster is None:
        warnings.append(warning("plume-no-population", "未登记人口栅格：未统计人口",
                                "no population raster is registered: population is not counted"))
        return [None] * len(polygons)
    pops = population_in(raster, polygons)
    if any(not p.complete for p in pops):
        warnings.append(warning("plume-population-incomplete", "威胁区部分位于人口栅格范围之外：该部分人口未计入",
                                "part of the zone lies outside the population raster: the population there "
                                "is not counted"))
    return list(pops)


def _beyond(conn: psycopg.Connection, zones: list[tuple[str, float, str, ThreatZone, Polygon]], req: PlumeRequest,
            lon: float, lat: float, covered: set[str], t0: datetime) -> list[dict[str, Any]]:
    """Jurisdictions a capped zone's centreline enters beyond the drawn zones, before it falls below the
    end-point (computed, not drawn), marked ``beyond_modelled_range``."""
    ends = {name: min(z.continues_to_m, MAX_CONTINUATION_M) for name, _, _, z, _ in zones if z.capped
            and z.continues_to_m is not None}
    if not ends:
        return []
    lines = {name: place_centreline(req.max_distance_m, end, lon, lat, req.wind_from_deg).wkt
             for name, end in ends.items()}
    outer = max(ends, key=lambda n: ends[n])
    params = {"line1": lines.get("endpoint-1", "LINESTRING EMPTY"), "line2": lines[outer], "lon": lon, "lat": lat}
    out = []
    u = req.wind_speed_m_s
    for j in conn.execute(_sql("plume_beyond.sql"), params).fetchall():
        if j["code"] in covered:
            continue
        zone = "endpoint-1" if j["in_ep1"] else "endpoint-2"
        d = float(j["distance_m"])
        out.append({"level": j["level"], "code": j["code"], "name": j["name"], "name_en": j["name_en"],
                    "parent_code": j["parent_code"], "zone": zone, "zone_zh": ENDPOINT_ZH[zone],
                    "distance_m": round(d, 1), "first_arrival_s": round(d / u, 1),
                    "first_arrival_time": clock(t0, d / u), "beyond_modelled_range": True,
                    "population": None, "population_basis": POPULATION_BASIS, "population_by_zone": None})
    return out


def _source_feature(lon: float, lat: float, sub: Substance, req: PlumeRequest, t0: datetime) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
            "properties": {"role": "release", "substance": sub.name_en, "substance_zh": sub.name_zh,
                           "cas": sub.cas, "release_rate_kg_s": req.release_rate_kg_s,
                           "release_time": clock(t0, 0)}}


def _zone_feature(name: str, loc: float, source: str, z: ThreatZone, poly: Polygon, pop: Population | None,
                  receptors: list[dict[str, Any]]) -> dict[str, Any]:
    """One threat zone as a feature: its size, whether cut at 10 km, population and receptor counts."""
    flag = "in_ep1" if name == "endpoint-1" else "in_ep2"
    inside = [r for r in receptors if r[flag]]
    counts = {layer: sum(1 for r in inside if r["layer"] == layer)
              for layer in ("risk_source", "water_reserve", "monitoring_station", "protected_area")}
    props = {
        "role": "zone", "endpoint": name, "endpoint_zh": ENDPOINT_ZH[name], "loc_mg_m3": loc, "loc_source": source,
        "far_edge_m": round(float(z.far_edge_m), 1), "max_half_width_m": round(float(z.max_half_width_m), 1),
        "area_km2": round(float(z.area_m2) / 1e6, 4), "capped": bool(z.capped),
        **_continues(z),
        "population": _people(pop), "population_basis": POPULATION_BASIS,
        "counts": counts,
    }
    geometry = None if poly.is_empty else rounded(mapping(poly))
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _receptor_feature(r: dict[str, Any], u: float, t0: datetime) -> dict[str, Any]:
    zone = "endpoint-1" if r["in_ep1"] else "endpoint-2"
    props = {"role": "receptor", "layer": r["layer"], "layer_zh": LAYER_ZH[r["layer"]], "key": r["key"],
             "name": r["name"], "kind": r["kind"], "grade": r["grade"], "city_code": r["city_code"],
             "county_code": r["county_code"], "population_served": r["population_served"],
             "zone": zone, "zone_zh": ENDPOINT_ZH[zone], "distance_m": round(float(r["distance_m"]), 1),
             "first_arrival_s": round(float(r["distance_m"]) / u, 1),
             "first_arrival_time": clock(t0, float(r["distance_m"]) / u)}
    return {"type": "Feature", "geometry": json.loads(r["geometry"]), "properties": props}


def _jurisdiction(j: dict[str, Any], pop1: Population | None, pop2: Population | None, u: float, t0: datetime
                  ) -> dict[str, Any]:
    """A jurisdiction covered by a zone: the innermost zone, nearest distance, arrival, and the population
    of that zone's part inside it (and of each zone's part)."""
    zone = "endpoint-1" if j["in_ep1"] else "endpoint-2"
    d = float(j["distance_m"])
    by_zone = {"endpoint-1": _people(pop1) if j["in_ep1"] else 0, "endpoint-2": _people(pop2)}
    return {"level": j["level"], "code": j["code"], "name": j["name"], "name_en": j["name_en"],
            "parent_code": j["parent_code"], "zone": zone, "zone_zh": ENDPOINT_ZH[zone],
            "distance_m": round(d, 1), "first_arrival_s": round(d / u, 1), "first_arrival_time": clock(t0, d / u),
            "beyond_modelled_range": False, "population": by_zone[zone], "population_basis": POPULATION_BASIS,
            "population_by_zone": by_zone}


def _people(pop: Population | None) -> int | None:
    """The one population figure: the area-weighted sum, rounded to a person (None without a raster)."""
    return None if pop is None else round(pop.area_weighted)


def _continues(z: ThreatZone) -> dict[str, Any]:
    """How far a capped zone's centreline stays above its end-point (m, computed, not drawn), and whether it
    goes on past the range followed (MAX_CONTINUATION_M)."""
    if z.continues_to_m is None:
        return {"continues_to_m": None, "continues_past_followed_range": None}
    farther = not math.isfinite(z.continues_to_m)
    return {"continues_to_m": round(min(z.continues_to_m, MAX_CONTINUATION_M), 1),
            "continues_past_followed_range": farther}


def _model(req: PlumeRequest, sub: Substance, stability: str, stability_source: str,
           zones: list[tuple[str, float, str, ThreatZone, Polygon]]) -> dict[str, Any]:
    return {
        "equation": "C(x,y,0) = Q/(π·u·σy·σz) · exp(−y²/(2σy²)) (ground-level release, full ground reflection)",
        "source": "DESIGN.md 8.4; gis.plume (Briggs 1973 σy, σz as in Hanna, Briggs & Hosker 1982 Table 4.5)",
        "dispersion": f"Briggs {req.terrain}", "stability": stability, "stability_source": stability_source,
        "release_rate_kg_s": req.release_rate_kg_s, "wind_speed_m_s": req.wind_speed_m_s,
        "wind_from_deg": req.wind_from_deg, "downwind_bearing_deg": (req.wind_from_deg + 180.0) % 360.0,
        "levels_of_concern": [{"endpoint": n, "mg_m3": loc, "source": src} for n, loc, src, _, _ in zones],
        "max_distance_m": req.max_distance_m,
        "population": {"basis": POPULATION_BASIS, "zh": "人口按面积加权：每个格网按被覆盖面积比例计入",
                       "en": "area-weighted: every population cell counts by the fraction of it covered"},
        "assumptions": [
            "steady, continuous release at ground level (H = 0) over flat terrain; no deposition or decay",
            "passive (neutrally buoyant) gas: heavy gases such as chlorine or liquefied ammonia spread wider and "
            "lower near the source than this model says",
            "the zones are the steady-state footprint; the plume reaches a point after about distance / wind speed",
            "population: every raster cell weighted by the part of it the zone covers (area-weighted), the one "
            "figure given for each zone and for each jurisdiction's part of it",
            "receptors and jurisdictions: inside either zone, with the nearest distance from the source",
            "nothing is drawn beyond max_distance_m (10 km at most), as in ALOHA; when a zone is cut there, the "
            "jurisdictions its centreline enters before falling below the end-point are listed "
            f"(beyond_modelled_range, followed to {MAX_CONTINUATION_M / 1000:.0f} km at most)",
        ],
        "units": {"concentration": "mg/m³", "distance": "m", "time": "s after the release"},
        "substance_endpoints": {"endpoint1_mg_m3": sub.endpoint1_mg_m3, "endpoint2_mg_m3": sub.endpoint2_mg_m3},
    }
