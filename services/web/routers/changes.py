"""``/changes``: the change feed for neighbours (JSON, Atom, JSON Feed), cities' subscriptions to it and
the alerts they raise. Thin handlers over ``services.feed``; row-level security scopes subscriptions and
alerts to the caller's city, and the view the feed reads drops the fields the caller may not see.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from services.errors import Forbidden, InvalidParameter
from services.feed import (
    atom,
    delete_subscription,
    jsonfeed,
    list_alerts,
    list_subscriptions,
    mark_seen,
    parse_query,
    read_changes,
    require_city_actor,
    subscribe_async,
    subscription_city,
)
from services.web.deps import IdentityDep, PoolDep, ReadPoolDep, connection
from services.web.ogc.execute import read_connection
from services.web.ogc.render import json_response

router = APIRouter(tags=["Change feed"])
FORMATS = {"json": "application/json", "atom": "application/atom+xml", "jsonfeed": "application/feed+json"}


@router.get("/changes", summary="Inserts, updates and deletions of inventory rows (JSON, Atom, JSON Feed)",
            description="From the row history: who (user, city), when, old and new, oldest first. Restricted "
                        "fields are left out for roles that may not see them, and an update that changed only "
                        "such fields is not listed for them. `since`/`until`: RFC 3339 instants (no offset: China "
                        "Standard Time). `near_city` + `within_m`: rows whose old or new location lies within that "
                        "many metres (geodesic) of the city's border with its neighbours. Pages: `after` = the "
                        "last id of the previous page (the `next` link). `f`: json (default), atom, jsonfeed.",
            responses={200: {"content": {t: {} for t in FORMATS.values()}}})
async def changes(request: Request, pool: ReadPoolDep, identity: IdentityDep,
                  since: Annotated[str | None, Query(max_length=40)] = None,
                  until: Annotated[str | None, Query(max_length=40)] = None,
                  layer: Annotated[str | None, Query(max_length=40)] = None,
                  near_city: Annotated[str | None, Query(max_length=6)] = None,
                  within_m: Annotated[float | None, Query()] = None,
                  after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
                  limit: Annotated[int | None, Query()] = None,
                  f: Annotated[str, Query(max_length=10, description="json, atom or jsonfeed")] = "json",
                  ) -> Response:
    if f not in FORMATS:
        raise InvalidParameter(f"`f` was {f[:10]!r} but is expected to be one of {list(FORMATS)}")
    q = parse_query(since, until, layer, near_city, within_m, after, limit)
    async with read_connection(pool, identity) as conn:
        page = await read_changes(conn, q)
    self_url = str(request.url)
    next_url = None
    if page.next_after is not None:
        next_url = str(request.url.replace_query_params(**q.params(), after=str(page.next_after), f=f))
    if f == "atom":
        return Response(atom(page, self_url, next_url), media_type=FORMATS["atom"] + "; charset=utf-8")
    if f == "jsonfeed":
        return json_response(jsonfeed(page, self_url, next_url), FORMATS["jsonfeed"])
    doc: dict[str, Any] = page.to_dict()
    doc["links"] = [{"rel": "self", "href": self_url, "type": FORMATS["json"]}]
    if next_url:
        doc["links"].append({"rel": "next", "href": next_url, "type": FORMATS["json"]})
    doc["next"] = next_url
    return json_response(doc)


class SubscriptionIn(BaseModel):
    """A city's standing question to the feed."""

    layer: str = Field("risk_source", max_length=40)
    min_level: str | None = Field(None, max_length=20, description="general, larger or major (HJ 941-2018)")
    within_m: float = Field(5000.0, description="distance from the city's border, metres")
    others_only: bool = Field(True, description="only rows lying in another city")
    label: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=6, description="administrators only: the city subscribing")


@router.get("/changes/subscriptions", summary="The caller's city's subscriptions to the change feed")
async def subscriptions(pool: PoolDep, identity: IdentityDep,
                        city: Annotated[str | None, Query(max_length=6)] = None) -> Response:
    code = subscription_city(identity, city)
    async with connection(pool, identity) as conn:
        return json_response({"city": code, "subscriptions": await list_subscriptions(conn, code)})


@router.post("/changes/subscriptions", status_code=201, summary="Subscribe the caller's city to changes near its border")
async def create_subscription(pool: PoolDep, identity: IdentityDep, body: SubscriptionIn) -> Response:
    code = subscription_city(identity, body.city)
    try:
        async with connection(pool, identity) as conn:
            sub = await subscribe_async(conn, code, body.layer, body.min_level, body.within_m, body.others_only,
                                        body.label)
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden(f"this key may not subscribe for city {code}") from None
    return json_response(sub, status_code=201)


@router.delete("/changes/subscriptions/{sub_id}", status_code=204, summary="Remove one of the city's subscriptions")
async def remove_subscription(pool: PoolDep, identity: IdentityDep,
                              sub_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    require_city_actor(identity)
    async with connection(pool, identity) as conn:
        await delete_subscription(conn, sub_id)
    return Response(status_code=204)


@router.get("/changes/alerts", summary="The caller's city's alerts from its subscriptions, newest first")
async def alerts(pool: PoolDep, identity: IdentityDep,
                 city: Annotated[str | None, Query(max_length=6)] = None,
                 unseen: Annotated[bool, Query(description="only alerts nobody has marked seen")] = False,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    code = subscription_city(identity, city)
    async with connection(pool, identity) as conn:
        rows = await list_alerts(conn, code, unseen_only=unseen, limit=limit)
    return json_response({"city": code, "alerts": rows, "numberReturned": len(rows)})


@router.post("/changes/alerts/{alert_id}/seen", summary="Mark one of the city's alerts seen")
async def alert_seen(pool: PoolDep, identity: IdentityDep,
                     alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    require_city_actor(identity)
    async with connection(pool, identity) as conn:
        return json_response(await mark_seen(conn, alert_id, identity.user))
