"""Observations: station measurements, their ingest (files and push), water classes and section events,
and the section ledger derived from them (issue 13, DESIGN 12).

Modules: ``parameters`` (the parameter catalogue), ``ingest`` (validation and the set-based upsert shared
by files and the push API), ``events`` (exceedances at cross-border sections), ``derive`` (monthly
section records from observations).
"""
