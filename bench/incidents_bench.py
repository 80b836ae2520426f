"""Incident benchmark: opening an incident with 30 recipients, and the fan-out of its notices.

    .venv/bin/python -m bench.incidents_bench --runs 10

Makes a scratch database in the project's cluster (migrated, the region's real boundaries), a duty
officer and a directory of 30 agencies (the region's first 30 counties) whose e-mail goes to a local
SMTP server (aiosmtpd) and whose webhooks go to a local HTTP receiver, both started here.  Then:

* open: :func:`services.incidents.store.open_incident` as the duty officer (application role, row-level
  security), with a notify list of the 30 counties: the incident, 30 notices with their CAP alerts and
  60 queued deliveries written in one transaction.  Goal (issue 11): < 300 ms.
* fan-out: one delivery round (:func:`services.incidents.delivery.run_once`) sending those 60: 30
  e-mails and 30 signed webhooks.  Goal: < 2 s.

Prints medians and the ratio to the goal; drops the scratch database.  Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from etl.agencies import load_agencies
from etl.load import load_file
from etl.sources.boundaries import region_boundaries
from layers import cluster, db, migrate
from layers.settings import DatabaseSettings
from services import accounts
from services.identity import Identity
from services.incidents import delivery, store
from services.incidents.settings import DeliverySettings

GOAL_OPEN_S, GOAL_FANOUT_S = 0.3, 2.0
RECIPIENTS = 30


class _Sink:
    count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        _Sink.count += 1
        return "250 OK"


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _analysis(counties: list[dict[str, Any]]) -> dict[str, Any]:
    notify = [{"order": i + 1, "level": "county", "level_zh": "区县", "code": c["code"], "name": c["name"],
               "name_en": None, "parent_code": c["parent_code"], "first_arrival_s": 1800.0 * (i + 1),
               "first_arrival_time": "2026-06-01T08:30+08:00", "first_arrival_basis": "advective",
               "first_arrival_basis_zh": "水流到达", "first_arrival_basis_en": "the water arrives", "peak": None,
               "peak_time": None, "unit": "mg/L", "via": ["river"], "via_zh": ["河流"], "detail": "bench",
               "detail_zh": "基准"} for i, c in enumerate(counties)]
    return {"incident": {"kind": "river spill", "kind_zh": "水污染（河流泄漏）",
                         "location": {"x": 118.45, "y": 31.753, "crs": "OGC:CRS84", "lon": 118.45, "lat": 31.753},
                         "substance": {"id": "benzene", "name": "benzene", "name_zh": "苯", "cas": "71-43-2"},
                         "mass_t": 5.0, "release_time": "2026-06-01T08:00+08:00"},
            "features": [{"type": "Feature", "properties": {}, "geometry": {
                "type": "LineString", "coordinates": [[118.45, 31.753], [118.8, 32.15], [119.2, 32.25]]}}],
            "notify": notify, "warnings": []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    base = DatabaseSettings()
    cluster.start(base)
    name = f"riskatlas_bench_incidents_{uuid.uuid4().hex[:6]}"
    cluster.bootstrap(base, name)
    s = base.with_db(name)
    with socket.socket() as probe:  # a free port for the SMTP server
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(_Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp, db.connect(s) as conn:
            migrate.upgrade(conn, s)
            conn.commit()
            path = Path(tmp) / "admin_area.geojson"
            region_boundaries().to_file(path, driver="GeoJSON")
            load_file(s, path, "admin_area", sandbox=False)
            counties: Any = conn.execute("""SELECT code, name, parent_code FROM riskatlas.admin_area WHERE level = 'county'
                                       ORDER BY code LIMIT %s""", (RECIPIENTS,)).fetchall()
            csv = Path(tmp) / "agencies.csv"
            hook_port = hooks.server_address[1]
            csv.write_text("key,jurisdiction,kind,name,duty_email,webhook_url,webhook_secret\n" + "".join(
                f"b-{c['code']},{c['code']},duty_office,{c['name']} duty,duty@{c['code']}.bench,"
                f"http://127.0.0.1:{hook_port}/{c['code']},bench-secret-0123456789\n" for c in counties),
                encoding="utf-8")
            assert load_agencies(conn, csv).status == "loaded"
            accounts.create_account(conn, "bench-duty", "duty", counties[0]["parent_code"])
            key = accounts.create_key(conn, "bench-duty").secret
            conn.commit()
        with db.connect(s, "app") as conn:
            row: Any = conn.execute("SELECT * FROM riskatlas.authenticate(%s)", (key,)).fetchone()
        who = Identity(user=row["account"], role=row["role"], city=row["city"], context=row["context"])
        analysis = _analysis(counties)
        opens = []
        with db.connect(s, "app") as conn:
            for i in range(args.runs):
                t0 = time.perf_counter()
                conn.execute("SELECT set_config('riskatlas.ctx', %s, true)", (who.context,))
                out = store.open_incident(conn, "spill", analysis, client_request_id=f"bench-{i}",
                                          actor_city=who.city)
                conn.commit()
                opens.append(time.perf_counter() - t0)
                assert out["notices"] == RECIPIENTS
        with db.connect(s) as conn:  # fan-out: one incident's deliveries at a time
            conn.execute("UPDATE riskatlas.delivery SET next_attempt_at = 'infinity'")
            conn.commit()
            ids: Any = conn.execute("SELECT id FROM riskatlas.incident ORDER BY id").fetchall()
            incidents = [r["id"] for r in ids]
        settings = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp_port, batch=100)
        fanouts = []
        for iid in incidents:
            with db.connect(s) as conn:
                conn.execute("""UPDATE riskatlas.delivery d SET next_attempt_at = now() FROM riskatlas.notice n
                                WHERE n.id = d.notice_id AND n.incident_id = %s""", (iid,))
                conn.commit()
            t0 = time.perf_counter()
            r = delivery.run_once(s, settings)
            fanouts.append(time.perf_counter() - t0)
            assert r.delivered == 2 * RECIPIENTS, r.to_dict()
        o, f = statistics.median(opens), statistics.median(fanouts)
        print(f"open incident, {RECIPIENTS} recipients (notices + CAP + queued deliveries): median {o * 1000:7.1f} ms "
              f"of {len(opens)}; goal < {GOAL_OPEN_S * 1000:.0f} ms ({o / GOAL_OPEN_S:.2f}x the goal)")
        print(f"fan-out, {RECIPIENTS} e-mails + {RECIPIENTS} signed webhooks to local receivers: median {f * 1000:7.1f} ms "
              f"of {len(fanouts)}; goal < {GOAL_FANOUT_S * 1000:.0f} ms ({f / GOAL_FANOUT_S:.2f}x the goal); "
              f"{_Sink.count} e-mails received")
    finally:
        smtp.stop()
        hooks.shutdown()
        cluster.drop_database(base, name)


if __name__ == "__main__":
    main()
