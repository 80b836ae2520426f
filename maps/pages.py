"""The HTML pages the app serves: the planner's map ``/map`` and the inspector's phone page ``/m``.

Pages are rendered from ``maps/templates`` with the paths of the app (under its root path) so that
every script, stylesheet and data request goes to the app itself.  :data:`LABELS_SQL` gives the
label points and extents of the cities and counties, which the viewer uses for its labels, its city
list and for zooming to a city or a pair of cities.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from psycopg import sql

from layers.catalogue import ADMIN_AREA, relation
from maps.maplibre import SWITCHER

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

#: Label point (on the surface), extent and names of every city and county, plus the whole extent.
LABELS_SQL = sql.SQL("""
SELECT code, name, name_en, level, parent_code,
       round(ST_X(p)::numeric, 5)::float AS lon, round(ST_Y(p)::numeric, 5)::float AS lat,
       round(ST_XMin(geom)::numeric, 5)::float AS xmin, round(ST_YMin(geom)::numeric, 5)::float AS ymin,
       round(ST_XMax(geom)::numeric, 5)::float AS xmax, round(ST_YMax(geom)::numeric, 5)::float AS ymax
FROM (SELECT code, name, name_en, level, parent_code, geom, ST_PointOnSurface(geom) AS p
      FROM {areas} WHERE level IN ('province', 'city', 'county')) a
ORDER BY level, code
""").format(areas=ADMIN_AREA.relation)

HAZARDS_PATH = "/analysis/border-hazards"
MATRIX_PATH = "/analysis/border-matrix"

#: Credits the data set records for its sources (dataset_info values), shown as map attribution.
CREDITS_SQL = sql.SQL("SELECT value FROM {}").format(relation("dataset_info"))


@cache
def template_env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def labels_document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The labels document from :data:`LABELS_SQL` rows: areas with label point and bbox, and the cities' bounds."""
    areas = [{"code": r["code"], "name": r["name"], "name_en": r["name_en"], "level": r["level"],
              "parent_code": r["parent_code"], "lon": r["lon"], "lat": r["lat"],
              "bbox": [r["xmin"], r["ymin"], r["xmax"], r["ymax"]]} for r in rows]
    # The region is its cities: a province outline reaches far beyond them.
    region = [a for a in areas if a["level"] == "city"] or areas
    if region:
        bounds = [min(a["bbox"][0] for a in region), min(a["bbox"][1] for a in region),
                  max(a["bbox"][2] for a in region), max(a["bbox"][3] for a in region)]
    else:
        bounds = [117.5, 30.5, 120.0, 34.0]  # the Nanjing metropolitan area, before any boundary is loaded
    return {"areas": areas, "bounds": [[bounds[0], bounds[1]], [bounds[2], bounds[3]]]}


def credits(values: list[Any]) -> str:
    """The boundary and data credits found in dataset_info values, joined for the attribution line."""
    found: list[str] = []
    for v in values:
        if isinstance(v, dict):
            for key in ("boundaries_credit", "credit", "attribution"):
                text = v.get(key)
                if isinstance(text, str) and text not in found:
                    found.append(text)
    return " · ".join(found)


def map_page(root: str, lang: str = "zh", hazards: bool = True, flag_limit: int = 10_000) -> str:
    """The planner's map, for an app served under ``root`` ('' or '/prefix').

    ``hazards`` says whether the app serves the border-zone hazard endpoints; without them the viewer
    says so instead of asking.
    """
    config = {
        "lang": lang,
        "styles": f"{root}/styles.json",
        "style": f"{root}/map/style.json",
        "labels": f"{root}/map/labels.json",
        "basemaps": f"{root}/map/basemaps.json",
        "layers": f"{root}/layers",
        "collections": f"{root}/collections",
        "hazards": f"{root}{HAZARDS_PATH}?limit={flag_limit}" if hazards else None,
        "matrix": f"{root}{MATRIX_PATH}?level=city" if hazards else None,
        "switcher": {name: list(ids) for name, ids in SWITCHER.items()},
        "stations": f"{root}/observations/latest",
        "root": root,
    }
    return template_env().get_template("map.html").render(static=f"{root}/static", config=config)
