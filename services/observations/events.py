"""Exceedances at cross-border sections: a sample worse than the section's target class raises an event
addressed to the downstream city (DESIGN 12).

Every water sample has a GB 3838-2002 class (``riskatlas.water_class``, single factor, the parameter's
factor in ``obs_parameters.csv``); at a station of kind ``cross-border-section`` a class worse than the
target (``monitoring_station.target_class``, or the ledger configuration's target override) is an
exceedance.  Upstream and downstream cities come from the river network as the ledger finds them
(``services.ledger.sections``).  The event row is the in-app notification: the downstream city lists
it (``GET /observations/events``, ``riskatlas observations events``) and acknowledges it.

The incident machinery sends them (:mod:`services.incidents.exceedance`, run by the delivery worker): it
picks up ``observation_event`` rows with ``status = 'open' AND notice_id IS NULL``, sends a CAP notice to
the downstream city's agency (an incident of kind ``exceedance`` per section and parameter) and records
the notice in ``notice_id``; acknowledging either acknowledges both.

A correction that brings a sample back within target withdraws its event (status 'withdrawn'); one
that changes the value of an exceedance updates it.  Only valid and estimated samples count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from layers.catalogue import relation
from services.errors import InvalidParameter
from services.ledger.config import LedgerConfig, load_config
from services.ledger.sections import section_cities

ROMAN = ("I", "II", "III", "IV", "V", "劣V")
COUNTED_FLAGS = ("valid", "estimated")


@dataclass(frozen=True)
class EventSummary:
    """What one pass over a set of samples did to the events."""

    raised: int
    updated: int
    withdrawn: int
    sections: int

    def to_dict(self) -> dict[str, Any]:
        return {"events_raised": self.raised, "events_updated": self.updated, "events_withdrawn": self.withdrawn,
                "sections_checked": self.sections}


def after_ingest(conn: psycopg.Connection, batch_id: int, batch: object) -> dict[str, Any]:
    """The loader's hook: events for the cross-border sections of the batch just staged (``obs_stage``),
    over the span of its times."""
    row = conn.execute(
        sql.SQL("""SELECT array_agg(DISTINCT s.station_key) AS keys,
                          timestamptz 'epoch' + min(s.t_us) * interval '1 microsecond' AS since,
                          timestamptz 'epoch' + max(s.t_us) * interval '1 microsecond' AS until
                   FROM obs_stage s JOIN {st} m ON m.key = s.station_key
                   WHERE m.kind = 'cross-border-section'""").format(st=relation("monitoring_station"))).fetchone()
    if not row["keys"]:
        return {}
    return raise_events(conn, row["keys"], row["since"], row["until"], batch_id=batch_id).to_dict()


def raise_events(conn: psycopg.Connection, station_keys: list[str], since: datetime, until: datetime, *,
                 batch_id: int | None = None, config: LedgerConfig | None = None) -> EventSummary:
    """Raise, update or withdraw the exceedance events of ``station_keys`` (cross-border sections) for
    samples from ``since`` to ``until`` inclusive, set-based, in the caller's transaction and as its actor."""
    config = config or load_config()
    rows = conn.execute(sql.SQL(
        """SELECT key, target_class FROM {} WHERE key = ANY(%s) AND kind = 'cross-border-section'
           AND medium = 'water'""").format(relation("monitoring_station")), (list(station_keys),)).fetchall()
    targets = {r["key"]: config.targets.get(r["key"]) or r["target_class"] for r in rows}
    targets = {k: v for k, v in targets.items() if v}
    if not targets:
        return EventSummary(0, 0, 0, 0)
    keys = sorted(targets)
    cities = section_cities(conn, keys, config.snap_max_m)
    ups = [cities[k].upstream if k in cities else None for k in keys]
    downs = [cities[k].downstream if k in cities else None for k in keys]
    target_no = [ROMAN.index(targets[k]) + 1 for k in keys]
    params = {"keys": keys, "ups": ups, "downs": downs, "targets": target_no, "since": since, "until": until,
              "batch": batch_id, "flags": list(COUNTED_FLAGS), "roman": list(ROMAN)}
    classed = sql.SQL(
        """sec AS (
               SELECT * FROM unnest(%(keys)s::text[], %(ups)s::text[], %(downs)s::text[], %(targets)s::int[])
                   AS s(key, up, down, target)
           ), c AS (
               SELECT o.station_key, o.parameter, o.observed_at, o.value, o.owner_city, sec.up, sec.down,
                      sec.target, {wc}(o.parameter, o.value) AS cls
               FROM {obs} o JOIN sec ON sec.key = o.station_key
               WHERE o.observed_at BETWEEN %(since)s AND %(until)s AND o.flag = ANY(%(flags)s)
                 AND o.parameter IN (SELECT code FROM {par} WHERE gb3838 IS NOT NULL)
           )""").format(wc=relation("water_class"), obs=relation("observation"), par=relation("obs_parameter"))
    up = conn.execute(sql.SQL(
        """WITH {classed}, named AS (
               SELECT c.*, p.name_zh, p.name_en, p.unit, m.name AS station_name,
                      coalesce(au.name, '区域外') AS up_zh, coalesce(au.code, 'outside the region') AS up_en,
                      coalesce(ad.name, '区域外') AS down_zh, coalesce(ad.code, 'outside the region') AS down_en
               FROM c JOIN {par} p ON p.code = c.parameter JOIN {st} m ON m.key = c.station_key
               LEFT JOIN {areas} au ON au.code = c.up LEFT JOIN {areas} ad ON ad.code = c.down
               WHERE c.cls > c.target
           )
           INSERT INTO {ev} AS e (station_key, parameter, observed_at, value, water_class, target_class, owner_city,
                                  upstream_city, downstream_city, message_zh, message_en, batch_id)
           SELECT station_key, parameter, observed_at, value, cls, target, owner_city, up, down,
                  format('%%s（%%s）%%s %%s %%s，GB 3838 %%s类，超过目标%%s类。上游：%%s；下游：%%s。',
                         station_name, station_key, name_zh, round(value::numeric, 3), unit,
                         (%(roman)s::text[])[cls], (%(roman)s::text[])[target], up_zh, down_zh),
                  format('%%s (%%s): %%s %%s %%s, GB 3838 class %%s, worse than its target class %%s. Upstream: %%s; '
                         'downstream: %%s.', station_name, station_key, name_en, round(value::numeric, 3), unit,
                         replace((%(roman)s::text[])[cls], '劣V', 'worse than V'), (%(roman)s::text[])[target],
                         up_en, down_en),
                  %(batch)s
           FROM named
           ON CONFLICT (kind, station_key, parameter, observed_at) DO UPDATE
               SET value = EXCLUDED.value, water_class = EXCLUDED.water_class, message_zh = EXCLUDED.message_zh,
                   message_en = EXCLUDED.message_en, batch_id = EXCLUDED.batch_id,
                   status = CASE WHEN e.status = 'withdrawn' THEN 'open' ELSE e.status END
               WHERE e.value IS DISTINCT FROM EXCLUDED.value OR e.status = 'withdrawn'
           RETURNING (xmax = 0) AS inserted""").format(
        classed=classed, par=relation("obs_parameter"), st=relation("monitoring_station"),
        areas=relation("admin_area"), ev=relation("observation_event")), params).fetchall()
    withdrawn = conn.execute(sql.SQL(
        """WITH {classed}
           UPDATE {ev} e SET status = 'withdrawn', batch_id = %(batch)s
           FROM c WHERE e.kind = 'exceedance' AND e.station_key = c.station_key AND e.parameter = c.parameter
             AND e.observed_at = c.observed_at AND c.cls <= c.target AND e.status <> 'withdrawn'""").format(
        classed=classed, ev=relation("observation_event")), params).rowcount
    raised = sum(1 for r in up if r["inserted"])
    return EventSummary(raised, len(up) - raised, max(withdrawn, 0), len(keys))


