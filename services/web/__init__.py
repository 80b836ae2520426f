"""The web layer: app factory, dependencies, HTTP error map, routers and the OGC API routes.

A new route goes in ``routers/`` (analyses, uploads, pages) or ``ogc/`` (OGC API Features and Tiles);
it receives its connection from ``deps`` and raises ``services.errors``, which ``errors`` maps to HTTP.
"""
