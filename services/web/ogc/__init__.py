"""OGC API Features (Parts 1, 2 and 3) and OGC API Tiles (Mapbox Vector Tiles) over the layer catalogue.

``router`` holds every endpoint; ``services.web.app.create_app`` includes it. The modules, by concern:
``landing`` (/, /conformance, /api), ``collections``, ``items``, ``queryables``, ``tiles`` (routes);
``views`` (a layer as a role sees it), ``params`` and ``crs`` (validation at the edge), ``cql`` and
``cql_text`` (CQL2 to SQL), ``filters``, ``sql`` and ``mvt`` (SQL builders), ``execute`` and
``features`` (running them), ``counts`` and ``extents`` (numberMatched and extents, briefly kept),
``links``, ``render`` and ``openapi`` (documents and responses).
"""

from fastapi import APIRouter

from services.web.ogc import collections, items, landing, queryables, tiles

router = APIRouter()
for _module in (landing, collections, items, queryables, tiles):
    router.include_router(_module.router)

__all__ = ["router"]
