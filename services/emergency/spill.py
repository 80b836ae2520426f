"""River spill: where and when an instantaneous release arrives downstream, and how strong (DESIGN 5, 8.5).

The river graph is :mod:`services.river` (snap, the recursive-CTE downstream walk, the
features and jurisdictions along it), reused as it is; :mod:`services.emergency.walk` links and cuts
the walk and :mod:`services.emergency.cloud` composes the 1-D solution of :mod:`gis.river_transport`
across reaches.  The answer is one GeoJSON FeatureCollection (WGS84 unless asked otherwise) whose
extra members state the incident, the model with every parameter and default, the jurisdictions in
order of arrival, whom to notify, and warnings.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from gis.river_transport import MAX_TO_MEAN_VELOCITY, RIVER_CLASSES, earliest_physical_time
from layers.catalogue import SCHEMA
from layers.substances import CLASSES, Substance, lookup
from services.emergency import cloud, notify
from services.emergency.common import clock, crs_uri, release_clock, release_point, reproject, warning
from services.emergency.requests import SpillRequest
from services.emergency.thresholds import Thresholds
from services.emergency.walk import Walk, WalkedReach, prepare, reach_summary
from services.errors import InvalidParameter
from services.river import (
    Entry,
    NoRiverNearby,
    Snap,
    areas_entered,
    downstream,
    jurisdictions_entered,
    points_along,
    snap,
)

#: Receptor layers met along the path: (table, columns, kind) — points within a distance, polygons crossed.
POINT_RECEPTORS = (
    ("water_reserve", ("name", "kind", "water_body", "population_served", "city_code")),
    ("monitoring_station", ("name", "medium", "kind", "target_class", "city_code")),
)
AREA_RECEPTORS = (
    ("protection_zone", ("name", "level", "reserve_key", "city_code")),
    ("protected_area", ("name", "kind", "rank", "city_code")),
)
CLASS_III = CLASSES.index("III")

COMPOSITION = (
    "Travel time is summed reach by reach along the walk (the cloud's centre moves at each reach's u). "
    "The cloud's temporal variance is carried across reach boundaries and grows by 2 D_j dt / u_j² in "
    "reach j; at a point of reach i the 1-D solution is evaluated as a uniform reach with that reach's "
    "u and A, x_eq = u·τ and D_eq = u²·σ_t²/(2τ) (exactly the classic solution in one uniform reach). "
    "The time integral of u·A·C at every point equals the mass reaching it (mass is conserved); where "
    "the network branches downstream the mass divides in proportion to the branches' flows."
)


def trace_spill(conn: psycopg.Connection, req: SpillRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The downstream reach of a spill: path, arrivals and peaks at reach ends and receptors, jurisdictions.

    Raises InvalidParameter (400) when no reach lies within ``snap_distance_m`` (naming the nearest
    reach and its distance).  Concentrations are mg/L, times seconds after the release and clock times.
    """
    sub = lookup(req.substance)
    t0 = release_clock(req.release_time, now)
    lon, lat = release_point(req.x, req.y, req.crs)
    start = _snap(conn, lon, lat, req.snap_distance_m)
    horizon_s = req.horizon_h * 3600.0
    walk = prepare(conn, downstream(conn, start, horizon_s), horizon_s, req.dispersion_m2_s)
    mass_kg = req.mass_t * 1000.0
    k = req.decay_per_day / 86_400.0
    ctx = _Context(walk, sub, mass_kg, k, t0, Thresholds(sub, req.threshold_mg_l, req.detection_limit_mg_l))

    receptors = _receptors(conn, walk, req.receptor_distance_m)
    features: list[dict[str, Any]] = [
        _point("release", lon, lat, {"substance": sub.name_en, "substance_zh": sub.name_zh, "cas": sub.cas,
                                     "mass_t": req.mass_t, "release_time": clock(t0, 0)}),
        _point("snap", start.lon, start.lat, {"reach_key": start.key, "river": start.name,
                                              "distance_m": round(start.distance_m, 1)}),
    ]
    crossings = jurisdictions_entered(conn, walk.steps)
    values = ctx.evaluate([(i, r.step.end_m, None, {}) for i, r in enumerate(walk.reaches)]
                          + [(r["step"], r["at_m"], r["kind"], r["properties"]) for r in receptors]
                          + [(e.step, e.entry_m, None, {}) for e in crossings])
    ends, at_receptors, at_crossings = (values[:len(walk.reaches)],
                                        values[len(walk.reaches):len(walk.reaches) + len(receptors)],
                                        values[len(walk.reaches) + len(receptors):])
    features += [_reach_feature(ctx, r, v) for r, v in zip(walk.reaches, ends)]
    geometries = _geometries(conn, receptors)
    features += [ctx.receptor_feature(rec, geometries.get((rec["layer"], rec["key"])), v)
                 for rec, v in zip(receptors, at_receptors)]
    jurisdictions = [ctx.jurisdiction(e, v) for e, v in zip(crossings, at_crossings)]
    reproject(features, req.output_crs)
    return {
        "type": "FeatureCollection",
        "analysis": "spill",
        "crs": crs_uri(req.output_crs),
        "incident": {
            "kind": "river spill", "kind_zh": "水污染（河流泄漏）",
            "location": {"x": req.x, "y": req.y, "crs": req.crs, "lon": round(lon, 7), "lat": round(lat, 7)},
            "substance": _substance(sub), "mass_t": req.mass_t, "release_time": clock(t0, 0),
            "horizon_h": req.horizon_h,
        },
        "snap": {"reach_key": start.key, "river": start.name, "distance_m": round(start.distance_m, 1),
                 "lon": round(start.lon, 7), "lat": round(start.lat, 7), "max_distance_m": req.snap_distance_m},
        "model": _model(req, walk, sub, mass_kg, k),
        "features": features,
        "jurisdictions": jurisdictions,
        "notify": notify.from_spill(jurisdictions),
        "warnings": walk.warnings + _warnings(walk, start, t0) + ctx.range_warnings(),
    }


