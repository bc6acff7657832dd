-- aduan schema v1 (SQLite). Times are RFC 3339 text in UTC with millisecond precision,
-- written only by aduan-store, so text order is time order.

CREATE TABLE reporters (
    id           INTEGER PRIMARY KEY,
    name         TEXT,
    confidential INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);

-- The addresses a reporter writes from or can be reached at; one owner per address.
CREATE TABLE identities (
    id          INTEGER PRIMARY KEY,
    reporter_id INTEGER NOT NULL REFERENCES reporters (id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identities_reporter ON identities (reporter_id);

CREATE TABLE tickets (
    id                    INTEGER PRIMARY KEY,
    code                  TEXT NOT NULL UNIQUE,
    status                TEXT NOT NULL,
    channel               TEXT NOT NULL,
    reporter_id           INTEGER REFERENCES reporters (id),
    opd                   TEXT,
    category              TEXT,
    lat                   REAL,
    lon                   REAL,
    merged_into           INTEGER REFERENCES tickets (id),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    last_message_at       TEXT NOT NULL,
    first_response_due_at TEXT NOT NULL,
    first_responded_at    TEXT,
    resolved_at           TEXT
);
CREATE INDEX tickets_reporter_channel ON tickets (reporter_id, channel, id);
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_opd ON tickets (opd, id);
CREATE INDEX tickets_due ON tickets (first_response_due_at) WHERE first_responded_at IS NULL;

-- Every message in and out. (channel, provider_id) is the idempotency key.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER REFERENCES tickets (id),
    direction    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    provider_id  TEXT,
    identity_id  INTEGER REFERENCES identities (id),
    display_name TEXT,
    author       TEXT,
    text         TEXT NOT NULL,
    lat          REAL,
    lon          REAL,
    automated    INTEGER NOT NULL DEFAULT 0,
    sent_at      TEXT NOT NULL,
    stored_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_provider ON messages (channel, provider_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES messages (id),
    filename     TEXT,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    provider_ref TEXT
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Append-only audit log.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    from_value TEXT,
    to_value   TEXT,
    note       TEXT
);
CREATE INDEX events_ticket ON events (ticket_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    channel         TEXT NOT NULL,
    recipient_kind  TEXT,
    recipient       TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    provider_id     TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (state, channel, next_attempt_at);
CREATE INDEX outbox_message ON outbox (message_id);

-- Where each connector left off (IMAP UIDVALIDITY/UID, Telegram offset, …).
CREATE TABLE checkpoints (
    connector  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connector, key)
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT,
    role          TEXT NOT NULL,
    opd           TEXT,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

-- Only the SHA-256 of a token is kept; the token is shown once.
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
