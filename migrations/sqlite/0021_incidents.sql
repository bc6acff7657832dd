-- Incidents and residents (issue 20).
--
-- An incident gathers the tickets of one problem (`tickets.incident_id`); it is created
-- when a second ticket joins a first, and keeps when the first was reported (deadlines run
-- from it). Candidates are found by place and time without a scan: `place_cell` is the
-- ~500 m grid cell of the ticket's coordinates (`aduan_core::incident::cell`; a query asks
-- for the nine cells around a point), `place`/`kecamatan` the desa of the gazetteer, each
-- indexed with `created_at`. `terms` is the ticket's term signature
-- (`aduan_core::incident::signature`) for the text cosine.
CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY,
    created_at        TEXT NOT NULL,
    first_reported_at TEXT NOT NULL
);
ALTER TABLE tickets ADD COLUMN incident_id INTEGER REFERENCES incidents (id);
ALTER TABLE tickets ADD COLUMN place_cell INTEGER;
ALTER TABLE tickets ADD COLUMN terms TEXT;
CREATE INDEX tickets_incident ON tickets (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX tickets_place_cell ON tickets (place_cell, created_at) WHERE place_cell IS NOT NULL;
CREATE INDEX tickets_desa ON tickets (place, kecamatan, created_at) WHERE place IS NOT NULL;

-- "Not the same problem": an operator dismissed the suggestion; never suggested again
-- (either way round).
CREATE TABLE incident_dismissals (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    other_id   INTEGER NOT NULL REFERENCES tickets (id),
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (ticket_id, other_id)
);
CREATE INDEX incident_dismissals_other ON incident_dismissals (other_id);

-- One resident across channels: reporters with the same provider-verified phone or email
-- share a resident profile.
CREATE TABLE residents (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL
);
ALTER TABLE reporters ADD COLUMN resident_id INTEGER REFERENCES residents (id);
CREATE INDEX reporters_resident ON reporters (resident_id) WHERE resident_id IS NOT NULL;
-- An operator's unlink: never linked automatically again.
ALTER TABLE reporters ADD COLUMN resident_locked INTEGER NOT NULL DEFAULT 0;
-- The provider-verified keys a reporter wrote with (`aduan_core::profile::verified_keys`:
-- `phone:+62…`, `email:…`); reporters sharing a key share a resident.
CREATE TABLE reporter_keys (
    key         TEXT NOT NULL,
    reporter_id INTEGER NOT NULL REFERENCES reporters (id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key, reporter_id)
);
