-- 0007: HJ 941-2018 scores M separately for air (§6.2) and water (§7.2), and a source without M still
-- has a Q and an E worth showing.
--
-- risk_source gains m_air and m_water (the bureau's two scores); m_score stays as the one-M input of
-- older files: where a medium's own M is empty, grading uses m_score for it and says so.  grade_status
-- tells the steward which sources wait for an M: 'pending-m' when a medium has Q >= 1 and no M (its
-- level is then the range the matrix row allows; risk_level is set only when that range is one level),
-- 'graded' otherwise.  It is derived by services.grading, never read from files.
ALTER TABLE riskatlas.risk_source
    ADD COLUMN m_air integer CHECK (m_air BETWEEN 0 AND 100),
    ADD COLUMN m_water integer CHECK (m_water BETWEEN 0 AND 100),
    ADD COLUMN grade_status text CHECK (grade_status IN ('graded', 'pending-m'));

CREATE INDEX risk_source_grade_status ON riskatlas.risk_source (grade_status) WHERE grade_status = 'pending-m';

-- The grade keeps both M scores and bands, where they came from, and the range of levels.  The view
-- the application role reads grades through selects every column (m_band too): it is dropped here and
-- made again, from the new columns, by the grants that follow every migration (layers/grants.py).
DROP VIEW IF EXISTS riskatlas.risk_grade_visible;
ALTER TABLE riskatlas.risk_grade DROP CONSTRAINT risk_grade_status_check;
ALTER TABLE riskatlas.risk_grade
    ADD CONSTRAINT risk_grade_status_check CHECK (status IN ('graded', 'pending-m', 'rejected')),
    DROP COLUMN m_band,
    ADD COLUMN m_air integer,
    ADD COLUMN m_water integer,
    ADD COLUMN m_air_band text,
    ADD COLUMN m_water_band text,
    ADD COLUMN m_note text,                  -- where each medium's M came from (one M for both, ...)
    ADD COLUMN level_min text CHECK (level_min IN ('general', 'larger', 'major')),
    ADD COLUMN level_max text CHECK (level_max IN ('general', 'larger', 'major'));

-- Sources already graded: their levels were complete, so they are 'graded'.  Written without row
-- history (the status adds nothing to the rows' past versions), as 0006 did for q_band.
ALTER TABLE riskatlas.risk_source DISABLE TRIGGER risk_source_history_update;
UPDATE riskatlas.risk_source SET grade_status = 'graded' WHERE risk_level IS NOT NULL;
ALTER TABLE riskatlas.risk_source ENABLE TRIGGER risk_source_history_update;
