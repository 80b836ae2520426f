"""Where a point is: the city and county whose boundary holds it, or nothing outside the region.

The phone page asks this when a search finds no site, to tell "nothing within the radius" from "this
position is outside the region the database covers". Point-in-polygon runs on the subdivided
boundaries (``admin_piece``), served by their GiST index.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from layers.catalogue import ADMIN_AREA, BOUNDARY_PIECES, relation

_WHERE_SQL = sql.SQL("""
SELECT DISTINCT a.code, a.name, a.name_en, a.level
FROM {pieces} p JOIN {areas} a ON a.code = p.code
WHERE p.level IN ('city', 'county')
  AND ST_Intersects(p.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
ORDER BY a.level
""").format(pieces=relation(BOUNDARY_PIECES), areas=relation(ADMIN_AREA.name))


@dataclass(frozen=True)
class Place:
    """The jurisdictions holding a point: codes and names (zh, en); ``None`` where no boundary holds it."""

    city_code: str | None
    city: str | None
    city_en: str | None
    county_code: str | None
    county: str | None
    county_en: str | None

    @property
    def in_region(self) -> bool:
        """True when a city of the region holds the point."""
        return self.city_code is not None


async def where(conn: psycopg.AsyncConnection, lon: float, lat: float) -> Place:
    """The city and county whose boundaries hold (lon, lat) in WGS84; all ``None`` outside every city."""
    async with conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(_WHERE_SQL, {"lon": lon, "lat": lat})).fetchall()
    by_level = {r["level"]: r for r in rows}
    city, county = by_level.get("city"), by_level.get("county")
    return Place(city and city["code"], city and city["name"], city and city["name_en"],
                 county and county["code"], county and county["name"], county and county["name_en"])
