"""The SQL of each flag kind: set-based statements, built clause by clause.

Every kind ends in a temporary table ``hz_candidate`` with the same columns (:data:`CANDIDATE_COLUMNS`),
and one shared statement (:func:`insert_flags`) turns candidates into flags with names, severity and
reason.  How a distance is found, for 10^6 sources in under a minute:

1. the features are cut into short pieces (border lines in migration 0003, zones, protected areas and
   reaches in ``hazard_piece`` by :func:`prepare`), each with a GiST index on ``geom``;
2. :func:`near_step` joins every source to the pieces inside a planar window that is sure to contain
   every piece within the threshold (:func:`window`, :func:`degrees_per_metre`) and estimates each
   distance in a plane true to the ellipsoid at the source -- in parallel workers, since the statement
   reads regular tables only and creates a temporary one;
3. :func:`nearest` keeps per source and feature the few pieces that can be nearest and measures the
   distance on the spheroid, ``ST_Distance(geography, geography)``, from the source to the nearest
   point of each: that is the distance of the flag, in metres.

The sources examined are every located source not skipped by status, or (incremental) only those
listed in the temporary table ``hz_scope``.  Table and column names are this module's own or the
catalogue's; every value is a bound parameter.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import psycopg

from layers.catalogue import RISK_LEVEL_ZH, SCHEMA, ZONE_LEVEL_LABELS
from services.hazards.rules import BORDER_KINDS, ZONE_LEVELS, HazardRules
from services.river import downstream_closure

CANDIDATE_COLUMNS = ("source_id", "risk_level", "own_code", "other_code", "feature_key", "feature_name",
                     "zone_level", "distance_m", "threshold_m", "travel_time_s", "close", "inside", "detail")

ZONE_LEVEL_EN = {"1": "level-1", "2": "level-2", "quasi": "quasi"}
ZONE_LEVEL_ZH = {v: lab.zh for v, lab in ZONE_LEVEL_LABELS.items()}

#: Reason sentences (English, Chinese) per kind, filled in by SQL format() as bound templates.
TEMPLATES: dict[str, tuple[str, str]] = {
    "city-border": ("%s (%s risk) lies %s m from the border between %s and %s (city-border threshold %s m).",
                    "%s（%s风险）距%s与%s市界%s米（阈值%s米）。"),
    "province-border": (("%s (%s risk) lies %s m from the border between %s and %s "
                         "(province-border threshold %s m)."),
                        "%s（%s风险）距%s与%s省界%s米（阈值%s米）。"),
    "upstream": (("%s (%s risk) lies %s m from the %s; water released there enters %s after %s km of river, "
                  "in %s h (horizon %s h)."),
                 "%s（%s风险）距%s %s米，泄漏物沿河%s公里、约%s小时后进入%s（时限%s小时）。"),
    "upstream-at": ("%s (%s risk) lies %s m from the %s, which runs in %s right there (within the %s h horizon).",
                    "%s（%s风险）距%s %s米，该处河段已在%s境内（时限%s小时）。"),
    "protection-zone-inside": ("%s (%s risk) lies inside %s, a %s drinking-water protection zone of %s.",
                               "%s（%s风险）位于%s（%s饮用水水源%s）内。"),
    "protection-zone-near": (("%s (%s risk) lies %s m from %s, a %s drinking-water protection zone of %s "
                              "(threshold %s m)."),
                             "%s（%s风险）距%s（%s饮用水水源%s）%s米（阈值%s米）。"),
    "protected-area-inside": ("%s (%s risk) lies inside the protected area %s of %s.",
                              "%s（%s风险）位于%s的生态保护区域%s内。"),
    "protected-area-near": ("%s (%s risk) lies %s m from the protected area %s of %s (threshold %s m).",
                            "%s（%s风险）距%s的生态保护区域%s %s米（阈值%s米）。"),
}


def params(rules: HazardRules, kind: str, batch_id: int | None, deg_per_m: float) -> dict[str, Any]:
    """The bound values every kind's statements use (``deg_per_m`` from :func:`prepare`)."""
    sev = rules.severity_rule
    return {
        "kind": kind,
        "deg_per_m": deg_per_m,
        "skip": list(rules.skip_status),
        "unknown": rules.unknown_risk_level,
        "close": sev.close_fraction,
        "snap_m": rules.river_snap_m,
        "horizon_s": rules.horizon_s,
        "horizon_h": rules.travel_time_horizon_h,
        "zone_levels": list(ZONE_LEVELS),
        "levels": list(sev.levels),
        "top": len(sev.levels) - 1,
        "base": json.dumps({k: sev.rank(v) for k, v in sev.base.items()}),
        "inside_rank": sev.rank(sev.inside_floor),
        "zone_floor": json.dumps({k: sev.rank(v) for k, v in sev.zone_floor.items()} if kind == "protection-zone"
                                 else {}),
        "level_zh": json.dumps(RISK_LEVEL_ZH, ensure_ascii=False),
        "zone_en": json.dumps(ZONE_LEVEL_EN),
        "zone_zh": json.dumps(ZONE_LEVEL_ZH, ensure_ascii=False),
        "batch": batch_id,
        **threshold_params(rules),
        **{f"t_{k.replace('-', '_')}_{i}": v for k, pair in TEMPLATES.items() for i, v in enumerate(pair)},
    }


