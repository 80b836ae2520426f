"""Sites on both sides of the Nanjing–Chuzhou border in a fresh database, and the keys of the people who
inspect them: stewards and inspectors of Nanjing, Chuzhou and Ma'anshan, an analyst, an administrator."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from layers import db
from services import accounts
from services.web.app import create_app
from services.web.settings import APISettings

NANJING, CHUZHOU, MAANSHAN = "320100", "341100", "340500"
SITES = (  # key, name, category, city, lon, lat
    ("NJ-CHEM", "南京化工（合成）", "chemical", NANJING, 118.63, 32.06),
    ("CZ-CHEM", "滁州化工（合成）", "chemical", CHUZHOU, 118.31, 32.30),
    ("MAS-PLATE", "马鞍山电镀（合成）", "metal-plating", MAANSHAN, 118.51, 31.69),
)
PEOPLE = (("nj", "steward", NANJING), ("cz", "steward", CHUZHOU), ("mas", "steward", MAANSHAN),
          ("nj.insp", "inspector", NANJING), ("cz.insp", "inspector", CHUZHOU), ("mas.insp", "inspector", MAANSHAN),
          ("ana", "analyst", None), ("boss", "admin", None))


@pytest.fixture(scope="module")
def inspection_db(cluster_settings, fresh_template):
    """A module's copy of the fresh template with the three sites, a border flag (the Chuzhou site lies in
    Nanjing's border zone) and keys by account name."""
    from tests.conftest import _clone

    s = _clone(cluster_settings, fresh_template, "inspect")
    with db.connect(s) as conn:
        for key, name, cat, city, lon, lat in SITES:
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, city_code, owner_city, synthetic, geom)
                            VALUES (%s, %s, %s, %s, %s, true, ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                         (key, name, cat, city, city, lon, lat))
        conn.execute("""INSERT INTO riskatlas.hazard_flag (source_id, source_key, source_name, source_city, risk_level,
                            kind, other_code, other_name, other_level, cross_border, distance_m, severity, reason,
                            reason_zh, geom)
                        SELECT id, key, name, owner_city, 'major', 'city-border', %s, '南京市', 'city', true, 900,
                               'high', 'near the city border (test)', '临近市界（测试）', geom
                        FROM riskatlas.risk_source WHERE key = 'CZ-CHEM'""", (NANJING,))
        keys = {}
        for name, role, city in PEOPLE:
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name).secret
        conn.commit()
    yield s, keys
    from layers import cluster

    cluster.drop_database(cluster_settings, s.db_name)


@pytest.fixture(scope="module")
def client(inspection_db):
    settings, keys = inspection_db
    with TestClient(create_app(settings, APISettings(pool_min=1, pool_max=2))) as c:
        yield c, settings, keys
