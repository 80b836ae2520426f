"""Settings, read from the environment (prefix ``RISKATLAS_``) and injected, never global."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the database is, or where the project's own PostgreSQL cluster lives.

    Without ``DATABASE_URL`` riskatlas runs its own cluster in ``state_dir``; with it, that server
    is used as is (the URL's user must own the schema; ``RISKATLAS_APP_DATABASE_URL`` optionally
    names the least-privileged role the service connects as).
    """

    model_config = SettingsConfigDict(env_prefix="RISKATLAS_", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    app_database_url: str | None = None
    state_dir: Path = Path(".riskatlas")
    pg_port: int = Field(default=55432, ge=1024, le=65535)
    pg_version: int = 15
    db_name: str = "riskatlas"
    owner_role: str = "riskatlas_owner"
    app_role: str = "riskatlas_app"
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    @property
    def managed(self) -> bool:
        """True when riskatlas runs its own cluster."""
        return self.database_url is None

    def with_db(self, db_name: str) -> "DatabaseSettings":
        """The same settings pointing at another database of the same cluster."""
        return self.model_copy(update={"db_name": db_name})
