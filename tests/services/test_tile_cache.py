"""The tile cache: warm tiles served from disk, and no stale tile after a load, an upload, an edit or a
delete, including a change that committed after a tile was made from a snapshot that did not see it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient

from layers import db
from layers.settings import DatabaseSettings
from services.web.app import create_app
from services.web.settings import APISettings

TMS = morecantile.tms.get("WebMercatorQuad")
KEYS = {"nanjing-key": {"user": "nanjing-steward", "role": "steward", "city": "320100"},
        "admin-key": {"user": "root", "role": "admin"}}
A = (118.63, 32.06)   # Pukou, Nanjing
B = (118.31, 32.30)   # Chuzhou, another z12 tile
C = (118.632, 32.061)  # beside A, in A's tile
Z = 12


@pytest.fixture
def client(fresh_db: DatabaseSettings, tmp_path: Any) -> Iterator[TestClient]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS), encoding="utf-8")
    with TestClient(create_app(fresh_db, APISettings(api_keys_file=keys))) as c:
        yield c


def _upload(client: TestClient, key: str, rows: list[tuple[str, tuple[float, float]]]) -> None:
    csv = "name,category,lon,lat\n" + "".join(f"{n},chemical,{p[0]},{p[1]}\n" for n, p in rows)
    r = client.post("/uploads", headers={"X-API-Key": key}, data={"layer": "risk_source"},
                    files={"file": ("sources.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text


def _url(at: tuple[float, float], path: str) -> str:
    t = TMS.tile(at[0], at[1], Z)
    if path == "map":  # the web map's lean tiles (no names in them)
        return f"/map/tiles/risk_source/{Z}/{t.y}/{t.x}"
    return f"/collections/risk_source/tiles/WebMercatorQuad/{Z}/{t.y}/{t.x}?properties=key,name"


def _tile(client: TestClient, at: tuple[float, float], path: str = "ogc") -> tuple[str, set[str], Any]:
    """(X-Tile-Cache, names of the risk sources in the tile, the response) of the z12 tile holding ``at``."""
    r = client.get(_url(at, path))
    assert r.status_code in (200, 204), r.text
    names: set[str] = set()
    if r.status_code == 200:
        layer = mapbox_vector_tile.decode(r.content)["risk_source"]
        names = {f["properties"].get("name", f["properties"]["key"]) for f in layer["features"]}
    return r.headers["x-tile-cache"], names, r


def test_warm_tiles_are_served_from_the_cache_with_their_etag(client: TestClient) -> None:
    _upload(client, "admin-key", [("甲化工", A), ("乙化工", B)])
    for path in ("map", "ogc"):
        state, names, first = _tile(client, A, path)
        assert state == "miss" and len(names) == 1
        state, again_names, again = _tile(client, A, path)
        assert (state, again_names) == ("hit", names)
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        not_modified = client.get(_url(A, path), headers={"If-None-Match": first.headers["etag"]})
        assert not_modified.status_code == 304 and not_modified.headers["x-tile-cache"] == "hit"


def test_an_upload_retires_exactly_the_tiles_it_touched(client: TestClient) -> None:
    _upload(client, "admin-key", [("甲化工", A), ("乙化工", B)])
    assert _tile(client, A)[0] == "miss" and _tile(client, B)[0] == "miss"
    assert _tile(client, A)[0] == "hit" and _tile(client, B)[0] == "hit"
    assert _tile(client, A, "map")[0] == "miss" and _tile(client, A, "map")[0] == "hit"
    _upload(client, "nanjing-key", [("丙化工", C)])  # beside A, in Nanjing
    state, names, _ = _tile(client, A)
    assert state == "stale" and names == {"甲化工", "丙化工"}
    assert _tile(client, A)[0] == "hit"
    state, keys, _ = _tile(client, A, "map")
    assert state == "stale" and len(keys) == 2
    assert _tile(client, B)[:2] == ("hit", {"乙化工"}), "a tile the upload did not touch was made again"


def test_edits_and_deletes_retire_their_tiles(client: TestClient, fresh_db: DatabaseSettings) -> None:
    _upload(client, "admin-key", [("甲化工", A), ("乙化工", B)])
    _tile(client, A), _tile(client, B)
    with db.connect(fresh_db) as conn:
        conn.execute("UPDATE riskatlas.risk_source SET name = '甲化工（改）' WHERE name = '甲化工'")
    assert _tile(client, A)[:2] == ("stale", {"甲化工（改）"})
    assert _tile(client, B)[0] == "hit"
    with db.connect(fresh_db) as conn:  # moved out of A's tile into B's: both tiles change
        conn.execute("UPDATE riskatlas.risk_source SET geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326) "
                     "WHERE name = '甲化工（改）'", (B[0] + 0.001, B[1]))
    assert _tile(client, A)[:2] == ("stale", set())
    assert _tile(client, B)[:2] == ("stale", {"乙化工", "甲化工（改）"})
    with db.connect(fresh_db) as conn:
        conn.execute("DELETE FROM riskatlas.risk_source WHERE name = '乙化工'")
    assert _tile(client, B)[:2] == ("stale", {"甲化工（改）"})
    with db.connect(fresh_db) as conn:  # an update that changes nothing retires nothing
        conn.execute("UPDATE riskatlas.risk_source SET name = name")
    assert _tile(client, B)[0] == "hit"


def test_a_change_committed_after_the_tile_was_made_retires_it(client: TestClient,
                                                              fresh_db: DatabaseSettings) -> None:
    """The tile is made while the edit is still open (its snapshot cannot see it); after the commit the
    cached tile must not be served, although the change's transaction began before the tile was made."""
    _upload(client, "admin-key", [("甲化工", A)])
    with db.connect(fresh_db) as conn:
        conn.execute("UPDATE riskatlas.risk_source SET name = '甲化工（未提交）' WHERE name = '甲化工'")
        assert _tile(client, A)[1] == {"甲化工"}  # made now, without the open change
        assert _tile(client, A)[0] == "hit"
        conn.commit()
    assert _tile(client, A)[:2] == ("stale", {"甲化工（未提交）"})


