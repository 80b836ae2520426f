"""The change feed for neighbours (DESIGN 11): what changed in the inventory, who changed it, old and new,
restricted fields filtered by role, by layer, time and distance from a city's border; as JSON, Atom and
JSON Feed; and cities' subscriptions that turn matching changes into in-app alerts and an e-mail digest.

``changes`` reads the feed, ``formats`` writes Atom and JSON Feed, ``alerts`` holds subscriptions,
the set-based matching and the alerts.
"""

from services.feed.alerts import (
                                  check_subscription,
                                  delete_subscription,
                                  digest,
                                  list_alerts,
                                  list_alerts_sync,
                                  list_subscriptions,
                                  mark_seen,
                                  match,
                                  require_city_actor,
                                  subscribe,
                                  subscribe_async,
                                  subscription_city,
)
from services.feed.changes import ChangePage, ChangeQuery, parse_query, read_changes, read_changes_sync
from services.feed.formats import atom, jsonfeed

__all__ = ["ChangePage", "ChangeQuery", "atom", "check_subscription", "delete_subscription", "digest", "jsonfeed",
           "list_alerts", "list_alerts_sync", "list_subscriptions", "mark_seen", "match", "parse_query",
           "read_changes", "read_changes_sync", "require_city_actor", "subscribe", "subscribe_async", "subscription_city"]
