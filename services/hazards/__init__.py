"""Border-zone hazards: derived borders, the flags of every risk source, and the city x city matrix.

* :mod:`services.hazards.rules` -- thresholds, horizon and severity, from ``layers/data/hazard_thresholds.yaml``;
* :mod:`services.hazards.borders` -- neighbours and shared border lines, derived with a snapping tolerance;
* :mod:`services.hazards.kinds` -- the set-based SQL of each flag kind;
* :mod:`services.hazards.flags` -- full and incremental refresh (:func:`refresh_full`, :func:`refresh_after_load`);
* :mod:`services.hazards.query` and :mod:`services.hazards.matrix` -- reading the flags and the matrix.
"""

from services.hazards.flags import RefreshReport, refresh_after_load, refresh_batch, refresh_full

__all__ = ["RefreshReport", "refresh_after_load", "refresh_batch", "refresh_full"]