def prepare(conn: psycopg.Connection, kinds: tuple[str, ...]) -> float:
    """Rebuild the pieces of the layers the kinds asked for read; return :func:`degrees_per_metre`.

    ``hazard_piece`` holds each protection zone, protected area and river reach cut into pieces of at
    most 64 (16 for rivers) vertices.  A point's distance to a polygon or a line is the least distance to
    its pieces (the pieces of a polygon cover it, so a point inside is at 0 from one of them).
    """
    for layer, kind, vertices in (("protection_zone", "protection-zone", 64), ("protected_area", "protected-area", 64),
                                  ("river", "upstream", 16)):
        if kind not in kinds:
            continue
        conn.execute(f"DELETE FROM {SCHEMA}.hazard_piece WHERE layer = %s", (layer,))
        conn.execute(f"""INSERT INTO {SCHEMA}.hazard_piece (layer, feature_id, geom)
            SELECT %s, t.id, d.geom
            FROM {SCHEMA}.{layer} t
            CROSS JOIN LATERAL ST_Subdivide(t.geom, {int(vertices)}) AS s(g)
            CROSS JOIN LATERAL ST_Dump(s.g) AS d""", (layer,))
    conn.execute(f"ANALYZE {SCHEMA}.hazard_piece")
    return degrees_per_metre(conn)


def degrees_per_metre(conn: psycopg.Connection) -> float:
    """An upper bound of the planar distance in degrees covered by one metre anywhere in the region.

    One metre east-west spans 1 / (111,320 cos(latitude)) degrees, the most at the latitude farthest
    from the equator; north-south it spans less (1 / 110,574).  Taken at the region's extreme latitude
    plus 0.5 degree, times 1.02, the bound holds for every pair of points closer than ~50 km.
    """
    row = conn.execute(f"""SELECT greatest(abs(ST_YMin(e)), abs(ST_YMax(e))) AS lat
        FROM (SELECT ST_Extent(geom)::geometry AS e FROM {SCHEMA}.admin_area) x""").fetchone()
    lat = min(float(row["lat"] if row and row["lat"] is not None else 45.0) + 0.5, 85.0)
    return 1.02 / (111_320.0 * math.cos(math.radians(lat)))


def window(alias: str, metres: str) -> str:
    """A plain-geometry GiST condition keeping every piece of ``alias`` within ``metres`` of ``s``.

    Why not ST_DWithin on geography here: probing the geography index and testing on the spheroid
    costs about 40 µs per source, against 10 µs for a planar test on the geometry index; with 10^6
    sources that is the difference between minutes and seconds.  The planar window is a superset (see
    :func:`degrees_per_metre`); the exact geodesic ``ST_Distance(geography)`` then decides, and is
    computed only for the few pieces inside the window.
    """
    return f"ST_DWithin(s.geom, {alias}.geom, {metres} * %(deg_per_m)s)"


