-- Provider windows and the fallback chain (issue 17): a row the provider could not deliver
-- keeps why (`undeliverable`: window_closed, blocked, not_on_channel, recipient_invalid);
-- a row carrying the same answer on to another of the reporter's identities (or to where
-- they next wrote) points at the first row of that answer (`fallback_of`). Rows in state
-- `waiting_for_resident` are re-queued when their reporter next writes.
ALTER TABLE outbox ADD COLUMN fallback_of BIGINT REFERENCES outbox (id);
ALTER TABLE outbox ADD COLUMN undeliverable TEXT;
CREATE INDEX outbox_fallback ON outbox (fallback_of) WHERE fallback_of IS NOT NULL;
CREATE INDEX outbox_waiting ON outbox (ticket_id) WHERE state = 'waiting_for_resident';
