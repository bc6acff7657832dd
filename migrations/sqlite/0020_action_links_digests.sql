-- Officials' one-click action links and the daily digest (issue 19 item 5).
--
-- A used link's nonce: the link is single-use (a second use finds the row and is refused).
-- `opd` and `action` say which OPD did what, so a refusal ("bukan wewenang kami") stays
-- visible to the router and the operators after the ticket has left that OPD.
CREATE TABLE action_link_uses (
    nonce     TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    opd       TEXT NOT NULL,
    action    TEXT NOT NULL,
    official  TEXT NOT NULL,
    used_at   TEXT NOT NULL
);
CREATE INDEX action_link_uses_ticket ON action_link_uses (ticket_id);

-- One digest per OPD and local day, claimed by the instance that sends it.
CREATE TABLE digests (
    opd        TEXT NOT NULL,
    day        TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (opd, day)
);