def _tkey(kind: str, zone_level: str, risk_level: str) -> str:
    return f"thr_{kind.replace('-', '_')}_{zone_level}_{risk_level}"


def threshold_params(rules: HazardRules) -> dict[str, float]:
    """Every threshold as a named value, plus per risk level the largest protection-zone one (``max``)."""
    out = {_tkey(r["kind"], r["zone_level"], r["risk_level"]): r["threshold_m"] for r in rules.threshold_rows()}
    for level in RISK_LEVEL_ZH:
        out[_tkey("protection-zone", "max", level)] = max(rules.zone_thresholds[z][level] for z in ZONE_LEVELS)
    return out


def threshold(kind: str, zone_level: str = "", risk_level: str = "") -> str:
    """The threshold (m) of a kind as a CASE over the risk level SQL ``risk_level`` (the source's by default).

    ``zone_level`` is '' for kinds without zones, ``'max'`` for the largest over zone levels, or SQL of a
    zone level for protection zones.  An expression rather than a join with a thresholds relation: the
    planner then keeps its row estimates (a join on the computed risk level made it think a refresh
    touches a few thousand sources instead of all, and plan serially).
    """
    level = risk_level or RISK_LEVEL
    def by_level(zone: str) -> str:
        whens = " ".join(f"WHEN '{r}' THEN %({_tkey(kind, zone, r)})s::float8" for r in RISK_LEVEL_ZH)
        return f"(CASE {level} {whens} END)"
    if kind != "protection-zone" or zone_level in ("", "max"):
        return by_level(zone_level)
    whens = " ".join(f"WHEN '{z}' THEN {by_level(z)}" for z in ZONE_LEVELS)
    return f"(CASE {zone_level} {whens} END)"


# --------------------------------------------------------------------------------------------------
# the sources examined

RISK_LEVEL = "coalesce(s.risk_level, %(unknown)s)"


def _sources(scoped: bool, *joins: str, where: tuple[str, ...] = (), city: bool = False) -> str:
    """FROM ... WHERE over the examined sources (alias ``s``; with ``city``, their city as ``c``)."""
    lines = [f"FROM {SCHEMA}.risk_source s"]
    if city:
        lines.append(f"JOIN {SCHEMA}.admin_area c ON c.code = s.city_code")
    if scoped:
        lines.append("JOIN hz_scope sc ON sc.id = s.id")
    lines += joins
    conditions = ("s.city_code IS NOT NULL", "coalesce(s.status, '') <> ALL(%(skip)s::text[])", *where)
    lines.append("WHERE " + " AND ".join(conditions))
    return "\n        ".join(lines)


# --------------------------------------------------------------------------------------------------
# the nearest piece, measured on the spheroid

#: A planar estimate of the distance (m) from the source ``s`` to a piece, in a plane scaled at the
#: source's latitude so that it is locally true to the WGS84 ellipsoid (x = lon * N cos(lat) / M,
#: y = lat; M, N the meridian and normal radii, e2 = 0.00669438), times 110,574 m, the least any degree of
#: latitude spans: it errs low by 0.3 % at most in the region.
SCALE = "(cos(radians(ST_Y(s.geom))) * (1 - 0.00669438 * sin(radians(ST_Y(s.geom))) ^ 2) / (1 - 0.00669438))"
APPROX_M = f"ST_Distance(ST_Scale({{piece}}.geom, {SCALE}, 1), ST_Scale(s.geom, {SCALE}, 1)) * 110574.0"


@dataclass(frozen=True)
class Step:
    """One statement of a kind's pipeline: ``CREATE TEMP TABLE table AS query``."""

    table: str
    query: str


