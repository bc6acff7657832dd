-- The operators' working day (issue 19.2).
-- Canned answers (`jawaban siap pakai`): global when `category` is NULL, else for tickets of
-- that category; `body` may carry the placeholders {kode}, {opd}, {nama}.
CREATE TABLE canned_answers (
    id         INTEGER PRIMARY KEY,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    category   TEXT,
    updated_at TEXT NOT NULL
);
-- The operator handling a triage ticket (a user's email); NULL when nobody took it.
ALTER TABLE tickets ADD COLUMN assignee TEXT;
CREATE INDEX tickets_assignee ON tickets (assignee, id) WHERE assignee IS NOT NULL;
-- Operators on duty get new triage tickets in turn when `[inbox] round_robin` is on.
ALTER TABLE users ADD COLUMN on_duty INTEGER NOT NULL DEFAULT 0;
