"""What follows a load: grades of the sources it touched, then the hazard flags it affects.

Loads live in ``etl`` and know nothing of services; the CLI, the upload endpoint and the demo call
this after a load commits, so derived data never lags the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layers.catalogue import get_layer
from layers.settings import DatabaseSettings


@dataclass
class Derived:
    """Grades and flags recomputed after a load."""

    grading: dict[str, Any] | None = None
    hazards: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    observations: dict[str, Any] | None = None
    feed: dict[str, Any] | None = None  # alerts the load raised for cities' change-feed subscriptions

    def to_dict(self) -> dict[str, Any]:
        return {"grading": self.grading, "hazards": self.hazards, "notes": self.notes,
                "observations": self.observations, "feed": self.feed}


def after_load(settings: DatabaseSettings, layer: str, batch_id: int | None) -> Derived:
    """Regrade and refresh flags for what the load ``batch_id`` into ``layer`` changed."""
    from services.grading import grade_sources
    from services.hazards import refresh_after_load

    out = Derived()
    if batch_id is None:
        return out
    if _has_population(settings):
        stale = get_layer(layer).invalidates  # what the catalogue says a load of this layer makes stale
        if "own-grades" in stale:
            out.grading = _grade_summary(grade_sources(settings, scope="batch", batch_id=batch_id))
        elif "all-grades" in stale:
            out.grading = _grade_summary(grade_sources(settings, scope="all"))
        out.notes += _grade_notes(out.grading)
    else:
        out.notes.append("no population raster is registered: sources are not graded")
    if "flags" in get_layer(layer).invalidates:
        flags = refresh_after_load(settings, layer, batch_id)
        out.hazards = flags.to_dict() if flags is not None else None
    out.feed = _match_feed(settings)
    return out


def _match_feed(settings: DatabaseSettings) -> dict[str, Any]:
    """Alerts for the subscriptions the load's changes (and the grades after it) match."""
    from layers import db
    from services.feed import match

    with db.transaction(settings) as conn:
        return match(conn)


def after_demo(settings: DatabaseSettings) -> Derived:
    """Grade every source and compute every hazard flag; raise the exceedance events of the demo's year of
    observations, send their notices to the downstream cities (incidents of kind exceedance) and derive
    the monthly section records from the observations (in place of the typed-in ones)."""
    from etl.sources.demo.observations import YEAR
    from layers import db
    from services.grading import grade_sources
    from services.hazards import refresh_full
    from services.incidents.exceedance import notify_pending
    from services.incidents.settings import DeliverySettings
    from services.observations.refresh import refresh_year

    derived = Derived(grading=_grade_summary(grade_sources(settings, scope="all")),
                      hazards=refresh_full(settings).to_dict(),
                      observations=refresh_year(settings, YEAR, replace_loaded=True))
    with db.connect(settings) as conn:
        sent = notify_pending(conn, sender=DeliverySettings().sender_id)
        derived.observations = {**(derived.observations or {}), "notices": sent.to_dict()}
        conn.commit()
    return derived


def _has_population(settings: DatabaseSettings) -> bool:
    from layers import db
    from layers.catalogue import SCHEMA

    with db.connect(settings) as conn:
        return conn.execute(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.raster_layer WHERE kind = 'population') AS e"
                            ).fetchone()["e"]


def _grade_summary(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {k: d[k] for k in ("run_id", "scope", "sources", "graded", "pending", "one_m_for_both", "rejected",
                              "changed", "levels", "seconds")}


def _grade_notes(grading: dict[str, Any] | None) -> list[str]:
    """What a steward should know of the grades a load produced: one M used for both media (HJ 941
    scores M per medium), and sources whose level waits for an M score."""
    if not grading:
        return []
    notes = []
    if grading["one_m_for_both"]:
        notes.append(f"{grading['one_m_for_both']} source(s) give one M (m_score): it is used for both air and "
                     "water; HJ 941-2018 scores M for each medium (m_air, m_water)")
    if grading["pending"]:
        notes.append(f"{grading['pending']} source(s) have Q of 1 or more and no M: Q and E are graded, the level "
                     "waits for an M score (riskatlas grade --pending)")
    return notes
