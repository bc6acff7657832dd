-- Full-text search and the deadline watcher's index (issue 22 items 1 and 5).
--
-- ticket_search: an FTS5 index with one document per ticket (rowid = tickets.id) over its
-- code, its place (place and kecamatan), its reporter's name and the text of its inbound
-- messages. It is external-content: the text lives in the tables, and the view
-- ticket_search_docs says what each document is. The triggers below keep it in the same
-- transaction as every write that changes a document (a new or edited message, a message
-- moved by a merge, a ticket's code, place or reporter, a reporter's name): each one first
-- removes the document as it was indexed (the FTS5 'delete' command needs the old values,
-- rebuilt here from OLD) and then inserts it as the view now shows it. Invariant: after
-- every statement, each ticket's document in the index equals its row of the view.
CREATE VIEW ticket_search_docs AS
SELECT t.id AS id,
       t.code AS code,
       trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')) AS place,
       coalesce((SELECT r.name FROM reporters r WHERE r.id = t.reporter_id), '') AS name,
       coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                 WHERE m.ticket_id = t.id AND m.direction = 'in'), '') AS body
FROM tickets t;

CREATE VIRTUAL TABLE ticket_search USING fts5 (
    code, place, name, body,
    content = 'ticket_search_docs', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER ticket_search_ticket_ai AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs WHERE id = NEW.id;
END;

CREATE TRIGGER ticket_search_ticket_au AFTER UPDATE OF code, place, kecamatan, reporter_id ON tickets
WHEN OLD.code IS NOT NEW.code OR OLD.place IS NOT NEW.place
     OR OLD.kecamatan IS NOT NEW.kecamatan OR OLD.reporter_id IS NOT NEW.reporter_id
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body) VALUES (
        'delete', OLD.id, OLD.code,
        trim(coalesce(OLD.place, '') || ' ' || coalesce(OLD.kecamatan, '')),
        coalesce((SELECT r.name FROM reporters r WHERE r.id = OLD.reporter_id), ''),
        coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                  WHERE m.ticket_id = OLD.id AND m.direction = 'in'), ''));
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs WHERE id = NEW.id;
END;

CREATE TRIGGER ticket_search_ticket_ad AFTER DELETE ON tickets BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body) VALUES (
        'delete', OLD.id, OLD.code,
        trim(coalesce(OLD.place, '') || ' ' || coalesce(OLD.kecamatan, '')),
        coalesce((SELECT r.name FROM reporters r WHERE r.id = OLD.reporter_id), ''),
        coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                  WHERE m.ticket_id = OLD.id AND m.direction = 'in'), ''));
END;

CREATE TRIGGER ticket_search_message_ai AFTER INSERT ON messages
WHEN NEW.ticket_id IS NOT NULL AND NEW.direction = 'in'
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body)
        SELECT 'delete', t.id, t.code,
            trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')),
            coalesce((SELECT r.name FROM reporters r WHERE r.id = t.reporter_id), ''),
            coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                      WHERE m.ticket_id = t.id AND m.direction = 'in' AND m.id <> NEW.id), '')
        FROM tickets t WHERE t.id = NEW.ticket_id;
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs WHERE id = NEW.ticket_id;
END;

CREATE TRIGGER ticket_search_message_ad AFTER DELETE ON messages
WHEN OLD.ticket_id IS NOT NULL AND OLD.direction = 'in'
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body)
        SELECT 'delete', t.id, t.code,
            trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')),
            coalesce((SELECT r.name FROM reporters r WHERE r.id = t.reporter_id), ''),
            coalesce((SELECT group_concat(x.text, ' ' ORDER BY x.id) FROM (
                SELECT m.id AS id, m.text AS text FROM messages m
                WHERE m.ticket_id = t.id AND m.direction = 'in'
                UNION ALL SELECT OLD.id, OLD.text) x), '')
        FROM tickets t WHERE t.id = OLD.ticket_id;
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs WHERE id = OLD.ticket_id;
END;

