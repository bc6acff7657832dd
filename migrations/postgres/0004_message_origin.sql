-- An answer relayed from a message that arrived on a channel (an OPD official replying to
-- a notification by email) records that message as its origin, so reading the same mail
-- twice relays the answer once.
ALTER TABLE messages ADD COLUMN origin TEXT;
CREATE UNIQUE INDEX messages_origin ON messages (origin) WHERE origin IS NOT NULL;
