"""Each notice as an OASIS CAP 1.2 alert (``urn:oasis:names:tc:emergency:cap:1.2``).

One ``<alert>`` per notice, with a zh-CN and an en ``<info>`` block and the affected area as a polygon
(the hull of what the analysis reached) and a circle (around the release).  An update is msgType
``Update`` and a closing ``Cancel``, both with ``<references>`` to every earlier message of the same
addressee (``sender,identifier,sent`` triples, CAP 1.2 §3.2.1).  The schema is kept in
``layers/data/cap/CAP-v1.2.xsd``; the tests validate against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD = Path(__file__).resolve().parents[2] / "layers" / "data" / "cap" / "CAP-v1.2.xsd"
MEDIA_TYPE = "application/cap+xml"


@dataclass(frozen=True)
class Message:
    """What one CAP message says; ``references`` are (sender, identifier, sent) of earlier messages."""

    identifier: str
    sender: str
    sent: datetime
    msg_type: str                     # Alert, Update, Cancel
    severity: str                     # Extreme, Severe, Moderate, Minor
    event_zh: str
    event_en: str
    headline_zh: str
    headline_en: str
    description_zh: str
    description_en: str
    instruction_zh: str
    instruction_en: str
    area_zh: str
    area_en: str
    polygon: list[tuple[float, float]] | None   # (lon, lat), closed ring
    circle: tuple[float, float, float] | None   # lon, lat, radius km
    onset: datetime | None = None
    expires: datetime | None = None
    references: list[tuple[str, str, datetime]] = field(default_factory=list)
    incident_ref: str | None = None
    web: str | None = None
    sender_name: str = "南京都市圈突发环境事件联合值守 / Nanjing metropolitan area joint environmental duty"
    certainty: str = "Likely"         # Observed for measured exceedances, Likely for model estimates


def cap_time(t: datetime) -> str:
    """A CAP dateTime: seconds, and an explicit offset (the schema refuses 'Z' and fractions)."""
    s = t.replace(microsecond=0).isoformat()
    return s.replace("+00:00", "-00:00") if s.endswith("+00:00") else s


def to_xml(m: Message) -> str:
    """The alert as CAP 1.2 XML text (UTF-8 declaration included)."""
    alert = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(alert, "identifier", m.identifier)
    _sub(alert, "sender", m.sender)
    _sub(alert, "sent", cap_time(m.sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", m.msg_type)
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", "仅供应急管理部门 / for emergency authorities only")
    if m.msg_type == "Cancel":
        _sub(alert, "note", "事件已关闭，解除预警 / incident closed: all clear")
    if m.references:
        _sub(alert, "references", " ".join(f"{s},{i},{cap_time(t)}" for s, i, t in m.references))
    if m.incident_ref:
        _sub(alert, "incidents", m.incident_ref)
    for lang in ("zh-CN", "en"):
        zh = lang == "zh-CN"
        info = etree.SubElement(alert, f"{{{CAP_NS}}}info")
        _sub(info, "language", lang)
        _sub(info, "category", "Env")
        _sub(info, "event", m.event_zh if zh else m.event_en)
        _sub(info, "responseType", "AllClear" if m.msg_type == "Cancel" else "Monitor")
        _sub(info, "urgency", "Past" if m.msg_type == "Cancel" else "Immediate")
        _sub(info, "severity", m.severity)
        _sub(info, "certainty", m.certainty)
        if m.onset:
            _sub(info, "onset", cap_time(m.onset))
        if m.expires:
            _sub(info, "expires", cap_time(m.expires))
        _sub(info, "senderName", m.sender_name)
        _sub(info, "headline", m.headline_zh if zh else m.headline_en)
        _sub(info, "description", m.description_zh if zh else m.description_en)
        _sub(info, "instruction", m.instruction_zh if zh else m.instruction_en)
        if m.web:
            _sub(info, "web", m.web)
        area = etree.SubElement(info, f"{{{CAP_NS}}}area")
        _sub(area, "areaDesc", m.area_zh if zh else m.area_en)
        if m.polygon:
            _sub(area, "polygon", " ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in m.polygon))
        if m.circle:
            lon, lat, r = m.circle
            _sub(area, "circle", f"{lat:.5f},{lon:.5f} {r:.3f}")
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    el.text = text
    return el


def schema() -> etree.XMLSchema:
    """The CAP 1.2 schema, from the file kept with the data."""
    return etree.XMLSchema(etree.parse(str(XSD)))


def validate(xml: str) -> list[str]:
    """Schema errors of ``xml`` (empty when it is a valid CAP 1.2 alert)."""
    s = schema()
    doc = etree.fromstring(xml.encode("utf-8"))
    return [] if s.validate(doc) else [str(e) for e in s.error_log]
