"""Reaches as the walks see them: the river-class defaults that fill missing hydraulics, stored records.

Reach velocity, width, depth and slope fall back to the documented defaults of their river class
(``gis.river_transport``) where the reach does not carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from gis.river_transport import RIVER_CLASSES
from layers.catalogue import SCHEMA, SCHEMA_SQL


def defaults_sql() -> tuple[str, dict[str, Any]]:
    """The class defaults as an inline VALUES table with named parameters."""
    rows, params = [], {}
    for i, (name, p) in enumerate(RIVER_CLASSES.items()):
        rows.append(f"(%(c{i})s, %(u{i})s::float8, %(w{i})s::float8, %(h{i})s::float8, %(s{i})s::float8)")
        params.update({f"c{i}": name, f"u{i}": p.u, f"w{i}": p.width, f"h{i}": p.depth, f"s{i}": p.slope})
    return f"(VALUES {', '.join(rows)}) AS d(river_class, u, width, depth, slope)", params


@dataclass(frozen=True)
class ReachRecord:
    """A reach's nodes and its hydraulic attributes as stored (None where the class default applies)."""

    reach_id: int
    from_node: int | None
    to_node: int | None
    velocity_ms: float | None
    width_m: float | None
    depth_m: float | None
    slope: float | None
    flow_m3s: float | None
    dispersion_m2_s: float | None = None


def reach_records(conn: psycopg.Connection, reach_ids: list[int]) -> dict[int, ReachRecord]:
    """Nodes and stored attributes of the given reaches, by id (to find branches and stated defaults)."""
    if not reach_ids:
        return {}
    rows = conn.execute(
        sql.SQL("""SELECT id AS reach_id, from_node, to_node, velocity_ms, width_m, depth_m, slope, flow_m3s, dispersion_m2_s
            FROM {schema}.river WHERE id = ANY(%s)""").format(schema=SCHEMA_SQL), (list(reach_ids),)).fetchall()
    return {int(r["reach_id"]): ReachRecord(**dict(r)) for r in rows}


def min_velocity(conn: psycopg.Connection) -> float | None:
    """The slowest reach velocity of the network (m/s; class defaults where a reach has none)."""
    defaults, params = defaults_sql()
    row = conn.execute(
        f"""SELECT min(coalesce(r.velocity_ms, d.u)) AS u FROM {SCHEMA}.river r
            JOIN {defaults} ON d.river_class = r.river_class
            WHERE coalesce(r.velocity_ms, d.u) > 0""", params).fetchone()
    return None if row is None or row["u"] is None else float(row["u"])
