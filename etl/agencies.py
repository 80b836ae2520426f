"""The directory of agencies (who to call, DESIGN 11): a non-spatial CSV, UTF-8 or GB18030.

Columns: ``key, jurisdiction, kind, name, name_en, duty_phone, duty_email, webhook_url, webhook_secret,
on_duty, synthetic``.  ``jurisdiction`` is a city or county code of the region; the owner city is
derived from it (a county's city), never read from the file.  ``on_duty`` lists the people on duty as
``name|phone`` separated by ``;``.  Every row is checked first: one rejected row and nothing is
written, and the report names each rejected row and field.  The rows are upserted by ``key`` on the
caller's connection, so row-level security decides whose entries may change (a city its own).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from etl.errors import InputError, LoadFailed

COLUMNS = ("key", "jurisdiction", "kind", "name", "name_en", "duty_phone", "duty_email", "webhook_url",
           "webhook_secret", "on_duty", "synthetic")
REQUIRED = ("key", "jurisdiction", "name")
KINDS = ("bureau", "duty_office")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^[0-9+()\- ]{5,32}$")
MAX_ROWS = 10_000


@dataclass
class AgencyReport:
    """What a directory load did: rows read, inserted, updated, and each rejected row with its reason."""

    file: str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    encoding: str = "utf-8"
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "rejected" if self.rejects else "loaded"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": self.status, "encoding": self.encoding, "rows_in": self.rows_in,
                "rows_inserted": self.inserted, "rows_updated": self.updated, "rows_rejected": len(self.rejects),
                "rejects": self.rejects}


def read_text(path: Path) -> tuple[str, str]:
    """The file's text and its encoding: UTF-8 (with or without BOM), else GB18030."""
    data = Path(path).read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    raise InputError(f"{Path(path).name}: neither UTF-8 nor GB18030 text")


