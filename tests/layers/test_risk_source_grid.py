"""The risk-source grid (migration 0020): bins read from it equal bins aggregated from the points, after every
kind of write (a load, edits that move a source or change its level, deletes, a grading run), with and without
the map's filters; the grid shows nothing the points do not; the map's tiles read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from etl.load import load_file
from layers import db
from layers.catalogue import LAYERS, RISK_SOURCE
from layers.settings import DatabaseSettings
from services import grading
from services.identity import ANONYMOUS
from services.query.clauses import Clause
from services.query.views import view
from services.web.app import create_app
from services.web.ogc.mvt import BIN_GRIDS, bins_sql, grid_conditions, grid_layer_sql
from services.web.settings import APISettings

TMS = morecantile.tms.get("WebMercatorQuad")
GRID = BIN_GRIDS["risk_source"]
V = view(RISK_SOURCE, ANONYMOUS)
NO_FEATURES = Clause(sql.SQL("SELECT ''::bytea"))
#: The planner's filters (services' maps/static/js/viewer.js RA.riskFilter) and one of each other kind.
FILTERS = ["city_code = '320100'",
           "category IN ('chemical', 'tailings') AND (risk_level IN ('major', 'larger') OR risk_level IS NULL)",
           "NOT (risk_level = 'general') AND city_code <> '341100'"]


def _decode(data: bytes) -> dict[tuple[float, float], dict[str, Any]]:
    if not data:
        return {}
    layer = mapbox_vector_tile.decode(data)["risk_source_bins"]
    return {tuple(f["geometry"]["coordinates"]): f["properties"] for f in layer["features"]}


def _tiles(conn: Any) -> list[tuple[int, int, int]]:
    box = conn.execute("SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 "
                       "FROM (SELECT ST_Extent(geom) e FROM riskatlas.risk_source) s").fetchone()
    return [(t.z, t.x, t.y) for t in TMS.tiles(box["x0"], box["y0"], box["x1"], box["y1"], range(GRID.max_zoom + 1))]


def _tile(conn: Any, clause: Clause) -> bytes:
    return bytes(conn.execute(sql.SQL("SELECT ({}) AS t").format(clause.text), clause.params).fetchone()["t"])


def assert_grid_is_the_points(settings: DatabaseSettings, filters: tuple[str | None, ...] = (None,)) -> int:
    """Every tile of the sources' extent up to the grid's zoom: the same bins from the grid and from the
    points; the grid as kept equals the grid made again from the sources. Returns the sources counted."""
    from services.query.filters import conditions

    counted = 0
    with db.connect(settings) as conn:
        kept = conn.execute("SELECT * FROM riskatlas.risk_source_grid ORDER BY 1, 2, 3, 4, 5, 6, 7, 8").fetchall()
        assert all(r["n"] > 0 for r in kept), "a cell kept with no source"
        for text in filters:
            where = conditions(V, None, None, text, None, None, (), 20) if text else []
            grid_where = grid_conditions(V, text, None, None, 20)
            assert grid_where is not None
            for z, x, y in _tiles(conn):
                points = _decode(_tile(conn, bins_sql(V, z, x, y, where)))
                grid = _decode(_tile(conn, grid_layer_sql(V, GRID, z, x, y, 0, grid_where, NO_FEATURES)))
                assert grid == points, (text, z, x, y)
                counted += sum(p["n"] for p in points.values()) if z == 0 and text is None else 0
        conn.execute("SELECT riskatlas.rebuild_risk_source_grid()")
        again = conn.execute("SELECT * FROM riskatlas.risk_source_grid ORDER BY 1, 2, 3, 4, 5, 6, 7, 8").fetchall()
        assert kept == again
        conn.rollback()
    return counted


def _csv(path: Path, rows: int, x0: float, y0: float) -> Path:
    cats = ("chemical", "tailings", "metal-plating", "other")
    lines = ["name,category,lon,lat"] + [f"网格测试{i},{cats[i % 4]},{x0 + (i % 20) * 0.011:.5f},"
                                        f"{y0 + (i // 20) * 0.009:.5f}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_grid_bins_equal_point_bins_through_loads_edits_deletes_and_grading(demo_copy: DatabaseSettings,
                                                                         tmp_path: Path) -> None:
    s = demo_copy
    with db.connect(s) as conn:
        total = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"]
    assert assert_grid_is_the_points(s, (None, *FILTERS)) == total > 0

    report = load_file(s, _csv(tmp_path / "load.csv", 300, 118.60, 31.95), "risk_source", sandbox=False)
    assert report.rows_inserted == 300, report.to_dict()
    assert assert_grid_is_the_points(s) == total + 300

    with db.connect(s) as conn:
        db.set_actor(conn, user="grid-test", role="admin")
        # moved across cells and tiles (and out of its city's cells), a level changed, a category changed
        conn.execute("UPDATE riskatlas.risk_source SET geom = ST_Translate(geom, 0.37, -0.21) "
                     "WHERE key IN (SELECT key FROM riskatlas.risk_source WHERE name LIKE '网格测试1%%')")
        conn.execute("UPDATE riskatlas.risk_source SET risk_level = 'major' WHERE name LIKE '网格测试2%%'")
        conn.execute("UPDATE riskatlas.risk_source SET risk_level = NULL, category = 'other' "
                     "WHERE id IN (SELECT id FROM riskatlas.risk_source WHERE risk_level = 'larger' LIMIT 40)")
        conn.execute("UPDATE riskatlas.risk_source SET name = name || '·'")  # changes no count
        conn.execute("DELETE FROM riskatlas.risk_source WHERE name LIKE '网格测试3%%'")
        deleted = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE name LIKE '网格测试3%%'")
        assert deleted.fetchone()["n"] == 0
        left = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"]
        conn.commit()
    assert assert_grid_is_the_points(s, (None, *FILTERS)) == left

    with db.connect(s) as conn:  # ungraded again, so that the run writes the levels of every source
        db.set_actor(conn, user="grid-test", role="admin")
        conn.execute("UPDATE riskatlas.risk_source SET risk_level = NULL, air_level = NULL, water_level = NULL, "
                     "grade_label = NULL, q_value = NULL")
        conn.commit()
    assert assert_grid_is_the_points(s) == left
    run = grading.grade_sources(s, scope="all")
    assert run.changed > 0
    with db.connect(s) as conn:
        graded = conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source WHERE risk_level IS NOT NULL")
        assert graded.fetchone()["n"] > 0
    assert assert_grid_is_the_points(s, (None, *FILTERS)) == left


def test_layer_counts_read_the_grid_and_count_what_it_leaves_out(demo_copy: DatabaseSettings) -> None:
    """/layers and the CLI count risk sources from the grid's zoom 0: exactly count(*), sources beyond Web
    Mercator's latitudes (or past the antimeridian) included, on the edge of the grid's range once."""
    from services.inventory import COUNTS_SQL, _count_sql

    assert "risk_source_grid" in _count_sql(RISK_SOURCE).as_string(None)
    with db.connect(demo_copy) as conn:
        db.set_actor(conn, user="grid-test", role="admin")
        # the first three lie outside the grid's range; the last on its northern edge (counted in the grid)
        for i, (lon, lat) in enumerate([(118.7, 86.0), (118.7, -89.0), (180.5, 30.0), (118.7, 85.0511287798066)]):
            conn.execute("""INSERT INTO riskatlas.risk_source (key, name, category, geom)
                            VALUES (%s, %s, 'chemical', ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                         (f"EDGE-{i}", f"边缘 edge {i}", lon, lat))
        counts = {r["name"]: r["n"] for r in conn.execute(COUNTS_SQL).fetchall()}
        for name, layer in LAYERS.items():
            exact = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(layer.relation)).fetchone()["n"]
            assert counts[name] == exact, name
        in_grid = conn.execute("SELECT sum(n) AS n FROM riskatlas.risk_source_grid WHERE z = 0").fetchone()["n"]
        assert counts["risk_source"] == in_grid + 3 > 3
        conn.rollback()


