"""Settings of the web service (prefix ``RISKATLAS_API_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class APISettings(BaseSettings):
    """Limits, identity and presentation of the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="RISKATLAS_API_", extra="ignore")

    title: str = "riskatlas"
    description: str = "Environmental risk sources of the Nanjing metropolitan area, across city and province borders."
    default_limit: int = Field(default=100, ge=1)
    max_limit: int = Field(default=10_000, ge=1)
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=16, ge=1)
    heavy_pool_max: int = Field(default=3, ge=1)  # overlay, border hazards, river walks, plume, grading
    pool_timeout_s: float = Field(default=5.0, gt=0)  # waiting longer for a connection is a 503 "busy"
    key_cache_seconds: float = Field(default=60.0, ge=0)  # a verified key's context is reused this long
    # JSON {"key": {"user": "...", "role": "analyst", "city": null}}, imported into the database at start
    api_keys_file: Path | None = None
    basemap_url: str | None = None
    tile_max_features: int = Field(default=20_000, ge=1)
    tile_cache_seconds: int = Field(default=60, ge=0)
    max_bbox_degrees: float = Field(default=20.0, gt=0)
    max_filter_depth: int = Field(default=20, ge=1)
    max_upload_bytes: int = Field(default=200 * 1024**2, ge=1024)

    @model_validator(mode="after")
    def _limits(self) -> "APISettings":
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit {self.default_limit} exceeds max_limit {self.max_limit}")
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min {self.pool_min} exceeds pool_max {self.pool_max}")
        return self
