"""``"open_incident": true`` on ``POST /analysis/spill`` and ``/plume``: the analysis and the incident in
one call, validated like the analyses' own requests."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from services.emergency.requests import PlumeRequest, SpillRequest
from services.incidents.rules import SEVERITIES


class OpenIncidentFields(BaseModel):
    """What opening an incident adds to an analysis request."""

    open_incident: bool = Field(False, description="Also open an incident (duty officer or administrator key) "
                                                   "and send its notices; the response names the incident id")
    client_request_id: str | None = Field(
        None, min_length=1, max_length=128,
        description="Your id of this submission: the same id again returns the same incident (required with "
                    "open_incident)")
    severity: str = Field("Severe", description=f"CAP severity of the incident: one of {list(SEVERITIES)}")
    incident_description: str = Field("", max_length=4000, description="What the duty officer knows, in words")

    @model_validator(mode="after")
    def _incident(self) -> OpenIncidentFields:
        if self.open_incident and not self.client_request_id:
            raise ValueError("open_incident needs client_request_id (your id of this submission, so that sending "
                             "it twice opens one incident)")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity was {self.severity!r} but is expected to be one of {list(SEVERITIES)}")
        return self

    def analysis_request(self) -> dict[str, object]:
        """The analysis request itself, without the incident's fields."""
        return self.model_dump(exclude=set(OpenIncidentFields.model_fields))


class SpillIncidentRequest(SpillRequest, OpenIncidentFields):
    """A spill, optionally opening an incident."""


class PlumeIncidentRequest(PlumeRequest, OpenIncidentFields):
    """A release to air, optionally opening an incident."""