def near_step(scoped: bool, joins: tuple[str, ...], piece: str, columns: tuple[str, ...], limit_m: str,
              city: bool = False) -> Step:
    """Every piece inside the planar :func:`window` of a source, with the planar estimate of the distance.

    A statement of its own, so that it runs in parallel workers and hands on narrow rows (no geometry).
    """
    return Step("hz_near", f"""
        SELECT {', '.join(columns)}, {piece}.piece_id, {limit_m} AS limit_m,
               {APPROX_M.format(piece=piece)} AS approx_m
        {_sources(scoped, *joins, city=city)}""")


def nearest(group: tuple[str, ...], columns: tuple[str, ...], pieces: str) -> str:
    """Per ``group`` of ``hz_near`` rows (source first), the exact geodesic distance to the nearest piece.

    Per group, the pieces whose estimate is within ``limit_m`` (+1 %) and within 0.5 % + 1 m of the
    group's least estimate (the estimates of one source are true to each other to better than 0.1 %
    within 50 km, so the nearest piece is among them); for those, the nearest point of the piece in the
    scaled plane and the distance on the spheroid from the source to it, ``ST_Distance(geography,
    geography)``; per group the least.  PostGIS's own geography point-to-line distance does the same in
    one call (nearest point on the sphere, then the spheroid distance) at about 30 µs per piece, too slow
    for every piece near 10^6 sources.  The result columns are ``columns``, ``limit_m``, ``distance_m``,
    ``nx`` and ``ny``.
    """
    keys = ", ".join(group)
    ranked = f"""
        SELECT n.*, min(n.approx_m) OVER (PARTITION BY {keys}) AS approx_min
        FROM hz_near n
        WHERE n.approx_m <= n.limit_m * 1.01 + 1"""
    point = f"ST_Scale(ST_ClosestPoint(ST_Scale(pc.geom, {SCALE}, 1), ST_Scale(s.geom, {SCALE}, 1)), 1 / {SCALE}, 1)"
    return f"""
        SELECT DISTINCT ON ({keys}) {', '.join(f"r.{c}" for c in columns)}, r.limit_m,
               ST_Distance(s.geom::geography, x.np::geography) AS distance_m, ST_X(x.np) AS nx, ST_Y(x.np) AS ny
        FROM ({ranked}) r
        JOIN {SCHEMA}.risk_source s ON s.id = r.source_id
        JOIN {pieces} pc ON pc.piece_id = r.piece_id
        CROSS JOIN LATERAL (SELECT {point} AS np) x
        WHERE r.approx_m <= r.approx_min * 1.005 + 1
        ORDER BY {keys}, distance_m, {', '.join(f"r.{c}" for c in columns)}"""


def _names(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.rsplit(" AS ", 1)[1] for c in columns)


# --------------------------------------------------------------------------------------------------
# candidates per kind


def border_steps(kind: str, scoped: bool) -> list[Step]:
    """Sources within their threshold of the border line between their area and a neighbouring one."""
    level = BORDER_KINDS[kind]
    own = "s.city_code" if level == "city" else "c.parent_code"
    columns = ("s.id AS source_id", f"{RISK_LEVEL} AS risk_level", f"{own} AS own_code", "p.other_code AS other_code")
    near = near_step(
        scoped,
        (f"JOIN {SCHEMA}.admin_border_piece p ON p.level = '{level}' AND p.code = {own} AND "
         + window("p", threshold(kind)),),
        "p", columns, threshold(kind), city=level == "province")
    return [near, Step("hz_candidate", f"""
    SELECT n.source_id, n.risk_level, n.own_code, n.other_code, ''::text AS feature_key,
           NULL::text AS feature_name, NULL::text AS zone_level, n.distance_m, n.limit_m AS threshold_m,
           NULL::float8 AS travel_time_s, n.distance_m <= %(close)s * n.limit_m AS close,
           false AS inside, '{{}}'::jsonb AS detail
    FROM ({nearest(("source_id", "other_code"), _names(columns), f"{SCHEMA}.admin_border_piece")}) n
    WHERE n.distance_m <= n.limit_m""")]


