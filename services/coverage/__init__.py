"""Monitoring coverage: where the station network is blind.

Two questions, both answered set-based in PostGIS and returned as GeoJSON (EPSG:4326) for a map layer:

* risk sources with no station of the right medium nearby: for air, no air station within
  ``distance_m`` (geodesic); for water, no water station on the river within ``distance_m``
  downstream of the reach the source drains to (``services.river``).  Sources with no reach
  within the snapping distance cannot be judged for water and are counted apart.
* river crossings of city or province borders with no cross-border section station within
  ``within_m``.  The crossings are derived, never typed in: the network is sampled every
  ``sample_m`` metres along each path from a headwater to an outlet, each sample takes the code of the
  area it lies in (none outside the loaded boundaries), and a crossing is a change of code between
  stays of at least ``min_stay_m`` (a river that weaves along a border for less than that settles on
  one side, as the demo region's own rivers do), placed where the samples change between those two
  areas nearest the middle of the change.  A river cut off at the outer edge of the loaded areas (it
  starts or ends within ``EDGE_M`` of the edge, no other area that near) enters or leaves there.

The modules: ``sources`` (sources no station covers) and ``crossings`` (river crossings of borders
with no section station).
"""

from services.coverage.crossings import EDGE_M, MIN_STAY_M, SAMPLE_M, SECTION_KINDS, SECTION_WITHIN_M, crossing_gaps
from services.coverage.sources import (
                                         AIR_DISTANCE_M,
                                         CRS84,
                                         SNAP_MAX_M,
                                         STATION_NEAR_RIVER_M,
                                         WATER_DISTANCE_M,
                                         source_gaps,
)

__all__ = ["AIR_DISTANCE_M", "CRS84", "EDGE_M", "MIN_STAY_M", "SAMPLE_M", "SECTION_KINDS", "SECTION_WITHIN_M",
           "SNAP_MAX_M", "STATION_NEAR_RIVER_M", "WATER_DISTANCE_M", "crossing_gaps", "source_gaps"]
