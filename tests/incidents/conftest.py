"""Incidents: accounts of several cities, a directory whose agencies point at a real SMTP server and a
real webhook receiver started here, and a synthetic analysis (a spill's notify list) to open from."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from etl.agencies import load_agencies
from layers import db
from services import accounts
from tests.ports import free_port

MAANSHAN, NANJING, ZHENJIANG, CHUZHOU, WUHU = "340500", "320100", "321100", "341100", "340200"
HE_COUNTY = "340523"  # 和县, a county of Ma'anshan
WEBHOOK_SECRET = "s3cret-for-signing-notices"


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.event.set()
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    box = Mailbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, port
    ctl.stop()


@dataclass
class Hooks:
    """What the webhook receiver received: (path, headers, body)."""

    calls: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, int]]:
    """A real HTTP receiver on a free loopback port; answers ``hooks.status``."""
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hooks.calls.append((self.path, dict(self.headers.items()), body))
            self.send_response(hooks.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield hooks, server.server_address[1]
    server.shutdown()
    server.server_close()


USERS = (("mas-duty", "duty", MAANSHAN), ("nj-duty", "duty", NANJING), ("zj-duty", "duty", ZHENJIANG),
         ("cz-duty", "duty", CHUZHOU), ("nj-steward", "steward", NANJING), ("mas-steward", "steward", MAANSHAN),
         ("nj-analyst", "analyst", NANJING), ("boss", "admin", None), ("nj-inspector", "inspector", NANJING))


def add_users(settings: Any) -> dict[str, str]:
    """The accounts of :data:`USERS` with one key each: account name -> key."""
    keys = {}
    with db.connect(settings) as conn:
        for name, role, city in USERS:
            accounts.create_account(conn, name, role, city)
            keys[name] = accounts.create_key(conn, name).secret
        conn.commit()
    return keys


def write_directory(path: Path, webhook_port: int | None, encoding: str = "gb18030") -> Path:
    """Agencies of the test cities: duty e-mails on the test SMTP server's domain, webhooks at the receiver."""
    rows = []
    for code, name in ((MAANSHAN, "马鞍山市"), (NANJING, "南京市"), (ZHENJIANG, "镇江市"), (CHUZHOU, "滁州市"),
                       (WUHU, "芜湖市"), (HE_COUNTY, "和县")):
        hook = f"http://127.0.0.1:{webhook_port}/hook/{code}" if webhook_port else ""
        rows.append([f"duty-{code}", code, "duty_office", f"{name}生态环境局应急值班室", f"{code} duty office",
                     "025-12345678", f"duty@{code}.test", hook, WEBHOOK_SECRET if hook else "",
                     "张三|13800000000", "true"])
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "jurisdiction", "kind", "name", "name_en", "duty_phone", "duty_email", "webhook_url",
                    "webhook_secret", "on_duty", "synthetic"])
        w.writerows(rows)
    return path


def load_directory(settings: Any, path: Path) -> dict[str, Any]:
    with db.connect(settings) as conn:
        report = load_agencies(conn, path)
        conn.commit()
    return report.to_dict()


def notify_entry(order: int, level: str, code: str, name: str, parent: str | None, hours: float) -> dict[str, Any]:
    """One entry of a spill's notify list, as services.emergency.notify.from_spill writes it."""
    return {"order": order, "level": level, "level_zh": {"city": "市", "county": "区县"}[level], "code": code,
            "name": name, "name_en": None, "parent_code": parent, "first_arrival_s": hours * 3600,
            "first_arrival_time": f"2026-06-01T{8 + int(hours):02d}:00+08:00", "first_arrival_basis": "threshold",
            "first_arrival_basis_zh": "浓度首次超过阈值", "first_arrival_basis_en": "concentration first exceeds",
            "threshold_mg_l": 0.01, "peak": 0.5, "peak_time": None, "unit": "mg/L", "via": ["river"],
            "via_zh": ["河流"], "detail": "Yangtze", "detail_zh": "长江"}


def synthetic_spill(cities: tuple[str, ...] = (MAANSHAN, NANJING, ZHENJIANG)) -> dict[str, Any]:
    """A spill result near Ma'anshan whose notify list names ``cities`` (and He County)."""
    names = {MAANSHAN: "马鞍山市", NANJING: "南京市", ZHENJIANG: "镇江市", CHUZHOU: "滁州市", WUHU: "芜湖市"}
    notify = [notify_entry(1, "county", HE_COUNTY, "和县", MAANSHAN, 0.5)]
    notify += [notify_entry(i + 2, "city", c, names[c], "340000", 1.0 + 3 * i) for i, c in enumerate(cities)]
    return {
        "type": "FeatureCollection",
        "incident": {"kind": "river spill", "kind_zh": "水污染（河流泄漏）",
                     "location": {"x": 118.45, "y": 31.753, "crs": "OGC:CRS84", "lon": 118.45, "lat": 31.753},
                     "substance": {"id": "benzene", "name": "benzene", "name_zh": "苯", "cas": "71-43-2"},
                     "mass_t": 5.0, "release_time": "2026-06-01T08:00+08:00", "horizon_h": 72},
        "features": [{"type": "Feature", "properties": {"role": "path"},
                      "geometry": {"type": "LineString", "coordinates": [[118.45, 31.753], [118.6, 31.95],
                                                                         [118.8, 32.15], [119.2, 32.25]]}}],
        "notify": notify, "warnings": [], "jurisdictions": [],
    }
