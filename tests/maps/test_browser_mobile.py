"""The inspector's phone page /m in headless Chromium at 360 px wide: the browser's own position (WGS84),
typed AMap coordinates (GCJ-02), empty answers, navigation links, and the page as an installed app that
opens and searches with the server gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pyproj import Geod

from gis.crs import GCJ02, from_wgs84
from layers import db
from layers.settings import DatabaseSettings
from tests.maps.browser import PageLog, serve, stop
from tests.offsets_reference import gcj02_to_bd09_reference, wgs84_to_gcj02_reference

#: Budget of the page itself (HTML with its inline style and script), in bytes.
PAGE_BUDGET = 24_000
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def _near_a_source(settings: DatabaseSettings) -> tuple[float, float]:
    """A WGS84 position 300 m east of a Nanjing source: what the browser of a phone standing there reports."""
    with db.connect(settings) as conn:
        row = conn.execute("SELECT ST_X(geom) + 0.0032 AS lon, ST_Y(geom) AS lat FROM riskatlas.risk_source "
                           "WHERE city_code = '320100' ORDER BY key LIMIT 1").fetchone()
    return float(row["lon"]), float(row["lat"])


def _near_an_inactive_source(settings: DatabaseSettings) -> tuple[float, float]:
    """200 m north of a closed (or unbuilt) source that has an active one farther away within 5 km."""
    with db.connect(settings) as conn:
        row = conn.execute("""
            SELECT ST_X(c.geom) AS lon, ST_Y(c.geom) + 0.0018 AS lat FROM riskatlas.risk_source c
            WHERE c.status <> 'active' AND EXISTS (
                SELECT 1 FROM riskatlas.risk_source a WHERE a.status = 'active'
                AND ST_DWithin(a.geom::geography, c.geom::geography, 4000)
                AND ST_Distance(a.geom::geography, c.geom::geography) > 1000)
            ORDER BY c.key LIMIT 1""").fetchone()
    return float(row["lon"]), float(row["lat"])


def _in_nanjing_with_nothing_within_1km(settings: DatabaseSettings) -> tuple[float, float]:
    """A point inside Nanjing whose nearest source is between 1.3 and 4 km away."""
    with db.connect(settings) as conn:
        row = conn.execute("""
            WITH g AS (SELECT ST_SetSRID(ST_MakePoint(x, y), 4326) AS p
                       FROM generate_series(118.40, 119.20, 0.02) x, generate_series(31.30, 32.50, 0.02) y)
            SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM g
            JOIN riskatlas.admin_area a ON a.code = '320100' AND ST_Contains(a.geom, g.p)
            CROSS JOIN LATERAL (SELECT min(ST_Distance(r.geom::geography, g.p::geography)) AS d
                                FROM riskatlas.risk_source r WHERE ST_DWithin(r.geom::geography, g.p::geography, 5000)) n
            WHERE n.d BETWEEN 1300 AND 4000 ORDER BY lon, lat LIMIT 1""").fetchone()
    return float(row["lon"]), float(row["lat"])


def _listed(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        "#sites li[data-key]",
        "els => els.map(e => ({key: e.dataset.key, distance: Number(e.dataset.distance), status: e.dataset.status}))")


def _look_up(page: Any, base: str, lon: float, lat: float) -> None:
    """Open the phone page, type a WGS84 position and wait until its search has answered."""
    page.goto(base + "/m")
    page.wait_for_selector("#status[data-state='no_position']")
    page.fill("#lon", f"{lon:.6f}")
    page.fill("#lat", f"{lat:.6f}")
    page.click("#lookup")
    page.wait_for_selector("#status[data-state='done']")


def _expected_order(sites: list[dict[str, Any]]) -> list[str]:
    """Active sites first, each group nearest first, as the page promises."""
    return ([s["key"] for s in sites if s["status"] in (None, "active")]
            + [s["key"] for s in sites if s["status"] not in (None, "active")])


@pytest.fixture
def own_server(demo_db: DatabaseSettings) -> Iterator[dict[str, Any]]:
    """A server of this test's own, which the test may stop (the session's stays up for the others)."""
    proc, base = serve(demo_db)
    state = {"proc": proc, "base": base}
    yield state
    if state["proc"] is not None:
        stop(state["proc"])


def test_phone_lists_nearest_sites_from_the_browsers_wgs84_position(browser: Any, served: str,
                                                                    demo_db: DatabaseSettings, artifacts: Path) -> None:
    lon, lat = _near_a_source(demo_db)
    context = browser.new_context(**PHONE, geolocation={"longitude": lon, "latitude": lat}, permissions=["geolocation"])
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    answered: list[Any] = []  # bodies are read after the page is done, not in the handler (it would race)
    page.on("response", lambda r: answered.append(r) if r.ok else None)
    page.goto(served + "/m")
    page.wait_for_selector("#status[data-state='done']", timeout=20_000)
    page.screenshot(path=str(artifacts / "m.png"), full_page=True)

    listed = _listed(page)
    nearby = [u for u in log.requests if "/nearby?" in u]
    assert nearby and "crs=CRS84" in nearby[-1], "the browser's own position is WGS84 and sent as such"
    direct = httpx.get(served + "/nearby", params={"x": lon, "y": lat, "radius": 5000, "limit": 30}).json()
    assert len(listed) > 1 and [s["key"] for s in listed] == _expected_order(direct["sites"])
    assert "WGS84" in page.inner_text("#status") and "本机定位" in page.inner_text("#status")

    arrow = page.eval_on_selector("#sites li[data-key] .arrow span", "e => e.style.transform")
    assert float(arrow.removeprefix("rotate(").removesuffix("deg)")) == direct["sites"][0]["bearing_deg"]
    assert page.locator("#mini path").count() == len(listed)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling at 360 px"

    page.tap("#sites li[data-key]")
    first = page.locator("#sites li[data-key]").first
    assert "open" in (first.get_attribute("class") or "")
    assert direct["sites"][0]["address"] in first.inner_text()

    sizes = {r.url: len(r.body()) for r in answered if r.request.resource_type == "document"}
    assert sizes[served + "/m"] < PAGE_BUDGET, f"/m is {sizes[served + '/m']} bytes"
    assert all(u.startswith(served) for u in log.requests), "every request goes to the app itself"
    assert log.errors == [] and log.failed == []
    context.close()


def test_typed_gcj02_coordinate_from_amap(browser: Any, served: str, demo_db: DatabaseSettings) -> None:
    lon, lat = _near_a_source(demo_db)
    glon, glat = wgs84_to_gcj02_reference(lon, lat)
    context = browser.new_context(viewport={"width": 360, "height": 740})  # no geolocation permission
    page = context.new_page()
    page.goto(served + "/m")
    page.wait_for_selector("#status[data-state='no_position']")  # its own attempt to locate the phone is over
    assert page.input_value("#crs") == "CRS84", "WGS84 unless the inspector says the coordinates are AMap's"
    page.fill("#lon", f"{glon:.6f}")
    page.fill("#lat", f"{glat:.6f}")
    page.select_option("#crs", "gcj02")
    with page.expect_response(lambda r: "/nearby?" in r.url) as answer:
        page.click("#lookup")
    assert "crs=gcj02" in answer.value.url
    page.wait_for_selector("#status[data-state='done']")
    assert "GCJ-02" in page.inner_text("#status") and "输入的坐标" in page.inner_text("#status")
    direct = httpx.get(served + "/nearby", params={"x": lon, "y": lat, "radius": 5000, "limit": 30}).json()
    assert [s["key"] for s in _listed(page)] == _expected_order(direct["sites"]), "the same sites as from WGS84"
    context.close()


def test_active_sites_come_first_and_closed_ones_say_so(browser: Any, served: str, demo_db: DatabaseSettings) -> None:
    lon, lat = _near_an_inactive_source(demo_db)
    direct = httpx.get(served + "/nearby", params={"x": lon, "y": lat, "radius": 5000, "limit": 30}).json()
    first = direct["sites"][0]
    assert first["status"] != "active", "the nearest site is the closed one"
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    _look_up(page, served, lon, lat)
    listed = _listed(page)
    statuses = [s["status"] for s in listed]
    assert statuses[0] == "active" and "active" not in statuses[statuses.index(first["status"]):]
    for group in ([s for s in listed if s["status"] == "active"], [s for s in listed if s["status"] != "active"]):
        assert [s["distance"] for s in group] == sorted(s["distance"] for s in group)
    badge = page.inner_text(f"#sites li[data-key='{first['key']}'] .st")
    assert badge in ("关停", "在建")
    context.close()


def test_navigation_links_carry_each_maps_own_coordinates(browser: Any, served: str, demo_db: DatabaseSettings) -> None:
    """AMap takes GCJ-02, Baidu BD-09: the links carry the site converted, checked with independent formulas."""
    lon, lat = _near_a_source(demo_db)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    _look_up(page, served, lon, lat)
    direct = httpx.get(served + "/nearby", params={"x": lon, "y": lat, "radius": 5000, "limit": 30}).json()
    site = direct["sites"][0]
    amap = page.get_attribute(f"#sites li[data-key='{site['key']}'] a.amap", "href")
    baidu = page.get_attribute(f"#sites li[data-key='{site['key']}'] a.baidu", "href")
    glon, glat = wgs84_to_gcj02_reference(site["x"], site["y"])
    blon, blat = gcj02_to_bd09_reference(glon, glat)
    q = parse_qs(urlsplit(amap).query)
    to = q["to"][0].split(",")
    assert urlsplit(amap).netloc == "uri.amap.com" and q["coordinate"] == ["gaode"]
    assert abs(float(to[0]) - glon) < 2e-6 and abs(float(to[1]) - glat) < 2e-6 and to[2] == site["name"]
    b = parse_qs(urlsplit(baidu).query)
    latlng = b["destination"][0].split("|")[0].removeprefix("latlng:").split(",")
    assert b["coord_type"] == ["bd09ll"] and abs(float(latlng[0]) - blat) < 2e-6 and abs(float(latlng[1]) - blon) < 2e-6
    context.close()


def test_an_empty_radius_offers_a_wider_one_and_outside_the_region_says_so(browser: Any, served: str,
                                                                           demo_db: DatabaseSettings) -> None:
    lon, lat = _in_nanjing_with_nothing_within_1km(demo_db)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.goto(served + "/m")
    page.wait_for_selector("#status[data-state='no_position']")
    page.fill("#lon", f"{lon:.6f}")
    page.fill("#lat", f"{lat:.6f}")
    page.select_option("#radius", "1000")
    page.click("#lookup")
    page.wait_for_selector("li.none[data-why='radius']")
    assert "南京市" in page.inner_text("li.none"), "the page says where the point is"
    offered = page.eval_on_selector_all("button.widen", "els => els.map(e => Number(e.dataset.radius))")
    assert offered == [2000, 5000, 10000, 20000]
    with page.expect_response(lambda r: "/nearby?" in r.url and "radius=5000" in r.url):
        page.click("button.widen[data-radius='5000']")
    page.wait_for_selector("#sites li[data-key]")
    assert page.input_value("#radius") == "5000"

    page.fill("#lon", "121.4737")  # Shanghai: outside every city of the region
    page.fill("#lat", "31.2304")
    page.click("#lookup")
    page.wait_for_selector("li.none[data-why='outside']")
    assert "不在本区域" in page.inner_text("li.none")
    context.close()


def test_page_geodesy_agrees_with_pyproj_and_the_reference_offsets(browser: Any, served: str) -> None:
    """The page's own distances, bearings and offsets (used offline and for navigation), computed independently."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(served + "/m")
    geod = Geod(ellps="WGS84")
    pairs = [(118.78, 32.05, 118.7832, 32.0501), (118.78, 32.05, 119.45, 32.20), (117.0, 30.5, 119.9, 34.1),
             (118.5, 31.7, 118.5, 31.7001)]
    for lon1, lat1, lon2, lat2 in pairs:
        got = page.evaluate(f"RiskatlasGeo.inverse({lon1}, {lat1}, {lon2}, {lat2})")
        az, _, dist = geod.inv(lon1, lat1, lon2, lat2)
        assert abs(got["distance"] - dist) < 0.001 and abs(got["bearing"] - az % 360) < 1e-6
    for lon, lat in [(118.78, 32.05), (117.2, 30.9), (119.5, 34.0)]:
        glon, glat = page.evaluate(f"RiskatlasGeo.wgsToGcj({lon}, {lat})")
        assert (glon, glat) == pytest.approx(wgs84_to_gcj02_reference(lon, lat), abs=1e-9)
        back = page.evaluate(f"RiskatlasGeo.gcjToWgs({glon}, {glat})")
        assert back == pytest.approx([lon, lat], abs=1e-8)
        assert page.evaluate(f"RiskatlasGeo.gcjToBd({glon}, {glat})") == pytest.approx(
            gcj02_to_bd09_reference(glon, glat), abs=1e-9)
    context.close()


