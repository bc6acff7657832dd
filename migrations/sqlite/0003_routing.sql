-- Routing, identity requests and deadlines.
-- route_pending: the routing worker has to look at the ticket (new, or the resident answered
-- an identity request); route_lease_until: a worker holds it until then.
ALTER TABLE tickets ADD COLUMN route_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN route_lease_until TEXT;
-- The router's top suggestions for the operator, JSON [{"opd": …, "score": …}].
ALTER TABLE tickets ADD COLUMN suggestions TEXT;
-- The place recognised in the complaint (gazetteer names).
ALTER TABLE tickets ADD COLUMN place TEXT;
ALTER TABLE tickets ADD COLUMN kecamatan TEXT;
-- The resolution clock, and the budgets of both clocks ("24h", "5d") so a pause can be
-- given back in the clock's own measure. paused_at is set while the clocks stand still.
ALTER TABLE tickets ADD COLUMN resolution_due_at TEXT;
ALTER TABLE tickets ADD COLUMN first_response_budget TEXT;
ALTER TABLE tickets ADD COLUMN resolution_budget TEXT;
ALTER TABLE tickets ADD COLUMN paused_at TEXT;
CREATE INDEX tickets_route ON tickets (route_pending, id);

ALTER TABLE reporters ADD COLUMN address TEXT;

-- Automatic notifications already queued, one row per ticket and key
-- ("disposition:DPU", "warning:first_response", "escalation:resolution", "identity_request"):
-- the unique key makes each go out once however many workers run.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    key        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (ticket_id, key)
);
