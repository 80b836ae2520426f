"""``/collections/{collectionId}/queryables``: what a filter may name (OGC API Features Part 3).

The document is JSON Schema built from the catalogue; restricted fields appear only for roles that
may see them (DESIGN 9).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.web.deps import IdentityDep
from services.web.ogc import links as L
from services.web.ogc.collections import F_QUERY, resolve
from services.web.ogc.negotiation import output_format, schema_media_type
from services.web.ogc.render import html_response, json_response

router = APIRouter(tags=["Filtering"])


@router.get(
    "/collections/{collectionId}/queryables",
    summary="Properties usable in filters",
    responses={200: {"content": {L.SCHEMA: {}, L.HTML: {}}}, 404: {"description": "No such collection"}},
)
async def queryables(
    request: Request,
    collectionId: str,
    identity: IdentityDep,  # noqa: N803
    f: str | None = F_QUERY,
) -> Response:
    v = resolve(collectionId, identity)
    fmt = output_format(request, f)
    path = f"/collections/{v.layer.name}/queryables"
    doc = v.queryables_schema(L.url(request, path))
    if fmt == "html":
        return html_response(
            "queryables.html",
            title=f"{v.layer.title} — queryables",
            root=L.base(request),
            schema=doc,
            links=L.self_and_alternate(request, path, L.SCHEMA, fmt),
        )
    return json_response(doc, schema_media_type(request))
