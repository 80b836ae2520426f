"""What a load did, for people (a rich table) and for programs (JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from etl.normalise import Reject, Repair


@dataclass
class LoadReport:
    """Counts, status, every rejected row with its reason and every repaired row with what changed.

    ``repaired`` counts the loaded rows that were repaired; ``repairs`` lists each change (row, field,
    what), e.g. ``{"row_no": 12, "field": "geometry", "what": "ring closed"}``.
    """

    file: str
    layer: str
    sha256: str
    rows_in: int
    crs: str
    status: str = "committed"
    batch_id: int | None = None
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    repaired: int = 0
    dry_run: bool = False
    rejects: list[Reject] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    #: Wall-clock seconds of each pass, in order: read, validate, stage, jurisdiction, upsert (its triggers
    #: and, into an empty table, the index builds included), bookkeeping, analyze.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows_loaded(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_unchanged

    @property
    def exit_code(self) -> int:
        """0 when every row loaded, 1 when some were rejected, 2 when nothing loaded."""
        if self.rows_loaded == 0 and self.rows_in > 0:
            return 2
        return 1 if self.rows_rejected else 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the CLI's ``--json``, the upload endpoint's body)."""
        out = asdict(self)
        out["rows_loaded"] = self.rows_loaded
        out["exit_code"] = self.exit_code
        return out