def test_a_new_epoch_retires_every_tile_and_the_app_cannot_read_the_changes(
        client: TestClient, fresh_db: DatabaseSettings) -> None:
    _upload(client, "admin-key", [("甲化工", A)])
    _tile(client, A)
    assert _tile(client, A)[0] == "hit"
    with db.connect(fresh_db) as conn:
        conn.execute("SELECT riskatlas.new_tile_epoch()")
    assert _tile(client, A)[0] == "stale"
    with db.connect(fresh_db, role="app") as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("SELECT count(*) FROM riskatlas.tile_change")


def test_lines_and_areas_retire_the_tiles_their_envelope_covers(client: TestClient, fresh_db: DatabaseSettings) -> None:
    """A river drawn along a meridian (a flat envelope) and a boundary edit (a table keyed by code) note
    their envelopes."""
    with db.connect(fresh_db) as conn:
        conn.execute("""INSERT INTO riskatlas.river (key, name, river_class, owner_city, geom) VALUES
                        ('r-straight', '直河', 'minor', '320100', ST_SetSRID(ST_MakeLine(ST_MakePoint(118.63, 32.00),
                                                                      ST_MakePoint(118.63, 32.10)), 4326))""")
        got = conn.execute("""SELECT GeometryType(extent) AS t, extent && ST_Transform(  -- as tile_fresh asks
                                  ST_SetSRID(ST_MakePoint(118.63, 32.05), 4326), 3857) AS holds
                              FROM riskatlas.tile_change WHERE layer = 'river'""").fetchall()
        assert got and all(r["t"] == "POLYGON" and r["holds"] for r in got)
        conn.execute("UPDATE riskatlas.admin_area SET name_en = 'Nanjing City' WHERE code = '320100'")
        area = conn.execute("SELECT count(*) AS n FROM riskatlas.tile_change WHERE layer = 'admin_area'").fetchone()
        assert area["n"] >= 1


def test_a_load_retires_the_bin_tiles_read_from_the_grid(client: TestClient) -> None:
    """A binned tile of a low zoom is read from the grid the database keeps (migration 0020): after an upload
    into it the cached tile is stale and its counts hold the new sources; a tile elsewhere stays warm."""
    z = 7
    a, b = TMS.tile(A[0], A[1], z), TMS.tile(121.5, 31.2, z)
    url = f"/map/tiles/risk_source/{z}/{a.y}/{a.x}?bins-above=1"
    elsewhere = f"/map/tiles/risk_source/{z}/{b.y}/{b.x}?bins-above=1"

    def counts() -> tuple[str, int, int]:
        r = client.get(url)
        assert r.status_code == 200, r.text
        cells = mapbox_vector_tile.decode(r.content)["risk_source_bins"]["features"]
        return (r.headers["x-tile-cache"], sum(f["properties"]["n"] for f in cells),
                sum(f["properties"]["n_none"] for f in cells))

    _upload(client, "admin-key", [("甲化工", A), ("乙化工", B)])
    assert counts() == ("miss", 2, 2)
    assert counts() == ("hit", 2, 2)
    assert client.get(elsewhere).headers["x-tile-cache"] == "miss"
    _upload(client, "nanjing-key", [("丙化工", C), ("丁化工", (118.70, 32.02))])
    assert counts() == ("stale", 4, 4)
    assert counts() == ("hit", 4, 4)
    assert client.get(elsewhere).headers["x-tile-cache"] == "hit"
