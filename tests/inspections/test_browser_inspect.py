"""The phone page records inspections offline in headless Chromium: offline, two inspections with a photo
each are saved on the phone, the page is reloaded while still offline (the queue survives in IndexedDB),
the network comes back, and both records are in the database once."""

from __future__ import annotations

from typing import Any

import pytest

from layers import db
from tests.inspections import images
from tests.inspections.conftest import CHUZHOU
from tests.maps.browser import PageLog, serve, stop

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def task_served(inspection_db):
    """A Chuzhou task at the Chuzhou site with cz.insp assigned, and the app serving the database."""
    settings, keys = inspection_db
    with db.connect(settings) as conn:
        task = conn.execute("""INSERT INTO riskatlas.inspection_task (title, title_en, lead_city, cities, site_keys,
                                   starts_on, ends_on, template, template_version, inspectors, synthetic)
                               VALUES ('滁州化工专项检查（合成）', 'Chuzhou chemical check (synthetic)', %s, ARRAY[%s],
                                       ARRAY['CZ-CHEM'], current_date, current_date + 7, 'chemical', 2,
                                       ARRAY['cz.insp'], true) RETURNING id""", (CHUZHOU, CHUZHOU)).fetchone()["id"]
        conn.commit()
    proc, base = serve(settings)
    yield settings, keys, task, base
    stop(proc)


def _record_one(page: Any, task: int, name: str, count: int) -> None:
    page.select_option("#inspect-task", str(task))
    page.select_option("#inspect-site", "CZ-CHEM")
    page.select_option("#inspect-items select[data-q='emergency-plan']", "0")
    page.fill("#inspect-items input[data-q='drill-count']", "2")
    page.select_option("#inspect-kind", "emergency-plan")
    page.select_option("#inspect-severity", "high")
    page.set_input_files("#inspect-photos", files=[{"name": name, "mimeType": "image/jpeg",
                                                    "buffer": images.jpeg(118.3101, 32.3001)}])
    page.click("#inspect-save")
    page.wait_for_selector(f"#inspect-queue[data-count='{count}']", state="attached")


def test_two_records_made_offline_survive_a_reload_and_sync_once(browser, task_served):
    settings, keys, task, base = task_served
    context = browser.new_context(**PHONE, geolocation={"longitude": 118.3102, "latitude": 32.3002},
                                  permissions=["geolocation"])
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    page.goto(base + "/m")
    page.wait_for_selector("html[data-inspect='ready']", state="attached")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.fill("#inspect-key", keys["cz.insp"])
    page.dispatch_event("#inspect-key", "change")
    page.wait_for_selector(f"#inspect-task option[value='{task}']", state="attached")
    page.select_option("#inspect-task", str(task))
    page.wait_for_selector("#inspect-items[data-template='chemical@2']", state="attached")

    context.set_offline(True)
    _record_one(page, task, "a.jpg", 1)
    _record_one(page, task, "b.jpg", 2)
    page.reload()
    page.wait_for_selector("html[data-inspect='ready']", state="attached")
    page.wait_for_selector("#inspect-queue[data-count='2']", state="attached")

    page.evaluate("""() => { window.synced = null;
        document.addEventListener('riskatlas:synced', e => { window.synced = e.detail; }, { once: true }); }""")
    context.set_offline(False)  # the browser's `online` event starts the sync
    detail = page.wait_for_function("window.synced").json_value()
    assert detail == {"saved": 2, "left": 0}
    page.wait_for_selector("#inspect-queue[data-count='0']", state="attached")
    with db.connect(settings) as conn:
        rows = conn.execute("""SELECT r.client_id, r.inspector, r.task_id, r.far, count(p.id) AS photos,
                                      (SELECT count(*) FROM riskatlas.inspection_finding f WHERE f.record_id = r.id) AS findings
                               FROM riskatlas.inspection_record r LEFT JOIN riskatlas.inspection_photo p ON p.record_id = r.id
                               WHERE r.task_id = %s GROUP BY r.id""", (task,)).fetchall()
    assert len(rows) == 2 and len({r["client_id"] for r in rows}) == 2
    assert all((r["inspector"], r["far"], r["photos"], r["findings"]) == ("cz.insp", False, 1, 1) for r in rows)
    # the site's history on the phone page: both records, in time order
    page.select_option("#inspect-task", str(task))
    page.select_option("#inspect-site", "CZ-CHEM")
    page.click("#inspect-history-btn")
    page.wait_for_selector("#inspect-history li[data-kind='finding']")
    assert page.locator("#inspect-history li[data-kind='inspection']").count() == 2
    assert [e for e in log.errors if "ERR_INTERNET_DISCONNECTED" not in e] == [], "only the offline requests failed"
    context.close()



def test_the_maps_popup_shows_a_sites_history(browser, task_served):
    """viewer-history.js as the map's popup calls it: with the key the phone page keeps, the Chuzhou site's
    records (those of the test above, or none when run alone: then it says so)."""
    settings, keys, task, base = task_served
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + "/map")
    # as a popup would: once the map has started (its place names are loaded)
    page.wait_for_function("window.riskmap && window.riskmap.firstRenderMs > 0", timeout=60_000)
    page.evaluate("""k => { localStorage.setItem('riskatlas.m.inspect.key', JSON.stringify(k));
        const el = document.createElement('div'); el.id = 'probe'; el.innerHTML = '<div class="popup"></div>';
        document.body.appendChild(el); RA.history.fill(el, 'CZ-CHEM'); }""", keys["cz"])
    page.wait_for_selector("#probe .history", state="attached")
    with db.connect(settings) as conn:
        n = conn.execute("""SELECT (SELECT count(*) FROM riskatlas.inspection_record WHERE site_key = 'CZ-CHEM')
                                 + (SELECT count(*) FROM riskatlas.inspection_finding WHERE site_key = 'CZ-CHEM') AS n"""
                         ).fetchone()["n"]
    assert page.get_attribute("#probe .history", "data-events") == str(n)
    context.close()
