"""Spill points on the real Yangtze snap to the demo's 长江 within a few hundred metres (the issue
"Numbers a bureau can trust": a spill at Ma'anshan was refused, the reach being 4709 m away)."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from gis.chinese_offsets import gcj02_to_wgs84
from layers import db
from layers.settings import DatabaseSettings
from services.river import downstream, snap

GEOD = Geod(ellps="WGS84")
MAANSHAN = (118.45, 31.65)
#: the issue's bridge point, read as GCJ-02 (see tests/etl/test_demo_rivers.py)
_BRIDGE = gcj02_to_wgs84(np.array([118.745]), np.array([32.110]))
NANJING_BRIDGE = (float(_BRIDGE[0][0]), float(_BRIDGE[1][0]))
NEAR_M = 500.0


@pytest.mark.parametrize("point", [MAANSHAN, NANJING_BRIDGE], ids=["maanshan", "nanjing-bridge"])
def test_real_yangtze_points_snap_to_the_yangtze(demo_db: DatabaseSettings, point: tuple[float, float]) -> None:
    with db.connect(demo_db, "app") as conn:
        s = snap(conn, *point)
    assert s.name == "长江"
    assert s.distance_m < NEAR_M
    # the reported distance is the geodesic one to the reported river point
    _, _, dist = GEOD.inv(point[0], point[1], s.lon, s.lat)
    assert s.distance_m == pytest.approx(dist, abs=0.5)


def test_a_spill_at_maanshan_walks_down_the_yangtze(demo_db: DatabaseSettings) -> None:
    with db.connect(demo_db, "app") as conn:
        start = snap(conn, *MAANSHAN)
        steps = downstream(conn, start, horizon_s=12 * 3600)
    assert steps and all(s.name == "长江" for s in steps)
    assert steps[0].key == start.key