def zone_steps(scoped: bool) -> list[Step]:
    """Per source and water source: the highest protection-zone level whose threshold it is within."""
    columns = ("s.id AS source_id", f"{RISK_LEVEL} AS risk_level", "s.city_code AS own_code",
               "zp.feature_id AS zone_id")
    near = near_step(
        scoped,
        (f"JOIN {SCHEMA}.hazard_piece zp ON zp.layer = 'protection_zone' AND "
         + window("zp", threshold("protection-zone", "max")),),
        "zp", columns, threshold("protection-zone", "max"))
    zone_threshold = threshold("protection-zone", "z.level", "d.risk_level")
    best = f"""
        SELECT DISTINCT ON (d.source_id, z.reserve_key)
               d.source_id, d.risk_level, d.own_code, coalesce(z.owner_city, z.city_code) AS other_code,
               z.key AS feature_key, coalesce(z.name, z.key) AS feature_name, z.level AS zone_level,
               d.distance_m, {zone_threshold} AS threshold_m, z.reserve_key
        FROM ({nearest(("source_id", "zone_id"), _names(columns), f"{SCHEMA}.hazard_piece")}) d
        JOIN {SCHEMA}.protection_zone z ON z.id = d.zone_id
        WHERE d.distance_m <= {zone_threshold} AND coalesce(z.owner_city, z.city_code) IS NOT NULL
        ORDER BY d.source_id, z.reserve_key, array_position(%(zone_levels)s::text[], z.level), d.distance_m"""
    return [near, Step("hz_candidate", f"""
    SELECT b.source_id, b.risk_level, b.own_code, b.other_code, b.feature_key, b.feature_name, b.zone_level,
           b.distance_m, b.threshold_m, NULL::float8 AS travel_time_s,
           b.distance_m <= %(close)s * b.threshold_m AS close, b.distance_m = 0 AS inside,
           jsonb_build_object('layer', 'protection_zone', 'reserve_key', b.reserve_key) AS detail
    FROM ({best}) b""")]


def area_steps(scoped: bool) -> list[Step]:
    """Sources within their threshold of a protected area (0 inside), one flag per area."""
    columns = ("s.id AS source_id", f"{RISK_LEVEL} AS risk_level", "s.city_code AS own_code",
               "ap.feature_id AS area_id")
    near = near_step(
        scoped,
        (f"JOIN {SCHEMA}.hazard_piece ap ON ap.layer = 'protected_area' AND "
         + window("ap", threshold("protected-area")),),
        "ap", columns, threshold("protected-area"))
    return [near, Step("hz_candidate", f"""
    SELECT d.source_id, d.risk_level, d.own_code, coalesce(a.owner_city, a.city_code) AS other_code,
           a.key AS feature_key, a.name AS feature_name, NULL::text AS zone_level, d.distance_m,
           d.limit_m AS threshold_m, NULL::float8 AS travel_time_s, d.distance_m <= %(close)s * d.limit_m AS close,
           d.distance_m = 0 AS inside,
           jsonb_build_object('layer', 'protected_area', 'area_kind', a.kind, 'rank', a.rank) AS detail
    FROM ({nearest(("source_id", "area_id"), _names(columns), f"{SCHEMA}.hazard_piece")}) d
    JOIN {SCHEMA}.protected_area a ON a.id = d.area_id
    WHERE d.distance_m <= d.limit_m AND coalesce(a.owner_city, a.city_code) IS NOT NULL""")]


