-- The observation write trigger of 0010, faster on large batches: the latest value per station and
-- parameter is found by a hashed max over the statement's rows joined back (about 70 ms for 260 000 rows)
-- instead of a DISTINCT ON sort of them all (about 1 s); the owner check groups instead of sorting.  Same
-- rules, same results: every row's owner_city is its station's owner city; a changed value or flag goes
-- to observation_history; observation_latest keeps the newest value of each station and parameter.
CREATE OR REPLACE FUNCTION riskatlas.observation_after_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
DECLARE
    bad   record;
    who   text := riskatlas.acting_user();
    city  text := CASE WHEN coalesce(current_setting('riskatlas.ctx', true), '') = '' THEN NULL
                       ELSE riskatlas.actor_city() END;
    batch bigint := nullif(current_setting('riskatlas.batch_id', true), '')::bigint;
BEGIN
    SELECT n.station_key, n.owner_city, m.owner_city AS station_owner, m.key IS NOT NULL AS known
      INTO bad
      FROM (SELECT station_key, owner_city FROM new_rows GROUP BY station_key, owner_city) n
      LEFT JOIN riskatlas.monitoring_station m ON m.key = n.station_key
     WHERE m.owner_city IS DISTINCT FROM n.owner_city
     LIMIT 1;
    IF bad.station_key IS NOT NULL THEN
        IF NOT bad.known THEN
            RAISE EXCEPTION 'station % is not in monitoring_station', bad.station_key USING ERRCODE = '23503';
        END IF;
        RAISE EXCEPTION 'station % is owned by city %, not by city %', bad.station_key,
              coalesce(bad.station_owner, '(none)'), bad.owner_city USING ERRCODE = '42501';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO riskatlas.observation_history (station_key, parameter, observed_at, old_value, old_flag,
                                                   old_batch_id, new_value, new_flag, batch_id, changed_by, acting_city)
        SELECT o.station_key, o.parameter, o.observed_at, o.value, o.flag, o.batch_id, n.value, n.flag,
               coalesce(n.batch_id, batch), who, city
        FROM old_rows o JOIN new_rows n USING (station_key, parameter, observed_at)
        WHERE (o.value, o.flag) IS DISTINCT FROM (n.value, n.flag);
    END IF;
    INSERT INTO riskatlas.observation_latest AS l (station_key, parameter, observed_at, value, flag, owner_city, batch_id)
    SELECT n.station_key, n.parameter, n.observed_at, n.value, n.flag, n.owner_city, n.batch_id
    FROM (SELECT station_key, parameter, max(observed_at) AS observed_at FROM new_rows
          GROUP BY station_key, parameter) m
    JOIN new_rows n USING (station_key, parameter, observed_at)   -- one row each: the key is unique
    ON CONFLICT (station_key, parameter) DO UPDATE SET observed_at = EXCLUDED.observed_at, value = EXCLUDED.value,
        flag = EXCLUDED.flag, owner_city = EXCLUDED.owner_city, batch_id = EXCLUDED.batch_id
    WHERE EXCLUDED.observed_at >= l.observed_at;
    RETURN NULL;
END $$;
