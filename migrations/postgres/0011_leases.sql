-- Leases: a poller that must run on one instance at a time (an IMAP mailbox, Telegram long
-- polling) holds the row of its name while it runs. The holder renews `expires_at` every few
-- seconds; once it has passed (the holder died or lost the database), another instance may
-- take the row over.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
