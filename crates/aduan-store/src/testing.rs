//! Test helpers (cargo feature `testing`): a migrated store on a temp SQLite file, a fresh
//! PostgreSQL database on the server `ADUAN_TEST_PG_URL` names, the one reading of
//! `ADUAN_TEST_FULL`, PostgreSQL's statement count ([`pg_statements`]), and the texts as
//! they were queued for sending ([`sent_texts`]).
//!
//! A test whose peer is missing skips with a note on stderr ([`missing_peer`]); under
//! `ADUAN_TEST_FULL` (set by `cargo xtask test`, which starts every peer) it panics instead,
//! so the full suite never passes by skipping.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use tempfile::TempDir;

use crate::db::{Db, args};
use crate::{Store, StoreOptions};

/// Whether the full suite runs: `ADUAN_TEST_FULL` is set to anything but empty or `0`.
pub fn full_suite() -> bool {
    std::env::var_os("ADUAN_TEST_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A peer a test needs is missing: panics under [`full_suite`], otherwise prints a note
/// (the caller then skips). `what` names the peer and how to provide it.
pub fn missing_peer(what: &str) {
    assert!(!full_suite(), "ADUAN_TEST_FULL is set but {what}: use `cargo xtask test`");
    eprintln!("skipped: {what}");
}

/// A migrated SQLite store in a new temp directory, which lives as long as the guard.
pub async fn sqlite(opts: StoreOptions) -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, opts).await.expect("open the SQLite store");
    store.migrate().await.expect("migrate the SQLite store");
    (store, dir)
}

/// Creates an empty database on the server `ADUAN_TEST_PG_URL` names and returns its URL;
/// `None` (after [`missing_peer`]) when the variable is unset or empty.
pub async fn fresh_pg_url() -> Option<String> {
    let base = match std::env::var("ADUAN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            missing_peer("ADUAN_TEST_PG_URL is unset: the PostgreSQL half is not run");
            return None;
        }
    };
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to ADUAN_TEST_PG_URL");
    let name = format!("aduan_t{}", unique_suffix());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let (head, _) = base.rsplit_once('/').expect("ADUAN_TEST_PG_URL ends with a database path");
    Some(format!("{head}/{name}"))
}

/// A migrated store on a fresh PostgreSQL database, when there is a server.
pub async fn postgres(opts: StoreOptions) -> Option<Store> {
    let url = fresh_pg_url().await?;
    let store = Store::open(&url, opts).await.expect("open the PostgreSQL store");
    store.migrate().await.expect("migrate the PostgreSQL store");
    Some(store)
}

/// A fresh, migrated store of each backend (PostgreSQL only when there is a server), each
/// with the guard that keeps its files (`None` for PostgreSQL).
pub async fn stores(opts: StoreOptions) -> Vec<(Store, Option<TempDir>)> {
    let (sqlite, dir) = sqlite(opts.clone()).await;
    let mut out = vec![(sqlite, Some(dir))];
    if let Some(pg) = postgres(opts).await {
        out.push((pg, None));
    }
    out
}

/// PostgreSQL: how many statements the store's queries have run since it opened (`None` on
/// SQLite). A test that an effect saves a round trip counts them around one call.
pub fn pg_statements(store: &Store) -> Option<u64> {
    match &store.inner.backend {
        crate::Backend::Postgres(p) => Some(p.statements()),
        crate::Backend::Sqlite(_) => None,
    }
}

/// The texts of `code`'s outbound messages for `purpose`, oldest first, as they were
/// queued for sending: with what [`Store::ticket`] hides from readers of the ticket (an
/// official's action links, a confirmation key). What a recipient gets is read here.
pub async fn sent_texts(
    store: &Store,
    code: aduan_core::TicketCode,
    purpose: aduan_core::Purpose,
) -> Vec<String> {
    let (code, purpose) = (code.to_string(), purpose.as_str());
    let texts = read!(store, |c| c.fetch_all_scalar(
        "SELECT m.text FROM messages m JOIN outbox o ON o.message_id = m.id \
         JOIN tickets t ON t.id = m.ticket_id WHERE t.code = $1 AND o.purpose = $2 ORDER BY m.id",
        args![code, purpose],
    ));
    texts.expect("read the queued texts")
}

/// Unique within the machine: process id, microseconds, a counter.
fn unique_suffix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
