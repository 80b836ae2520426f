"""The OpenAPI 3.0 document served at ``/api`` (OGC API Features Part 1, conformance class oas30).

FastAPI describes the routes in OpenAPI 3.1; OGC clients (GDAL, QGIS, OWSLib) expect 3.0. This module
rewrites FastAPI's document into 3.0.3 (nullable instead of ``type: null``, ``enum`` instead of
``const``, boolean ``exclusiveMinimum``), replaces FastAPI's 422 validation responses by the 400 OGC
exception this service returns, declares every standard query parameter as the standards' OpenAPI
fragments do (:data:`STANDARD_PARAMETERS`), states the page-size limits of the running settings, and adds one
``/collections/{name}/items`` path per collection listing its queryables as query parameters: GDAL
reads those to know which attribute filters it may send to the server. A point layer's path leaves out
``simplify`` and ``zoom``, which only lines and areas use (the generic path keeps them; points ignore them).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from layers.catalogue import LAYERS
from services.query.simplify import SIMPLIFY_PARAMS
from services.query.views import field_schema
from services.web.ogc.mvt import TMS_ID
from services.web.settings import APISettings

OPENAPI_VERSION = "3.0.3"
_ITEMS_PATH = "/collections/{collectionId}/items"
#: The schema, style and explode of the standard query parameters, as the OGC API Features OpenAPI fragments
#: publish them: Part 1 (core/openapi/parameters: bbox, datetime; limit is set from the settings, below),
#: Part 2 (extensions/crs/openapi/parameters: crs, bbox-crs), Part 3 (filter, filter-lang, filter-crs) and
#: the drafts of property selection (properties) and sorting (sortby). ``filter-lang`` lists, after the
#: standard's two values, the draft names ``cql-text`` and ``cql-json`` this service also accepts: GDAL's
#: OAPIF driver up to 3.6 (Debian 12) sends CQL filters only when it finds ``cql-text`` there.
STANDARD_PARAMETERS: dict[str, dict[str, Any]] = {
    "bbox": {"schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    "bbox-crs": {"schema": {"type": "string", "format": "uri"}},
    "crs": {"schema": {"type": "string", "format": "uri"}},
    "datetime": {"schema": {"type": "string"}},
    "filter": {"schema": {"type": "string"}},
    "filter-lang": {"schema": {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text", "cql-json"],
                               "default": "cql2-text"}},
    "filter-crs": {"schema": {"type": "string", "format": "uri"}},
    "properties": {"schema": {"type": "array", "items": {"type": "string"}}},
    "sortby": {"schema": {"type": "array", "minItems": 1,
                          "items": {"type": "string", "pattern": "[+|-]?[A-Za-z_].*"}}},
}

_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
}


def document(app: FastAPI, settings: APISettings) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``app`` (built once per application)."""
    cached = getattr(app.state, "ogc_openapi", None)
    if cached is not None:
        return cached
    doc = downgrade(copy.deepcopy(app.openapi()))
    _errors(doc)
    _identifiers(doc)
    _standard_parameters(doc)
    _limits(doc, settings)
    _collection_paths(doc)
    app.state.ogc_openapi = doc
    return doc


def downgrade(node: Any) -> Any:
    """An OpenAPI 3.1 (JSON Schema 2020-12) document or fragment rewritten in OpenAPI 3.0 terms."""
    if isinstance(node, list):
        return [downgrade(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: downgrade(v) for k, v in node.items()}
    if out.get("openapi", "").startswith("3.1"):
        out["openapi"] = OPENAPI_VERSION
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out = {**rest[0], **out}
            else:
                out[key] = rest
            out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else "string"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out.get(bound), bool):
            out[plain] = out[bound]
            out[bound] = True
    if isinstance(out.get("examples"), list) and "in" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc.get("paths", {}).values() for op in item.values() if isinstance(op, dict)]


def _errors(doc: dict[str, Any]) -> None:
    """400 with an OGC exception body instead of FastAPI's 422; parameters are never nullable."""
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    comps["Exception"] = _EXCEPTION
    ref = {"$ref": "#/components/schemas/Exception"}
    for op in _operations(doc):
        responses = op.setdefault("responses", {})
        responses.pop("422", None)
        responses.setdefault(
            "400",
            {
                "description": "A parameter was not valid; the body says which and why",
                "content": {"application/json": {"schema": ref}},
            },
        )
        for p in op.get("parameters", []):
            p.get("schema", {}).pop("nullable", None)
            p["schema"] = {k: v for k, v in p.get("schema", {}).items() if k != "title"}


def _identifiers(doc: dict[str, Any]) -> None:
    """The collection and tile matrix set path parameters list their allowed values."""
    allowed = {"collectionId": sorted(LAYERS), "tileMatrixSetId": [TMS_ID]}
    for op in _operations(doc):
        for p in op.get("parameters", []):
            if p.get("in") == "path" and p.get("name") in allowed:
                p["schema"] = {"type": "string", "enum": allowed[p["name"]]}


def _is_ogc(path: str) -> bool:
    return path == "/" or path.startswith(("/collections", "/tiles", "/conformance", "/api"))


def _standard_parameters(doc: dict[str, Any]) -> None:
    """The OGC routes' standard query parameters with the standards' schema, ``style: form``, ``explode: false``."""
    for path, item in doc.get("paths", {}).items():
        if not _is_ogc(path):
            continue
        for op in item.values():
            for p in op.get("parameters", []) if isinstance(op, dict) else ():
                fragment = STANDARD_PARAMETERS.get(p.get("name", ""))
                if fragment is not None and p.get("in") == "query":
                    p["schema"] = copy.deepcopy(fragment["schema"])
                    p["style"], p["explode"] = "form", False


def _limits(doc: dict[str, Any], settings: APISettings) -> None:
    """``limit`` as Part 1 declares it (requirement /req/core/fc-limit-definition), with this server's
    maximum and default (permission 5 lets a server choose them)."""
    for op in _operations(doc):
        for p in op.get("parameters", []):
            if p.get("name") == "limit" and p.get("in") == "query":
                p["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.max_limit,
                    "default": settings.default_limit,
                }
                p["style"], p["explode"] = "form", False


def _collection_paths(doc: dict[str, Any]) -> None:
    generic = doc.get("paths", {}).get(_ITEMS_PATH, {}).get("get")
    if generic is None:
        return
    for layer in LAYERS.values():
        op = copy.deepcopy(generic)
        op["operationId"] = f"{generic.get('operationId', 'items')}_{layer.name}"
        op["summary"] = f"{layer.title} ({layer.title_zh})"
        dropped = {"collectionId", *(SIMPLIFY_PARAMS if layer.geometry_type == "Point" else ())}
        params = [p for p in op.get("parameters", []) if p.get("name") not in dropped]
        for f in layer.public_fields(False):
            if f.type == "json":
                continue
            schema = {k: v for k, v in field_schema(f).items() if k in ("type", "enum", "format")}
            params.append(
                {
                    "name": f.name,
                    "in": "query",
                    "required": False,
                    "schema": schema,
                    "description": f"Only features whose {f.name} equals this value",
                }
            )
        op["parameters"] = params
        doc["paths"][f"/collections/{layer.name}/items"] = {"get": op}
