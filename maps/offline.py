"""Folium maps that work with no internet: Leaflet inlined from files shipped with the project.

Folium links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default.  :func:`make_offline`
drops every one of those links from a map and inlines the Leaflet JS and CSS kept in
``maps/static/vendor/leaflet-<version>/`` (from the npm registry, BSD-2-Clause, see SOURCE.txt), with
the CSS's images as data URIs, so the saved HTML is one self-contained file.  Maps made offline must
use only what Leaflet itself provides (GeoJson, Polygon, PolyLine, CircleMarker, popups, tooltips,
layer control) - no awesome-marker icons, which need Bootstrap and Font Awesome.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

import folium
from branca.element import Element

LEAFLET_VERSION = "1.9.3"
VENDOR = Path(__file__).with_name("static") / "vendor" / f"leaflet-{LEAFLET_VERSION}"

__all__ = ["make_offline", "leaflet_js", "leaflet_css", "VENDOR", "add_markercluster", "add_script",
           "remote_references", "OfflineError"]

MARKERCLUSTER_VERSION = "1.5.3"
MARKERCLUSTER = Path(__file__).with_name("static") / "vendor" / f"leaflet.markercluster-{MARKERCLUSTER_VERSION}"

#: An address the browser would fetch: the src of a script, image or frame, the href of a link element,
#: and CSS url(), when it is not data:, a fragment or relative (anchors <a href> are links, not fetches).
_REMOTE = re.compile(r"""(?:<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc|<link\b[^>]*?\bhref)\s*=\s*["']?"""
                     r"""((?:https?:)?//[^"'\s>]+)|url\(\s*["']?((?:https?:)?//[^"')\s]+)""", re.I)


class OfflineError(RuntimeError):
    """A map would load something from the network; the message names the addresses."""


@lru_cache(maxsize=1)
def leaflet_js() -> str:
    """The Leaflet script, as shipped."""
    return (VENDOR / "leaflet.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def leaflet_css() -> str:
    """The Leaflet stylesheet with its ``images/*.png`` references replaced by data URIs."""
    css = (VENDOR / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((VENDOR / "images" / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)


def make_offline(m: folium.Map) -> folium.Map:
    """Remove the map's CDN links and inline Leaflet instead; returns the same map.

    Call it before saving or rendering.  Elements added later that bring their own CDN links (plugins,
    awesome markers) would put them back: add those first, or not at all.
    """
    m.default_js = []
    m.default_css = []
    header = m.get_root().header
    header.add_child(Element(f"<style>{leaflet_css()}</style>"), name="leaflet_css_inline")
    header.add_child(Element(f"<script>{leaflet_js()}</script>"), name="leaflet_js_inline")
    return m


def _script(text: str) -> str:
    """``text`` ready to sit inside a <script> element (no closing tag, no source-map comment)."""
    if "</script" in text.lower():
        raise OfflineError("a script to inline contains '</script' and would end its element early")
    return re.sub(r"^//# sourceMappingURL=.*$", "", text, flags=re.M)


def add_script(m: folium.Map, name: str, js: str, css: str = "") -> folium.Map:
    """Inline a script (and its stylesheet) into the map's header, after Leaflet; returns the map."""
    header = m.get_root().header
    if css:
        header.add_child(Element(f"<style>{css}</style>"), name=f"{name}_css_inline")
    header.add_child(Element(f"<script>{_script(js)}</script>"), name=f"{name}_js_inline")
    return m


@lru_cache(maxsize=1)
def _markercluster() -> tuple[str, str]:
    js = (MARKERCLUSTER / "leaflet.markercluster.js").read_text(encoding="utf-8")
    css = "\n".join((MARKERCLUSTER / name).read_text(encoding="utf-8")
                    for name in ("MarkerCluster.css", "MarkerCluster.Default.css"))
    return js, css


def add_markercluster(m: folium.Map) -> folium.Map:
    """Inline Leaflet.markercluster (MIT, see its SOURCE.txt) after Leaflet; call after :func:`make_offline`.

    Use it with ``L.markerClusterGroup`` in your own script rather than ``folium.plugins.MarkerCluster``,
    whose CDN links would come back at render time.
    """
    js, css = _markercluster()
    return add_script(m, "markercluster", js, css)


def remote_references(html: str) -> list[str]:
    """Every address in ``html`` that a browser would fetch from the network (empty when self-contained)."""
    return sorted({a or b for a, b in _REMOTE.findall(html)})
