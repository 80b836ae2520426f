"""Links and URLs of the OGC resources: absolute, built from the request's own base URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA = "application/schema+json"
MVT = "application/vnd.mapbox-vector-tile"

#: OGC link relations used below (http://www.opengis.net/def/rel/ogc/1.0/...).
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"


def base(request: Request) -> str:
    """The service root as the client reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def url(request: Request, path: str, query: dict[str, Any] | None = None) -> str:
    """An absolute URL of ``path`` (starting with /) with an optional query string."""
    out = base(request) + path
    if query:
        out += "?" + urlencode({k: v for k, v in query.items() if v is not None})
    return out


def link(
    href: str, rel: str, type_: str | None = None, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One link object: href, rel, and type and title when given."""
    out: dict[str, Any] = {"href": href, "rel": rel}
    if type_:
        out["type"] = type_
    if title:
        out["title"] = title
    out.update(extra)
    return out


def self_and_alternate(
    request: Request,
    path: str,
    json_type: str,
    fmt: str,
    query: dict[str, Any] | None = None,
    title: str = "this document",
) -> list[dict[str, Any]]:
    """The ``self`` link in the format served and the ``alternate`` link in the other one."""
    q = dict(query or {})
    q.pop("f", None)
    as_json = link(
        url(request, path, {**q, "f": "json"}),
        "self" if fmt == "json" else "alternate",
        json_type,
        f"{title} as JSON",
    )
    as_html = link(
        url(request, path, {**q, "f": "html"}),
        "self" if fmt == "html" else "alternate",
        HTML,
        f"{title} as HTML",
    )
    return [as_json, as_html] if fmt == "json" else [as_html, as_json]
