"""Delivery of notices by e-mail (SMTP) and signed webhook, from the queue in PostgreSQL.

A round (:func:`deliver_due`) runs as the schema owner, like every batch job: it takes the due rows of
``riskatlas.delivery`` with ``FOR UPDATE SKIP LOCKED`` (so several workers, the app's and the CLI's,
never send the same row), sends them, and marks each delivered or, on failure, leaves it queued with
its error and the next attempt after a backoff (``layers/data/incidents/acknowledgement.yaml``).
Nothing is ever dropped.  :func:`sweep_overdue` marks notices that were not acknowledged in time and
queues them again.

A webhook receives the CAP XML as the body, with ``X-Riskatlas-Signature: sha256=<hex>``, the
HMAC-SHA256 of the body under the agency's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import smtplib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from layers import db
from layers.settings import DatabaseSettings
from services.incidents import cap, exceedance
from services.incidents.rules import rules
from services.incidents.settings import DeliverySettings

SIGNATURE_HEADER = "X-Riskatlas-Signature"


@dataclass
class Round:
    """What one round did."""

    taken: int = 0
    delivered: int = 0
    failed: int = 0
    overdue: int = 0
    errors: list[str] = field(default_factory=list)
    exceedances: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"taken": self.taken, "delivered": self.delivered, "failed": self.failed, "overdue": self.overdue,
                "exceedances": self.exceedances, "errors": self.errors[:20]}


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run_once(db_settings: DatabaseSettings, settings: DeliverySettings) -> Round:
    """Send the notices of new exceedance events (:mod:`services.incidents.exceedance`), mark overdue
    notices, then deliver what is due: one round, as the schema owner."""
    result = Round()
    with db.connect(db_settings) as conn:
        result.exceedances = exceedance.notify_pending(conn, sender=settings.sender_id).to_dict()
        result.overdue = sweep_overdue(conn)
        while True:
            r = deliver_due(conn, settings)
            result.taken += r.taken
            result.delivered += r.delivered
            result.failed += r.failed
            result.errors += r.errors
            if r.taken < settings.batch:
                break
    return result


def deliver_due(conn: psycopg.Connection, settings: DeliverySettings) -> Round:
    """Send up to ``settings.batch`` due deliveries; each row ends delivered or queued for a later try."""
    result = Round()
    cur = conn.cursor(row_factory=dict_row)
    with conn.transaction():
        rows = cur.execute(
            """SELECT d.id, d.channel, d.target, d.attempts, d.notice_id, n.cap_xml, n.bulletin, n.msg_type,
                      n.jurisdiction_name, n.incident_id, n.cap_identifier, a.webhook_secret, a.name AS agency,
                      i.kind AS incident_kind
               FROM riskatlas.delivery d JOIN riskatlas.notice n ON n.id = d.notice_id
               JOIN riskatlas.incident i ON i.id = n.incident_id
               LEFT JOIN riskatlas.agency a ON a.id = n.agency_id
               WHERE d.status = 'queued' AND d.next_attempt_at <= clock_timestamp()
               ORDER BY d.next_attempt_at, d.id LIMIT %s FOR UPDATE OF d SKIP LOCKED""",
            (settings.batch,)).fetchall()
        result.taken = len(rows)
        if not rows:
            return result
        tokens: dict[int, str] = {}
        outcomes: dict[int, str | None] = {}
        mails = [r for r in rows if r["channel"] == "email"]
        hooks = [r for r in rows if r["channel"] == "webhook"]
        for r in mails:
            if r["msg_type"] != "Cancel":
                tokens[r["notice_id"]] = secrets.token_urlsafe(24)
        # one HTTP client for the round (its connection pool and TLS context are made once, not per webhook)
        with ThreadPoolExecutor(max_workers=8) as pool, httpx.Client(timeout=settings.timeout_s,
                                                                      follow_redirects=False) as client:
            hook_futures = {r["id"]: pool.submit(_post_webhook, client, r) for r in hooks}
            outcomes.update(_send_mails(mails, tokens, settings))
            for rid, fut in hook_futures.items():
                outcomes[rid] = fut.result()
        rules_ = rules()
        ok = [rid for rid, err in outcomes.items() if err is None]
        bad = [(rid, err) for rid, err in outcomes.items() if err is not None]
        attempts = {r["id"]: r["attempts"] + 1 for r in rows}
        if ok:
            cur.execute("""UPDATE riskatlas.delivery SET status = 'delivered', delivered_at = clock_timestamp(),
                               attempts = attempts + 1, last_error = NULL WHERE id = ANY(%s)""", (ok,))
        if bad:
            cur.execute(
                """UPDATE riskatlas.delivery d SET attempts = d.attempts + 1, last_error = b.err,
                       next_attempt_at = clock_timestamp() + make_interval(secs => b.wait)
                   FROM unnest(%s::bigint[], %s::text[], %s::float8[]) AS b (id, err, wait) WHERE d.id = b.id""",
                ([rid for rid, _ in bad], [str(err)[:500] for _, err in bad],
                 [rules_.backoff(attempts[rid]) for rid, _ in bad]))
        sent_tokens = {r["notice_id"]: tokens[r["notice_id"]] for r in mails
                       if r["notice_id"] in tokens and outcomes.get(r["id"]) is None}
        if sent_tokens:
            cur.execute(
                """UPDATE riskatlas.notice n SET ack_token_sha256 = t.h
                   FROM unnest(%s::bigint[], %s::text[]) AS t (id, h) WHERE n.id = t.id AND n.acknowledged_at IS NULL""",
                (list(sent_tokens), [hashlib.sha256(t.encode()).hexdigest() for t in sent_tokens.values()]))
        result.delivered, result.failed = len(ok), len(bad)
        result.errors = [f"delivery {rid}: {err}" for rid, err in bad]
    return result


def _send_mails(rows: list[dict[str, Any]], tokens: dict[int, str],
                settings: DeliverySettings) -> dict[int, str | None]:
    """Send the e-mails over one SMTP conversation; per delivery id, None or the error."""
    if not rows:
        return {}
    if not settings.smtp_host:
        return {r["id"]: "no SMTP server configured (RISKATLAS_DELIVERY_SMTP_HOST)" for r in rows}
    out: dict[int, str | None] = {}
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            for r in rows:
                try:
                    smtp.send_message(_mail(r, tokens.get(r["notice_id"]), settings))
                    out[r["id"]] = None
                except smtplib.SMTPException as exc:
                    out[r["id"]] = f"SMTP: {exc}"
    except (OSError, smtplib.SMTPException) as exc:
        for r in rows:
            out.setdefault(r["id"], f"SMTP server {settings.smtp_host}:{settings.smtp_port} unreachable: {exc}")
    return out


def _mail(r: dict[str, Any], token: str | None, settings: DeliverySettings) -> EmailMessage:
    """The e-mail of one notice: the bulletin, the acknowledgement link, the CAP alert attached."""
    m = EmailMessage()
    kind = {"Alert": "预警通报 Alert", "Update": "更新 Update", "Cancel": "解除 All clear"}[r["msg_type"]]
    what = "跨界断面超标 Section exceedance" if r.get("incident_kind") == "exceedance" else "突发环境事件"
    m["Subject"] = f"[{kind}] {what} #{r['incident_id']} — {r['jurisdiction_name']}"
    m["From"] = settings.mail_from
    m["To"] = r["target"]
    m["X-Riskatlas-Notice"] = str(r["notice_id"])
    link = ""
    if token:
        link = (f"\n\n确认收到 / Acknowledge (一次性链接 one-time link):\n"
                f"{settings.public_url.rstrip('/')}/incidents/ack/{token}\n")
    m.set_content(f"{r['bulletin']}{link}")
    m.add_attachment(r["cap_xml"].encode("utf-8"), maintype="application", subtype="cap+xml",
                     filename=f"{r['cap_identifier']}.cap.xml")
    return m


def _post_webhook(client: httpx.Client, r: dict[str, Any]) -> str | None:
    """POST the CAP alert, signed; None when the receiver answered 2xx, else the error."""
    secret = r.get("webhook_secret")
    if not secret:
        return "the agency has a webhook URL but no secret to sign with"
    body = r["cap_xml"].encode("utf-8")
    try:
        resp = client.post(r["target"], content=body,
                           headers={"Content-Type": cap.MEDIA_TYPE, SIGNATURE_HEADER: sign(secret, body),
                                    "X-Riskatlas-Notice": str(r["notice_id"])})
    except httpx.HTTPError as exc:
        return f"webhook unreachable: {type(exc).__name__}: {exc}"
    if not 200 <= resp.status_code < 300:
        return f"webhook answered HTTP {resp.status_code}"
    return None


def sweep_overdue(conn: psycopg.Connection) -> int:
    """Mark notices not acknowledged in time overdue, give them a new deadline and queue them again on
    every channel their agency has; returns how many."""
    minutes = rules().ack_minutes
    with conn.transaction():
        rows = conn.execute(
            """WITH late AS (
                   UPDATE riskatlas.notice n
                      SET overdue_at = coalesce(n.overdue_at, clock_timestamp()), resent = n.resent + 1,
                          ack_due_at = clock_timestamp() + make_interval(mins => (%s::jsonb ->> n.severity)::int)
                     FROM riskatlas.incident i
                    WHERE i.id = n.incident_id AND i.status <> 'closed' AND n.msg_type = 'Alert'
                      AND n.acknowledged_at IS NULL AND n.ack_due_at <= clock_timestamp()
                   RETURNING n.id, n.agency_id, n.incident_id, n.city),
               queued AS (
                   INSERT INTO riskatlas.delivery (notice_id, channel, target, reason)
                   SELECT l.id, c.channel, c.target, 'resend' FROM late l JOIN riskatlas.agency a ON a.id = l.agency_id
                   CROSS JOIN LATERAL (VALUES ('email', a.duty_email), ('webhook', a.webhook_url)) c (channel, target)
                   WHERE c.target IS NOT NULL RETURNING 1)
               SELECT l.id, l.incident_id, l.city, (SELECT count(*) FROM queued) AS queued,
                      pg_notify('riskatlas_notice', json_build_object('incident', l.incident_id, 'notice', l.id,
                                'city', l.city, 'msg_type', 'Overdue')::text)
               FROM late l""",
            (_json(minutes),)).fetchall()
        if rows:
            conn.execute("SELECT pg_notify('riskatlas_delivery', '')")
    return len(rows)


def _json(d: dict[str, float]) -> str:
    import json

    return json.dumps({k: int(v) for k, v in d.items()})
