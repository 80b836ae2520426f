"""The style document: every layer's cartography from the catalogue, as one JSON document.

The web viewer (``/styles.json``, turned into MapLibre layers by :mod:`maps.maplibre`), the phone page
and the folium report maps all read this document, so a colour changed in ``layers.catalogue`` changes
every map.  What the catalogue's ``Style`` does not hold yet is declared here once, beside it: the
symbol shape of each risk-source category, the colour of a source not graded yet, and the look of the
border-zone hazard flags (a derived table, not a catalogue layer).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from functools import cache
from typing import Any

from layers.catalogue import DRAW_ORDER, FLAG_KIND_LABELS, LAYERS, RISK_CATEGORIES, RISK_LEVELS, Layer, Style
from maps.labels import PENDING_M, UI, UNGRADED, value_labels

#: Symbol shape of each risk-source category (drawn by the viewer as SDF icons, by folium as SVG).
CATEGORY_SHAPES: dict[str, str] = {
    "chemical": "circle",
    "hazardous-waste": "triangle",
    "tailings": "square",
    "wastewater-plant": "diamond",
    "oil-and-gas-storage": "hexagon",
    "pharmaceutical": "pentagon",
    "metal-plating": "star",
    "other": "cross",
}


def _polygon(points: list[tuple[float, float]]) -> str:
    return "M" + "L".join(f"{x:.2f} {y:.2f}" for x, y in points) + "Z"


def _regular(n: int, r: float, inner: float | None = None) -> str:
    """A regular polygon (or a star, with ``inner`` radius) pointing up, centred in a 24-unit box."""
    steps = n * 2 if inner else n
    pts = []
    for i in range(steps):
        a = math.radians(-90 + 360 * i / steps)
        rr = inner if inner and i % 2 else r
        pts.append((12 + rr * math.cos(a), 12 + rr * math.sin(a)))
    return _polygon(pts)


#: SVG path of each shape in a 24 × 24 box: the SVG legends and markers use it as is, the viewer's
#: canvases through Path2D, so every map draws the same symbol.
SHAPE_PATHS: dict[str, str] = {
    "circle": "M2 12a10 10 0 1 0 20 0a10 10 0 1 0 -20 0Z",
    "triangle": _polygon([(12, 1.5), (22.5, 20.5), (1.5, 20.5)]),
    "square": _polygon([(3.5, 3.5), (20.5, 3.5), (20.5, 20.5), (3.5, 20.5)]),
    "diamond": _polygon([(12, 1), (23, 12), (12, 23), (1, 12)]),
    "hexagon": _regular(6, 10.8),
    "pentagon": _regular(5, 11),
    "star": _regular(5, 11.5, inner=5.0),
    "cross": _polygon([(8.5, 2), (15.5, 2), (15.5, 8.5), (22, 8.5), (22, 15.5), (15.5, 15.5), (15.5, 22),
                       (8.5, 22), (8.5, 15.5), (2, 15.5), (2, 8.5), (8.5, 8.5)]),
}

def _outline(outer: list[tuple[float, float]], inner: list[tuple[float, float]]) -> str:
    """A hollow shape: ``outer`` and ``inner`` wound in opposite directions, so that both the nonzero and
    the even-odd rule leave the inside empty (an SDF of it is a ring the viewer tints)."""
    return _polygon(outer) + _polygon(list(reversed(inner)))


def _ring_points(r: float, n: int = 40) -> list[tuple[float, float]]:
    return [(12 + r * math.cos(math.radians(360 * i / n)), 12 + r * math.sin(math.radians(360 * i / n)))
            for i in range(n)]


def _scaled(points: list[tuple[float, float]], k: float) -> list[tuple[float, float]]:
    return [(12 + (x - 12) * k, 12 + (y - 12) * k) for x, y in points]


_DOWN = [(1.5, 3.5), (22.5, 3.5), (12, 22.5)]
_SQUARE = [(2.5, 2.5), (21.5, 2.5), (21.5, 21.5), (2.5, 21.5)]
_DIAMOND = [(12, 0.8), (23.2, 12), (12, 23.2), (0.8, 12)]

#: The ring drawn around a flagged source, one shape per kind of flag (its colour is the severity): a ring
#: near a city border, a double ring near a province border, a downward triangle upstream of another city,
#: a square at a protection zone, a diamond at a protected area.
FLAG_SHAPE_PATHS: dict[str, str] = {
    "city-border": _outline(_ring_points(11), _ring_points(8)),
    "province-border": _outline(_ring_points(11.5), _ring_points(9.5)) + _outline(_ring_points(7), _ring_points(5)),
    "upstream": _outline(_DOWN, _scaled(_DOWN, 0.62)),
    "protection-zone": _outline(_SQUARE, _scaled(_SQUARE, 0.7)),
    "protected-area": _outline(_DIAMOND, _scaled(_DIAMOND, 0.66)),
}

#: A risk source with no level yet (before `riskatlas grade`): grey, never a level's colour.
UNGRADED_COLOR = "#8c8c8c"

#: Border-zone hazard flags: a ring around the flagged source, coloured by severity.
FLAG_STYLE = Style(color="#d7301f", weight=2.5, radius=9.0, opacity=1.0, fill_opacity=0.0, color_by="severity",
                   palette={"high": "#b30000", "medium": "#e34a33", "low": "#fc8d59"})
FLAG_SEVERITIES = ("high", "medium", "low")


#: Which field a point layer's symbol shape follows, and the shapes of its values.
SHAPE_BY: dict[str, tuple[str, dict[str, str]]] = {"risk_source": ("category", CATEGORY_SHAPES)}

if set(FLAG_SHAPE_PATHS) != set(FLAG_KIND_LABELS):
    raise RuntimeError("maps.styles is out of step with the catalogue: flag kinds "
                       f"{sorted(set(FLAG_KIND_LABELS) ^ set(FLAG_SHAPE_PATHS))}")
_missing_shapes = set(RISK_CATEGORIES) - set(CATEGORY_SHAPES)
if _missing_shapes:
    raise RuntimeError(f"maps.styles is out of step with the catalogue: categories without a shape "
                       f"{sorted(_missing_shapes)}")


def layer_style(layer: Layer) -> dict[str, Any]:
    """One layer's entry of the style document: its catalogue style, titles, fields and symbols."""
    style = asdict(layer.style)
    entry: dict[str, Any] = {
        "name": layer.name,
        "title": layer.title,
        "title_zh": layer.title_zh,
        "geometry_type": layer.geometry_type,
        "id_field": layer.id_field,
        **style,
        "fill": style["fill"] or style["color"],
        "fields": [{"name": f.name, "title": f.title or f.name, "title_zh": f.title_zh or f.title or f.name,
                    "unit": f.unit, "restricted": f.restricted} for f in layer.fields if f.type != "json"],
    }
    if layer.style.color_by:
        domain = layer.field(layer.style.color_by).domain or tuple(layer.style.palette)
        entry["classes"] = [v for v in domain if v in layer.style.palette]
    if layer.name == "risk_source":
        entry["missing_color"] = UNGRADED_COLOR
        entry["missing_label"] = UNGRADED
        entry["pending_label"] = PENDING_M  # no level yet because M is missing (grade_status pending-m)
        entry["classes"] = [v for v in ("major", "larger", "general") if v in RISK_LEVELS]
    if layer.name in SHAPE_BY:
        by, shapes = SHAPE_BY[layer.name]
        entry["shape_by"] = by
        entry["shapes"] = dict(shapes)
    return entry


@cache
def style_document() -> dict[str, Any]:
    """The whole style document (JSON-ready): layers in drawing order, flags, value names, page words."""
    return {
        "version": 1,
        "order": list(DRAW_ORDER),
        "layers": {name: layer_style(LAYERS[name]) for name in DRAW_ORDER},
        "flags": {**asdict(FLAG_STYLE), "classes": list(FLAG_SEVERITIES), "kinds": list(FLAG_SHAPE_PATHS),
                  "title": "Border-zone hazard flags", "title_zh": "跨界风险隐患"},
        "shapes": {**SHAPE_PATHS, **{f"flag-{k}": path for k, path in FLAG_SHAPE_PATHS.items()}},
        "values": value_labels(),
        "ui": UI,
    }


def shape_svg(shape: str, colour: str, size: int = 14, stroke: str = "#ffffff") -> str:
    """An inline SVG of ``shape`` filled with ``colour`` (legends of the report maps)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 24 24">'
            f'<path d="{SHAPE_PATHS[shape]}" fill="{colour}" stroke="{stroke}" stroke-width="1.5"/></svg>')
