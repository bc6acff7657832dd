-- The operator inbox (aduan-web): server-side sessions and the audit log of actions that
-- are not about one ticket (sign-ins, user administration).
-- A session is found by the SHA-256 of its cookie token; the token itself is never stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Append-only, like events: who did what (login, logout, user_added, user_disabled, …).
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    note   TEXT
);
CREATE INDEX audit_at ON audit (at);

-- The inbox filters by category and counts by it.
CREATE INDEX tickets_category ON tickets (category, id);
