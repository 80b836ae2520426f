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
    key_cache_seconds: float = Field(default=60.0, ge=0)  # a verified key's context is reused this long
    # JSON {"key": {"user": "...", "role": "analyst", "city": null}}, imported into the database at start
    api_keys_file: Path | None = None
    basemap_url: str | None = None  # a custom XYZ basemap, offered as the "custom" preset
    # Online basemap presets the map's switcher offers besides the offline one (maps.basemaps.PRESETS):
    # e.g. RISKATLAS_API_BASEMAPS='["tianditu-vec","osm"]'; the offline map is always first and the default.
    basemaps: tuple[str, ...] = ()
    tianditu_key: str | None = None
    tile_max_features: int = Field(default=20_000, ge=1)
    tile_cache_seconds: int = Field(default=60, ge=0)
    # Tiles kept on disk (services.tiles), retired exactly where the data changes; 0 turns the cache off.
    tile_cache_mb: int = Field(default=512, ge=0)
    # The planner's map asks for risk-source tiles holding more sources than this as counts per cell.
    map_bins_above: int = Field(default=4000, ge=1, le=100_000)
    # Bins of low zooms read from the counts per cell the database keeps (migration 0020); off, they are
    # aggregated from the points of each tile (the same counts, slower: for comparison).
    bin_grid: bool = True
    max_bbox_degrees: float = Field(default=20.0, gt=0)
    max_filter_depth: int = Field(default=20, ge=1)
    max_upload_bytes: int = Field(default=200 * 1024**2, ge=1024)
    # Request bodies other than uploads are JSON requests of a few KiB; this bounds what is read and parsed.
    max_body_bytes: int = Field(default=1024**2, ge=1024)
    # A push of observations (POST /observations) carries up to 100 000 items of ~100 bytes.
    max_push_bytes: int = Field(default=16 * 1024**2, ge=1024)
    # Statement time per request: anonymous callers get a few seconds, callers with a key more.
    statement_timeout_public_ms: int = Field(default=5_000, ge=100)
    statement_timeout_identified_ms: int = Field(default=30_000, ge=100)
    # How long a request waits for a pooled connection before it is told the service is busy (503).
    pool_timeout_s: float = Field(default=10.0, gt=0)
    # Token buckets: requests per second sustained and the burst allowed, per client address (anonymous
    # requests, and failed authentications) and per API key. The web map asks for dozens of tiles at each
    # pan or filter change, hence the large bursts. A failed authentication costs
    # ``rate_auth_failure_cost`` tokens of the address, so guessing keys is throttled after a few tries.
    rate_per_address: float = Field(default=50.0, gt=0)
    rate_burst_per_address: float = Field(default=1500.0, ge=1)
    rate_per_key: float = Field(default=100.0, gt=0)
    rate_burst_per_key: float = Field(default=3000.0, ge=1)
    rate_auth_failure_cost: float = Field(default=100.0, ge=1)
    rate_exempt_paths: tuple[str, ...] = ("/health",)
    # The read replica (RISKATLAS_REPLICA_URL, or the local one of `riskatlas db replica start`): reads go
    # there while it is reachable and at most ``replica_max_lag_s`` behind; it is checked this often.
    read_replica: bool = True
    replica_max_lag_s: float = Field(default=30.0, gt=0)
    replica_check_interval_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _limits(self) -> APISettings:
        from maps.basemaps import PRESETS

        unknown = [n for n in self.basemaps if n not in PRESETS]
        if unknown:
            raise ValueError(f"basemaps: unknown presets {unknown}; the presets are {list(PRESETS)}")
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit {self.default_limit} exceeds max_limit {self.max_limit}")
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min {self.pool_min} exceeds pool_max {self.pool_max}")
        if self.statement_timeout_public_ms > self.statement_timeout_identified_ms:
            raise ValueError(f"statement_timeout_public_ms {self.statement_timeout_public_ms} exceeds "
                             f"statement_timeout_identified_ms {self.statement_timeout_identified_ms}")
        return self
