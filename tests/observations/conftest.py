"""Stations of two cities in a fresh database, and keys for their stewards."""

from __future__ import annotations

import pytest

from layers import db
from services import accounts

NANJING, CHUZHOU = "320100", "341100"


@pytest.fixture
def stations(fresh_db):
    """An air and a water station in Nanjing, an air station in Chuzhou; Nanjing and Chuzhou stewards and an
    administrator (keys by account name)."""
    with db.connect(fresh_db) as conn:
        conn.execute("""INSERT INTO riskatlas.monitoring_station (key, name, medium, kind, target_class, city_code,
                            owner_city, geom) VALUES
            ('NJ-W', '南京断面', 'water', 'cross-border-section', 'III', %(nj)s, %(nj)s,
             ST_SetSRID(ST_MakePoint(118.63, 32.06), 4326)),
            ('NJ-A', '南京空气站', 'air', 'air-quality', NULL, %(nj)s, %(nj)s,
             ST_SetSRID(ST_MakePoint(118.80, 32.05), 4326)),
            ('CZ-W', '滁州断面', 'water', 'cross-border-section', 'III', %(cz)s, %(cz)s,
             ST_SetSRID(ST_MakePoint(118.31, 32.30), 4326)),
            ('CZ-A', '滁州空气站', 'air', 'air-quality', NULL, %(cz)s, %(cz)s,
             ST_SetSRID(ST_MakePoint(118.32, 32.31), 4326))""", {"nj": NANJING, "cz": CHUZHOU})
        keys = {}
        for name, role, city in (("nj", "steward", NANJING), ("cz", "steward", CHUZHOU), ("boss", "admin", None)):
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name).secret
        conn.commit()
    return fresh_db, keys
