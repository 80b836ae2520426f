"""The inspector's phone page ``/m`` as an installable web app that opens without a network.

Three documents make it: the page itself (one HTML document with its style and script inline), its web
app manifest (name, icons, start URL, standalone display) and its service worker. The worker keeps the
page, the manifest and the icons in a cache named after their content, answers the page from the
network when it can and from the cache when it cannot, and leaves every other request alone: the page
itself keeps the last results and the sites of the inspector's city (``localStorage``) and searches them
when the network is gone.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import rjsmin

from maps.labels import UI
from maps.pages import STATIC_DIR, template_env
from maps.styles import SHAPE_PATHS, style_document

#: The icons of the installed app (PNG, square): size → file under ``maps/static/icons``.
ICONS = {192: "m-192.png", 512: "m-512.png"}
INCIDENT_SCRIPTS = ("viewer-incidents.js", "m-incidents.js")  # live incident notices (issue 11), kept offline too

#: The inspection form (issue 12): its own file, loaded after the page's script and kept by the worker.
INSPECT_JS = "m-inspect.js"

#: What the page says, from :data:`maps.labels.UI`.
_UI_KEYS = ("near_me", "locate", "lookup", "lon", "lat", "radius", "crs_gcj02", "crs_wgs84", "crs_note",
            "none_near", "locating", "geo_failed", "full_map", "language", "loading", "crs_device", "crs_typed",
            "offline", "offline_none", "offline_from", "widen", "outside_region", "previous", "in_place",
            "navigate_amap", "navigate_baidu", "call", "server_error")


def mobile_config(root: str) -> dict[str, Any]:
    """What the phone page needs of the style document, embedded so the page is one small request."""
    doc = style_document()
    rs = doc["layers"]["risk_source"]
    return {
        "nearby": f"{root}/nearby",
        "where": f"{root}/m/where",
        "items": f"{root}/collections/risk_source/items",
        "labels": f"{root}/map/labels.json",
        "worker": f"{root}/m/sw.js",
        "scope": f"{root}/m",
        "map": f"{root}/map",
        "palette": rs["palette"], "missing_color": rs["missing_color"], "missing_label": rs["missing_label"],
        "shapes": {cat: SHAPE_PATHS[shape] for cat, shape in rs["shapes"].items()},
        "values": {k: doc["values"][k] for k in ("risk_level", "category", "status")},
        "titles": {f["name"]: {"en": f["title"], "zh": f["title_zh"]} for f in rs["fields"]
                   if f["name"] in ("category", "address", "industry", "status", "county_code", "contact")},
        "ui": {k: UI[k] for k in _UI_KEYS},
        "inspect": {"sync": f"{root}/inspections/sync", "tasks": f"{root}/inspections/tasks",
                    "templates": f"{root}/inspections/templates", "history": f"{root}/sites/{{key}}/history"},
    }


def _script(name: str) -> str:
    """A script of ``maps/static/js``, minified (rjsmin: comments and needless whitespace out)."""
    return str(rjsmin.jsmin((STATIC_DIR / "js" / name).read_text(encoding="utf-8")))


def _config_json(config: dict[str, Any]) -> str:
    """The page's settings as JSON for a ``<script type="application/json">``: UTF-8, with ``<``, ``>``
    and ``&`` escaped so that no value can close the element."""
    text = json.dumps(config, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def mobile_page(root: str) -> str:
    """The inspector's phone page: one HTML document with its script and style inline."""
    return template_env().get_template("m.html").render(
        config=_config_json(mobile_config(root)), root=root,
        css=(STATIC_DIR / "css" / "m.css").read_text(encoding="utf-8"),
        geo=_script("m-geo.js"), js=_script("m.js"),
    )


def manifest(root: str) -> dict[str, Any]:
    """The web app manifest (W3C Web Application Manifest): installable, standalone, Chinese first."""
    return {
        "name": f"{UI['near_me']['zh']} · {UI['near_me']['en']}",
        "short_name": UI["near_me"]["zh"],
        "description": "风险源现场核查：附近风险源、距离与方位 · Field checks: risk sites near me, distance and bearing",
        "lang": "zh-CN",
        "id": f"{root}/m",
        "start_url": f"{root}/m",
        "scope": f"{root}/m",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#1565c0",
        "icons": [{"src": f"{root}/static/icons/{name}", "sizes": f"{size}x{size}", "type": "image/png",
                   "purpose": "any"} for size, name in ICONS.items()],
    }


def _precache(root: str) -> list[str]:
    return ([f"{root}/m", f"{root}/m/manifest.webmanifest", f"{root}/static/js/{INSPECT_JS}"]
            + [f"{root}/static/icons/{n}" for n in ICONS.values()]
            + [f"{root}/static/js/{n}" for n in INCIDENT_SCRIPTS])


@cache
def _content_version(root: str) -> str:
    """A hash of everything the worker keeps: a new page or icon makes a new cache and drops the old one."""
    h = hashlib.sha256()
    h.update(mobile_page(root).encode())
    h.update(json.dumps(manifest(root), sort_keys=True).encode())
    for name in ICONS.values():
        h.update((STATIC_DIR / "icons" / name).read_bytes())
    h.update((STATIC_DIR / "js" / "m-sw.js").read_bytes())
    h.update((STATIC_DIR / "js" / INSPECT_JS).read_bytes())
    for name in INCIDENT_SCRIPTS:
        h.update((STATIC_DIR / "js" / name).read_bytes())
    return h.hexdigest()[:16]


def service_worker(root: str) -> str:
    """The service worker script: its settings (cache name, what to keep) then ``maps/static/js/m-sw.js``."""
    settings = {"cache": f"riskatlas-m-{_content_version(root)}", "precache": _precache(root),
                "page": f"{root}/m"}
    return f"self.RISKATLAS_M = {json.dumps(settings)};\n" + (STATIC_DIR / "js" / "m-sw.js").read_text(encoding="utf-8")
