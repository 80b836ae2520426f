"""A small map of a page of features for the HTML views: inline SVG, drawn here, no script and no tiles.

Coordinates are CRS84 longitude/latitude, drawn in an equirectangular projection scaled by the cosine of
the middle latitude (true shapes at this scale). Lines and outlines are thinned to at most
:data:`MAX_VERTICES` vertices in all, so a page of large polygons stays a small drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 320
MAX_VERTICES = 20_000


def _rings(geometry: dict[str, Any]) -> Iterable[tuple[str, Sequence[Sequence[float]]]]:
    kind, c = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        yield "point", [c]
    elif kind == "MultiPoint":
        for p in c:
            yield "point", [p]
    elif kind == "LineString":
        yield "line", c
    elif kind == "MultiLineString":
        for line in c:
            yield "line", line
    elif kind == "Polygon":
        for ring in c:
            yield "ring", ring
    elif kind == "MultiPolygon":
        for poly in c:
            for ring in poly:
                yield "ring", ring
    elif kind == "GeometryCollection":
        for g in geometry.get("geometries", []):
            yield from _rings(g)


def svg_map(features: Sequence[dict[str, Any]], colour: str = "#b2182b") -> Markup | None:
    """The features drawn in an SVG of WIDTH × HEIGHT (each linking to its item page by ``data-id``); None
    when no feature has a geometry."""
    parts = [(f.get("id"), kind, coords) for f in features if f.get("geometry")
             for kind, coords in _rings(f["geometry"])]
    xs = [p[0] for _, _, cs in parts for p in cs]
    ys = [p[1] for _, _, cs in parts for p in cs]
    if not xs:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    k = math.cos(math.radians((y0 + y1) / 2))
    span = max((x1 - x0) * k, y1 - y0, 1e-6)
    scale = min(WIDTH, HEIGHT) * 0.9 / span
    ox = (WIDTH - (x1 - x0) * k * scale) / 2
    oy = (HEIGHT - (y1 - y0) * scale) / 2

    def xy(p: Sequence[float]) -> str:
        return f"{ox + (p[0] - x0) * k * scale:.1f},{oy + (y1 - p[1]) * scale:.1f}"

    total = sum(len(cs) for _, kind, cs in parts if kind != "point")
    step = max(1, math.ceil(total / MAX_VERTICES))
    out = [f'<svg class="minimap" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
           'aria-label="本页要素位置图 map of the features on this page">'
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f4f6f7"/>']
    for fid, kind, coords in parts:
        ident = escape(str(fid))
        if kind == "point":
            x, y = xy(coords[0]).split(",")
            out.append(f'<circle data-id="{ident}" cx="{x}" cy="{y}" r="3.5" fill="{colour}" stroke="#fff"/>')
            continue
        pts = list(coords[::step])
        if kind == "ring" and pts and pts[-1] != coords[-1]:
            pts.append(coords[-1])
        d = "M" + "L".join(xy(p) for p in pts) + ("Z" if kind == "ring" else "")
        fill = f'{colour}" fill-opacity="0.15' if kind == "ring" else "none"
        out.append(f'<path data-id="{ident}" d="{d}" fill="{fill}" stroke="{colour}" stroke-width="1"/>')
    out.append("</svg>")
    return Markup("".join(out))
