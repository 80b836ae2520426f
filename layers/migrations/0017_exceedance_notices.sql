-- An exceedance at a cross-border section goes out through the incident machinery (DESIGN 11 and 12):
-- the notifier (services.incidents.exceedance, run by the delivery worker as the schema owner) opens an
-- incident of kind 'exceedance' per section and parameter, with a CAP notice to the downstream city's
-- duty office; later exceedances while it is open go as CAP Updates; events withdrawn by corrections
-- all-clear it.  The event row keeps the notice it went out with (notice_id).

ALTER TABLE riskatlas.incident DROP CONSTRAINT incident_kind_check;
ALTER TABLE riskatlas.incident ADD CONSTRAINT incident_kind_check CHECK (kind IN ('spill', 'plume', 'exceedance'));

ALTER TABLE riskatlas.observation_event
    ADD CONSTRAINT observation_event_notice_fk FOREIGN KEY (notice_id) REFERENCES riskatlas.notice (id);
CREATE INDEX observation_event_pending ON riskatlas.observation_event (station_key, parameter, observed_at)
    WHERE status = 'open' AND notice_id IS NULL;
CREATE INDEX observation_event_notice ON riskatlas.observation_event (notice_id) WHERE notice_id IS NOT NULL;
CREATE INDEX incident_exceedance ON riskatlas.incident ((analysis -> 'incident' ->> 'station_key'), substance)
    WHERE kind = 'exceedance' AND status <> 'closed';

-- Which notice an event went out with is the notifier's to say: a client's insert carries none, a client's
-- update cannot change it; an event raised again after a correction withdrew it is notified again.
CREATE FUNCTION riskatlas.observation_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owner_ boolean := session_user = (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'riskatlas');
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT owner_ THEN
            NEW.notice_id := NULL;
        END IF;
    ELSIF OLD.status = 'withdrawn' AND NEW.status = 'open' THEN
        NEW.notice_id := NULL;
    ELSIF NEW.notice_id IS DISTINCT FROM OLD.notice_id AND NOT owner_ THEN
        RAISE EXCEPTION 'the notice of exceedance event % is set by the notifier, not by clients', OLD.id
              USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observation_event_guard BEFORE INSERT OR UPDATE ON riskatlas.observation_event
    FOR EACH ROW EXECUTE FUNCTION riskatlas.observation_event_guard();

-- New, re-raised or withdrawn events wake the delivery workers (the notice goes out at the next round).
CREATE FUNCTION riskatlas.observation_event_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('riskatlas_delivery', '');
    RETURN NULL;
END $$;
CREATE TRIGGER observation_event_wake AFTER INSERT OR UPDATE ON riskatlas.observation_event
    FOR EACH STATEMENT EXECUTE FUNCTION riskatlas.observation_event_wake();

-- One acknowledgement counts for both: the downstream city acknowledging the notice acknowledges the
-- events it carried, and acknowledging an event (GET /observations/events) acknowledges its notice when the
-- acting city is the one the notice is addressed to.
CREATE FUNCTION riskatlas.notice_ack_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    UPDATE riskatlas.observation_event
       SET status = 'acknowledged', acknowledged_at = NEW.acknowledged_at, acknowledged_by = NEW.acknowledged_by
     WHERE notice_id = NEW.id AND status = 'open';
    RETURN NULL;
END $$;
CREATE TRIGGER notice_ack_events AFTER UPDATE OF acknowledged_at ON riskatlas.notice
    FOR EACH ROW WHEN (OLD.acknowledged_at IS NULL AND NEW.acknowledged_at IS NOT NULL)
    EXECUTE FUNCTION riskatlas.notice_ack_events();

CREATE FUNCTION riskatlas.event_ack_notice() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = riskatlas, public AS $$
BEGIN
    UPDATE riskatlas.notice
       SET acknowledged_at = NEW.acknowledged_at, acknowledged_by = NEW.acknowledged_by, acknowledged_via = 'api'
     WHERE id = NEW.notice_id AND acknowledged_at IS NULL
       AND (riskatlas.actor_role() = 'admin' OR city = riskatlas.actor_city());
    RETURN NULL;
END $$;
CREATE TRIGGER observation_event_ack_notice AFTER UPDATE OF status ON riskatlas.observation_event
    FOR EACH ROW WHEN (OLD.status = 'open' AND NEW.status = 'acknowledged' AND NEW.notice_id IS NOT NULL)
    EXECUTE FUNCTION riskatlas.event_ack_notice();
