"""Folium elements of the report maps: the styling runtime, catalogue layers, hazard flags, title and legend.

The GeoJSON of each layer arrives as text built by PostGIS and is written into the page as it is; the
runtime (``static/js/report.js``) styles it in the browser from the style document, so the report maps
and the web viewer share one definition of colours and symbols.
"""

from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

import folium
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template

from maps.offline import add_script
from maps.pages import STATIC_DIR
from maps.styles import FLAG_STYLE, shape_svg


def _json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


@cache
def _runtime_js() -> str:
    return (STATIC_DIR / "js" / "report.js").read_text(encoding="utf-8")


REPORT_CSS = """
.ra-sym { background: none; border: none; }
.ra-popup table { border-collapse: collapse; margin-top: 4px; font-size: 12px; }
.ra-popup td { border-top: 1px solid #eee; padding: 1px 4px; vertical-align: top; }
.ra-popup td:first-child { color: #666; white-space: nowrap; }
.ra-box { background: rgba(255,255,255,0.95); padding: 6px 10px; border-radius: 5px; font: 12px/1.4 system-ui,
  "Noto Sans CJK SC", sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,0.3); max-width: 320px; }
.ra-box h3 { margin: 0 0 2px; font-size: 15px; }
.ra-box h4 { margin: 6px 0 2px; font-size: 12px; }
.ra-box .row { display: flex; align-items: center; gap: 6px; }
.ra-box .sw { display: inline-block; width: 14px; height: 14px; box-sizing: border-box; flex: none; }
.ra-box .note { color: #7a5a00; background: #fff3cd; padding: 2px 4px; margin-top: 4px; }
.ra-box .credit { color: #777; font-size: 10px; margin-top: 4px; }
.leaflet-container { background: #f5f4ef; }
"""


def add_runtime(m: folium.Map, doc: dict[str, Any], areas: dict[str, str]) -> None:
    """Inline the styling runtime and the style document into the map's header."""
    add_script(m, "riskatlas_report", _runtime_js() + f"\nriskatlasReport.init({_json(doc)}, {_json(areas)});",
               REPORT_CSS)


class DataLayer(Layer):
    """A layer whose GeoJSON is written into the page after folium has rendered it.

    Folium compiles every rendered script as a Jinja template; megabytes of GeoJSON would spend seconds in
    Jinja's lexer.  The script holds a placeholder instead, and :func:`fill_data` puts the text in.
    """

    def __init__(self, data: str, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self.data = data.replace("</", "<\\/")
        self.placeholder = f"/*riskatlas-data:{self.get_name()}*/null"


class StyledLayer(DataLayer):
    """One catalogue layer's GeoJSON (text from PostGIS), drawn by the runtime; clustered when asked."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = riskatlasReport.layer({{ this.layer_json }}, {{ this.placeholder }},
                {{ this.options_json }});
        {% endmacro %}
    """)

    def __init__(self, layer: str, data: str, name: str, cluster: bool = False, show: bool = True) -> None:
        super().__init__(data, name, show)
        self._name = "StyledLayer"
        self.layer_json = _json(layer)
        self.options_json = _json({"cluster": cluster})


class FlagLayer(DataLayer):
    """Border-zone hazard flags (GeoJSON text) drawn as rings coloured by severity."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = riskatlasReport.flags({{ this.placeholder }});
        {% endmacro %}
    """)

    def __init__(self, data: str, name: str, show: bool = True) -> None:
        super().__init__(data, name, show)
        self._name = "FlagLayer"


class BinLayer(DataLayer):
    """A point layer counted in squares (GeoJSON text from :func:`maps.bins.bins_query`): each square is
    filled with the colour of the highest class it holds, more opaque where it holds more, and names its
    counts by class in both languages.  ``classes``: (value, zh, en, colour) from the highest class down;
    ``missing``: (zh, en, colour) of features with no class.  ``riskatlasReport.drawn[key]`` is set to the
    number of features counted, as the runtime does for the layers it draws, and
    ``riskatlasReport.bins[key]`` to the number of squares."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function (data, o) {
                var max = 1;
                data.features.forEach(function (f) { max = Math.max(max, f.properties.n); });
                function top(c) {
                    for (var i = 0; i < o.classes.length; i++) if (c[o.classes[i][0]]) return o.classes[i][3];
                    return o.missing[2];
                }
                function esc(t) { return String(t).replace(/[&<>"]/g, function (ch) {
                    return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[ch]; }); }
                var total = 0;
                var geo = L.geoJSON(data, {
                    style: function (f) {
                        var c = top(f.properties.counts);
                        return {color: c, weight: 0.6, opacity: 0.8, fillColor: c,
                                fillOpacity: 0.25 + 0.5 * Math.log(1 + f.properties.n) / Math.log(1 + max)};
                    },
                    onEachFeature: function (f, layer) {
                        var p = f.properties, rows = [];
                        total += p.n;
                        o.classes.forEach(function (k) {
                            if (p.counts[k[0]]) rows.push(esc(k[1] + ' ' + k[2]) + ': ' + p.counts[k[0]]);
                        });
                        if (p.counts['']) rows.push(esc(o.missing[0] + ' ' + o.missing[1]) + ': ' + p.counts['']);
                        layer.bindTooltip('<b>' + esc(o.title) + ': ' + p.n + '</b><br>' + rows.join('<br>'));
                    }
                });
                riskatlasReport.drawn[o.key] = total;
                riskatlasReport.bins = riskatlasReport.bins || {};
                riskatlasReport.bins[o.key] = geo.getLayers().length;
                return geo;
            })({{ this.placeholder }}, {{ this.options_json }});
        {% endmacro %}
    """)

    def __init__(self, key: str, data: str, name: str, title: str, classes: list[tuple[str, str, str, str]],
                 missing: tuple[str, str, str], show: bool = True) -> None:
        super().__init__(data, name, show)
        self._name = "BinLayer"
        self.options_json = _json({"key": key, "title": title, "classes": classes, "missing": missing})


