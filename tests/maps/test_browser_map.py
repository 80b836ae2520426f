"""The planner's map /map in headless Chromium: loads cleanly, draws, filters, pops up, searches, speaks two languages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from layers import db
from layers.settings import DatabaseSettings
from tests.maps.browser import PageLog, open_map

UNIQUE_RISK = """() => {
  const seen = {};
  for (const f of riskmap.map.queryRenderedFeatures({layers: ['risk_source', 'risk_source-dot']})) seen[f.properties.key] = f.properties;
  return Object.values(seen);
}"""


@pytest.fixture(scope="module")
def viewer(browser: Any, served: str) -> Iterator[tuple[Any, PageLog]]:
    context, page, log = open_map(browser, served)
    yield page, log
    context.close()


#: riskmap.settle(): the map idle and still, drawing the filters in force (the page counts their changes in
#: riskmap.generations). A deadline turns a map that never settles into a failure that says where it stood.
SETTLE = """async (seconds) => {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(
    `the map did not settle within ${seconds} s: generations ${JSON.stringify(riskmap.generations)}, ` +
    `moving ${riskmap.map.isMoving()}, tiles loaded ${riskmap.map.areTilesLoaded()}, loaded ${riskmap.map.loaded()}, ` +
    `sources not loaded ${JSON.stringify(Object.entries(riskmap.map.style.tileManagers).filter(([, m]) => !m.loaded())
      .map(([id, m]) => [id, m._sourceLoaded, m._source.loaded(), m._updated, m._paused]))}, ` +
    `images ${riskmap.map.style.imageManager.isLoaded()}, dirty ${JSON.stringify([riskmap.map._sourcesDirty,
      riskmap.map._styleDirty, riskmap.map._placementDirty, riskmap.map._repaint])}, ` +
    `frame asked ${!!riskmap.map._frameRequest}, page ${document.visibilityState}`)), seconds * 1000); });
  try { return await Promise.race([riskmap.settle(), late]); } finally { clearTimeout(timer); }
}"""


def _settle(page: Any) -> None:
    page.evaluate(SETTLE, 60)


def _reset(page: Any) -> None:
    page.click("#reset")
    page.evaluate("riskmap.map.jumpTo({center: riskmap.map.getCenter()})")
    _settle(page)


def _sql(settings: DatabaseSettings, query: str, params: tuple = ()) -> list[dict]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def test_map_loads_with_no_console_error_and_no_failed_request(viewer: tuple[Any, PageLog], served: str,
                                                               artifacts: Path) -> None:
    page, log = viewer
    page.screenshot(path=str(artifacts / "map.png"))
    assert log.errors == []
    assert log.failed == []
    foreign = [u for u in log.requests if not (u.startswith(served) or u.startswith(("data:", "blob:")))]
    assert foreign == [], "every request of /map goes to the app itself"
    assert any("/static/vendor/maplibre-gl-" in u for u in log.requests)


def test_risk_sources_are_drawn(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, _ = viewer
    drawn = page.evaluate(UNIQUE_RISK)
    total = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source")[0]["n"]
    assert len(drawn) == total > 0
    # The other layers are drawn too, from the multi-layer tiles.
    for layer in ("admin_area-city", "river", "protection_zone-fill", "protected_area-fill", "monitoring_station",
                  "water_reserve"):
        assert page.evaluate(f"riskmap.map.queryRenderedFeatures({{layers: ['{layer}']}}).length") > 0, layer


def test_filters_change_what_is_drawn(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, log = viewer
    _reset(page)
    for box in page.query_selector_all("#filter-category input"):
        if box.get_attribute("value") != "chemical":
            box.uncheck()
    _settle(page)
    drawn = page.evaluate(UNIQUE_RISK)
    chemical = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source WHERE category = 'chemical'")[0]["n"]
    assert {p["category"] for p in drawn} == {"chemical"}
    assert len(drawn) == chemical

    page.select_option("#city", "320100")  # filters, then zooms to the city: settle() waits for both
    _settle(page)
    drawn = page.evaluate(UNIQUE_RISK)
    nanjing = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source WHERE category = 'chemical' "
                            "AND city_code = '320100'")[0]["n"]
    assert {p["city_code"] for p in drawn} == {"320100"}
    assert len(drawn) == nanjing > 0

    levels = {r["risk_level"] for r in _sql(demo_db, "SELECT DISTINCT risk_level FROM riskatlas.risk_source")}
    keep_value = "" if None in levels else sorted(levels)[0]
    for box in page.query_selector_all("#filter-level input"):
        if box.get_attribute("value") != keep_value:
            box.uncheck()
    _settle(page)
    drawn = page.evaluate(UNIQUE_RISK)
    expected = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source WHERE category = 'chemical' AND "
                             "city_code = '320100' AND coalesce(risk_level, '') = %s", (keep_value,))[0]["n"]
    assert {p.get("risk_level", "") or "" for p in drawn} <= {keep_value}
    assert len(drawn) == expected
    _reset(page)
    assert len(page.evaluate(UNIQUE_RISK)) > nanjing
    assert log.errors == [] and log.failed == []


FIND_LONELY = """() => {
  const map = riskmap.map;
  const feats = map.queryRenderedFeatures({layers: ['risk_source']});
  const pts = feats.map(f => ({key: f.properties.key, name: f.properties.name, p: map.project(f.geometry.coordinates)}));
  const box = map.getContainer().getBoundingClientRect();
  for (const a of pts) {
    if (a.p.x < 40 || a.p.y < 40 || a.p.x > box.width - 40 || a.p.y > box.height - 200) continue;
    if (pts.every(b => b.key === a.key || Math.hypot(a.p.x - b.p.x, a.p.y - b.p.y) > 14)) {
      return {key: a.key, name: a.name, x: box.left + a.p.x, y: box.top + a.p.y};
    }
  }
  return null;
}"""


def test_click_opens_the_popup_of_that_source(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, log = viewer
    _reset(page)
    page.evaluate("riskmap.map.jumpTo({center: [118.86, 32.11], zoom: 11})")
    _settle(page)
    target = page.evaluate(FIND_LONELY)
    assert target is not None, "a risk source standing alone on screen"
    page.mouse.click(target["x"], target["y"])
    popup = page.wait_for_selector(".popup[data-collection='risk_source'][data-complete]", timeout=10_000)
    assert popup.get_attribute("data-id") == target["key"]
    row = _sql(demo_db, "SELECT name, address FROM riskatlas.risk_source WHERE key = %s", (target["key"],))[0]
    text = popup.inner_text()
    assert row["name"] in text
    assert row["address"] in text, "the full attributes come from the items endpoint"
    assert log.errors == [] and log.failed == []


def test_popups_close_with_a_new_view_and_stand_above_the_matrix(viewer: tuple[Any, PageLog]) -> None:
    page, _ = viewer

    def open_one() -> Any:
        _reset(page)
        page.evaluate("riskmap.map.jumpTo({center: [118.86, 32.11], zoom: 11})")
        _settle(page)
        target = page.evaluate(FIND_LONELY)
        page.mouse.click(target["x"], target["y"])
        return page.wait_for_selector(".popup[data-complete]", timeout=10_000)

    popup = open_one()
    box = popup.bounding_box()
    on_top = page.evaluate("([x, y]) => !!document.elementFromPoint(x, y).closest('.maplibregl-popup')",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top, "nothing (the matrix panel included) covers the popup"
    page.click("#reset")
    page.wait_for_selector(".maplibregl-popup", state="detached", timeout=5_000)
    open_one()
    page.select_option("#city", "320100")
    page.wait_for_selector(".maplibregl-popup", state="detached", timeout=5_000)
    open_one()
    page.click("#matrix td.n")
    page.wait_for_selector(".maplibregl-popup", state="detached", timeout=5_000)
    _reset(page)


def test_the_matrix_panel_moves_out_of_the_way_and_is_whole_in_english(browser: Any, served: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(served + "/map")
    page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=60_000)
    page.wait_for_selector("#matrix td.n")
    page.click("#lang")
    table = page.eval_on_selector("#matrix table", "t => t.getBoundingClientRect().right")
    panel = page.eval_on_selector("#matrix-panel", "p => [p.getBoundingClientRect().right, p.scrollWidth, p.clientWidth]")
    assert table <= panel[0] and panel[1] <= panel[2], "in English the last column is inside the panel"
    title = page.query_selector("#matrix-panel h2").bounding_box()
    before = page.query_selector("#matrix-panel").bounding_box()
    page.mouse.move(title["x"] + title["width"] / 2, title["y"] + title["height"] / 2)
    page.mouse.down()
    page.mouse.move(title["x"] + title["width"] / 2 - 300, title["y"] + title["height"] / 2 - 200, steps=5)
    page.mouse.up()
    after = page.query_selector("#matrix-panel").bounding_box()
    assert abs(after["x"] - (before["x"] - 300)) < 2 and abs(after["y"] - (before["y"] - 200)) < 2
    page.click("#matrix-toggle")
    assert page.is_hidden("#matrix-body"), "and it folds away"
    context.close()


def test_search_by_name_flies_to_the_source(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, _ = viewer
    _reset(page)
    row = _sql(demo_db, "SELECT key, name FROM riskatlas.risk_source WHERE city_code = '321000' ORDER BY key LIMIT 1")[0]
    page.fill("#search", row["name"][2:8])
    item = page.wait_for_selector(f"#results li:has-text('{row['name']}')", timeout=10_000)
    item.click()
    popup = page.wait_for_selector(f".popup[data-id='{row['key']}'][data-complete]", timeout=10_000)
    assert row["name"] in popup.inner_text()


def test_areas_are_asked_simplified_for_the_map(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    """The search and the popup of an area ask the items for the map's zoom, not for whole boundaries."""
    page, log = viewer
    _reset(page)
    row = _sql(demo_db, "SELECT key, name FROM riskatlas.protected_area ORDER BY key LIMIT 1")[0]
    seen = len(log.requests)
    page.fill("#search", row["name"])
    page.wait_for_selector(f"#results li:has-text('{row['name']}')", timeout=10_000).click()
    page.wait_for_selector(f".popup[data-collection='protected_area'][data-id='{row['key']}'][data-complete]",
                           timeout=10_000)
    asked = [urlparse(u) for u in log.requests[seen:] if "/collections/protected_area/items" in u]
    searched = [u for u in asked if u.path.endswith("/items")]
    opened = [u for u in asked if u.path.endswith(f"/items/{row['key']}")]
    assert searched and opened
    for u in searched + opened:
        assert 1 <= int(parse_qs(u.query)["zoom"][0]) <= 22
    page.fill("#search", "")
    # tiles cancelled by the flight are not failures of this test; an items request is
    assert log.errors == [] and not [u for u in log.failed if "/items" in u]


