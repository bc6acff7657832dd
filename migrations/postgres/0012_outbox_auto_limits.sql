-- The caps on automatic messages to residents count recent outbox rows per recipient and
-- overall (aduan-store ops::auto_refusal).
CREATE INDEX outbox_recipient_recent ON outbox (recipient, created_at);
CREATE INDEX outbox_created ON outbox (created_at);
