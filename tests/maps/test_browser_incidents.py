"""Live incident notices in headless Chromium: the phone page receives a new notice for its city over
server-sent events, shows a visible alert (sound off), and its button acknowledges it; the map shows
the same alert box."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from layers import db
from services.incidents import store
from services.web.routers.incidents import run_as
from tests.conftest import _clone
from tests.incidents.conftest import MAANSHAN, NANJING, add_users, load_directory, synthetic_spill, write_directory
from tests.incidents.test_access import identity_of
from tests.maps.browser import serve, stop

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def site(cluster_settings, fresh_template, tmp_path_factory) -> Iterator[tuple[Any, dict[str, str], str]]:
    from layers import cluster

    s = _clone(cluster_settings, fresh_template, "incbrowser")
    keys = add_users(s)
    load_directory(s, write_directory(tmp_path_factory.mktemp("dir") / "a.csv", None))
    proc, base = serve(s, {"RISKATLAS_DELIVERY_WORKER": "false"})
    yield s, keys, base
    stop(proc)
    cluster.drop_database(cluster_settings, s.db_name)


def test_the_phone_page_shows_a_new_notice_and_acknowledges_it(site, browser, artifacts):
    s, keys, base = site
    page = browser.new_page(**PHONE)
    page.goto(base + "/m")
    page.click("#incident-alerts summary")
    assert not page.locator("#incident-sound").is_checked()  # sound off by default
    page.fill("#incident-key", keys["nj-duty"])
    page.click("#incident-key-form button")
    page.wait_for_function("document.getElementById('incident-status').textContent.indexOf('Receiving') >= 0")
    opened = run_as(s, identity_of(s, keys["mas-duty"]), lambda conn: store.open_incident(
        conn, "spill", synthetic_spill(), client_request_id="browser-1", actor_city=MAANSHAN))
    alert = page.locator(".incident-alert")
    alert.first.wait_for(state="visible")
    assert alert.count() == 1  # only the notice addressed to Nanjing
    assert "南京市" in alert.first.inner_text()
    page.screenshot(path=str(artifacts / "incidents-phone-alert.png"))
    page.click(".incident-ack")
    page.wait_for_function("document.querySelector('.incident-ack').textContent.indexOf('Acknowledged') >= 0")
    with db.connect(s) as conn:
        row = conn.execute("SELECT acknowledged_by, acknowledged_via FROM riskatlas.notice WHERE incident_id = %s "
                           "AND city = %s", (opened["id"], NANJING)).fetchone()
    assert (row["acknowledged_by"], row["acknowledged_via"]) == ("nj-duty", "api")
    page.close()


def test_the_map_has_the_alert_box(site, browser):
    s, keys, base = site
    page = browser.new_page()
    page.goto(base + "/map")
    page.locator("#incident-alerts").wait_for(state="visible")
    page.click("#incident-alerts summary")
    page.fill("#incident-key", "ra_not-a-key-at-all-000000")
    page.click("#incident-key-form button")
    page.wait_for_function("document.getElementById('incident-status').textContent.indexOf('Key refused') >= 0")
    page.close()
