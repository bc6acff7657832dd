-- The search index is refreshed once per group commit instead of per statement (issue 22,
-- intake cost of the index).
--
-- FTS5 flushes its pending terms into a new segment at every statement savepoint, and each
-- trigger statement that wrote into the index opened one: an inbound message made three
-- tiny segments (a new ticket's document, its delete, its re-insert with the text), merged
-- over and over — about 30 % of the writer thread under intake load. Now the triggers only
-- note which tickets' documents changed (ticket_search_dirty), and the writer refreshes
-- those documents with one statement right before each COMMIT (`sqlite::SEARCH_REFRESH`):
-- same transaction, so a committed write is searchable and an undone one leaves no trace.
-- The index is contentless with contentless_delete, so a changed document is replaced by
-- rowid without the text it was indexed from. Invariant: after every COMMIT, each ticket's
-- document in the index equals its row of ticket_search_docs, and ticket_search_dirty is
-- empty.
DROP TRIGGER ticket_search_ticket_ai;
DROP TRIGGER ticket_search_ticket_au;
DROP TRIGGER ticket_search_ticket_ad;
DROP TRIGGER ticket_search_message_ai;
DROP TRIGGER ticket_search_message_ad;
DROP TRIGGER ticket_search_message_au;
DROP TRIGGER ticket_search_reporter_au;
DROP TABLE ticket_search;

CREATE VIRTUAL TABLE ticket_search USING fts5 (
    code, place, name, body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TABLE ticket_search_dirty (ticket_id INTEGER PRIMARY KEY);

CREATE TRIGGER ticket_search_ticket_ai AFTER INSERT ON tickets BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id) VALUES (NEW.id);
END;

CREATE TRIGGER ticket_search_ticket_au AFTER UPDATE OF code, place, kecamatan, reporter_id ON tickets
WHEN OLD.code IS NOT NEW.code OR OLD.place IS NOT NEW.place
     OR OLD.kecamatan IS NOT NEW.kecamatan OR OLD.reporter_id IS NOT NEW.reporter_id
BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id) VALUES (NEW.id);
END;

CREATE TRIGGER ticket_search_ticket_ad AFTER DELETE ON tickets BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id) VALUES (OLD.id);
END;

CREATE TRIGGER ticket_search_message_ai AFTER INSERT ON messages
WHEN NEW.ticket_id IS NOT NULL AND NEW.direction = 'in'
BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id) VALUES (NEW.ticket_id);
END;

CREATE TRIGGER ticket_search_message_ad AFTER DELETE ON messages
WHEN OLD.ticket_id IS NOT NULL AND OLD.direction = 'in'
BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id) VALUES (OLD.ticket_id);
END;

-- A message's direction never changes; its text (redaction) or ticket (a merge) may.
CREATE TRIGGER ticket_search_message_au AFTER UPDATE OF text, ticket_id ON messages
WHEN NEW.direction = 'in' AND (OLD.text IS NOT NEW.text OR OLD.ticket_id IS NOT NEW.ticket_id)
BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id)
        SELECT x FROM (SELECT OLD.ticket_id AS x UNION SELECT NEW.ticket_id) WHERE x IS NOT NULL;
END;

CREATE TRIGGER ticket_search_reporter_au AFTER UPDATE OF name ON reporters
WHEN OLD.name IS NOT NEW.name
BEGIN
    INSERT OR IGNORE INTO ticket_search_dirty (ticket_id)
        SELECT t.id FROM tickets t WHERE t.reporter_id = NEW.id;
END;

INSERT INTO ticket_search (rowid, code, place, name, body)
    SELECT id, code, place, name, body FROM ticket_search_docs;