def _snap(conn: psycopg.Connection, lon: float, lat: float, max_m: float) -> Snap:
    try:
        return snap(conn, lon, lat, max_m)
    except NoRiverNearby as exc:
        raise InvalidParameter(f"no river reach within snap_distance_m of ({lon:.6f}, {lat:.6f}): {exc}; "
                               "check the coordinates and their crs, or raise snap_distance_m") from None


class _Context:
    """What every point evaluation needs: the walk and cloud, substance, mass, decay, release time, thresholds."""

    def __init__(self, walk: Walk, sub: Substance, mass_kg: float, k: float, t0: datetime,
                 thresholds: Thresholds) -> None:
        self.walk, self.sub, self.mass_kg, self.k, self.t0 = walk, sub, mass_kg, k, t0
        self.thresholds = thresholds
        self.limit = thresholds.limit
        self.refused: list[float] = []  # distances (m) where the model's times outran the fastest water

    def evaluate(self, points: list[tuple[int, float, str | None, dict[str, Any]]]) -> list[dict[str, Any]]:
        """When the concentration first exceeds the point's threshold, peaks and falls back below it.

        ``points`` are (walked reach index, metres from the release, receptor kind or None, receptor
        properties).  All points are solved together (one vectorised call).  A time earlier than the
        fastest water could bring anything there (:func:`gis.river_transport.earliest_physical_time`)
        is not reported: the 1-D model is outside its range there, and the response says so.
        """
        eqs = [cloud.equivalent(self.walk.cloud[i], at_m, self.mass_kg) for i, at_m, _, _ in points]
        thresholds = [self.thresholds.at(kind, props) for _, _, kind, props in points]
        live = cloud.Points.of([e for e in eqs if e is not None])
        limits = np.array([t.mg_l if t is not None else np.nan for t, e in zip(thresholds, eqs) if e is not None])
        passages = iter(cloud.passages(live, limits, self.k))
        out = []
        for (i, at_m, _, props), eq, threshold in zip(points, eqs, thresholds):
            reach = self.walk.cloud[i]
            tau = reach.tau(at_m)
            d: dict[str, Any] = {"advective_s": round(tau, 1), "advective_time": clock(self.t0, tau),
                                 "mass_share": round(reach.mass_share, 6),
                                 "threshold_mg_l": threshold.mg_l if threshold else None,
                                 "threshold": threshold.as_dict() if threshold else None}
            if eq is None:
                d.update(exceeds=None, exceeds_from_s=None, peak_s=0.0, exceeds_until_s=None, peak_mg_l=None,
                         note="at the release point: the 1-D solution is singular there",
                         note_zh="泄漏点处一维解奇异，不计算")
            else:
                d.update(self._times(next(passages), tau, at_m, threshold is not None))
            for name in ("exceeds_from", "peak", "exceeds_until", "not_before"):
                if f"{name}_s" in d:
                    d[f"{name}_time"] = clock(self.t0, d[f"{name}_s"])
            d.update(self._quality(d["peak_mg_l"], props.get("target_class")))
            out.append(d)
        return out

    def _times(self, p: cloud.Passage, tau: float, at_m: float, has_threshold: bool) -> dict[str, Any]:
        """The crossing and peak times at one point, with those the model cannot support left out."""
        earliest = float(earliest_physical_time(tau))
        d: dict[str, Any] = {"exceeds": (p.rise_s is not None) if has_threshold else None,
                             "exceeds_from_s": _round(p.rise_s), "peak_s": round(p.peak_s, 1),
                             "exceeds_until_s": _round(p.fall_s), "peak_mg_l": _sig(p.peak_mg_l)}
        outran = [name for name, t in (("exceeds_from", p.rise_s), ("peak", p.peak_s), ("exceeds_until", p.fall_s))
                  if t is not None and t < earliest]
        if outran:
            self.refused.append(at_m)
            for name in outran:
                d[f"{name}_s"] = None
            d.update(model_in_range=False, not_before_s=round(earliest, 1))
        else:
            d["model_in_range"] = True
        return d

    def _quality(self, c: float | None, target_class: str | None) -> dict[str, Any]:
        """The peak against the substance's GB 3838 limits: its class, the ratio to class III, the target."""
        if self.limit is None:
            return {}
        lim = self.limit
        out: dict[str, Any] = {"gb3838_factor": lim.factor, "class_iii_limit_mg_l": lim.limits[CLASS_III]}
        if c is None:
            return out
        graded = len(set(lim.limits)) > 1  # Table 3 items have one limit for every class
        out.update(water_class=lim.water_class(c) if graded else None,
                   ratio_to_class_iii=_sig(c / lim.limits[CLASS_III]), exceeds_class_iii=c > lim.limits[CLASS_III])
        if target_class in CLASSES:
            target = lim.limits[CLASSES.index(target_class)]
            out.update(target_class=target_class, target_limit_mg_l=target, exceeds_target=c > target)
        return out

    def receptor_feature(self, rec: dict[str, Any], geometry: dict[str, Any] | None,
                         values: dict[str, Any]) -> dict[str, Any]:
        """A receptor met along the path as a GeoJSON feature with its arrivals and peak."""
        step = self.walk.reaches[rec["step"]].step
        props = {"role": "receptor", "layer": rec["layer"], "receptor": rec["kind"],
                 "receptor_zh": RECEPTOR_ZH[rec["kind"]],
                 "key": rec["key"], "name": rec["name"], "reach_key": step.key, "river": step.name,
                 "distance_to_path_m": rec["distance_to_path_m"], "at_m": round(rec["at_m"], 1),
                 **{k: v for k, v in rec["properties"].items() if k != "name"}, **values}
        return {"type": "Feature", "geometry": geometry, "properties": props}

    def jurisdiction(self, e: Entry, values: dict[str, Any]) -> dict[str, Any]:
        """A jurisdiction entered by the path: level, code, names, where and when (first arrival)."""
        return {"level": e.properties["level"], "code": e.key, "name": e.name, "name_en": e.properties["name_en"],
                "parent_code": e.properties["parent_code"], "entry_m": round(e.entry_m, 1),
                "river": self.walk.reaches[e.step].step.name, **values}


    def range_warnings(self) -> list[dict[str, str]]:
        """One warning when the 1-D model's times outran the fastest water anywhere (those times are left out)."""
        if not self.refused:
            return []
        far = max(self.refused) / 1000.0
        n = len(self.refused)
        return [warning(
            "spill-model-out-of-range",
            f"泄漏点下游约{far:.1f}公里内（{n}处），一维模型给出的超标或峰值时间早于河道最快水流"
            f"（断面平均流速的{MAX_TO_MEAN_VELOCITY:g}倍）所能到达的时间：模型在此超出适用范围，这些时间不予报告，"
            "只给出“不早于”的时间（not_before_time），请以现场监测为准",
            f"within about {far:.1f} km of the release ({n} points) the 1-D model puts the threshold crossing or the "
            f"peak before the fastest water in the channel ({MAX_TO_MEAN_VELOCITY:g} × the mean velocity) could "
            "arrive: the model is outside its range there, so those times are not reported, only the earliest "
            "possible time (not_before_time); rely on monitoring")]


