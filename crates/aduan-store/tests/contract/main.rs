//! The store contract: every test runs on SQLite, and on PostgreSQL when
//! `ADUAN_TEST_PG_URL` names a server (the full suite, `cargo xtask test`, always sets it and
//! sets `ADUAN_TEST_FULL=1`, under which a missing server is a failure, not a skip): the
//! stores come from `aduan_store::testing::stores` (feature `testing`).
//!
//! One test binary; one file per feature of the store (`src/ops/`), plus `races` and `backend`.

mod accounts;
mod actions;
mod backend;
mod incidents;
mod intake;
mod media;
mod outbox;
mod races;
mod routing;
mod stats;
mod view;

use aduan_core::{
    Actor, Channel, Direction, Identity, IdentityKind, InboundMessage, Sender, ThreadHints,
    TicketCode,
};
pub(crate) use aduan_store::testing::stores;
use aduan_store::{Store, StoreError, StoreOptions};
use chrono::Utc;

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

/// Ingests one message and returns the code of the ticket it opened or joined.
async fn ticket_of(store: &Store, message: InboundMessage) -> TicketCode {
    store.ingest(message).await.unwrap().ticket.unwrap()
}

/// A migrated store on a fresh PostgreSQL database and a connection of its own to it (None
/// without a server, see `testing::fresh_pg_url`).
async fn fresh_pg() -> Option<(Store, sqlx::PgConnection)> {
    fresh_pg_with(StoreOptions::default()).await
}

/// [`fresh_pg`] with these options.
async fn fresh_pg_with(opts: StoreOptions) -> Option<(Store, sqlx::PgConnection)> {
    use sqlx::Connection as _;
    let url = aduan_store::testing::fresh_pg_url().await?;
    let store = Store::open(&url, opts).await.unwrap();
    store.migrate().await.unwrap();
    Some((store, sqlx::PgConnection::connect(&url).await.unwrap()))
}

/// PostgreSQL: how many search documents there are, and how many differ from the one
/// `aduan_search_doc` would build for their ticket now.
async fn docs_and_stale(c: &mut sqlx::PgConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.doc IS DISTINCT FROM \
         aduan_search_doc(s.ticket_id)) FROM ticket_search s",
    )
    .fetch_one(c)
    .await
    .unwrap()
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
