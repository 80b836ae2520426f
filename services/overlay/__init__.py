"""Overlay queries: layer A x predicate x layer B, with filters on both sides (DESIGN 5, issue 4).

The function analysts call in notebooks is :func:`overlay`; ``POST /analysis/overlay`` and
``riskatlas overlay`` call the same :func:`build` and differ only in how they run the SQL.
The modules: ``request`` (the request and its checks), ``filters`` (each side's filter),
``features`` (the SQL, clause by clause), ``build`` (request to SQL) and ``run`` (:func:`overlay`,
:func:`finish` and the result).

* predicates: ``intersects``, ``within`` (A within B), ``contains`` (A contains B) and
  ``within-distance`` (geodesic metres, ``ST_DWithin`` on ``geom::geography``, which every layer
  indexes);
* filters on each side: CQL2 text (a string), CQL2 JSON (an object with ``op`` and ``args``), or simple
  equality ``{field: value}`` / ``{field: [values]}``; CQL2 goes through :mod:`services.query.cql`
  (pygeofilter), so property names are checked against the layer's queryables for the caller's role
  (a restricted field is unknown to a role that may not see it);
* output: ``pairs`` (one feature per matching pair, the attributes of both as ``left_*`` and
  ``right_*``) or ``left-with-count`` (every left feature with ``match_count``; measures are summed);
* measures: ``area`` (m² of the intersection, both sides polygons), ``length`` (m of the intersection,
  one side a line) and ``distance`` (m), all on the WGS84 spheroid;
* paging: ``limit``/``offset``; without a limit a result larger than the cap is refused (400) rather
  than truncated silently, and a limit above the cap is refused too.

Table and column names come only from the catalogue; every client value is a bound parameter.
PostGIS builds each feature's GeoJSON text; Python only joins the rows.
"""

from services.overlay.build import OverlayQuery, build
from services.overlay.request import (
                                      CRS84,
                                      DEFAULT_CAP,
                                      GEOMETRIES,
                                      MAX_DISTANCE_M,
                                      MEASURE_COLUMN,
                                      MEASURES,
                                      OUTPUTS,
                                      PREDICATES,
                                      Filter,
                                      OverlayRequest,
)
from services.overlay.run import OverlayResult, finish, overlay

__all__ = [
    "CRS84", "DEFAULT_CAP", "GEOMETRIES", "MAX_DISTANCE_M", "MEASURES", "MEASURE_COLUMN", "OUTPUTS",
    "PREDICATES", "Filter", "OverlayQuery", "OverlayRequest", "OverlayResult", "build", "finish", "overlay",
]
