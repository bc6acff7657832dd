-- A new ticket's search document is built in the message trigger itself (issue 22 item 4:
-- PostgreSQL intake).
--
-- A ticket's first inbound message found no document to append to and called
-- aduan_search_refresh (PL/pgSQL), which ran `INSERT ... SELECT FROM aduan_search_doc(tid)`
-- (PL/pgSQL again), whose subquery read the ticket's messages back with an ordered
-- string_agg. Under a new-sender intake load that chain was the largest part of the ticket
-- statement: 0.20-0.30 ms of its 0.40 ms per message (pg_stat_statements, track = all).
--
-- A ticket has a document from its first inbound message on (the trigger since 0022; a
-- merge moving messages, an edit or a delete rebuilds it; tickets before 0022 were
-- backfilled), so a ticket WITHOUT a document has no other inbound message: its document is
-- the weight-A part of the ticket and its reporter, followed by this message's words, which
-- is exactly what aduan_search_doc builds for it. That is inserted in one statement here.
-- Should another transaction have written the ticket's document meanwhile (two first
-- messages of an existing ticket at once), this message's words are appended to the
-- committed document, as a follow-up's are (before, the conflict overwrote it with a
-- document built from this statement's snapshot, which missed the other message).
-- Appends, edits, deletes and moves are as before (0024).
CREATE OR REPLACE FUNCTION ticket_search_message_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.direction = 'in' AND NEW.ticket_id IS NOT NULL THEN
            UPDATE ticket_search SET doc = doc || to_tsvector('simple', aduan_fold(NEW.text))
                WHERE ticket_id = NEW.ticket_id;
            IF NOT FOUND THEN
                INSERT INTO ticket_search (ticket_id, doc)
                    SELECT t.id, setweight(to_tsvector('simple', aduan_fold(t.code || ' '
                            || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' '
                            || coalesce(r.name, ''))), 'A')
                        || to_tsvector('simple', aduan_fold(coalesce(NEW.text, '')))
                    FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id
                    WHERE t.id = NEW.ticket_id
                    ON CONFLICT (ticket_id) DO UPDATE
                    SET doc = ticket_search.doc || to_tsvector('simple', aduan_fold(NEW.text));
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'in' THEN
        PERFORM aduan_search_refresh(OLD.ticket_id);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.direction = 'in'
       AND NEW.ticket_id IS DISTINCT FROM OLD.ticket_id THEN
        PERFORM aduan_search_refresh(NEW.ticket_id);
    END IF;
    RETURN NULL;
END $$;