RECEPTOR_ZH = {
    "intake": "饮用水水源地取水口", "protection_zone": "饮用水水源保护区",
    "cross_border_section": "跨界断面", "monitoring_station": "水质监测站", "protected_area": "生态保护区域",
}


def _receptors(conn: psycopg.Connection, walk: Walk, within_m: float) -> list[dict[str, Any]]:
    """Intakes, water stations (cross-border sections apart), protection zones and protected areas met."""
    out: list[dict[str, Any]] = []
    steps = walk.steps
    for table, columns in POINT_RECEPTORS:
        for m in points_along(conn, steps, table, within_m, columns):
            if table == "monitoring_station" and m.properties.get("medium") != "water":
                continue
            index = walk.locate(m.reach_id, m.at_m)
            if index is None:
                continue
            kind = ("intake" if table == "water_reserve" else
                    "cross_border_section" if m.properties.get("kind") == "cross-border-section" else
                    "monitoring_station")
            out.append({"layer": table, "kind": kind, "key": m.key, "name": m.name, "step": index,
                        "at_m": m.at_m, "distance_to_path_m": round(m.distance_to_path_m, 1),
                        "properties": m.properties})
    for table, columns in AREA_RECEPTORS:
        for e in areas_entered(conn, steps, table, columns):
            out.append({"layer": table, "kind": table, "key": e.key, "name": e.name, "step": e.step,
                        "at_m": e.entry_m, "distance_to_path_m": 0.0, "properties": e.properties})
    out.sort(key=lambda r: (walk.cloud[r["step"]].tau(r["at_m"]), r["key"]))
    return out


