"""What a nearby search may ask (origin, radius, how many, filters), and one site as it is answered."""

from __future__ import annotations

from dataclasses import dataclass

from layers.catalogue import RISK_LEVEL_ZH

#: Limits on what a client may ask (issue 3): radius in metres and number of sites.
MAX_RADIUS_M = 50_000.0
MAX_LIMIT = 200


@dataclass(frozen=True)
class NearbyQuery:
    """A nearby search in WGS84: origin, radius (m), how many, and optional category/level filters."""

    lon: float
    lat: float
    radius_m: float
    limit: int
    categories: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (-180 <= self.lon <= 180 and -90 <= self.lat <= 90):
            raise ValueError(f"origin ({self.lon}, {self.lat}) is not a WGS84 longitude/latitude")
        if not 0 < self.radius_m <= MAX_RADIUS_M:
            raise ValueError(f"radius {self.radius_m} m is outside (0, {MAX_RADIUS_M:.0f}]")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit {self.limit} is outside [1, {MAX_LIMIT}]")


@dataclass(frozen=True)
class Site:
    """One risk site with its WGS84 position, distance (m) and bearing (degrees from north, clockwise)."""

    key: str
    name: str
    category: str
    risk_level: str | None
    industry: str | None
    address: str | None
    status: str | None
    city_code: str | None
    city_name: str | None
    county_code: str | None
    county_name: str | None
    lon: float
    lat: float
    distance_m: float
    bearing_deg: float
    contact: str | None = None

    @property
    def level_zh(self) -> str | None:
        return RISK_LEVEL_ZH.get(self.risk_level or "")
