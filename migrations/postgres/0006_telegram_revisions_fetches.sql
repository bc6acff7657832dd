-- An edited chat message (Telegram `edited_message`) is stored as a revision of the message
-- it edits: its own row, on the original's ticket, pointing at the original.
ALTER TABLE messages ADD COLUMN revision_of BIGINT REFERENCES messages (id);
