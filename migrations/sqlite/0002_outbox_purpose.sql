-- Why a message goes out: reply (a person's answer), ack (the receipt with the tracking
-- code), identity_request, status (the answer to CEK).
ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reply';
