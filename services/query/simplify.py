"""Simplified lines and areas for display: a tolerance in metres (``simplify``) or a web-map zoom (``zoom``).

**Metres, not degrees.** Each feature is simplified in a local frame of its own: its longitudes and
latitudes scaled (``ST_Scale``) by the metres in a degree east and north on the WGS84 ellipsoid
(:func:`gis.simplify.metres_per_degree`), an equirectangular plane in metres around the feature. The
scales are taken where they are largest over the feature's latitudes (east at its latitude nearest the
equator, north at the one nearest a pole), so a distance in the frame is never shorter than on the
ground: no kept line moves further than the tolerance from the boundary it replaces, in metres, at any
latitude (Heilongjiang as well as Hainan). Chosen over ``ST_Transform`` to a projected CRS because a
scale is exact and cheap (no PROJ call per vertex) and maps the kept vertices back to the stored
numbers, so the output keeps the data's own coordinates; and a frame per feature needs no zone choice
at a national scale. The tolerance holds for lines drawn straight in longitude/latitude, as GeoJSON
and PostGIS draw them.

**Zoom.** ``zoom`` asks for about half a pixel of a 256-pixel-tile web map at that zoom, at the
feature's mid latitude (:func:`gis.simplify.half_pixel_m`): what a map shows is unchanged, the bytes
are not. MapLibre GL's zoom z is zoom z + 1 here.

**Valid results.** Douglas-Peucker (``ST_Simplify`` keeping collapsed parts: an island thinner than
the tolerance stays as a speck; a hole that thin goes, as it would on screen) is 20x faster than the
topology-preserving simplifier on the demo's boundaries, so it runs first; a feature whose result is
not valid is simplified again with ``ST_SimplifyPreserveTopology``, and one still invalid (it keeps
rings from crossing, not an island from falling inside another ring) is repaired with
``ST_MakeValid(..., 'method=structure')``, which unions the shells. Neighbouring areas are simplified
each on its own, so their shared border may part by up to the tolerance: ``ST_CoverageSimplify``
(PostGIS 3.4) would keep them together, and Debian 12 ships PostGIS 3.3.

Points are never simplified: the parameters are accepted and ignored on point layers, so a map can
send the same query to every layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from psycopg import sql

from gis.simplify import MAX_ZOOM, PIXEL_Z0_M, WGS84_A, WGS84_E2
from services.errors import InvalidParameter
from services.query.clauses import Clause

#: The query parameters of simplification (items and single item).
SIMPLIFY_PARAMS = ("simplify", "zoom")
#: The largest tolerance accepted (m): beyond it every ring is already at its fewest vertices.
MAX_SIMPLIFY_M = 1_000_000.0

SIMPLIFY_DOC = (
    "Simplify lines and areas for display: no vertex of the result's lines is further than this many "
    "metres from the stored boundary (Douglas-Peucker in a metric frame of each feature; areas stay "
    f"valid). 0 or absent: as stored. At most {int(MAX_SIMPLIFY_M)}. Ignored for point layers. Not "
    "with `zoom`."
)
ZOOM_DOC = (
    f"Simplify lines and areas for a web map at this zoom level (0-{MAX_ZOOM}, 256-pixel tiles; "
    "MapLibre's zoom z is z + 1): a tolerance of about half a pixel at each feature's latitude. "
    "Ignored for point layers. Not with `simplify`."
)


@dataclass(frozen=True)
class Simplification:
    """A tolerance in metres, or a zoom level whose half pixel is the tolerance (exactly one is set)."""

    metres: float | None = None
    zoom: int | None = None

    def describe(self) -> dict[str, object]:
        """What a response says of its geometries (a foreign member of the FeatureCollection)."""
        if self.zoom is not None:
            return {"zoom": self.zoom, "tolerance": "half a pixel at each feature's latitude"}
        return {"simplify": self.metres, "unit": "m"}


def simplification(simplify: float | None, zoom: int | None, geometry_type: str) -> Simplification | None:
    """The simplification a request asks of a layer of ``geometry_type``; None: geometries as stored.

    Raises :class:`InvalidParameter` naming the parameter when a value is out of range, not finite,
    or both are given. Point layers get None (nothing to simplify), after the values are checked.
    """
    if simplify is not None and zoom is not None:
        raise InvalidParameter("`simplify` and `zoom` were both given; give one (metres, or a zoom level)")
    if simplify is not None and not (math.isfinite(simplify) and 0 <= simplify <= MAX_SIMPLIFY_M):
        raise InvalidParameter(
            f"`simplify` was {simplify!r} but is expected to be a number of metres from 0 to {int(MAX_SIMPLIFY_M)}"
        )
    if zoom is not None and not 0 <= zoom <= MAX_ZOOM:
        raise InvalidParameter(f"`zoom` was {zoom!r} but is expected to be a zoom level from 0 to {MAX_ZOOM}")
    if geometry_type == "Point":
        return None
    if zoom is not None:
        return Simplification(zoom=zoom)
    return Simplification(metres=float(simplify)) if simplify else None


def simplified_sql(geom: sql.Composable, s: Simplification, geometry_type: str) -> Clause:
    """SQL of ``geom`` (a WGS84 column of the row) simplified as ``s`` asks; a valid geometry of the
    same type, with the tolerance as a bound value."""
    if s.zoom is not None:
        tolerance = Clause(
            sql.SQL("{} * cos(radians((b.y0 + b.y1) / 2.0)) / power(2.0, %s::int) / 2.0").format(
                sql.Literal(PIXEL_Z0_M)
            ),
            (s.zoom,),
        )
    else:
        tolerance = Clause(sql.SQL("%s::float8"), (s.metres,))
    a, e2 = sql.Literal(WGS84_A), sql.Literal(WGS84_E2)
    # the latitude nearest the equator (largest metres per degree east) and nearest a pole (north)
    near_equator = sql.SQL("least(CASE WHEN b.y0 > 0 THEN b.y0 WHEN b.y1 < 0 THEN -b.y1 ELSE 0 END, 89.0)")
    near_pole = sql.SQL("greatest(abs(b.y0), abs(b.y1))")
    east = sql.SQL("radians(1) * {a} * cos(radians({p})) / sqrt(1 - {e2} * sin(radians({p}))^2)").format(
        a=a, e2=e2, p=near_equator
    )
    north = sql.SQL("radians(1) * {a} * (1 - {e2}) / (1 - {e2} * sin(radians({p}))^2)^1.5").format(
        a=a, e2=e2, p=near_pole
    )
    back = sql.SQL("1.0 / f.kx, 1.0 / f.ky")
    fallback: sql.Composable
    if geometry_type == "MultiPolygon":
        fallback = sql.SQL(
            # GEOS returns a Polygon for a MultiPolygon of one part: ST_Multi keeps the layer's type
            "(SELECT ST_Multi(CASE WHEN ST_IsValid(t.p) THEN t.p "
            "ELSE ST_CollectionExtract(ST_MakeValid(t.p, 'method=structure'), 3) END) "
            "FROM (SELECT ST_Scale(ST_SimplifyPreserveTopology(ST_Scale(f.g, f.kx, f.ky), f.t), {back}) AS p) t)"
        ).format(back=back)
    else:  # a line stays valid unless it collapses to one point: then keep it as stored
        fallback = sql.SQL("f.g")
    text = sql.SQL(
        # OFFSET 0 keeps each level a subquery of its own: pulled up, its expressions would be copied
        # (and the simplification run twice) wherever the level above names them
        "(SELECT CASE WHEN ST_IsValid(f.d) THEN f.d ELSE {fallback} END FROM ("
        "SELECT k.*, ST_Scale(ST_Simplify(ST_Scale(k.g, k.kx, k.ky), k.t, true), 1.0 / k.kx, 1.0 / k.ky) AS d "
        "FROM (SELECT b.g, {east} AS kx, {north} AS ky, {tolerance} AS t "
        "FROM (SELECT {geom} AS g, ST_YMin({geom}) AS y0, ST_YMax({geom}) AS y1 OFFSET 0) b OFFSET 0) k OFFSET 0) f)"
    ).format(fallback=fallback, east=east, north=north, tolerance=tolerance.text, geom=geom)
    return Clause(text, tolerance.params)
