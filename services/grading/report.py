"""What a grading run did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class GradeRunReport:
    """What a run did: how many sources, graded, pending M (Q and E graded, a medium's M missing),
    rejected, changed; how many used one M for both media; levels; time per pass."""

    run_id: int | None
    scope: str
    batch_id: int | None
    sources: int = 0
    graded: int = 0
    pending: int = 0
    one_m_for_both: int = 0
    rejected: int = 0
    changed: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every source was graded, 1 when some were rejected."""
        return 1 if self.rejected else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}