def parse(text: str, name: str, areas: dict[str, tuple[str, str | None]]) -> tuple[list[dict[str, Any]],
                                                                                     list[dict[str, Any]]]:
    """Rows as agency records, and the rejects (row number counting the header as row 1, field, reason).

    ``areas`` maps each city and county code to (level, parent code).
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{name}: columns {missing} are missing; expected {list(COLUMNS)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise InputError(f"{name}: unknown columns {unknown}; expected {list(COLUMNS)}")
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(reader, start=2):
        if i - 1 > MAX_ROWS:
            raise InputError(f"{name}: more than {MAX_ROWS} rows")
        r = {k.strip(): (v or "").strip() for k, v in raw.items() if k}

        def reject(col: str, reason: str, r: dict[str, str] = r, i: int = i) -> None:
            rejects.append({"row": i, "field": col, "value": r.get(col, "")[:80], "reason": reason})

        bad = len(rejects)
        for col in REQUIRED:
            if not r.get(col):
                reject(col, f"{col} is required")
        code = r.get("jurisdiction", "")
        if code and code not in areas:
            reject("jurisdiction", f"{code!r} is not a city or county of the region")
        kind = r.get("kind") or "bureau"
        if kind not in KINDS:
            reject("kind", f"kind was {kind!r} but is expected to be one of {list(KINDS)}")
        if r.get("duty_email") and not EMAIL.match(r["duty_email"]):
            reject("duty_email", "not an e-mail address")
        if r.get("duty_phone") and not PHONE.match(r["duty_phone"]):
            reject("duty_phone", "a phone number is 5-32 digits, spaces, + - ( )")
        if r.get("webhook_url"):
            if not re.match(r"^https?://[^\s]+$", r["webhook_url"]):
                reject("webhook_url", "expected an http:// or https:// URL")
            elif len(r.get("webhook_secret", "")) < 16:
                reject("webhook_secret", "a webhook needs a secret of at least 16 characters to sign its notices")
        on_duty = []
        for person in filter(None, (p.strip() for p in r.get("on_duty", "").split(";"))):
            pname, _, phone = person.partition("|")
            if phone and not PHONE.match(phone.strip()):
                reject("on_duty", f"{pname.strip()}: phone {phone.strip()!r} is not a phone number")
            on_duty.append({"name": pname.strip(), "phone": phone.strip() or None})
        synthetic = r.get("synthetic", "").lower()
        if synthetic not in ("", "true", "false", "1", "0", "yes", "no"):
            reject("synthetic", "expected true or false")
        key = r.get("key", "")
        if key in seen:
            reject("key", f"duplicate of row {seen[key]}")
        seen.setdefault(key, i)
        if len(rejects) > bad or not code or code not in areas:
            continue
        level, parent = areas[code]
        rows.append({"key": key, "jurisdiction": code, "kind": kind, "name": r["name"],
                     "name_en": r.get("name_en") or None, "duty_phone": r.get("duty_phone") or None,
                     "duty_email": r.get("duty_email") or None, "webhook_url": r.get("webhook_url") or None,
                     "webhook_secret": r.get("webhook_secret") or None, "on_duty": on_duty,
                     "synthetic": synthetic in ("true", "1", "yes"),
                     "owner_city": code if level == "city" else parent})
    return rows, rejects


def load_agencies(conn: psycopg.Connection, path: Path) -> AgencyReport:
    """Check every row of ``path``, then upsert them all in one transaction on ``conn`` (or nothing)."""
    text, encoding = read_text(path)
    report = AgencyReport(Path(path).name, encoding=encoding)
    cur = conn.cursor(row_factory=dict_row)
    areas = {r["code"]: (r["level"], r["parent_code"]) for r in cur.execute(
        "SELECT code, level, parent_code FROM riskatlas.admin_area WHERE level IN ('city', 'county')").fetchall()}
    rows, report.rejects = parse(text, report.file, areas)
    report.rows_in = sum(1 for _ in csv.DictReader(io.StringIO(text)))
    if report.rejects or not rows:
        return report
    try:
        with conn.transaction():
            for r in rows:
                got = cur.execute(
                    """INSERT INTO riskatlas.agency (key, jurisdiction, kind, name, name_en, duty_phone, duty_email,
                           webhook_url, webhook_secret, on_duty, synthetic, owner_city)
                       VALUES (%(key)s, %(jurisdiction)s, %(kind)s, %(name)s, %(name_en)s, %(duty_phone)s,
                               %(duty_email)s, %(webhook_url)s, %(webhook_secret)s, %(on_duty)s, %(synthetic)s,
                               %(owner_city)s)
                       ON CONFLICT (key) DO UPDATE SET jurisdiction = EXCLUDED.jurisdiction, kind = EXCLUDED.kind,
                           name = EXCLUDED.name, name_en = EXCLUDED.name_en, duty_phone = EXCLUDED.duty_phone,
                           duty_email = EXCLUDED.duty_email, webhook_url = EXCLUDED.webhook_url,
                           webhook_secret = EXCLUDED.webhook_secret, on_duty = EXCLUDED.on_duty,
                           synthetic = EXCLUDED.synthetic, owner_city = EXCLUDED.owner_city,
                           updated_at = clock_timestamp(), updated_by = riskatlas.acting_user()
                       WHERE (agency.jurisdiction, agency.kind, agency.name, agency.name_en, agency.duty_phone,
                              agency.duty_email, agency.webhook_url, agency.webhook_secret, agency.on_duty,
                              agency.synthetic, agency.owner_city)
                             IS DISTINCT FROM (EXCLUDED.jurisdiction, EXCLUDED.kind, EXCLUDED.name, EXCLUDED.name_en,
                              EXCLUDED.duty_phone, EXCLUDED.duty_email, EXCLUDED.webhook_url, EXCLUDED.webhook_secret,
                              EXCLUDED.on_duty, EXCLUDED.synthetic, EXCLUDED.owner_city)
                       RETURNING (xmax = 0) AS inserted""", {**r, "on_duty": Jsonb(r["on_duty"])}).fetchone()
                if got is None:
                    continue  # the entry as it was: nothing written, nothing in its history
                if got["inserted"]:
                    report.inserted += 1
                else:
                    report.updated += 1
    except psycopg.errors.InsufficientPrivilege:
        report.inserted = report.updated = 0
        raise LoadFailed(f"{report.file}: row-level security refused an entry; a city writes only its own "
                         "(and its counties') agencies") from None
    return report


def write_demo_csv(path: Path, areas: list[dict[str, Any]]) -> Path:
    """One synthetic, labelled duty-office entry per city and county of ``areas`` (code, name, name_en,
    level), written as GB18030 CSV: the demo's directory."""
    with open(path, "w", encoding="gb18030", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for a in areas:
            w.writerow([f"demo-duty-{a['code']}", a["code"], "duty_office",
                        f"{a['name']}生态环境局应急值班室（合成演示数据）",
                        f"{a.get('name_en') or a['name']} environment bureau duty office (synthetic demo)",
                        f"025-0000{a['code'][-4:]}", f"duty-{a['code']}@example.invalid", "", "",
                        f"值班员{a['code'][-2:]}（合成）|025-1000{a['code'][-4:]}", "true"])
    return path


def load_demo_agencies(conn: psycopg.Connection, folder: Path) -> AgencyReport:
    """Write and load the demo directory (one synthetic entry per city and county) as the owner."""
    cur = conn.cursor(row_factory=dict_row)
    areas = cur.execute("""SELECT code, name, name_en, level FROM riskatlas.admin_area
                           WHERE level IN ('city', 'county') ORDER BY code""").fetchall()
    path = write_demo_csv(Path(folder) / "agencies.csv", areas)
    return load_agencies(conn, path)
