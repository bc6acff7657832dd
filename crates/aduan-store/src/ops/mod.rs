//! Every query of the store, written once and compiled for each backend (the functions are
//! generic over [`Db`](crate::db::Db)), one file per feature, each with the `impl Store`
//! methods that run its queries through `read!`/`write!`:
//!
//! - `common`: the ticket `SELECT`, loading and locking tickets, events, advisory locks,
//!   `EXPLAIN`; it imports no feature module.
//! - `intake`: a message becomes a ticket (`ingest`), connector lookups and checkpoints.
//! - `view`: one ticket, the ticket list.
//! - `actions`: assign, status, reply, identity request, relayed answers, merge, category,
//!   the clocks' pause and resume.
//! - `outbox`: queueing to the resident (capped automatic messages), claiming, delivery.
//! - `media`: attachments still at the provider.
//! - `accounts`: users, sessions, API keys, the audit log.
//! - `stats`: statistics and the overdue gauge.
//! - `routing`: the routing worker's and deadline watcher's queries.
//! - `incidents`: incidents (candidates, suggestions, joining, acting on every member) and
//!   resident profiles; used by `routing` (after a routing decision) and `view`.
//!
//! The arrows point one way: every feature may use `common`; `intake`, `actions` and
//! `routing` use `outbox` (queueing a message) and `intake` and `routing` use `actions`
//! (the clocks). Nothing uses `intake`, `view`, `media`, `accounts` or `stats`.
//!
//! The SQL is the common dialect of SQLite and PostgreSQL (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`); the few differences are switched on `IS_PG`. Each function takes a
//! connection that is already inside a transaction (writes) or a pooled one (reads).

pub(crate) mod accounts;
pub(crate) mod actions;
pub(crate) mod common;
pub(crate) mod incidents;
pub(crate) mod intake;
pub(crate) mod media;
pub(crate) mod outbox;
pub(crate) mod routing;
mod stats;
pub(crate) mod view;
