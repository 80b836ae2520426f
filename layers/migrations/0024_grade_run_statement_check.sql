-- 0024: a grade's run is checked once per statement, not once per row (issue 17, grading a million
-- sources in under a minute).
--
-- The foreign key risk_grade.run_id -> grade_run.id ran its check (a lookup and a KEY SHARE lock of the
-- run) for every row a run wrote: 2.8 s of the 8.3 s a plain insert of a million grades takes, and again
-- for every grade a later run rewrites.  A grading run writes one run id into every row, so the same
-- guarantee is given by statement-level triggers: after an insert or update of risk_grade, every run id
-- it wrote exists (those runs locked FOR KEY SHARE until the transaction ends, as the key check locked
-- them); after a delete of grade_runs or a change of their id, no grade still names one of them.  Only
-- the owner writes either table (layers/grants.py grants the application role SELECT alone); TRUNCATE
-- grade_run, an owner's act, is no longer refused while grades name it.

ALTER TABLE riskatlas.risk_grade DROP CONSTRAINT risk_grade_run_id_fkey;

CREATE FUNCTION riskatlas.check_grade_runs() RETURNS trigger
LANGUAGE plpgsql SET search_path = riskatlas, public AS $$
DECLARE
    wanted bigint;
    locked bigint;
    missing bigint;
BEGIN
    SELECT count(DISTINCT run_id) INTO wanted FROM new_rows;
    SELECT count(*) INTO locked
    FROM (SELECT 1 FROM riskatlas.grade_run r WHERE r.id IN (SELECT run_id FROM new_rows) FOR KEY SHARE) x;
    IF locked < wanted THEN
        SELECT n.run_id INTO missing FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM riskatlas.grade_run r WHERE r.id = n.run_id) LIMIT 1;
        RAISE EXCEPTION 'risk_grade names grade run % which does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER risk_grade_run_insert AFTER INSERT ON riskatlas.risk_grade
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.check_grade_runs();
CREATE TRIGGER risk_grade_run_update AFTER UPDATE ON riskatlas.risk_grade
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.check_grade_runs();

CREATE FUNCTION riskatlas.keep_graded_runs() RETURNS trigger
LANGUAGE plpgsql SET search_path = riskatlas, public AS $$
DECLARE
    named bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT g.run_id INTO named FROM old_rows o JOIN riskatlas.risk_grade g ON g.run_id = o.id LIMIT 1;
    ELSE  -- an id changed: the ids that are gone
        SELECT g.run_id INTO named
        FROM (SELECT id FROM old_rows EXCEPT SELECT id FROM new_rows) gone
        JOIN riskatlas.risk_grade g ON g.run_id = gone.id LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'grade run % is still named by risk_grade', named USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER grade_run_delete AFTER DELETE ON riskatlas.grade_run
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.keep_graded_runs();
CREATE TRIGGER grade_run_update AFTER UPDATE ON riskatlas.grade_run
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION riskatlas.keep_graded_runs();
