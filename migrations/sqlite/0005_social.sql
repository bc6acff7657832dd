-- Social channels (aduan-social). The 24-hour customer window of Messenger, Instagram and
-- WhatsApp needs a sender's latest message; provider delivery receipts (WhatsApp statuses)
-- land on the outbox row they report on; media known only by a provider handle is fetched
-- after the webhook was answered, with a bounded number of attempts.
CREATE INDEX messages_identity ON messages (identity_id, sent_at) WHERE direction = 'in';
ALTER TABLE outbox ADD COLUMN receipt TEXT;
ALTER TABLE outbox ADD COLUMN receipt_at TEXT;
CREATE INDEX outbox_provider ON outbox (channel, provider_id) WHERE provider_id IS NOT NULL;
ALTER TABLE attachments ADD COLUMN fetch_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN fetch_error TEXT;
-- fetch_attempts is -1 once fetching was given up; a retry waits until fetch_after.
ALTER TABLE attachments ADD COLUMN fetch_after TEXT;
CREATE INDEX attachments_unfetched ON attachments (id) WHERE sha256 = '' AND provider_ref IS NOT NULL;
