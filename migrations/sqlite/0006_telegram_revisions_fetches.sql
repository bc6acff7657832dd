-- An edited chat message (Telegram `edited_message`) is stored as a revision of the message
-- it edits: its own row, on the original's ticket, pointing at the original.
ALTER TABLE messages ADD COLUMN revision_of INTEGER REFERENCES messages (id);

-- Attachments still at the provider (sha256 = '', provider_ref set) are fetched by their
-- connector after the message is stored; a file that can never be fetched keeps the reason.
ALTER TABLE attachments ADD COLUMN fetch_error TEXT;
CREATE INDEX attachments_unfetched ON attachments (id) WHERE sha256 = '' AND fetch_error IS NULL;