def prepare_upstream(conn: psycopg.Connection, p: dict[str, Any], scoped: bool) -> int:
    """Snap the examined sources to their nearest reach and walk the network once per reach.

    Creates ``hz_snap`` (source, reach, metres from the reach start to the snapped point: the reach's
    point nearest to the source on the spheroid, not the nearest in degrees, which can lie 100 m
    along the river from it),
    ``reach_closure`` (:func:`services.river.downstream_closure`) for the reaches snapped to, and
    ``hz_reach_city`` (each stretch of a walked reach inside a city, in metres from the reach start).
    Returns the number of snapped sources.
    """
    columns = ("s.id AS source_id", f"{RISK_LEVEL} AS risk_level", "s.city_code AS own_code",
               "rp.feature_id AS reach_id")
    run_step(conn, near_step(
        scoped, (f"JOIN {SCHEMA}.hazard_piece rp ON rp.layer = 'river' AND " + window("rp", "%(snap_m)s"),),
        "rp", columns, "%(snap_m)s"), p)
    near = nearest(("source_id",), _names(columns), f"{SCHEMA}.hazard_piece")
    conn.execute("DROP TABLE IF EXISTS hz_snap, hz_reach_city")
    conn.execute(f"""CREATE TEMP TABLE hz_snap ON COMMIT DROP AS
        SELECT n.source_id, n.risk_level, n.own_code, n.reach_id, n.distance_m AS snap_m, l.pos_m
        FROM ({near}) n
        JOIN {SCHEMA}.river r ON r.id = n.reach_id
        CROSS JOIN LATERAL (
            SELECT ST_Length(ST_LineSubstring(r.geom, 0, ST_LineLocatePoint(r.geom, ST_Point(n.nx, n.ny, 4326)))::geography)
                   AS pos_m) l
        WHERE n.distance_m <= %(snap_m)s""", p)
    conn.execute("CREATE INDEX ON hz_snap (reach_id)")
    conn.execute("ANALYZE hz_snap")
    origins = [r["reach_id"] for r in conn.execute("SELECT DISTINCT reach_id FROM hz_snap").fetchall()]
    downstream_closure(conn, p["horizon_s"], origins=origins if scoped else None)
    conn.execute(f"""CREATE TEMP TABLE hz_reach_city ON COMMIT DROP AS
        SELECT r.id AS reach_id, a.code AS city_code,
               ST_Length(ST_LineSubstring(r.geom, 0, least(f.f0, f.f1))::geography) AS start_m,
               ST_Length(ST_LineSubstring(r.geom, 0, greatest(f.f0, f.f1))::geography) AS end_m
        FROM {SCHEMA}.river r
        JOIN {SCHEMA}.admin_area a ON a.level = 'city' AND ST_Intersects(a.geom, r.geom)
        CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(ST_Intersection(r.geom, a.geom), 2)) AS piece
        CROSS JOIN LATERAL (SELECT ST_LineLocatePoint(r.geom, ST_StartPoint(piece.geom)) AS f0,
                                   ST_LineLocatePoint(r.geom, ST_EndPoint(piece.geom)) AS f1) f
        WHERE r.id IN (SELECT DISTINCT reach_id FROM reach_closure)""")
    conn.execute("CREATE INDEX ON hz_reach_city (reach_id)")
    conn.execute("ANALYZE hz_reach_city")
    return len(origins)


