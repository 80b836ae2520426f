-- Grading writes the levels of every source it grades (q_value, q_band, air_level, water_level, risk_level,
-- grade_label, grade_status).  PostgreSQL updates a row in place, without touching any index (a HOT
-- update), only when no indexed column changes (partial-index predicates count) and the new version fits
-- on the row's page beside the old one, which stays until the transaction ends.  Before this migration a
-- first grade moved every row to a new page and into all seven indexes of risk_source (two of them GiST):
-- 85 s of the 227 s a million sources took.
--
-- 1. No index on a column grading writes.  risk_source_level (risk_level, category) served no query: a
--    level is one of three values, a filter by it reads a third of the table, by a scan or through the
--    city, owner or geometry indexes it is combined with.  The partial index of sources pending M served
--    `riskatlas grade --pending` and `filter=grade_status = 'pending-m'`, a scan of the table now
--    (a few hundred milliseconds at a million sources).
-- 2. Room on every page for the graded version of each of its rows: a source before its first grade is
--    about 370 bytes, after it about 460, and both versions share the page until the grade commits, so a
--    page can be filled to about 45 % if all its rows are to be graded in place.  The space is not lost:
--    a first grade without it leaves the table twice its loaded size as well (the old versions, dead on
--    the old pages), and the indexes twice theirs.  Measured at 202,400 sources: fillfactor 100, 1 % of
--    the updates in place; 85, 14 %; 50, 81 %; 45: 99.3 % at 1,002,400 sources.
--
-- fillfactor applies to pages written from now on: every load (COPY, INSERT) and the new version of every
-- row an update moves.  An existing database keeps its current pages until they are rewritten; nothing is
-- wrong meanwhile, only the first grade of those rows is not in place.  `VACUUM FULL riskatlas.risk_source`
-- (it locks the table while it runs) rewrites them at once.
DROP INDEX IF EXISTS riskatlas.risk_source_level;
DROP INDEX IF EXISTS riskatlas.risk_source_grade_status;
ALTER TABLE riskatlas.risk_source SET (fillfactor = 45);