def test_installed_app_opens_and_searches_with_the_server_gone(browser: Any, own_server: dict[str, Any],
                                                               demo_db: DatabaseSettings, artifacts: Path) -> None:
    base = own_server["base"]
    lon, lat = _near_a_source(demo_db)
    context = browser.new_context(**PHONE, geolocation={"longitude": lon, "latitude": lat}, permissions=["geolocation"])
    page = context.new_page()
    page.goto(base + "/m")
    page.wait_for_selector("#status[data-state='done']", timeout=20_000)
    online = _listed(page)
    online_meta = page.inner_text("#sites li[data-key] .meta")
    # The worker controls the page, and the page has kept its city's sites and the places' names.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    page.wait_for_function("() => ['cities', 'places', 'extents'].every(k => localStorage.getItem('riskatlas.m.' + k))",
                           timeout=30_000)

    stop(own_server["proc"])
    own_server["proc"] = None
    page.reload()  # the page comes from the worker's cache, then searches what the phone keeps
    page.wait_for_selector("#status[data-state='offline']", timeout=20_000)
    page.screenshot(path=str(artifacts / "m-offline.png"), full_page=True)
    status = page.inner_text("#status")
    assert "离线" in status and "Failed to fetch" not in page.content()
    offline = _listed(page)
    assert [s["key"] for s in offline] == [s["key"] for s in online]
    for a, b in zip(online, offline, strict=True):
        assert abs(a["distance"] - b["distance"]) <= 0.11, "the same geodesic distance on the phone as in PostGIS"
    assert page.inner_text("#sites li[data-key] .meta") == online_meta, "level, category and county names kept"

    glon, glat = from_wgs84(lon, lat, GCJ02)  # the same place typed from AMap, searched offline
    page.fill("#lon", f"{glon:.7f}")
    page.fill("#lat", f"{glat:.7f}")
    page.select_option("#crs", "gcj02")
    page.click("#lookup")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('GCJ-02')")
    assert page.get_attribute("#status", "data-state") == "offline"
    assert [s["key"] for s in _listed(page)] == [s["key"] for s in online]

    page.fill("#lon", "121.4737")  # Shanghai, in WGS84
    page.fill("#lat", "31.2304")
    page.select_option("#crs", "CRS84")
    page.click("#lookup")
    page.wait_for_selector("li.none[data-why='outside']")
    context.close()


