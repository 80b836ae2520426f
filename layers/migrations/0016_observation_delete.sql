-- A deleted observation leaves observation_latest telling the truth: after every delete statement the
-- latest value of each station and parameter it touched is read again from what remains (or removed
-- when nothing remains).  Only the owner deletes observations (the application role has no DELETE:
-- corrections are updates, kept in observation_history); a wrong batch taken out by the owner must not
-- leave the map and the public page showing its values.
CREATE FUNCTION riskatlas.observation_after_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    DELETE FROM riskatlas.observation_latest l USING (SELECT DISTINCT station_key, parameter FROM old_rows) t
     WHERE l.station_key = t.station_key AND l.parameter = t.parameter;
    INSERT INTO riskatlas.observation_latest (station_key, parameter, observed_at, value, flag, owner_city, batch_id)
    SELECT t.station_key, t.parameter, o.observed_at, o.value, o.flag, o.owner_city, o.batch_id
    FROM (SELECT DISTINCT station_key, parameter FROM old_rows) t
    CROSS JOIN LATERAL (SELECT * FROM riskatlas.observation o
                        WHERE o.station_key = t.station_key AND o.parameter = t.parameter
                        ORDER BY o.observed_at DESC LIMIT 1) o;
    RETURN NULL;
END $$;

CREATE TRIGGER observation_after_delete AFTER DELETE ON riskatlas.observation
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.observation_after_delete();
