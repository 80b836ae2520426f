"""Content negotiation of the OGC routes: JSON or HTML (items also CSV and GeoPackage), and the media type of a schema."""

from __future__ import annotations

from typing import Literal

from fastapi import Request

from services.errors import InvalidParameter

Format = Literal["json", "html", "csv", "gpkg"]


def output_format(request: Request, f: str | None, allowed: tuple[str, ...] = ("json", "html")) -> Format:
    """One of ``allowed`` (json, html, csv, gpkg): ``f`` when given (``geojson`` counts as json), else json or
    html from the Accept header.

    HTML is chosen from Accept only when text/html is preferred to every JSON type (as browsers ask);
    clients that send no Accept, ``*/*`` or a JSON type get JSON.
    """
    if f is not None:
        value = f.strip().lower()
        if value in ("json", "geojson", "application/json", "application/geo+json") and "json" in allowed:
            return "json"
        if value in ("html", "text/html") and "html" in allowed:
            return "html"
        if value in ("csv", "text/csv") and "csv" in allowed:
            return "csv"
        if value in ("gpkg", "application/geopackage+sqlite3") and "gpkg" in allowed:
            return "gpkg"
        raise InvalidParameter(f"`f` was {f!r} but is expected to be one of {list(allowed)}")
    if "html" not in allowed:
        return "json"
    return "html" if _prefers_html(request.headers.get("accept", "")) else "json"


def schema_media_type(request: Request) -> str:
    """``application/schema+json`` unless the client accepts only plain JSON (GDAL asks for it so)."""
    accept = request.headers.get("accept", "").lower()
    if not accept or "schema+json" in accept or "*/*" in accept or "application/json" not in accept:
        return "application/schema+json"
    return "application/json"


def _prefers_html(accept: str) -> bool:
    best_html = best_json = 0.0
    for part in accept.split(","):
        bits = [b.strip() for b in part.split(";")]
        media = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if media == "text/html":
            best_html = max(best_html, q)
        elif "json" in media:
            best_json = max(best_json, q)
    return best_html > 0 and best_html > best_json
