"""The limits one parse works under, as plain values (the sandboxed child imports no settings library)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024**2


@dataclass(frozen=True)
class ParseLimits:
    """Sizes and budgets for unpacking and parsing one file; see ``etl.settings.ReadSettings``."""

    max_unpacked_bytes: int = 512 * MiB
    max_compression_ratio: float = 200.0
    max_archive_members: int = 10_000
    json_full_check_bytes: int = 256 * MiB
    parse_cpu_seconds: int = 300
    parse_memory_bytes: int = 4096 * MiB

    def to_dict(self) -> dict[str, Any]:
        """The limits as JSON-ready values."""
        return asdict(self)
