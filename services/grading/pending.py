"""Sources waiting for an M score: Q and E are graded, the level is open until the bureau scores M."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from layers.catalogue import relation


def pending_sources(conn: psycopg.Connection, *, city: str | None = None) -> list[dict[str, Any]]:
    """The risk sources whose ``grade_status`` is 'pending-m', by city and key: what a steward needs to
    ask the bureau for (which medium lacks its M) and what the grade is so far (Q band, label with the
    levels M could give).  Reads only public fields, so any role may list them."""
    rows = conn.execute(sql.SQL(
        """SELECT s.key, s.name, s.city_code, s.q_band, s.m_score, s.m_air, s.m_water, s.risk_level,
                  s.grade_label, g.air_cell, g.water_cell, g.level_min, g.level_max, g.m_note
           FROM {source} s LEFT JOIN {grade} g ON g.source_key = s.key
           WHERE s.grade_status = 'pending-m' AND (%(city)s::text IS NULL OR s.city_code = %(city)s)
           ORDER BY s.city_code, s.key""").format(source=relation("risk_source"), grade=relation("risk_grade")),
        {"city": city}).fetchall()
    out = []
    for r in rows:
        missing = [medium for medium, cell in (("air", r["air_cell"]), ("water", r["water_cell"]))
                   if cell is not None and cell.endswith("/M?")]
        out.append({"key": r["key"], "name": r["name"], "city_code": r["city_code"], "q_band": r["q_band"],
                    "needs_m_for": missing, "levels": [r["level_min"], r["level_max"]],
                    "risk_level": r["risk_level"], "label": r["grade_label"], "m_note": r["m_note"]})
    return out
