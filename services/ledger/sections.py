"""The network at a section: which cities a water section lies between."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from layers.catalogue import SCHEMA


@dataclass(frozen=True)
class SectionCities:
    """The cities a section lies between, and the reach its station was snapped to."""

    station_key: str
    upstream: str | None
    downstream: str | None
    reach_key: str | None
    note: str | None = None


def section_cities(conn: psycopg.Connection, station_keys: list[str], snap_max_m: float) -> dict[str, SectionCities]:
    """Upstream and downstream city of each station, from the river network (set-based)."""
    rows = conn.execute(
        f"""WITH st AS (
                SELECT m.key, m.city_code, m.geom FROM {SCHEMA}.monitoring_station m WHERE m.key = ANY(%(keys)s)
            ), snapped AS (
                SELECT st.key, st.city_code, r.id, r.key AS reach_key, r.from_node, r.to_node
                FROM st CROSS JOIN LATERAL (
                    SELECT r.*, ST_Distance(r.geom::geography, st.geom::geography) AS d FROM {SCHEMA}.river r
                    WHERE ST_DWithin(r.geom, st.geom, 1.01 * %(snap)s / (110574.0 * cos(radians(ST_Y(st.geom)))))
                    ORDER BY d, r.id LIMIT 1) r
                WHERE r.d <= %(snap)s
            ), up AS (
                SELECT DISTINCT ON (s.key) s.key, u.id FROM snapped s
                JOIN {SCHEMA}.river u ON u.to_node = s.from_node AND u.id <> s.id
                ORDER BY s.key, u.flow_m3s DESC NULLS LAST, u.key
            ), down AS (
                SELECT DISTINCT ON (s.key) s.key, d.id FROM snapped s
                JOIN {SCHEMA}.river d ON d.from_node = s.to_node AND d.id <> s.id
                ORDER BY s.key, d.flow_m3s DESC NULLS LAST, d.key
            ), majority AS (  -- the city holding most of a reach's length (a reach may weave along a border)
                SELECT DISTINCT ON (x.id) x.id, x.code FROM (
                    SELECT r.id, p.code, sum(ST_Length(ST_Intersection(r.geom, p.geom)::geography)) AS len
                    FROM {SCHEMA}.river r JOIN {SCHEMA}.admin_piece p ON p.level = 'city' AND ST_Intersects(p.geom, r.geom)
                    WHERE r.id IN (SELECT id FROM up UNION SELECT id FROM down)
                    GROUP BY r.id, p.code) x
                ORDER BY x.id, x.len DESC, x.code
            )
            SELECT st.key, st.city_code, s.reach_key, s.id IS NOT NULL AS snapped,
                   up.key IS NOT NULL AS has_up, mu.code AS up_city, down.key IS NOT NULL AS has_down, md.code AS down_city
            FROM st LEFT JOIN snapped s ON s.key = st.key
            LEFT JOIN up ON up.key = st.key LEFT JOIN majority mu ON mu.id = up.id
            LEFT JOIN down ON down.key = st.key LEFT JOIN majority md ON md.id = down.id""",
        {"keys": station_keys, "snap": snap_max_m}).fetchall()
    out = {}
    for r in rows:
        out[r["key"]] = _cities(r, snap_max_m)
    return out


def _cities(r: dict[str, Any], snap_max_m: float) -> SectionCities:
    if not r["snapped"]:
        return SectionCities(r["key"], None, None, None, f"no river reach within {snap_max_m:g} m of the station")
    here = r["city_code"]
    upstream = r["up_city"] if r["has_up"] else None
    if upstream != here or upstream is None:
        note = None if r["has_up"] else "the river enters the loaded region here: the upstream side is outside it"
        return SectionCities(r["key"], upstream, here, r["reach_key"], note)
    downstream = r["down_city"] if r["has_down"] else None
    if downstream == here:
        return SectionCities(r["key"], here, here, r["reach_key"], "the river does not cross a city border here")
    note = None if r["has_down"] else "the river leaves the loaded region here: the downstream side is outside it"
    return SectionCities(r["key"], here, downstream, r["reach_key"], note)