def upstream_candidates() -> str:
    """Per snapped source and other city: the quickest entry into that city within the horizon.

    On the source's own reach a city counts from the snapped point on (0 m if the point already lies
    in it); on a reach further down it counts from where its stretch begins.
    """
    entries = """
        SELECT sn.source_id, sn.risk_level, sn.own_code, sn.reach_id AS origin_id, sn.snap_m,
               rc.city_code AS other_code, e.entry_m, e.entry_s
        FROM hz_snap sn
        JOIN reach_closure org ON org.origin_id = sn.reach_id AND org.reach_id = sn.reach_id
        JOIN reach_closure cl ON cl.origin_id = sn.reach_id
        JOIN hz_reach_city rc ON rc.reach_id = cl.reach_id
        CROSS JOIN LATERAL (
            SELECT CASE WHEN cl.reach_id = sn.reach_id THEN greatest(rc.start_m - sn.pos_m, 0)
                        ELSE cl.offset_m - sn.pos_m + rc.start_m END AS entry_m,
                   CASE WHEN cl.reach_id = sn.reach_id THEN greatest(rc.start_m - sn.pos_m, 0) / nullif(org.velocity_ms, 0)
                        ELSE cl.offset_s - sn.pos_m / nullif(org.velocity_ms, 0) + rc.start_m / nullif(cl.velocity_ms, 0)
                   END AS entry_s) e
        WHERE rc.city_code <> sn.own_code
          AND (cl.reach_id <> sn.reach_id OR rc.end_m > sn.pos_m)
          AND e.entry_s <= %(horizon_s)s"""
    first = f"""
        SELECT DISTINCT ON (x.source_id, x.other_code) x.*
        FROM ({entries}) x
        ORDER BY x.source_id, x.other_code, x.entry_s, x.entry_m"""
    return f"""
    SELECT f.source_id, f.risk_level, f.own_code, f.other_code, ''::text AS feature_key, r.name AS feature_name,
           NULL::text AS zone_level, f.entry_m AS distance_m, NULL::float8 AS threshold_m,
           f.entry_s AS travel_time_s, f.entry_s <= %(close)s * %(horizon_s)s AS close, false AS inside,
           jsonb_build_object('river', r.name, 'reach_key', r.key, 'snap_m', round(f.snap_m::numeric, 1),
                              'horizon_h', %(horizon_h)s) AS detail
    FROM ({first}) f
    JOIN {SCHEMA}.river r ON r.id = f.origin_id"""


# --------------------------------------------------------------------------------------------------
# candidates -> flags


SEVERITY = """(%(levels)s::text[])[1 + least(%(top)s, greatest(
        (%(base)s::jsonb ->> k.risk_level)::int + CASE WHEN k.close THEN 1 ELSE 0 END,
        CASE WHEN k.inside THEN %(inside_rank)s ELSE 0 END,
        coalesce((%(zone_floor)s::jsonb ->> k.zone_level)::int, 0)))]"""

_EN = "coalesce({0}.name_en, {0}.name)"
_LVL_ZH = "(%(level_zh)s::jsonb ->> k.risk_level)"
_M = "round(k.distance_m)::bigint"
_T = "round(k.threshold_m)::bigint"


def _reason(kind: str) -> tuple[str, str]:
    """SQL for the English and the Chinese reason of a kind's flags."""
    if kind in BORDER_KINDS:
        key = kind.replace("-", "_")
        return (f"format(%(t_{key}_0)s, s.name, k.risk_level, {_M}, {_EN.format('own')}, {_EN.format('o')}, {_T})",
                f"format(%(t_{key}_1)s, s.name, {_LVL_ZH}, own.name, o.name, {_M}, {_T})")
    if kind == "upstream":
        snap = "round((k.detail ->> 'snap_m')::numeric)"
        km = "round((k.distance_m / 1000)::numeric, 1)"
        hours = "round((k.travel_time_s / 3600)::numeric, 1)"
        other_en = _EN.format("o")
        return (f"""CASE WHEN k.distance_m < 1
                    THEN format(%(t_upstream_at_0)s, s.name, k.risk_level, {snap}, k.feature_name, {other_en},
                                %(horizon_h)s)
                    ELSE format(%(t_upstream_0)s, s.name, k.risk_level, {snap}, k.feature_name, {other_en}, {km},
                                {hours}, %(horizon_h)s) END""",
                f"""CASE WHEN k.distance_m < 1
                    THEN format(%(t_upstream_at_1)s, s.name, {_LVL_ZH}, k.feature_name, {snap}, o.name, %(horizon_h)s)
                    ELSE format(%(t_upstream_1)s, s.name, {_LVL_ZH}, k.feature_name, {snap}, {km}, {hours}, o.name,
                                %(horizon_h)s) END""")
    if kind == "protection-zone":
        en_level, zh_level = "(%(zone_en)s::jsonb ->> k.zone_level)", "(%(zone_zh)s::jsonb ->> k.zone_level)"
        return (f"""CASE WHEN k.inside
                    THEN format(%(t_protection_zone_inside_0)s, s.name, k.risk_level, k.feature_name, {en_level},
                                {_EN.format('o')})
                    ELSE format(%(t_protection_zone_near_0)s, s.name, k.risk_level, {_M}, k.feature_name,
                                {en_level}, {_EN.format('o')}, {_T}) END""",
                f"""CASE WHEN k.inside
                    THEN format(%(t_protection_zone_inside_1)s, s.name, {_LVL_ZH}, k.feature_name, o.name, {zh_level})
                    ELSE format(%(t_protection_zone_near_1)s, s.name, {_LVL_ZH}, k.feature_name, o.name, {zh_level},
                                {_M}, {_T}) END""")
    return (f"""CASE WHEN k.inside
                THEN format(%(t_protected_area_inside_0)s, s.name, k.risk_level, k.feature_name, {_EN.format('o')})
                ELSE format(%(t_protected_area_near_0)s, s.name, k.risk_level, {_M}, k.feature_name,
                            {_EN.format('o')}, {_T}) END""",
            f"""CASE WHEN k.inside
                THEN format(%(t_protected_area_inside_1)s, s.name, {_LVL_ZH}, o.name, k.feature_name)
                ELSE format(%(t_protected_area_near_1)s, s.name, {_LVL_ZH}, o.name, k.feature_name, {_M}, {_T})
                END""")