def _geometries(conn: psycopg.Connection, receptors: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """The receptors' own geometries (GeoJSON dicts), in one query over their layers."""
    by_layer: dict[str, list[str]] = {}
    for r in receptors:
        by_layer.setdefault(r["layer"], []).append(r["key"])
    if not by_layer:
        return {}
    tables = sorted(by_layer)  # from POINT_RECEPTORS / AREA_RECEPTORS, i.e. the catalogue
    sql = " UNION ALL ".join(f"SELECT '{t}' AS layer, key, ST_AsGeoJSON(geom, 6) AS g FROM {SCHEMA}.{t} "
                             f"WHERE key = ANY(%s)" for t in tables)
    rows = conn.execute(sql, [by_layer[t] for t in tables]).fetchall()
    return {(r["layer"], r["key"]): json.loads(r["g"]) for r in rows}


def _reach_feature(ctx: _Context, r: WalkedReach, at_end: dict[str, Any]) -> dict[str, Any]:
    """One walked reach: its part of the path, hydraulics, times in and out, and the cloud at its end."""
    s = r.step
    end = {f"end_{k}": v for k, v in at_end.items() if k not in ("advective_s", "mass_share")}
    props = {"role": "reach", **reach_summary(r), "start_m": round(s.start_m, 1), "end_m": round(s.end_m, 1),
             "t_start_s": round(s.t_start_s, 1), "t_end_s": round(s.t_end_s, 1),
             "enters_time": clock(ctx.t0, s.t_start_s), "leaves_time": clock(ctx.t0, s.t_end_s),
             "cut_at_horizon": r.cut_at_horizon, "ends_network": r.ends_network, **end}
    return {"type": "Feature", "geometry": s.geojson, "properties": props}


def _point(role: str, lon: float, lat: float, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
            "properties": {"role": role, **props}}


def _substance(sub: Substance) -> dict[str, Any]:
    return {"id": sub.id, "name": sub.name_en, "name_zh": sub.name_zh, "cas": sub.cas, "gb3838_factor": sub.gb3838}


def _model(req: SpillRequest, walk: Walk, sub: Substance, mass_kg: float, k: float) -> dict[str, Any]:
    """The model, its parameters per reach and every default, as the response states them."""
    classes = sorted({r.step.river_class for r in walk.reaches})
    assumptions = [
        "instantaneous release, mixed over the cross-section at once (see mixing_length_km)",
        "arrival is a concentration: at every point the times C first exceeds the point's threshold and falls "
        "back below it are the roots of C(x, t) = threshold on the analytic solution "
        "(gis.river_transport.threshold_crossings); each point states its threshold and where it comes from",
        "peak time and value are the exact maximum over t of C(x, t) (gis.river_transport.peak)",
        f"no time earlier than the fastest water ({MAX_TO_MEAN_VELOCITY:g} × the mean velocity; Chiu & Said 1995) "
        "is reported: there the 1-D model is outside its range and only not_before_time is given",
        "jurisdictions, intakes and stations are located along the path by the advective (centre) time",
    ]
    if sub.gb3838 is None:
        assumptions.append(f"{sub.name_en} has no GB 3838-2002 factor: concentrations are not compared with limits")
    else:
        assumptions.append(f"peaks are compared with the GB 3838-2002 limits of {sub.gb3838} as released, without "
                           "stoichiometric conversion (e.g. ammonia as NH3, not as N: conservative by 17/14)")
    first = walk.reaches[0] if walk.reaches else None
    return {
        "equation": "C(x,t) = M / (A·√(4πDt)) · exp(−(x − u·t)² / (4Dt)) · exp(−k·t)",
        "source": "DESIGN.md 8.5; gis.river_transport (1-D advection–dispersion, instantaneous release)",
        "mass_kg": mass_kg, "decay_per_s": k, "decay_per_day": req.decay_per_day,
        "dispersion": (f"given: {req.dispersion_m2_s:g} m²/s on every reach" if req.dispersion_m2_s else
                       "per reach: the measured value where the reach has one (river.dispersion_m2_s), else "
                       "Deng, Singh & Bengtsson (2001), J. Hydraul. Eng. 127(11): D = h u* · 0.15/(8 ε_t0) · "
                       "(U/u*)² · (B/h)^(5/3), ε_t0 = 0.145 + (U/u*)(B/h)^1.38 / 3520, u* = √(g h S) "
                       "(dispersion_source in model.reaches)"),
        "composition": COMPOSITION,
        "horizon_h": req.horizon_h, "snap_distance_m": req.snap_distance_m,
        "receptor_distance_m": req.receptor_distance_m,
        "class_defaults": {c: {"velocity_m_s": RIVER_CLASSES[c].u, "width_m": RIVER_CLASSES[c].width,
                               "depth_m": RIVER_CLASSES[c].depth, "slope": RIVER_CLASSES[c].slope,
                               "note": RIVER_CLASSES[c].note} for c in classes if c in RIVER_CLASSES},
        "reaches": [reach_summary(r) for r in walk.reaches],
        "mixing_length_km": _mixing_length_km(first) if first else None,
        "assumptions": assumptions,
        "units": {"concentration": "mg/L", "time": "s after the release", "distance": "m along the river"},
    }


def _mixing_length_km(r: WalkedReach) -> float:
    """Fischer's distance to full cross-sectional mixing for a bank release, L = 0.4 u B² / (0.6 h u*)."""
    s = r.step
    shear = math.sqrt(9.81 * s.depth_m * s.slope)
    return round(0.4 * s.velocity_ms * s.width_m**2 / (0.6 * s.depth_m * shear) / 1000.0, 1)


def _warnings(walk: Walk, start: Snap, t0: datetime) -> list[dict[str, str]]:
    out = []
    if walk.reaches:
        first = walk.reaches[0]
        length = _mixing_length_km(first)
        if length * 1000.0 > max(r.step.end_m for r in walk.reaches):
            name = first.step.name
            out.append(warning(
                "spill-not-mixed",
                f"在{name}上岸边排放约需{length:g}公里才能在断面上混合均匀（Fischer）：全程给出的断面平均浓度"
                "低估近岸污染带、高估对岸浓度",
                f"on {name} a bank release needs about {length:g} km to mix over the cross-section (Fischer): "
                "along the whole path the stated (cross-section mean) concentrations underestimate the near-bank "
                "plume and overestimate the far bank"))
    for r in walk.reaches:
        if r.ends_network:
            at = clock(t0, r.step.t_end_s)
            out.append(warning(
                "spill-leaves-network",
                f"污染团于{at}在{r.step.key}（{r.step.name}）末端流出已建河网，其后情况此处未知",
                f"the cloud leaves the mapped river network at the end of {r.step.key} ({r.step.name}) at {at}; "
                "what lies beyond is not known here"))
    if start.distance_m > 500:
        out.append(warning(
            "spill-far-from-river",
            f"泄漏点距{start.name}{start.distance_m:.0f}米：请核实其是否排入该河",
            f"the release point is {start.distance_m:.0f} m from {start.name}: check that it drains there"))
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _sig(v: float | None, digits: int = 4) -> float | None:
    """``v`` to ``digits`` significant figures (concentrations span many orders of magnitude)."""
    if v is None or not math.isfinite(v) or v == 0:
        return v
    return float(f"{v:.{digits}g}")
