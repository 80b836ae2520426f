"""Budgets for reading files the service did not create (environment prefix ``RISKATLAS_READ_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from etl.limits import MiB, ParseLimits


class ReadSettings(BaseSettings):
    """Limits on unpacking and parsing an upload, and who the parse runs as.

    ``parse_memory_bytes`` is the address space the parse may add to the interpreter's own, so
    the number means the same whatever the libraries it loads reserve up front.
    """

    model_config = SettingsConfigDict(env_prefix="RISKATLAS_READ_", extra="ignore")

    max_unpacked_bytes: int = Field(default=512 * MiB, ge=1024)
    max_compression_ratio: float = Field(default=200.0, gt=1)
    max_archive_members: int = Field(default=10_000, ge=1)
    parse_seconds: float = Field(default=300.0, gt=0)
    parse_cpu_seconds: int = Field(default=300, ge=1)
    parse_memory_bytes: int = Field(default=4096 * MiB, ge=MiB)
    json_full_check_bytes: int = Field(default=256 * MiB, ge=0)
    sandbox_user: str = "nobody"
    scratch_dir: Path | None = None

    def limits(self) -> ParseLimits:
        """The values the parse itself needs."""
        return ParseLimits(max_unpacked_bytes=self.max_unpacked_bytes,
                           max_compression_ratio=self.max_compression_ratio,
                           max_archive_members=self.max_archive_members,
                           json_full_check_bytes=self.json_full_check_bytes,
                           parse_cpu_seconds=self.parse_cpu_seconds,
                           parse_memory_bytes=self.parse_memory_bytes)
