"""The report map of one city: a self-contained folium HTML of the catalogue layers (and hazard flags).

PostGIS builds each layer's GeoJSON (``ST_AsGeoJSON`` of each row, ``json_agg`` of the rows) and the
text goes into the page untouched; no feature passes through Python objects.  Points are the city's
own (``city_code``); lines and areas are those meeting the city's polygon; the boundaries are the city,
its counties and its neighbouring cities.  Lines and areas are simplified to about 20 m, plenty for a
report.  Restricted fields are left out unless asked for.  A point layer of more than
:data:`CLUSTER_ABOVE` features is clustered; one of more than :data:`BIN_ABOVE` (and the hazard flags
beyond that count) is drawn as squares counted by class in PostGIS (:mod:`maps.bins`), so that the page
stays a few megabytes whatever the size of the inventory.  Nothing is fetched from the network when the
file opens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import folium
import psycopg
from psycopg import sql

from layers import db
from layers.catalogue import ADMIN_AREA, DRAW_ORDER, LAYERS, SCHEMA, Layer, relation
from layers.settings import DatabaseSettings
from maps.bins import BIN_CELLS, bins_query
from maps.offline import OfflineError, add_markercluster, make_offline, remote_references
from maps.report_layers import (
    BinLayer,
    BoxControl,
    DataLayer,
    FlagLayer,
    StyledLayer,
    add_runtime,
    fill_data,
    legend_html,
    title_html,
)
from maps.styles import style_document

CLUSTER_ABOVE = 1_000
#: Beyond this many features a point layer (or the flags) is drawn as counted squares, not one by one:
#: a feature weighs about 0.5 kB in the page, so the few point layers stay within a few megabytes.
BIN_ABOVE = 3_000
#: Simplification of lines and areas, in degrees (about 20 m in the region).
SIMPLIFY_DEG = 0.0002
COORD_DIGITS = 5
FLAG_COLUMNS = ("id", "source_key", "source_name", "source_city", "risk_level", "kind", "other_code", "other_name",
                "distance_m", "severity", "reason", "reason_zh")


class MapInputError(ValueError):
    """A city or layer the map cannot be made of; the message says what is allowed."""


class UnknownCity(MapInputError):
    """The city code is not a loaded city."""


@dataclass
class ReportMap:
    """A built report map: the HTML and what went into it."""

    html: str
    city: str
    city_name: str
    city_name_en: str
    counts: dict[str, int]
    clustered: list[str]
    flags: int | None
    seconds: float
    notices: list[str] = field(default_factory=list)
    binned: dict[str, int] = field(default_factory=dict)  # layer (or "flags") -> squares drawn

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts of the map (without the HTML)."""
        return {"city": self.city, "city_name": self.city_name, "city_name_en": self.city_name_en,
                "counts": self.counts, "clustered": self.clustered, "binned": self.binned, "flags": self.flags,
                "bytes": len(self.html.encode("utf-8")), "seconds": round(self.seconds, 3)}


def check_layers(names: Sequence[str] | None) -> list[str]:
    """The layers to draw in drawing order; all of them for None; MapInputError naming unknown ones."""
    if not names:
        return list(DRAW_ORDER)
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise MapInputError(f"layers {unknown} are not in the catalogue; the layers are {list(DRAW_ORDER)}")
    return [n for n in DRAW_ORDER if n in names]


def _where(layer: Layer) -> sql.Composable:
    """Which rows of ``layer`` belong on the city's map (``c`` is the city row, ``x`` the layer row)."""
    if layer.name == ADMIN_AREA.name:
        # Neighbours: compared on simplified outlines (a distance between full city polygons takes seconds),
        # within 500 m so that the few-metre gaps between neighbours from the source do not matter.
        return sql.SQL("x.code = c.code OR x.parent_code = c.code OR (x.level = 'city' AND x.geom && "
                       "ST_Expand(c.geom, 0.005) AND ST_DWithin(ST_Simplify(x.geom, 0.002), c.outline, 0.005))")
    if layer.geometry_type == "Point" and layer.jurisdiction:
        return sql.SQL("x.city_code = c.code")
    return sql.SQL("x.geom && c.geom AND ST_Intersects(x.geom, c.geom)")


def layer_query(layer: Layer, restricted: bool) -> sql.Composed:
    """One statement giving ``n`` and the GeoJSON features (text) of ``layer`` for city ``%(city)s``."""
    columns = [f.name for f in layer.public_fields(restricted) if f.type != "json"]
    if layer.geometry_type == "Point":
        geom = sql.SQL("x.geom")
    else:
        geom = sql.SQL("ST_SimplifyPreserveTopology(x.geom, {})").format(sql.Literal(SIMPLIFY_DEG))
    return sql.SQL(
        "WITH c AS (SELECT code, geom, ST_Simplify(geom, 0.002) AS outline FROM {admin} WHERE code = %(city)s) "
        "SELECT count(*) AS n, coalesce(json_agg(ST_AsGeoJSON(t.*, 'geom', {digits})::json), '[]'::json)::text "
        "AS features FROM (SELECT {cols}, {geom} AS geom FROM {table} x, c WHERE {where}) t"
    ).format(admin=sql.SQL(ADMIN_AREA.table), digits=sql.Literal(COORD_DIGITS),
             cols=sql.SQL(", ").join(sql.SQL("x.") + sql.Identifier(c) for c in columns), geom=geom,
             table=sql.SQL(_relation(layer, restricted)), where=_where(layer))


