"""A page of changes as Atom (RFC 4287) and as JSON Feed 1.1: titles Chinese first, English alongside.

Each entry's id is a URN of its history id (stable across pages and requests); the feed's ``updated``
is its newest change (the request time when the page is empty); the next page is a ``rel="next"``
link (Atom) or ``next_url`` (JSON Feed). Where a change happened travels as a GeoRSS point.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.etree import ElementTree as ET

from services.feed.changes import ChangePage

ATOM_NS = "http://www.w3.org/2005/Atom"
GEORSS_NS = "http://www.georss.org/georss"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
ET.register_namespace("", ATOM_NS)
ET.register_namespace("georss", GEORSS_NS)


def feed_title(page: ChangePage) -> str:
    """The feed's title: which changes, Chinese first."""
    q = page.query
    zh, en = "风险地图变更", "riskatlas changes"
    if q.near_city:
        city = page.city_name or q.near_city
        km = f"{(q.within_m or 0) / 1000:g}"
        zh += f"（{city}市界{km}公里内）"
        en += f" within {km} km of the border of {city} ({q.near_city})"
    if q.layer:
        zh += f"：{q.layer}"
        en += f": {q.layer}"
    return f"{zh} / {en}"


def summary(change: dict[str, Any]) -> str:
    """One change in words: who, when, which fields (or that the detail is withheld)."""
    who = change["changed_by"] + (f"（{change['acting_city']}）" if change["acting_city"] else "")
    fields = change["changed"]
    if change["op"] == "update":
        what = "、".join(fields) if fields else "—"
        return f"{who} 于 {change['changed_at']} 变更字段 / changed fields: {what}"
    return f"{who} 于 {change['changed_at']} {change['title']['zh']} / {change['title']['en']}"


def _updated(page: ChangePage) -> str:
    if page.changes:
        return str(max(c["changed_at"] for c in page.changes))
    return dt.datetime.now(dt.UTC).isoformat()


def atom(page: ChangePage, self_url: str, next_url: str | None) -> bytes:
    """The page as an Atom feed document (UTF-8)."""
    a = f"{{{ATOM_NS}}}"
    feed = ET.Element(f"{a}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    ET.SubElement(feed, f"{a}id").text = "urn:riskatlas:changes:" + _query_key(page)
    ET.SubElement(feed, f"{a}title").text = feed_title(page)
    ET.SubElement(feed, f"{a}updated").text = _updated(page)
    author = ET.SubElement(feed, f"{a}author")
    ET.SubElement(author, f"{a}name").text = "riskatlas"
    ET.SubElement(feed, f"{a}link", {"rel": "self", "href": self_url, "type": "application/atom+xml"})
    if next_url:
        ET.SubElement(feed, f"{a}link", {"rel": "next", "href": next_url, "type": "application/atom+xml"})
    for c in page.changes:
        entry = ET.SubElement(feed, f"{a}entry")
        ET.SubElement(entry, f"{a}id").text = f"urn:riskatlas:change:{c['id']}"
        ET.SubElement(entry, f"{a}title").text = c["title"]["text"]
        ET.SubElement(entry, f"{a}updated").text = c["changed_at"]
        who = ET.SubElement(entry, f"{a}author")
        ET.SubElement(who, f"{a}name").text = c["changed_by"]
        ET.SubElement(entry, f"{a}category", {"term": c["op"], "label": c["title"]["zh"].split("：")[0]})
        ET.SubElement(entry, f"{a}category", {"term": c["layer"]})
        ET.SubElement(entry, f"{a}summary").text = summary(c)
        detail = {k: c[k] for k in ("layer", "key", "op", "changed", "old", "new", "city_code", "batch_id")}
        ET.SubElement(entry, f"{a}content", {"type": "text"}).text = json.dumps(detail, ensure_ascii=False,
                                                                                default=str)
        if c["point"]:
            ET.SubElement(entry, f"{{{GEORSS_NS}}}point").text = f"{c['point'][1]} {c['point'][0]}"
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def jsonfeed(page: ChangePage, self_url: str, next_url: str | None) -> dict[str, Any]:
    """The page as a JSON Feed 1.1 document; the change itself under ``_riskatlas``."""
    doc: dict[str, Any] = {"version": JSONFEED_VERSION, "title": feed_title(page), "feed_url": self_url,
                           "language": "zh-CN", "authors": [{"name": "riskatlas"}], "items": []}
    if next_url:
        doc["next_url"] = next_url
    for c in page.changes:
        doc["items"].append({
            "id": f"urn:riskatlas:change:{c['id']}", "title": c["title"]["text"], "content_text": summary(c),
            "date_published": c["changed_at"], "authors": [{"name": c["changed_by"]}],
            "tags": [c["op"], c["layer"]],
            "_riskatlas": {k: c[k] for k in ("id", "layer", "key", "op", "changed", "old", "new", "city_code",
                                             "acting_city", "batch_id", "point", "title")},
        })
    return doc


def _query_key(page: ChangePage) -> str:
    q = page.query
    return ":".join(str(v) for v in (q.layer or "all", q.near_city or "all", f"{q.within_m or 0:g}"))
