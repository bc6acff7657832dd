-- A resident wrote again on a ticket that is with an OPD (assigned or in progress): the
-- watcher relays the new messages to the OPD's officials and clears the flag
-- (`Store::follow_ups`, `Store::follow_up_sent`). The partial index holds only the few
-- flagged tickets, so a watcher round does not scan the open ones.
ALTER TABLE tickets ADD COLUMN follow_up_pending BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX tickets_follow_up ON tickets (id) WHERE follow_up_pending = TRUE;