_CITY = "SELECT code, geom, ST_Simplify(geom, 0.002) AS outline FROM {admin} WHERE code = %(city)s"


def count_query(layer: Layer, restricted: bool) -> sql.Composed:
    """How many features of ``layer`` belong on the map of city ``%(city)s`` (``n``)."""
    return sql.SQL("WITH c AS (" + _CITY + ") SELECT count(*) AS n FROM {table} x, c WHERE {where}").format(
        admin=sql.SQL(ADMIN_AREA.table), table=sql.SQL(_relation(layer, restricted)), where=_where(layer))


def layer_bins_query(layer: Layer, restricted: bool) -> sql.Composed:
    """The squares of a point layer on the map of city ``%(city)s`` (see :func:`maps.bins.bins_query`),
    counted by the layer's colour field (risk level for sources)."""
    value = sql.SQL("x.") + sql.Identifier(layer.style.color_by) if layer.style.color_by else sql.SQL("NULL")
    return bins_query(sql.SQL("{table} x, c WHERE {where}").format(table=sql.SQL(_relation(layer, restricted)),
                                                                  where=_where(layer)),
                      value, sql.SQL(_CITY).format(admin=sql.SQL(ADMIN_AREA.table)), COORD_DIGITS)


FLAGS_COUNT_QUERY = sql.SQL("SELECT count(*) AS n FROM {table} WHERE source_city = %(city)s OR other_code = %(city)s"
                            ).format(table=sql.SQL(f"{SCHEMA}.hazard_flag"))
FLAGS_BINS_QUERY = bins_query(
    sql.SQL("{table} x, c WHERE x.source_city = c.code OR x.other_code = c.code").format(
        table=sql.SQL(f"{SCHEMA}.hazard_flag")),
    sql.SQL("x.severity"), sql.SQL(_CITY).format(admin=sql.SQL(ADMIN_AREA.table)), COORD_DIGITS)


def _relation(layer: Layer, restricted: bool) -> str:
    """The table, or for restricted fields the view that shows them only to verified readers."""
    if restricted and any(f.restricted for f in layer.fields):
        return f"{SCHEMA}.{layer.name}_visible"
    return layer.table


FLAGS_QUERY = sql.SQL(
    "SELECT count(*) AS n, coalesce(json_agg(ST_AsGeoJSON(t.*, 'geom', {digits})::json), '[]'::json)::text "
    "AS features FROM (SELECT {cols}, geom FROM {table} WHERE source_city = %(city)s OR other_code = %(city)s "
    "ORDER BY id) t"
).format(digits=sql.Literal(COORD_DIGITS), cols=sql.SQL(", ").join(sql.Identifier(c) for c in FLAG_COLUMNS),
         table=sql.SQL(f"{SCHEMA}.hazard_flag"))


def _collection(features: str) -> str:
    return '{"type":"FeatureCollection","features":' + features + "}"


def _city(conn: psycopg.Connection, city: str) -> dict[str, Any]:
    row = conn.execute(
        sql.SQL("SELECT code, name, coalesce(name_en, name) AS name_en, ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, "
                "ST_XMax(geom) AS x1, ST_YMax(geom) AS y1 FROM {} WHERE code = %s AND level = 'city'"
                ).format(ADMIN_AREA.relation),
        (city,)).fetchone()
    if row is None:
        cities = conn.execute(sql.SQL("SELECT code, name FROM {} WHERE level = 'city' ORDER BY code").format(
            ADMIN_AREA.relation)).fetchall()
        listed = ", ".join(f"{r['code']} {r['name']}" for r in cities) or "none loaded"
        raise UnknownCity(f"city was {city!r} but is expected to be the code of a loaded city: {listed}")
    return row


def _dataset_notes(conn: psycopg.Connection) -> tuple[list[str], str]:
    notices, credits = [], []
    for row in conn.execute(sql.SQL("SELECT value FROM {}").format(relation("dataset_info"))).fetchall():
        v = row["value"]
        if isinstance(v, dict):
            if v.get("synthetic"):
                notices.append(" / ".join(t for t in (v.get("notice_zh"), v.get("notice")) if t))
            if v.get("boundaries_credit"):
                credits.append(v["boundaries_credit"])
    return notices, " · ".join(credits)


