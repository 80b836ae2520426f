"""Settings, read from the environment (prefix ``RISKATLAS_``) and injected, never global."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def checkout_dir() -> Path | None:
    """The riskatlas checkout this package runs from (editable install or source tree), if any.

    That is the folder above ``layers/`` when it holds a ``pyproject.toml`` naming the ``riskatlas``
    project; an installed wheel lives in ``site-packages`` and has none.
    """
    root = Path(__file__).resolve().parents[1]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if project.get("name") == "riskatlas" else None


def default_state_dir() -> Path:
    """Where riskatlas keeps its cluster, secrets and files, wherever the command is run from.

    In order: ``RISKATLAS_HOME``; the checkout's ``.riskatlas`` when riskatlas runs from a checkout;
    the user's state folder (``$XDG_STATE_HOME/riskatlas`` or ``~/.local/state/riskatlas``).
    ``RISKATLAS_STATE_DIR``, when set, overrides all of them (it is the field itself).  Never the
    current directory.
    """
    home = os.environ.get("RISKATLAS_HOME")
    if home:
        return Path(home).expanduser().absolute()
    checkout = checkout_dir()
    if checkout is not None:
        return checkout / ".riskatlas"
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "riskatlas"


class DatabaseSettings(BaseSettings):
    """Where the database is, or where the project's own PostgreSQL cluster lives.

    Without ``DATABASE_URL`` riskatlas runs its own cluster in ``state_dir`` (see
    :func:`default_state_dir`: never a folder relative to where a command is run); with it, that server
    is used as is (the URL's user must own the schema; ``RISKATLAS_APP_DATABASE_URL`` optionally
    names the least-privileged role the service connects as).
    """

    model_config = SettingsConfigDict(env_prefix="RISKATLAS_", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    app_database_url: str | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    pg_port: int = Field(default=55432, ge=1024, le=65535)
    pg_version: int = 15
    db_name: str = "riskatlas"
    owner_role: str = "riskatlas_owner"
    app_role: str = "riskatlas_app"
    statement_timeout_ms: int = Field(default=30_000, ge=100)
    # Backups: base backups, the continuous WAL archive and logical dumps live in this folder (a mounted
    # volume in production); default: ``backups`` beside the cluster's data folder.
    backup_dir: Path | None = None
    # The archive and ``db backup`` refuse to fill the backup folder's disk beyond this reserve (MiB).
    backup_reserve_mb: int = Field(default=256, ge=0)
    # Base backups kept by ``db backup`` (older ones, and the WAL only they needed, are removed).
    backup_keep: int = Field(default=2, ge=1)
    # The local streaming replica (``riskatlas db replica start``): its port (default pg_port + 1), and
    # the role it replicates as. ``replica_url`` names a replica elsewhere for the API's reads.
    replica_port: int | None = Field(default=None, ge=1024, le=65535)
    replica_url: str | None = None
    replication_role: str = "riskatlas_replicator"

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """A given state folder is taken as of now, so that a later ``chdir`` cannot move it."""
        return value.expanduser().absolute()

    @field_validator("backup_dir")
    @classmethod
    def _plain_path(cls, value: Path | None) -> Path | None:
        """The folder goes into PostgreSQL's archive_command: no quotes, dollars or backslashes."""
        if value is None:
            return None
        value = value.expanduser().absolute()
        bad = set(str(value)) & set("'\"$`\\\n")
        if bad:
            raise ValueError(f"backup_dir {str(value)!r} holds {sorted(bad)}; choose a folder name without them")
        return value

    @property
    def replica_pg_port(self) -> int:
        """The port of the local replica: ``replica_port``, else the primary's port + 1."""
        return self.replica_port or self.pg_port + 1

    @property
    def managed(self) -> bool:
        """True when riskatlas runs its own cluster."""
        return self.database_url is None

    def with_db(self, db_name: str) -> DatabaseSettings:
        """The same settings pointing at another database of the same cluster."""
        return self.model_copy(update={"db_name": db_name})