def test_the_page_is_an_installable_app(browser: Any, served: str, tmp_path: Path) -> None:
    """Chromium's own installability check finds nothing missing (a persistent profile: not incognito)."""
    r = httpx.get(served + "/m/manifest.webmanifest")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
    manifest = r.json()
    assert manifest["start_url"] == "/m" and manifest["display"] == "standalone" and manifest["lang"] == "zh-CN"
    for icon in manifest["icons"]:
        png = httpx.get(served + icon["src"])
        width, height = int.from_bytes(png.content[16:20], "big"), int.from_bytes(png.content[20:24], "big")
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and icon["sizes"] == f"{width}x{height}"
    worker = httpx.get(served + "/m/sw.js")
    assert worker.headers["service-worker-allowed"] == "/m" and "javascript" in worker.headers["content-type"]

    from maps.png import CHROMIUM_ARGS, chromium_path

    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
    try:
        page = context.new_page()
        page.goto(served + "/m")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        errors = context.new_cdp_session(page).send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == []
    finally:
        context.close()


def test_a_key_on_the_phone_shows_the_duty_contact_to_call(browser: Any, demo_db: DatabaseSettings,
                                                          tmp_path: Path) -> None:
    """Contacts are restricted: without a key the page offers no number; with an analyst's key, kept on the
    phone by the inspection form, a site's duty contact comes with a tel: link."""
    with db.connect(demo_db) as conn:
        row = conn.execute("SELECT ST_X(geom) + 0.0005 AS lon, ST_Y(geom) AS lat, key FROM riskatlas.risk_source "
                           "WHERE contact ~ '[0-9]{6}' AND status = 'active' ORDER BY key LIMIT 1").fetchone()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"phone-analyst-key": {"user": "phone-analyst", "role": "analyst"}}))
    proc, base = serve(demo_db, {"RISKATLAS_API_API_KEYS_FILE": str(keys)})
    try:
        for key in (None, "phone-analyst-key"):
            context = browser.new_context(**PHONE)
            if key:
                context.add_init_script(f"localStorage.setItem('riskatlas.m.inspect.key', '{json.dumps(key)}')")
            page = context.new_page()
            _look_up(page, base, row["lon"], row["lat"])
            call = page.query_selector(f"#sites li[data-key='{row['key']}'] a.call")
            if key is None:
                assert call is None, "a contact reached a phone without a key"
            else:
                assert call is not None and call.get_attribute("href").startswith("tel:0000")
            context.close()
    finally:
        stop(proc)