def test_filters_the_grid_cannot_answer_fall_back_to_the_points() -> None:
    assert grid_conditions(V, None, None, None, 20) == []
    assert grid_conditions(V, "  ", None, None, 20) == []
    assert grid_conditions(V, "city_code = '320100' AND risk_level IS NULL", None, None, 20)
    for text in ("name LIKE '%化工%'", "S_INTERSECTS(geometry, POINT(118.7 32.0))", "status = 'active'",
                 "city_code = '320100' OR q_band = 'Q3'"):
        assert grid_conditions(V, text, None, None, 20) is None, text
    assert grid_conditions(view(LAYERS["water_reserve"], ANONYMOUS), None, None, None, 20) is None


def test_the_grid_shows_nothing_the_points_do_not(demo_db: DatabaseSettings) -> None:
    """Its columns are public fields of the layer, and every role reads every source row (policy read_all):
    if either changes, the grid would tell what the points do not."""
    public = {f.name for f in RISK_SOURCE.fields if not f.restricted}
    assert set(GRID.fields) <= public
    with db.connect(demo_db) as conn:
        policies = conn.execute("SELECT policyname, qual FROM pg_policies WHERE schemaname = 'riskatlas' "
                                "AND tablename = 'risk_source' AND cmd IN ('SELECT', 'ALL')").fetchall()
        assert [(p["policyname"], p["qual"]) for p in policies] == [("read_all", "true")]
        top = conn.execute("SELECT riskatlas.risk_source_grid_max_zoom() AS z").fetchone()["z"]
        assert top == GRID.max_zoom
        columns = {r["column_name"] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'riskatlas' "
            "AND table_name = 'risk_source_grid'").fetchall()}
        assert columns - set(GRID.fields) == {"z", "tx", "ty", "i", "j", "n"}
    with db.connect(demo_db, role="app") as conn:
        assert conn.execute("SELECT sum(n) AS n FROM riskatlas.risk_source_grid WHERE z = 0").fetchone()["n"] > 0
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("UPDATE riskatlas.risk_source_grid SET n = n + 1")


