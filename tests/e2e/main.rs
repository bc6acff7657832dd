//! End-to-end scenarios against the real `aduan` process: started from the built binary,
//! spoken to over TCP, killed with SIGKILL and SIGTERM, and restarted on the same database.
//!
//! The binary is `ADUAN_BIN`, else `target/debug/aduan` (build it with `cargo build -p
//! aduan`). Without it a test prints a skip notice and passes, unless `ADUAN_TEST_FULL` is
//! set: then it fails. The PostgreSQL variants need `ADUAN_TEST_PG_URL` in the same way.

mod abuse;
mod browser;
mod cli;
mod common;
mod confirm;
mod deploy;
mod durability;
mod email;
#[allow(dead_code, reason = "the channel crate's tests use all of it")]
#[path = "../../crates/aduan-telegram/tests/fake_bot/mod.rs"]
mod fake_bot;
mod faults;
mod incidents;
mod officials;
mod resident_loop;
mod routing;
mod scaleout;
mod sms;
mod social;
mod telegram;
mod tour;
