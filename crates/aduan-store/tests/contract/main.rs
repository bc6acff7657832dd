//! The store contract: every test runs on SQLite, and on PostgreSQL when
//! `ADUAN_TEST_PG_URL` names a server (the full suite, `cargo xtask test`, always sets it and
//! sets `ADUAN_TEST_FULL=1`, under which a missing server is a failure, not a skip).
//!
//! One test binary; one file per feature of the store (`src/ops/`), plus `races` and `backend`.

mod accounts;
mod actions;
mod backend;
mod intake;
mod media;
mod outbox;
mod races;
mod routing;
mod stats;
mod view;

use aduan_core::{
    Actor, Channel, Direction, Identity, IdentityKind, InboundMessage, Sender, ThreadHints,
};
use aduan_store::{Store, StoreError, StoreOptions};
use chrono::Utc;

/// A fresh, migrated store of each backend; the SQLite one lives in a temp dir kept alive by
/// the returned guard.
async fn stores(opts: StoreOptions) -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let sqlite = Store::open(&url, opts.clone()).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut out = vec![(sqlite, Some(dir))];
    if let Some(url) = fresh_pg_database().await {
        let pg = Store::open(&url, opts).await.unwrap();
        pg.migrate().await.unwrap();
        out.push((pg, None));
    }
    out
}

/// Creates an empty database on the test server and returns its URL.
async fn fresh_pg_database() -> Option<String> {
    let base = match std::env::var("ADUAN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("ADUAN_TEST_FULL").is_err(),
                "ADUAN_TEST_FULL is set but ADUAN_TEST_PG_URL is not: the PostgreSQL half of the \
                 store contract can't run. Use `cargo xtask test`."
            );
            eprintln!("ADUAN_TEST_PG_URL unset: PostgreSQL half of the contract skipped");
            return None;
        }
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to ADUAN_TEST_PG_URL");
    let name = format!("aduan_t{}", rand_suffix());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (head, _) = base.rsplit_once('/').expect("URL with a database path");
    Some(format!("{head}/{name}"))
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn msg(
    channel: Channel,
    provider_id: &str,
    sender: Option<Identity>,
    text: &str,
) -> InboundMessage {
    InboundMessage {
        channel,
        provider_id: provider_id.to_owned(),
        sender: Sender { identity: sender, display_name: Some("Siti".into()), contacts: vec![] },
        text: text.to_owned(),
        attachments: vec![],
        location: None,
        received_at: Utc::now(),
        thread: ThreadHints::default(),
    }
}

fn tg(id: &str) -> Option<Identity> {
    Some(Identity::new(IdentityKind::Telegram, id).unwrap())
}

/// Options without the automatic receipt, for tests about the outbox mechanics.
fn no_receipts() -> StoreOptions {
    StoreOptions { ack_template: None, ..StoreOptions::default() }
}

fn email(addr: &str) -> Option<Identity> {
    Some(Identity::email(addr).unwrap())
}

fn op() -> Actor {
    Actor::User("operator@banyumaskab.go.id".into())
}

fn phone(p: &str) -> Option<Identity> {
    Some(Identity::phone(p).unwrap())
}

fn inbound(view: &aduan_store::TicketView) -> usize {
    view.messages.iter().filter(|m| m.direction == Direction::In).count()
}

/// Whether a store error is one the API answers with 409 (an illegal move or a conflict).
fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(_) | StoreError::Transition(_))
}