def test_search_by_address_and_more_than_a_handful(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, _ = viewer
    _reset(page)
    row = _sql(demo_db, "SELECT key, name, address FROM riskatlas.risk_source WHERE address IS NOT NULL "
                        "AND city_code = '341100' ORDER BY key LIMIT 1")[0]
    fragment = row["address"][-8:]
    page.fill("#search", fragment)
    page.wait_for_selector(f"#results li:has-text('{row['name']}')", timeout=10_000)
    total = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.risk_source WHERE name LIKE %s", ("%有限公司%",))[0]["n"]
    assert total > 20
    page.fill("#search", "有限公司")
    page.wait_for_selector("#results li.more", timeout=10_000)
    listed = page.locator("#results li[data-i]").count()
    assert listed >= 20, "far more than six results"
    more = page.inner_text("#results li.more")
    assert str(total - 20) in more, "and how many more matched"
    page.fill("#search", "")


def test_a_link_brings_back_the_view_and_filters(browser: Any, served: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(served + "/map")
    page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=60_000)
    page.select_option("#city", "321100")
    page.uncheck("#filter-level input[value='general']")
    page.evaluate("riskmap.map.jumpTo({center: [119.45, 32.2], zoom: 10.5})")
    _settle(page)
    page.click("#share")
    link = page.input_value("#share-link")
    assert "#10.50/32.20000/119.45000" in link and "city=321100" in link and "level=" in link
    other = context.new_page()
    other.goto(link)
    other.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=60_000)
    state = other.evaluate("({city: riskmap.state.city, general: riskmap.state.levels.general,"
                           " major: riskmap.state.levels.major, zoom: riskmap.map.getZoom(),"
                           " centre: riskmap.map.getCenter().toArray()})")
    assert state["city"] == "321100" and state["general"] is False and state["major"] is True
    assert abs(state["zoom"] - 10.5) < 0.01 and abs(state["centre"][0] - 119.45) < 1e-4
    assert other.input_value("#city") == "321100"
    assert not other.is_checked("#filter-level input[value='general']")
    context.close()