def test_the_map_reads_its_bins_from_the_grid_and_a_load_retires_them(demo_copy: DatabaseSettings,
                                                                       tmp_path: Path) -> None:
    """A binned map tile up to the grid's zoom comes from the grid (a count changed in the grid alone shows),
    and after a load the cached bin tile is stale and counts the loaded sources."""
    z = 8
    t = TMS.tile(118.70, 32.00, z)
    url = f"/map/tiles/risk_source/{z}/{t.y}/{t.x}?bins-above=1"
    with TestClient(create_app(demo_copy, APISettings())) as client:
        first = client.get(url)
        assert first.status_code == 200 and first.headers["x-tile-cache"] == "miss"
        bins = _decode(first.content)
        assert bins and client.get(url).headers["x-tile-cache"] == "hit"
        before = sum(b["n"] for b in bins.values())
        nanjing = {"filter": "city_code = '320100' AND category IN ('chemical', 'tailings', 'metal-plating', 'other')",
                   "bins-above": 1}  # params replace the URL's query
        before_nanjing = sum(b["n"] for b in _decode(client.get(url, params=nanjing).content).values())
        assert before_nanjing > 1

        report = load_file(demo_copy, _csv(tmp_path / "load.csv", 40, 118.70, 32.00), "risk_source", sandbox=False)
        assert report.rows_inserted == 40, report.to_dict()
        after = client.get(url)
        assert after.headers["x-tile-cache"] == "stale"
        assert sum(b["n"] for b in _decode(after.content).values()) == before + 40
        filtered = _decode(client.get(url, params=nanjing).content)
        assert sum(b["n"] for b in filtered.values()) == before_nanjing + 40

        with db.connect(demo_copy) as conn:  # the grid alone changed: a tile made again shows it
            conn.execute("UPDATE riskatlas.risk_source_grid SET n = n + 1000 WHERE ctid = (SELECT ctid FROM "
                         "riskatlas.risk_source_grid WHERE z = %s AND tx = %s AND ty = %s LIMIT 1)", (z, t.x, t.y))
            conn.commit()
        client.app.state.tile_cache.clear()
        tampered = client.get(url)
        assert sum(b["n"] for b in _decode(tampered.content).values()) == before + 40 + 1000
        beyond = client.get(f"/map/tiles/risk_source/{z + 1}/{t.y * 2}/{t.x * 2}?bins-above=1")
        assert beyond.status_code in (200, 204)  # deeper than the grid: from the points
