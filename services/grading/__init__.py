"""HJ 941-2018 grading of risk sources, set-based, stored with the inputs that produced it.

One run grades a set of sources (all, those of one load batch, those changed since they were last
graded, or given keys) in four passes, each over the whole set at once:

1. Q for air and water from each source's substance inventory and the HJ 169 critical quantities
   (``gis.grading.q_many``: the inventory lines read flat, each distinct substance resolved once);
2. the population within 5 km and 500 m from the population raster: one array, exact cell-fraction
   sums over the geodesic circles of every source (``gis.grading.disk_sums``);
3. the water receptors within 10 km downstream and the provinces within the 24-hour reach, from one
   snap, one downstream closure and one join each (``services.river``);
4. the level matrix and the label (``gis.grading.grade_many``: ``grade`` once per distinct
   combination of bands and classes).

Results go to ``risk_grade`` (every input and the reasons) and the levels to ``risk_source`` (q_value,
q_band, air_level, water_level, risk_level, grade_label; ``q_value`` is the larger of the air and water
Q and ``q_band`` its HJ 941 band, the public's view of it) in one transaction, as the schema owner.  A
row whose grade did not change is not touched; a changed grade keeps the row's previous version in
``row_history``; a first grade keeps none.  Sources whose inventory cannot be graded (negative
quantity, unknown substance) keep their previous levels and get a ``rejected`` grade row
with the reasons.

A run that finds a source's grade unchanged (same values, computed after the source's last change, by a
run with the same tables, raster and settings) leaves its ``risk_grade`` row as it is, with the run and
time that produced it: a rerun over an unchanged inventory writes nothing.  Speed: see the README,
"Grading a large inventory" (``bench/grading_bench.py``); ``bench/grading_check.py`` shows that a change
of this code changed no grade of the demo region.

The modules: ``tables`` (the HJ 941 tables and HJ 169 critical quantities), ``compute`` (the four
passes over a set of sources), ``store`` (writing grades and levels), ``run`` (:func:`grade_sources`:
one run in one transaction), ``explain`` (one source step by step) and ``report``; ``pending`` lists
the sources waiting for an M score.

HJ 941 scores M for air and for water (``risk_source.m_air``, ``m_water``; a source with only the
one-M ``m_score`` has it used for both, and the grade's ``m_note`` says so).  A medium with Q ≥ 1 and
no M is *pending M*: Q and E are graded, the level is the range the matrix row allows over M1-M4
(``M?`` in the label), ``grade_status`` is 'pending-m' and the source is listed by
``riskatlas grade --pending``.
"""

from services.grading.compute import (
                                      GRADE_COLUMNS,
                                      POPULATION,
                                      Progress,
                                      Scope,
                                      compute,
                                      population_within,
                                      raster_of,
                                      read_lines,
                                      select_sources,
                                      water_facts,
)
from services.grading.explain import RESTRICTED_Q, explain, public_reasons
from services.grading.pending import pending_sources
from services.grading.report import GradeRunReport
from services.grading.run import grade_sources
from services.grading.tables import (
                                      SUBSTANCES_FILE,
                                      TABLES_FILE,
                                      GradingError,
                                      critical_table,
                                      load_tables,
                                      tables_sha256,
)

__all__ = [
    "GRADE_COLUMNS", "POPULATION", "RESTRICTED_Q", "SUBSTANCES_FILE", "TABLES_FILE", "GradeRunReport",
    "GradingError", "Progress", "Scope", "compute", "critical_table", "explain", "grade_sources",
    "load_tables", "pending_sources", "population_within", "public_reasons", "raster_of", "read_lines",
    "select_sources",
    "tables_sha256", "water_facts",
]
