"""Connections go back to their pool as they came, and heavy analyses cannot starve cheap requests.

Before: routers set ``row_factory = dict_row`` on pooled connections and returned them that way, so
``/health`` answered 500 (``KeyError: 0``) after an overlay or a border-hazards call; and three heavy
overlays held the only pool while a cheap request waited 28 s for "the database is not reachable".
"""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from layers import cluster, db
from services.web.app import create_app
from services.web.settings import APISettings

OVERLAY = {"left": "risk_source", "predicate": "within-distance", "right": "protection_zone",
           "distance_m": 500, "limit": 5}

# One call of every kind of endpoint, each on a one-connection pool, each followed by /health.
CALLS = [
    ("GET", "/layers", None), ("GET", "/collections", None), ("GET", "/collections/risk_source/items?limit=2", None),
    ("GET", "/collections/risk_source/queryables", None), ("GET", "/collections/admin_area/items?limit=1", None),
    ("GET", "/collections/risk_source/tiles/WebMercatorQuad/8/53/104", None),
    ("GET", "/nearby?x=118.78&y=32.05&radius=20000", None),
    ("GET", "/analysis/border-hazards?limit=3", None), ("GET", "/analysis/border-hazards?f=csv&limit=3", None),
    ("GET", "/analysis/border-matrix", None), ("POST", "/analysis/overlay", OVERLAY),
    ("POST", "/analysis/spill", {"x": 118.40, "y": 31.60, "mass_t": 1, "substance": "benzene"}),
    ("GET", "/analysis/coverage?medium=air&limit=2", None), ("GET", "/analysis/ledger", None),
    ("GET", "/map", None), ("GET", "/m", None),
]


@pytest.fixture(scope="module")
def tight(demo_db):
    settings = APISettings(pool_min=1, pool_max=1, heavy_pool_max=1, pool_timeout_s=1.0)
    with TestClient(create_app(demo_db, settings)) as client:
        yield client


@pytest.mark.parametrize("method,path,body", CALLS, ids=[c[1] for c in CALLS])
def test_every_endpoint_then_health_on_the_same_pool(tight, method, path, body):
    r = tight.request(method, path, json=body)
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    for _ in range(2):
        h = tight.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "ok", h.text
    # and each connection came back fit for reuse: a reset that left it in a transaction would make the
    # pool discard it and open a new one for every request
    for pool in (tight.app.state.pool, tight.app.state.heavy_pool, tight.app.state.heavy_sync_pool):
        assert pool.get_stats()["connections_num"] <= 2, pool.get_stats()


def test_a_blocked_heavy_analysis_does_not_starve_items_or_health(demo_db):
    """Hold the heavy pool's one connection in an overlay that waits on a lock; cheap requests still
    answer, and a second heavy request is told the service is busy (503 with Retry-After), not down."""
    settings = APISettings(pool_min=1, pool_max=2, heavy_pool_max=1, pool_timeout_s=1.0)
    with TestClient(create_app(demo_db, settings)) as client, db.connect(demo_db) as locker:
        locker.execute("LOCK TABLE riskatlas.protection_zone IN ACCESS EXCLUSIVE MODE")
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=client.post("/analysis/overlay", json=OVERLAY)))
        worker.start()
        try:
            _wait_for_lock_waiter(demo_db, worker)
            assert "r" not in first, first["r"].text[:300]
            assert client.get("/health").status_code == 200
            assert client.get("/collections/risk_source/items?limit=1").status_code == 200
            second = client.post("/analysis/overlay", json=OVERLAY)
            assert second.status_code == 503, second.text
            assert "busy" in second.json()["description"] and "Retry-After" in second.headers
        finally:
            locker.rollback()
            worker.join(timeout=60)
        assert first["r"].status_code == 200, first["r"].text


def _wait_for_lock_waiter(settings, worker: threading.Thread, timeout: float = 30.0) -> None:
    """Until a backend of the application role waits on a lock, or the request ended (polled, bounded)."""
    deadline = time.monotonic() + timeout
    # as the cluster's superuser: other roles' wait events are hidden from the schema owner
    probe = (f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{settings.app_role}' "
             f"AND datname = '{settings.db_name}' AND wait_event_type = 'Lock'")
    while time.monotonic() < deadline and worker.is_alive():
        if int(cluster.psql_admin(settings, probe).strip()):
            return
        time.sleep(0.05)
    if worker.is_alive():
        raise AssertionError("the overlay never reached the lock")