def list_events(conn: psycopg.Connection, *, city: str | None = None, status: str | None = None,
                since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Events visible to the connection's actor (row-level security decides), newest sample first;
    ``city`` keeps those addressed to it (downstream), ``status`` one status."""
    if status is not None and status not in ("open", "acknowledged", "withdrawn"):
        raise InvalidParameter(f"`status` was {status!r} but is expected to be one of "
                               "['open', 'acknowledged', 'withdrawn']")
    if city is not None and not (len(city) == 6 and city.isdigit()):
        raise InvalidParameter(f"`city` was {city[:20]!r} but is expected to be a 6-digit city code")
    if not 1 <= limit <= 5000:
        raise InvalidParameter(f"`limit` was {limit} but is expected to be between 1 and 5000")
    rows = conn.execute(sql.SQL(
        """SELECT e.id, e.kind, e.station_key, m.name AS station_name, e.parameter, e.observed_at, e.value,
                  p.unit, (%(roman)s::text[])[e.water_class] AS water_class, (%(roman)s::text[])[e.target_class]
                  AS target_class, e.owner_city, e.upstream_city, e.downstream_city, e.status, e.message_zh,
                  e.message_en, e.batch_id, e.created_at, e.acknowledged_at, e.acknowledged_by, e.notice_id,
                  m.synthetic
           FROM {ev} e LEFT JOIN {st} m ON m.key = e.station_key LEFT JOIN {par} p ON p.code = e.parameter
           WHERE (%(city)s::text IS NULL OR e.downstream_city = %(city)s)
             AND (%(status)s::text IS NULL OR e.status = %(status)s)
             AND (%(since)s::timestamptz IS NULL OR e.observed_at >= %(since)s)
           ORDER BY e.observed_at DESC, e.id DESC LIMIT %(limit)s""").format(
        ev=relation("observation_event"), st=relation("monitoring_station"), par=relation("obs_parameter")),
        {"city": city, "status": status, "since": since, "limit": limit, "roman": list(ROMAN)}).fetchall()
    return [dict(r) for r in rows]


def acknowledge(conn: psycopg.Connection, event_id: int, user: str) -> dict[str, Any] | None:
    """Mark an open event acknowledged by ``user``; None when the actor may not (or it does not exist)."""
    row = conn.execute(sql.SQL(
        """UPDATE {} SET status = 'acknowledged', acknowledged_at = clock_timestamp(), acknowledged_by = %s
           WHERE id = %s AND status = 'open' RETURNING id, status, acknowledged_at, acknowledged_by""").format(
        relation("observation_event")), (user, event_id)).fetchone()
    return dict(row) if row else None
