-- 0006: the public sees a Q band, not Q (DESIGN 9).  For a source holding one substance, Q times the
-- substance's HJ 169 critical quantity is the stored tonnage, a restricted field; so q_value becomes
-- restricted (layers/catalogue.py) and risk_source gains q_band, the HJ 941-2018 band of q_value:
--   Q0  Q < 1 (graded general directly)   Q1  1 <= Q < 10   Q2  10 <= Q < 100   Q3  Q >= 100
-- services.grading writes q_band with q_value in one statement (from the bands of
-- layers/data/hj941_grading.yaml); any other writer of q_value (a file that carries a Q, an UPDATE by
-- hand) gets the band derived here, so the two never disagree.

CREATE FUNCTION riskatlas.q_band(q double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN q IS NULL THEN NULL
                WHEN q < 1 THEN 'Q0'
                WHEN q < 10 THEN 'Q1'
                WHEN q < 100 THEN 'Q2'
                ELSE 'Q3' END
$$;

ALTER TABLE riskatlas.risk_source
    ADD COLUMN q_band text CHECK (q_band IN ('Q0', 'Q1', 'Q2', 'Q3'));

-- A writer that sets q_value without a band of its own (an insert without q_band, an update that
-- leaves q_band as it was) gets the band of the new q_value.
CREATE FUNCTION riskatlas.follow_q_value() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.q_band IS NULL THEN
            NEW.q_band := riskatlas.q_band(NEW.q_value);
        END IF;
    ELSIF NEW.q_value IS DISTINCT FROM OLD.q_value AND NEW.q_band IS NOT DISTINCT FROM OLD.q_band THEN
        NEW.q_band := riskatlas.q_band(NEW.q_value);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER risk_source_q_band BEFORE INSERT OR UPDATE OF q_value ON riskatlas.risk_source
    FOR EACH ROW EXECUTE FUNCTION riskatlas.follow_q_value();

-- Backfill without writing row history: the band adds no information to the rows' past versions.
ALTER TABLE riskatlas.risk_source DISABLE TRIGGER risk_source_history_update;
UPDATE riskatlas.risk_source SET q_band = riskatlas.q_band(q_value) WHERE q_value IS NOT NULL;
ALTER TABLE riskatlas.risk_source ENABLE TRIGGER risk_source_history_update;