-- A message's direction never changes; its text (redaction) or ticket (a merge) may.
CREATE TRIGGER ticket_search_message_au AFTER UPDATE OF text, ticket_id ON messages
WHEN NEW.direction = 'in' AND (OLD.text IS NOT NEW.text OR OLD.ticket_id IS NOT NEW.ticket_id)
BEGIN
    -- The old ticket's document had this message as it was.
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body)
        SELECT 'delete', t.id, t.code,
            trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')),
            coalesce((SELECT r.name FROM reporters r WHERE r.id = t.reporter_id), ''),
            coalesce((SELECT group_concat(x.text, ' ' ORDER BY x.id) FROM (
                SELECT m.id AS id, m.text AS text FROM messages m
                WHERE m.ticket_id = t.id AND m.direction = 'in' AND m.id <> OLD.id
                UNION ALL SELECT OLD.id, OLD.text) x), '')
        FROM tickets t WHERE t.id = OLD.ticket_id;
    -- The new ticket's document (when it moved) did not have it.
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body)
        SELECT 'delete', t.id, t.code,
            trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')),
            coalesce((SELECT r.name FROM reporters r WHERE r.id = t.reporter_id), ''),
            coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                      WHERE m.ticket_id = t.id AND m.direction = 'in' AND m.id <> NEW.id), '')
        FROM tickets t WHERE t.id = NEW.ticket_id AND NEW.ticket_id IS NOT OLD.ticket_id;
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs
        WHERE id IN (OLD.ticket_id, NEW.ticket_id);
END;

CREATE TRIGGER ticket_search_reporter_au AFTER UPDATE OF name ON reporters
WHEN OLD.name IS NOT NEW.name
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, code, place, name, body)
        SELECT 'delete', t.id, t.code,
            trim(coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '')),
            coalesce(OLD.name, ''),
            coalesce((SELECT group_concat(m.text, ' ' ORDER BY m.id) FROM messages m
                      WHERE m.ticket_id = t.id AND m.direction = 'in'), '')
        FROM tickets t WHERE t.reporter_id = NEW.id;
    INSERT INTO ticket_search (rowid, code, place, name, body)
        SELECT id, code, place, name, body FROM ticket_search_docs
        WHERE id IN (SELECT t.id FROM tickets t WHERE t.reporter_id = NEW.id);
END;

INSERT INTO ticket_search (ticket_search) VALUES ('rebuild');

-- The deadline watcher's index. alert_at is when the watcher must next look at a ticket:
-- '' (before every time) when it must look now, a time when the next warning or
-- escalation falls due, NULL when no clock of the ticket can alert (closed, paused,
-- merged, awaiting the resident, or every clock escalated). New tickets start at ''; any
-- change to a ticket's clocks sets '' (or NULL) again by trigger; the watcher writes the
-- time it computed (`Store::alert_reschedule`). A round reads only `alert_at <= now`.
ALTER TABLE tickets ADD COLUMN alert_at TEXT DEFAULT '';
UPDATE tickets SET alert_at = CASE WHEN status IN ('new', 'assigned', 'in_progress')
    AND paused_at IS NULL AND merged_into IS NULL THEN '' ELSE NULL END;
CREATE INDEX tickets_alert ON tickets (alert_at) WHERE alert_at IS NOT NULL;

CREATE TRIGGER tickets_alert_au AFTER UPDATE OF status, paused_at, merged_into,
    first_responded_at, first_response_due_at, resolution_due_at, first_response_budget,
    resolution_budget ON tickets
WHEN OLD.status IS NOT NEW.status OR OLD.paused_at IS NOT NEW.paused_at
     OR OLD.merged_into IS NOT NEW.merged_into
     OR OLD.first_responded_at IS NOT NEW.first_responded_at
     OR OLD.first_response_due_at IS NOT NEW.first_response_due_at
     OR OLD.resolution_due_at IS NOT NEW.resolution_due_at
     OR OLD.first_response_budget IS NOT NEW.first_response_budget
     OR OLD.resolution_budget IS NOT NEW.resolution_budget
BEGIN
    UPDATE tickets SET alert_at = CASE WHEN NEW.status IN ('new', 'assigned', 'in_progress')
        AND NEW.paused_at IS NULL AND NEW.merged_into IS NULL THEN '' ELSE NULL END
    WHERE id = NEW.id;
END;
