"""What a duty officer sends: the spill and plume requests, validated once for the API and the CLI.

Every message says what was wrong and what is allowed.  Coordinates: ``x``/``y`` are longitude and
latitude for geographic CRSs (CRS84, EPSG:4326, EPSG:4490, GCJ-02, BD-09: always in that order),
easting and northing for projected ones (e.g. EPSG:4549).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gis.crs import UnknownCRS, parse_crs
from layers.substances import UnknownSubstance, lookup, substances

MAX_HORIZON_H = 720.0
MAX_SNAP_M = 50_000.0
MAX_PLUME_M = 10_000.0
OUTPUT_CRS = ("OGC:CRS84", "EPSG:4326", "EPSG:4490", "gcj02", "bd09")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_value", message)


def _positive(name: str, unit: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise _invalid(f"{name} must be a positive number of {unit}, got {value!r}")
    return value


class Incident(BaseModel):
    """Where and when, and which substance: common to a spill and a release to air."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    x: float = Field(description="Longitude, or easting in a projected CRS, of the release")
    y: float = Field(description="Latitude, or northing in a projected CRS, of the release")
    crs: str = Field("OGC:CRS84", description="CRS of x/y: CRS84, EPSG:4326, EPSG:4490, EPSG:4549, gcj02, bd09…")
    substance: str = Field(description="HJ 169 substance: CAS number, English or Chinese name")
    release_time: datetime | None = Field(
        None, description="When the release began (ISO 8601; without an offset, China time +08:00). Default: now")
    output_crs: str = Field("OGC:CRS84", description=f"CRS of the coordinates returned: one of {list(OUTPUT_CRS)}")

    @field_validator("x", "y")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise _invalid(f"coordinates must be finite numbers, got {v!r}")
        return v

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str) -> str:
        try:
            return parse_crs(v).name
        except UnknownCRS as exc:
            raise _invalid(str(exc)) from None

    @field_validator("output_crs")
    @classmethod
    def _output_crs(cls, v: str) -> str:
        try:
            name = parse_crs(v).name
        except UnknownCRS as exc:
            raise _invalid(str(exc)) from None
        if name not in OUTPUT_CRS:
            raise _invalid(f"output_crs was {v!r} but is expected to be one of {list(OUTPUT_CRS)} "
                           "(GeoJSON coordinates are longitude, latitude)")
        return name

    @field_validator("substance")
    @classmethod
    def _substance(cls, v: str) -> str:
        try:
            return lookup(v).id
        except UnknownSubstance as exc:
            raise _invalid(exc.args[0]) from None