def insert_flags(kind: str, candidates: str) -> str:
    """INSERT the flags of one kind from its candidates (a table name or a parenthesised query)."""
    en, zh = _reason(kind)
    return f"""
    INSERT INTO {SCHEMA}.hazard_flag (source_id, source_key, source_name, source_city, risk_level, kind,
        other_code, other_name, other_level, cross_border, feature_key, feature_name, zone_level, distance_m,
        threshold_m, travel_time_s, severity, reason, reason_zh, detail, batch_id, geom)
    SELECT s.id, s.key, s.name, s.city_code, k.risk_level, %(kind)s,
           k.other_code, o.name, o.level, k.other_code <> s.city_code, k.feature_key, k.feature_name,
           k.zone_level, k.distance_m, k.threshold_m, k.travel_time_s,
           {SEVERITY},
           {en},
           {zh},
           k.detail, %(batch)s, s.geom
    FROM {candidates} k
    JOIN {SCHEMA}.risk_source s ON s.id = k.source_id
    JOIN {SCHEMA}.admin_area own ON own.code = k.own_code
    JOIN {SCHEMA}.admin_area o ON o.code = k.other_code AND o.level IN ('city', 'province')"""


def steps(kind: str, scoped: bool) -> list[Step]:
    """The statements of a kind, the last creating ``hz_candidate`` (upstream: after
    :func:`prepare_upstream`).

    Except for upstream (temporary tables of its own) and incremental runs (``hz_scope``), the first
    statement reads regular tables only, so ``CREATE TEMP TABLE ... AS`` over it may run in parallel.
    """
    if kind in BORDER_KINDS:
        return border_steps(kind, scoped)
    if kind == "protection-zone":
        return zone_steps(scoped)
    if kind == "protected-area":
        return area_steps(scoped)
    if kind == "upstream":
        return [Step("hz_candidate", upstream_candidates())]
    raise ValueError(f"kind was {kind!r} but is expected to be one of {list(TEMPLATES)}")


def run_step(conn: psycopg.Connection, step: Step, p: dict[str, Any]) -> None:
    """Create the step's temporary table (replacing one of the same name) and analyse it."""
    conn.execute(f"DROP TABLE IF EXISTS {step.table}")
    conn.execute(f"CREATE TEMP TABLE {step.table} ON COMMIT DROP AS {step.query}", p)
    conn.execute(f"ANALYZE {step.table}")
