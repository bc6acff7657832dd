-- Full-text search and the deadline watcher's index (issue 22 items 1 and 5).
--
-- ticket_search: one tsvector per ticket (configuration `simple`: no stemming, no stop
-- words, so a street name or a slang word is found as written) over its code, place,
-- kecamatan and reporter's name (weight A) and the text of its inbound messages, with a
-- GIN index. Kept by triggers in the same transaction as every write that changes it
-- (aduan_search_refresh recomputes the ticket's document). Diacritics are folded by
-- aduan_fold (translate over Latin letters), not by the unaccent extension, which needs
-- contrib and a CREATE EXTENSION the database owner may not be allowed. Why tsvector and
-- not pg_trgm: see crates/aduan-store/src/ops/view.rs.
CREATE FUNCTION aduan_fold(s text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN translate(lower(s), 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ', 'aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyy');

CREATE TABLE ticket_search (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    doc       tsvector NOT NULL
);
CREATE INDEX ticket_search_doc ON ticket_search USING gin (doc);

CREATE FUNCTION aduan_search_doc(tid bigint) RETURNS tsvector LANGUAGE sql STABLE
    RETURN (SELECT setweight(to_tsvector('simple', aduan_fold(t.code || ' '
                || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' '
                || coalesce(r.name, ''))), 'A')
            || to_tsvector('simple', aduan_fold(coalesce((SELECT string_agg(m.text, ' ' ORDER BY m.id)
                FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'in'), '')))
        FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id WHERE t.id = tid);

CREATE FUNCTION aduan_search_refresh(tid bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF tid IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO ticket_search (ticket_id, doc)
        SELECT tid, d FROM aduan_search_doc(tid) AS d WHERE d IS NOT NULL
        ON CONFLICT (ticket_id) DO UPDATE SET doc = EXCLUDED.doc;
END $$;

CREATE FUNCTION ticket_search_ticket_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM aduan_search_refresh(NEW.id);
    RETURN NULL;
END $$;
-- A new ticket gets its document with its first message (same transaction).
CREATE TRIGGER ticket_search_ticket_au AFTER UPDATE OF code, place, kecamatan, reporter_id
    ON tickets FOR EACH ROW
    WHEN (OLD.code IS DISTINCT FROM NEW.code OR OLD.place IS DISTINCT FROM NEW.place
          OR OLD.kecamatan IS DISTINCT FROM NEW.kecamatan
          OR OLD.reporter_id IS DISTINCT FROM NEW.reporter_id)
    EXECUTE FUNCTION ticket_search_ticket_trg();

CREATE FUNCTION ticket_search_message_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'in' THEN
        PERFORM aduan_search_refresh(OLD.ticket_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.direction = 'in'
       AND (TG_OP = 'INSERT' OR NEW.ticket_id IS DISTINCT FROM OLD.ticket_id) THEN
        PERFORM aduan_search_refresh(NEW.ticket_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_search_message_ai AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION ticket_search_message_trg();
CREATE TRIGGER ticket_search_message_au AFTER UPDATE OF text, ticket_id ON messages
    FOR EACH ROW
    WHEN (OLD.text IS DISTINCT FROM NEW.text OR OLD.ticket_id IS DISTINCT FROM NEW.ticket_id)
    EXECUTE FUNCTION ticket_search_message_trg();

CREATE FUNCTION ticket_search_reporter_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM aduan_search_refresh(t.id) FROM tickets t WHERE t.reporter_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_search_reporter_au AFTER UPDATE OF name ON reporters FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION ticket_search_reporter_trg();

-- The backfill, set-based (the same document as aduan_search_doc).
INSERT INTO ticket_search (ticket_id, doc)
    SELECT t.id, setweight(to_tsvector('simple', aduan_fold(t.code || ' '
                || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' '
                || coalesce(r.name, ''))), 'A')
            || to_tsvector('simple', aduan_fold(coalesce(m.body, '')))
    FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id
    LEFT JOIN (SELECT ticket_id, string_agg(text, ' ' ORDER BY id) AS body FROM messages
               WHERE direction = 'in' GROUP BY ticket_id) m ON m.ticket_id = t.id;

-- The deadline watcher's index. alert_at is when the watcher must next look at a ticket:
-- '-infinity' when it must look now, the time the next warning or escalation falls due,
-- or NULL when no clock of the ticket can alert (closed, paused, merged, awaiting the
-- resident, every clock escalated). New tickets start at '-infinity'; any change to a
-- ticket's clocks sets it again (trigger, before the row is written); the watcher writes
-- the time it computed (`Store::alert_reschedule`). A round reads only `alert_at <= now`.
ALTER TABLE tickets ADD COLUMN alert_at TIMESTAMPTZ DEFAULT '-infinity';
UPDATE tickets SET alert_at = CASE WHEN status IN ('new', 'assigned', 'in_progress')
    AND paused_at IS NULL AND merged_into IS NULL THEN '-infinity'::timestamptz END;
CREATE INDEX tickets_alert ON tickets (alert_at) WHERE alert_at IS NOT NULL;

CREATE FUNCTION tickets_alert_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.alert_at := CASE WHEN NEW.status IN ('new', 'assigned', 'in_progress')
        AND NEW.paused_at IS NULL AND NEW.merged_into IS NULL
        THEN '-infinity'::timestamptz END;
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_alert_bu BEFORE UPDATE OF status, paused_at, merged_into,
    first_responded_at, first_response_due_at, resolution_due_at, first_response_budget,
    resolution_budget ON tickets FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.paused_at IS DISTINCT FROM NEW.paused_at
          OR OLD.merged_into IS DISTINCT FROM NEW.merged_into
          OR OLD.first_responded_at IS DISTINCT FROM NEW.first_responded_at
          OR OLD.first_response_due_at IS DISTINCT FROM NEW.first_response_due_at
          OR OLD.resolution_due_at IS DISTINCT FROM NEW.resolution_due_at
          OR OLD.first_response_budget IS DISTINCT FROM NEW.first_response_budget
          OR OLD.resolution_budget IS DISTINCT FROM NEW.resolution_budget)
    EXECUTE FUNCTION tickets_alert_trg();
