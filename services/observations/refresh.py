"""After a bulk load of observations (the demo): the events and the derived section records of a year."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from psycopg import sql

from layers import db
from layers.catalogue import relation
from layers.settings import DatabaseSettings
from services.observations.derive import derive_section_records, months_with_observations
from services.observations.events import raise_events

CST = timezone(timedelta(hours=8))


def refresh_year(settings: DatabaseSettings, year: int, *, replace_loaded: bool = False) -> dict[str, Any]:
    """Raise the exceedance events of every cross-border section for ``year`` and derive the section records
    of each month with observations, in one transaction as the schema owner; a summary."""
    with db.transaction(settings) as conn:
        db.set_actor(conn, user="riskatlas", role="admin")
        keys = [r["key"] for r in conn.execute(sql.SQL(
            "SELECT key FROM {} WHERE kind = 'cross-border-section' ORDER BY key").format(
            relation("monitoring_station"))).fetchall()]
        events = raise_events(conn, keys, datetime(year, 1, 1, tzinfo=CST),
                              datetime(year + 1, 1, 1, tzinfo=CST) - timedelta(microseconds=1))
        months = months_with_observations(conn, year)
        written = 0
        skipped: list[dict[str, str]] = []
        for month in months:
            report = derive_section_records(conn, month, replace_loaded=replace_loaded)
            written += len(report.written)
            skipped += [{"month": month, **s} for s in report.skipped]
    return {"year": year, **events.to_dict(), "months_derived": months, "records_written": written,
            "records_skipped": skipped[:20]}