def build_overview(settings: DatabaseSettings, city: str, layers: Sequence[str] | None = None, *,
                   flags: bool = False, restricted: bool = False, basemap_url: str | None = None,
                   cluster_above: int = CLUSTER_ABOVE, bin_above: int = BIN_ABOVE,
                   context: str | None = None) -> ReportMap:
    """The report map of ``city`` (a city code), as one self-contained HTML document.

    A point layer of more than ``cluster_above`` features is clustered; a point layer, or the flags,
    of more than ``bin_above`` is drawn as squares (about :data:`maps.bins.BIN_CELLS` along the city's
    longer side) with its counts by class, so the page's size does not grow with the inventory.  Restricted fields come from
    the database only for a verified reader: the caller's signed ``context`` (a web request), or, at
    the command line without one, the schema owner's own connection.
    """
    started = time.perf_counter()
    names = check_layers(layers)
    doc = style_document()
    with db.connect(settings, "owner" if restricted and context is None else "app") as conn:
        if context is not None:
            db.act_as(conn, context)
        c = _city(conn, city)
        data: dict[str, tuple[int, str]] = {}
        binned: dict[str, int] = {}
        params = {"city": city, "cells": BIN_CELLS}
        for name in names:
            spec = LAYERS[name]
            if (spec.geometry_type == "Point"
                    and conn.execute(count_query(spec, restricted), params).fetchone()["n"] > bin_above):
                row = conn.execute(layer_bins_query(spec, restricted), params).fetchone()
                binned[name] = int(row["bins"])
            else:
                row = conn.execute(layer_query(spec, restricted), params).fetchone()
            data[name] = (row["n"], row["features"])
        flag_data = None
        if flags:
            if conn.execute(FLAGS_COUNT_QUERY, params).fetchone()["n"] > bin_above:
                row = conn.execute(FLAGS_BINS_QUERY, params).fetchone()
                binned["flags"] = int(row["bins"])
            else:
                row = conn.execute(FLAGS_QUERY, params).fetchone()
            flag_data = (row["n"], row["features"])
        areas = {r["code"]: f"{r['name']} {r['name_en'] or ''}".strip() for r in conn.execute(
            sql.SQL("SELECT code, name, name_en FROM {}").format(ADMIN_AREA.relation)).fetchall()}
        notices, credit = _dataset_notes(conn)

    m = folium.Map(location=[(c["y0"] + c["y1"]) / 2, (c["x0"] + c["x1"]) / 2], zoom_start=9, tiles=None,
                   control_scale=True, prefer_canvas=True, maxZoom=18)  # without tiles Leaflet knows no max zoom
    if basemap_url:
        folium.TileLayer(tiles=basemap_url, attr="basemap", name="底图 basemap").add_to(m)
    make_offline(m)
    clustered = [n for n in names if LAYERS[n].geometry_type == "Point" and n not in binned
                 and data[n][0] > cluster_above]
    if clustered:
        add_markercluster(m)
    add_runtime(m, doc, areas)
    drawn: list[DataLayer] = []
    for name in names:
        entry = doc["layers"][name]
        label = f"{entry['title_zh']} {entry['title']} ({data[name][0]:,})"
        if name in binned:
            drawn.append(_bin_layer(doc, name, entry, _collection(data[name][1]), label))
        else:
            drawn.append(StyledLayer(name, _collection(data[name][1]), label, cluster=name in clustered))
    if flag_data is not None:
        label = f"{doc['flags']['title_zh']} {doc['flags']['title']} ({flag_data[0]:,})"
        if "flags" in binned:
            drawn.append(_bin_layer(doc, "flags", doc["flags"], _collection(flag_data[1]), label))
        else:
            drawn.append(FlagLayer(_collection(flag_data[1]), label))
    for layer in drawn:
        layer.add_to(m)
    counts = {n: data[n][0] for n in names}
    generated = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    BoxControl(title_html(c["name"], c["name_en"], generated, notices, credit), "topleft", "ra-title").add_to(m)
    BoxControl(legend_html(doc, names, counts, flag_data[0] if flag_data else None), "bottomright",
               "ra-legend").add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.fit_bounds([[c["y0"], c["x0"]], [c["y1"], c["x1"]]])
    page = m.get_root().render()
    # Checked before the data goes in: GeoJSON strings inside a script are never fetched.
    remote = [u for u in remote_references(page) if not basemap_url or not u.startswith(basemap_url.split("{")[0])]
    if remote:
        raise OfflineError(f"the report map would fetch {remote[:5]} from the network")
    html = fill_data(page, drawn)
    return ReportMap(html=html, city=city, city_name=c["name"], city_name_en=c["name_en"], counts=counts,
                     clustered=clustered, flags=flag_data[0] if flag_data else None, binned=binned,
                     seconds=time.perf_counter() - started, notices=notices)


def _bin_layer(doc: dict[str, Any], key: str, entry: dict[str, Any], data: str, label: str) -> BinLayer:
    """The squares of layer ``key`` (or the flags), coloured by the style document's classes."""
    field = "severity" if key == "flags" else entry.get("color_by")
    words = doc["values"].get(field, {}) if field else {}
    classes = [(v, words.get(v, {}).get("zh", v), words.get(v, {}).get("en", v), entry["palette"][v])
               for v in entry.get("classes", []) if v in entry["palette"]]
    missing = doc["layers"]["risk_source"]["missing_label"] if key == "risk_source" else {"zh": "其他", "en": "other"}
    colour = entry.get("missing_color") or entry.get("color") or "#555555"
    return BinLayer(key, data, label + " · 方格汇总 counted in squares",
                    f"{entry['title_zh']} {entry['title']}", classes, (missing["zh"], missing["en"], colour))
