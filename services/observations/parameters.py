"""The observation parameter catalogue (``layers/data/obs_parameters.csv``), for services and readers.

``parameters()`` maps each code (``pm25``, ``nh3n``, ...) to a :class:`Parameter` with its canonical
unit, the accepted units and their factors, the plausible range, and the GB 3838 factor or HJ 633
pollutant it is judged by.  The table itself is read in ``layers.obs_parameters`` (the ETL needs it too).
"""

from __future__ import annotations

from layers.obs_parameters import Parameter, normalise_unit, parameters

__all__ = ["Parameter", "by_medium", "normalise_unit", "parameters"]


def by_medium(medium: str) -> dict[str, Parameter]:
    """The parameters of one medium ('air' or 'water'), by code."""
    return {c: p for c, p in parameters().items() if p.medium == medium}
