//! Leases: one holder at a time for work that must not run on two instances at once.
//!
//! A lease is a row (`name`, `holder`, `expires_at`). Taking it is one upsert that succeeds
//! when the row is absent, expired, or already ours; renewing is the same statement. The
//! timestamps come from the caller's clock, so instances sharing a database must keep their
//! clocks within a small fraction of the lease time of each other (NTP does).

use chrono::{DateTime, Utc};

use crate::Result;
use crate::db::{Db, args};

pub(crate) async fn acquire<D: Db>(
    c: &mut D,
    name: String,
    holder: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool> {
    let changed = c
        .execute(
            "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET \
               acquired_at = CASE WHEN leases.holder = excluded.holder \
                             THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.acquired_at",
            args![name, holder, now, expires_at],
        )
        .await?;
    Ok(changed == 1)
}

pub(crate) async fn release<D: Db>(c: &mut D, name: String, holder: String) -> Result<()> {
    c.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", args![name, holder]).await?;
    Ok(())
}

pub(crate) async fn holder<D: Db>(
    c: &mut D,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    c.fetch_optional_scalar(
        "SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2",
        args![name, now],
    )
    .await
}