class SpillRequest(Incident):
    """An instantaneous release into a river (DESIGN 8.5)."""

    mass_t: float = Field(description="Mass released, tonnes (> 0)")
    horizon_h: float = Field(
        72.0, description=f"How far ahead to follow the cloud, hours (0 < h <= {MAX_HORIZON_H:g})")
    snap_distance_m: float = Field(
        2_000.0, description=f"Farthest a river reach may be from the point, m (<= {MAX_SNAP_M:g})")
    receptor_distance_m: float = Field(
        1_000.0, description="Intakes and stations this close to the path are met, m (0..10000)")
    decay_per_day: float = Field(0.0, description="First-order decay rate k, 1/day (0: conservative substance)")
    dispersion_m2_s: float | None = Field(
        None, description="Longitudinal dispersion D for every reach, m²/s (e.g. from a tracer study); "
                          "default Deng et al. (2001) per reach")
    threshold_mg_l: float | None = Field(
        None, description="Concentration that counts as arrival at every point, mg/L; default the substance's "
                          "GB 3838-2002 limit for each point's water class")
    detection_limit_mg_l: float | None = Field(
        None, description="Detection limit, mg/L: the threshold where the substance has no GB 3838-2002 limit")

    @field_validator("mass_t")
    @classmethod
    def _mass(cls, v: float) -> float:
        return _positive("mass_t (the mass released)", "tonnes", v)

    @field_validator("horizon_h")
    @classmethod
    def _horizon(cls, v: float) -> float:
        _positive("horizon_h", "hours", v)
        if v > MAX_HORIZON_H:
            raise _invalid(f"horizon_h must be at most {MAX_HORIZON_H:g} hours, got {v!r}")
        return v

    @field_validator("snap_distance_m")
    @classmethod
    def _snap(cls, v: float) -> float:
        _positive("snap_distance_m", "metres", v)
        if v > MAX_SNAP_M:
            raise _invalid(f"snap_distance_m must be at most {MAX_SNAP_M:g} m, got {v!r}")
        return v

    @field_validator("receptor_distance_m")
    @classmethod
    def _receptor(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 <= v <= 10_000:
            raise _invalid(f"receptor_distance_m must be between 0 and 10000 m, got {v!r}")
        return v

    @field_validator("decay_per_day")
    @classmethod
    def _decay(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise _invalid(f"decay_per_day must be 0 or a positive rate per day, got {v!r}")
        return v

    @field_validator("dispersion_m2_s")
    @classmethod
    def _dispersion(cls, v: float | None) -> float | None:
        return None if v is None else _positive("dispersion_m2_s", "m²/s", v)

    @field_validator("threshold_mg_l", "detection_limit_mg_l")
    @classmethod
    def _threshold(cls, v: float | None) -> float | None:
        return None if v is None else _positive("a threshold (threshold_mg_l, detection_limit_mg_l)", "mg/L", v)


class PlumeRequest(Incident):
    """A continuous ground-level release to air (DESIGN 8.4)."""

    release_rate_kg_s: float = Field(description="Release rate, kg/s (> 0)")
    wind_from_deg: float = Field(description="Direction the wind blows FROM, degrees clockwise from north (0..360)")
    wind_speed_m_s: float = Field(description="Wind speed at 10 m, m/s (> 0; below 1 m/s the result is indicative)")
    stability: Literal["A", "B", "C", "D", "E", "F"] | None = Field(
        None, description="Pasquill-Gifford class; if absent it is derived from wind, day/night and sky")
    day: bool | None = Field(None, description="Daytime (true) or night (false), to derive the stability class")
    insolation: Literal["strong", "moderate", "slight"] | None = Field(None, description="By day: solar radiation")
    cloud_cover_eighths: float | None = Field(None, description="Cloud cover in eighths (0..8), needed at night")
    terrain: Literal["rural", "urban"] = Field("rural", description="Briggs rural (open country) or urban dispersion")
    endpoint1_mg_m3: float | None = Field(None, description="Override of toxic end-point 1 (mg/m³)")
    endpoint2_mg_m3: float | None = Field(None, description="Override of toxic end-point 2 (mg/m³)")
    max_distance_m: float = Field(MAX_PLUME_M, description=f"Cut the zones at this distance, m (<= {MAX_PLUME_M:g})")

    @field_validator("release_rate_kg_s")
    @classmethod
    def _rate(cls, v: float) -> float:
        return _positive("release_rate_kg_s", "kg/s", v)

    @field_validator("wind_speed_m_s")
    @classmethod
    def _wind(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise _invalid(f"wind_speed_m_s must be a positive number of m/s (the Gaussian plume needs a wind; "
                           f"in calm air use a dense-gas or puff model), got {v!r}")
        return v

    @field_validator("wind_from_deg")
    @classmethod
    def _direction(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 <= v <= 360:
            raise _invalid(f"wind_from_deg must be between 0 and 360 degrees, got {v!r}")
        return v % 360.0

    @field_validator("cloud_cover_eighths")
    @classmethod
    def _cloud(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or not 0 <= v <= 8):
            raise _invalid(f"cloud_cover_eighths must be between 0 and 8, got {v!r}")
        return v

    @field_validator("endpoint1_mg_m3", "endpoint2_mg_m3")
    @classmethod
    def _endpoint(cls, v: float | None) -> float | None:
        return None if v is None else _positive("an end-point", "mg/m³", v)

    @field_validator("max_distance_m")
    @classmethod
    def _max_distance(cls, v: float) -> float:
        _positive("max_distance_m", "metres", v)
        if v > MAX_PLUME_M:
            raise _invalid(f"max_distance_m must be at most {MAX_PLUME_M:g} m (like ALOHA, nothing is reported "
                           f"beyond 10 km), got {v!r}")
        return v

    @model_validator(mode="after")
    def _derivable(self) -> PlumeRequest:
        if self.stability is None:
            if self.day is None:
                raise _invalid("give stability (A-F), or day (true/false) with insolation by day or "
                               "cloud_cover_eighths at night so that the class can be derived")
            if self.day and self.insolation is None and self.cloud_cover_eighths != 8:
                raise _invalid("by day, insolation ('strong', 'moderate' or 'slight') is needed to derive the "
                               "stability class; or give stability (A-F)")
            if not self.day and self.cloud_cover_eighths is None:
                raise _invalid("at night, cloud_cover_eighths (0..8) is needed to derive the stability class; "
                               "or give stability (A-F)")
        sub = lookup(self.substance)
        missing = [n for n, table, given in (("endpoint1_mg_m3", sub.endpoint1_mg_m3, self.endpoint1_mg_m3),
                                              ("endpoint2_mg_m3", sub.endpoint2_mg_m3, self.endpoint2_mg_m3))
                   if table is None and given is None]
        if missing:
            with_endpoints = ", ".join(s.name_en for s in substances() if s.endpoint1_mg_m3 is not None)
            raise _invalid(f"substance {sub.name_en} ({sub.name_zh}) has no toxic end-points in HJ 169-2018 "
                           f"Table H.1: give {' and '.join(missing)}, or use one with end-points: {with_endpoints}")
        return self


class BulletinRequest(BaseModel):
    """One incident's warning bulletin: a spill, a release to air, or both (e.g. a burning tank by a river)."""

    model_config = ConfigDict(extra="forbid")

    spill: SpillRequest | None = None
    plume: PlumeRequest | None = None

    @model_validator(mode="after")
    def _one(self) -> BulletinRequest:
        if self.spill is None and self.plume is None:
            raise _invalid("give a spill, a plume, or both")
        return self


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """Pydantic errors as one sentence per field, as the API's 400 responses word them."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where or 'request'}: {e.get('msg')}")
    return "; ".join(parts)


BulletinFormat = Literal["text", "csv", "json"]


class SpillBulletinQuery(SpillRequest):
    """A spill given as query parameters, with the bulletin's format ``f``."""

    f: BulletinFormat = Field("text", description="Bulletin format: text, csv or json")

    def request(self) -> SpillRequest:
        """The spill itself, without the format."""
        return SpillRequest.model_validate(self.model_dump(exclude={"f"}))


class PlumeBulletinQuery(PlumeRequest):
    """A release to air given as query parameters, with the bulletin's format ``f``."""

    f: BulletinFormat = Field("text", description="Bulletin format: text, csv or json")

    def request(self) -> PlumeRequest:
        """The release itself, without the format."""
        return PlumeRequest.model_validate(self.model_dump(exclude={"f"}))
