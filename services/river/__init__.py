"""The river network: snap a point to its reach, walk downstream, and say what the walk meets.

``reaches`` (class defaults, stored reach records), ``snap`` (one point, or a table of points),
``walk`` (one downstream walk; the closure of many origin reaches), ``along`` (what one walked path
meets) and ``closure`` (what lies downstream of many snapped points at once).
"""

from services.river.along import Entry, Met, areas_entered, jurisdictions_entered, points_along
from services.river.closure import features_downstream, jurisdictions_downstream
from services.river.reaches import ReachRecord, min_velocity, reach_records
from services.river.snap import DEFAULT_SNAP_M, NoRiverNearby, Snap, snap, snap_points, snapped_reaches
from services.river.walk import Step, downstream, downstream_closure

__all__ = [
    "DEFAULT_SNAP_M", "Entry", "Met", "NoRiverNearby", "ReachRecord", "Snap", "Step",
    "areas_entered", "downstream", "downstream_closure", "features_downstream", "jurisdictions_downstream",
    "jurisdictions_entered", "min_velocity", "points_along", "reach_records", "snap", "snap_points",
    "snapped_reaches",
]