def test_language_toggle_notice_and_credit(viewer: tuple[Any, PageLog], demo_db: DatabaseSettings) -> None:
    page, _ = viewer
    info = _sql(demo_db, "SELECT value FROM riskatlas.dataset_info WHERE name = 'demo'")[0]["value"]
    notice = page.inner_text("#notice")
    assert page.is_visible("#notice") and info["notice_zh"] in notice
    assert info["boundaries_credit"][:40] in page.inner_text(".maplibregl-ctrl-attrib")
    assert "南京市" in page.inner_text("#map")
    page.click("#lang")
    assert page.inner_text("#panel h1").startswith("riskatlas — environmental")
    assert "Nanjing" in page.inner_text("#map")
    assert info["notice"][:30] in page.inner_text("#notice")
    page.click("#lang")
    assert "环境风险地图" in page.inner_text("#panel h1")


def test_border_flags_are_drawn_and_a_matrix_cell_zooms_to_its_pair(viewer: tuple[Any, PageLog],
                                                                    demo_db: DatabaseSettings) -> None:
    page, log = viewer
    _reset(page)
    cross = _sql(demo_db, "SELECT count(*) AS n FROM riskatlas.hazard_flag WHERE cross_border")[0]["n"]
    assert cross > 0  # the demo leaves flags computed, as `riskatlas demo` does
    page.wait_for_selector("#matrix td.n", timeout=30_000)
    assert page.evaluate("riskmap.map.queryRenderedFeatures({layers: ['flags']}).length") > 0
    # The kind of flag is its symbol, and the legend names each kind with its symbol.
    kinds = _sql(demo_db, "SELECT DISTINCT kind FROM riskatlas.hazard_flag ORDER BY kind")
    drawn = page.evaluate("[...new Set(riskmap.map.queryRenderedFeatures({layers: ['flags']})"
                          ".map(f => f.layer.layout['icon-image'].name || f.properties.kind))]")
    assert len(drawn) > 1 and len(kinds) > 1, "several kinds of flag, each drawn"
    legend = page.eval_on_selector_all(".flag-kind", "els => els.map(e => [e.dataset.kind, e.textContent.trim(),"
                                                     " !!e.querySelector('svg path')])")
    assert [k for k, _, _ in legend] == ["city-border", "province-border", "upstream", "protection-zone",
                                         "protected-area"] and all(has for _, _, has in legend)
    assert page.evaluate("riskmap.map.getImage('shape-flag-upstream') !== null || "
                         "riskmap.map.hasImage('shape-flag-upstream')") or "upstream" not in {r["kind"] for r in kinds}
    cell = page.query_selector("#matrix td.n")
    a, b, n = cell.get_attribute("data-a"), cell.get_attribute("data-b"), int(cell.inner_text())
    expected = _sql(demo_db, """SELECT count(*) AS n FROM riskatlas.hazard_flag
                                WHERE cross_border AND other_level = 'city' AND source_city = %s
                                  AND other_code = %s""", (a, b))[0]["n"]
    assert n == expected
    page.evaluate("riskmap.map.jumpTo({zoom: 5})")
    _settle(page)
    before = page.evaluate("riskmap.map.getZoom()")
    cell.click()
    _settle(page)
    assert page.evaluate("riskmap.map.getZoom()") > before  # zoomed to the two cities
    assert log.errors == []
    _reset(page)
