-- A revival counter on each outbox row (ops::outbox::outbox_revive increments it), so the
-- list of dead notifications is one indexed read instead of a COUNT over `notifications`
-- per row. Rows revived before this migration get their count from those keys.
ALTER TABLE outbox ADD COLUMN revivals INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET revivals = (SELECT COUNT(*) FROM notifications n
    WHERE n.ticket_id = outbox.ticket_id
      AND n.key LIKE 'revived:' || CAST(outbox.id AS TEXT) || ':%')
  WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.ticket_id = outbox.ticket_id
      AND n.key LIKE 'revived:' || CAST(outbox.id AS TEXT) || ':%');
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';

-- The attachment bytes one sender stored in the last hour (ops::media, the per-sender
-- attachment budget on every channel): that sender's inbound messages by storage time.
CREATE INDEX messages_identity_stored ON messages (identity_id, stored_at) WHERE direction = 'in';
