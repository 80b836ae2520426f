"""Nearby: the risk sites closest to a point, by geodesic distance, within a radius (DESIGN 5).

One SQL statement finds the candidates: ``ST_DWithin`` on geography bounds the radius and the
``<->`` operator on geography orders them nearest first (KNN); both are served by the GiST index on
``geom::geography`` (migration 0001), so no cast disables an index. The candidate list is a little
longer than asked, then re-sorted by the exact spheroidal distance (``ST_Distance`` on geography), since
the index orders by the sphere; :func:`is_complete` proves the answer exact or widens the search.
Bearings (initial geodesic azimuth from the user to the site) come from
:func:`gis.crs.bearing_deg`, vectorised. City and county names come from ``admin_area``.

The modules: ``request`` (what a client may ask, and a site as answered) and ``search`` (the SQL,
its exactness check and the sites from its rows).
"""

from services.nearby.request import MAX_LIMIT, MAX_RADIUS_M, NearbyQuery, Site
from services.nearby.search import candidates, find_nearby, is_complete, nearby_sql, sites_from_rows

__all__ = ["MAX_LIMIT", "MAX_RADIUS_M", "NearbyQuery", "Site", "candidates", "find_nearby", "is_complete",
           "nearby_sql", "sites_from_rows"]
