-- The inbox at a million tickets (issue 9, `cargo xtask bench` list phase). Each index serves
-- one query shape of the ticket list (`Store::tickets`, newest first, keyset-paged by id) or
-- of the routing workers; ARCHITECTURE.md lists them.

-- The list filtered by channel (status, opd and category have their own (x, id) indexes).
CREATE INDEX tickets_channel ON tickets (channel, id);

-- An official's list: their OPD and a status (opd alone walks tickets_opd).
CREATE INDEX tickets_opd_status ON tickets (opd, status, id);

-- Open tickets with their clocks: the overdue list walks it newest first and decides from
-- the index alone. The WHERE must stay word for word the one the queries repeat, or
-- SQLite won't use it.
CREATE INDEX tickets_open ON tickets (id, paused_at, first_responded_at, first_response_due_at, resolution_due_at)
    WHERE status IN ('new', 'awaiting_identity', 'assigned', 'in_progress');

-- The disposition notification the deadline watcher still owes (`Store::undisposed`): set
-- when a ticket is assigned, cleared when its OPD was notified or it left assigned and
-- in_progress. Without it every watch round walked every assigned ticket.
ALTER TABLE tickets ADD COLUMN dispose_pending INTEGER NOT NULL DEFAULT 0;
UPDATE tickets SET dispose_pending = 1
    WHERE status IN ('assigned', 'in_progress') AND opd IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.ticket_id = tickets.id
                    AND n.key = 'disposition:' || tickets.opd);
CREATE INDEX tickets_dispose ON tickets (id) WHERE dispose_pending = TRUE;
