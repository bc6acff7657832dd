-- Resident confirmation of resolved tickets (issue 17 item 4). One row per question asked
-- when a ticket became `resolved`; `outcome` is NULL while the answer is pending, then
-- `fixed`, `not_fixed`, `expired` (no answer by `due_at`, the ticket was closed) or
-- `superseded` (the ticket left `resolved` another way, or was asked again). The
-- resident's link to /lacak carries a random key; only its SHA-256 is stored.
CREATE TABLE confirmations (
    id             INTEGER PRIMARY KEY,
    ticket_id      INTEGER NOT NULL REFERENCES tickets (id),
    channel        TEXT,
    recipient_kind TEXT,
    recipient      TEXT,
    key_hash       TEXT NOT NULL UNIQUE,
    asked_at       TEXT NOT NULL,
    due_at         TEXT NOT NULL,
    answered_at    TEXT,
    outcome        TEXT,
    rating         INTEGER
);
CREATE INDEX confirmations_ticket ON confirmations (ticket_id);
CREATE INDEX confirmations_pending ON confirmations (due_at) WHERE outcome IS NULL;
CREATE INDEX confirmations_recipient ON confirmations (recipient, recipient_kind)
    WHERE outcome IS NULL;
