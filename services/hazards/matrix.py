"""The city x city (or province x province) matrix of cross-border flags, for planners.

A cell counts the flags of sources in the row jurisdiction ("from") that name the column jurisdiction
("to"), by kind and severity:

* ``level=city`` -- flags whose other jurisdiction is a city other than the source's own (province-border
  flags name a province and are left to the province matrix);
* ``level=province`` -- flags whose source lies in one province and whose other jurisdiction (a city's
  province, or the province itself) is another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from layers.catalogue import SCHEMA
from services.errors import InvalidParameter
from services.hazards.query import LEVELS, OTHER_PROVINCE, SOURCE_PROVINCE

_ENDS = {
    "city": ("f.source_city", "f.other_code", "f.other_level = 'city' AND f.cross_border"),
    "province": (SOURCE_PROVINCE, OTHER_PROVINCE, f"{SOURCE_PROVINCE} IS DISTINCT FROM {OTHER_PROVINCE}"),
}


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise InvalidParameter(f"`level` was {level!r} but is expected to be one of {list(LEVELS)}")


def cells_sql(level: str) -> str:
    """Counts by (from, to, kind, severity) at ``level``, with the names of both ends."""
    check_level(level)
    source, other, condition = _ENDS[level]
    return f"""
        WITH c AS (
            SELECT {source} AS from_code, {other} AS to_code, f.kind, f.severity, count(*) AS n,
                   max(f.computed_at) AS computed_at
            FROM {SCHEMA}.hazard_flag f
            JOIN {SCHEMA}.admin_area sa ON sa.code = f.source_city
            JOIN {SCHEMA}.admin_area oa ON oa.code = f.other_code
            WHERE {condition}
            GROUP BY 1, 2, 3, 4
        )
        SELECT c.from_code, fa.name AS from_name, coalesce(fa.name_en, fa.name) AS from_name_en,
               c.to_code, ta.name AS to_name, coalesce(ta.name_en, ta.name) AS to_name_en,
               c.kind, c.severity, c.n, c.computed_at
        FROM c
        JOIN {SCHEMA}.admin_area fa ON fa.code = c.from_code
        JOIN {SCHEMA}.admin_area ta ON ta.code = c.to_code
        ORDER BY c.from_code, c.to_code, c.kind, c.severity"""


def jurisdictions_sql() -> str:
    """The jurisdictions of a level, for the rows and columns of the matrix."""
    return f"""SELECT code, name, coalesce(name_en, name) AS name_en FROM {SCHEMA}.admin_area
               WHERE level = %(level)s ORDER BY code"""


def assemble(level: str, jurisdictions: Sequence[dict[str, Any]], cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The matrix document: jurisdictions, cells, totals per pair, and a dense ``matrix`` of counts."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    dense: dict[str, dict[str, int]] = {j["code"]: {k["code"]: 0 for k in jurisdictions} for j in jurisdictions}
    computed = None
    for c in cells:
        key = (c["from_code"], c["to_code"])
        p = pairs.setdefault(key, {"from": key[0], "from_name": c["from_name"], "to": key[1],
                                   "to_name": c["to_name"], "count": 0,
                                   "by_kind": defaultdict(int), "by_severity": defaultdict(int)})
        n = int(c["n"])
        p["count"] += n
        p["by_kind"][c["kind"]] += n
        p["by_severity"][c["severity"]] += n
        dense.setdefault(key[0], {}).setdefault(key[1], 0)
        dense[key[0]][key[1]] += n
        computed = max(computed, c["computed_at"]) if computed else c["computed_at"]
    return {
        "level": level,
        "jurisdictions": [dict(j) for j in jurisdictions],
        "cells": [{"from": c["from_code"], "from_name": c["from_name"], "to": c["to_code"], "to_name": c["to_name"],
                   "kind": c["kind"], "severity": c["severity"], "count": int(c["n"])} for c in cells],
        "pairs": [{**p, "by_kind": dict(p["by_kind"]), "by_severity": dict(p["by_severity"])}
                  for p in pairs.values()],
        "matrix": dense,
        "total": sum(p["count"] for p in pairs.values()),
        "computed_at": computed.isoformat() if computed is not None else None,
    }


def border_matrix(conn: Any, level: str = "city") -> dict[str, Any]:
    """The matrix at ``level`` read with psycopg (dict rows)."""
    cells = conn.execute(cells_sql(level)).fetchall()
    jurisdictions = conn.execute(jurisdictions_sql(), {"level": level}).fetchall()
    return assemble(level, jurisdictions, cells)