def fill_data(html_text: str, layers: list[DataLayer]) -> str:
    """The rendered page with each layer's placeholder replaced by its GeoJSON text."""
    parts: list[str] = []
    rest = html_text
    for layer in layers:
        before, found, rest = rest.partition(layer.placeholder)
        if not found:
            raise ValueError(f"the placeholder of layer {layer.layer_name!r} is missing from the page")
        parts += [before, layer.data]
    parts.append(rest)
    return "".join(parts)


class BoxControl(MacroElement):
    """A fixed box of HTML on the map (title, legend) as a Leaflet control."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: {{ this.position_json }}});
            {{ this.get_name() }}.onAdd = function () {
                var div = L.DomUtil.create('div', 'ra-box {{ this.css_class }}');
                div.innerHTML = {{ this.html_json }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "BoxControl"
        self.html_json = _json(html_text)
        self.position_json = _json(position)
        self.css_class = css_class


def _swatch(entry: dict[str, Any], colour: str | None = None) -> str:
    colour = colour or entry["color"]
    if entry["geometry_type"] == "Point":
        return f'<span class="sw" style="border-radius:50%;background:{colour};border:1px solid #fff"></span>'
    if entry["geometry_type"] == "LineString":
        return f'<span class="sw" style="height:0;border-top:3px solid {colour}"></span>'
    fill = colour if entry.get("color_by") else entry["fill"]
    alpha = max(entry["fill_opacity"], 0.25) if entry["fill_opacity"] else 0
    return (f'<span class="sw" style="border:1.5px solid {colour};background:{fill if alpha else "transparent"};'
            f'opacity:{0.9 if not alpha else max(alpha + 0.3, 0.5)}"></span>')


def _both(zh: str, en: str) -> str:
    return html.escape(f"{zh} {en}" if zh != en else zh)


def legend_html(doc: dict[str, Any], layers: list[str], counts: dict[str, int], flags: int | None) -> str:
    """The legend: each layer shown with its classes, risk-source levels and category shapes."""
    values = doc["values"]
    parts = ['<h4>图例 Legend</h4>']
    for name in reversed(doc["order"]):
        if name not in layers:
            continue
        entry = doc["layers"][name]
        title = f"{_both(entry['title_zh'], entry['title'])} ({counts.get(name, 0):,})"
        if name == "risk_source":
            parts.append(f"<h4>{title}</h4>")
            for level in entry["classes"]:
                label = values["risk_level"][level]
                parts.append(f'<div class="row">{shape_svg("circle", entry["palette"][level])} '
                             f'{_both(label["zh"], label["en"])}</div>')
            missing = entry["missing_label"]
            parts.append(f'<div class="row">{shape_svg("circle", entry["missing_color"])} '
                         f'{_both(missing["zh"], missing["en"])}</div>')
            for cat, shape in entry["shapes"].items():
                label = values["category"][cat]
                parts.append(f'<div class="row">{shape_svg(shape, "#555555")} {_both(label["zh"], label["en"])}</div>')
        elif entry.get("color_by") and name != "admin_area":
            parts.append(f"<h4>{title}</h4>")
            for v in entry["classes"]:
                label = values.get(entry["color_by"], {}).get(v, {"zh": v, "en": v})
                parts.append(f'<div class="row">{_swatch(entry, entry["palette"][v])} '
                             f'{_both(label["zh"], label["en"])}</div>')
        else:
            parts.append(f'<div class="row">{_swatch(entry)} {title}</div>')
    if flags is not None:
        parts.append(f"<h4>{_both(doc['flags']['title_zh'], doc['flags']['title'])} ({flags:,})</h4>")
        for sev in doc["flags"]["classes"]:
            label = values["severity"][sev]
            parts.append(f'<div class="row"><span class="sw" style="border-radius:50%;border:2.5px solid '
                         f'{FLAG_STYLE.palette[sev]}"></span> {_both(label["zh"], label["en"])}</div>')
    return "".join(parts)


def title_html(city_zh: str, city_en: str, generated: str, notices: list[str], credit: str) -> str:
    """The title box: the city, when the map was made, the synthetic-data notice and the credits."""
    out = [f"<h3>{html.escape(city_zh)} {html.escape(city_en)}</h3>",
           "<div>环境风险概览 Environmental risk overview</div>",
           f"<div class=\"credit\">生成时间 Generated {html.escape(generated)}</div>"]
    out += [f'<div class="note">{html.escape(n)}</div>' for n in notices]
    if credit:
        out.append(f'<div class="credit">{html.escape(credit)}</div>')
    return "".join(out)


__all__ = ["BinLayer", "BoxControl", "DataLayer", "FlagLayer", "StyledLayer", "add_runtime", "fill_data", "legend_html",
           "title_html"]
