//! `cargo xtask test`: the whole suite as CI runs it. Starts every peer the tests need (a
//! private PostgreSQL cluster; Dovecot + Postfix for the email channel; Kannel with a fake
//! SMSC and fakesmsc for the SMS channel; Chromium driven by chromedriver for the inbox's
//! browser tests), builds the daemon
//! for the end-to-end tests, and runs `cargo test --workspace` with `ADUAN_TEST_FULL=1`,
//! under which a test whose peer is missing fails instead of skipping. Last, every fuzz
//! target runs for a bounded time (`--fuzz-secs`, 20 s each by default; 0 skips it).

use std::process::Command;

use anyhow::{Context, bail};

use crate::{browser, fuzz, kannel, mail, pg};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds each fuzz target runs after the tests (0: no fuzzing).
    #[arg(long, default_value_t = 20)]
    fuzz_secs: u64,
    /// Extra arguments for `cargo test` (e.g. a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    eprintln!("xtask: starting a private PostgreSQL cluster");
    let cluster = pg::Cluster::start()?;
    eprintln!("xtask: PostgreSQL at {}", cluster.url);
    eprintln!("xtask: starting Dovecot + Postfix");
    let mail = mail::MailPeer::start()?;
    eprintln!("xtask: SMTP at {}, IMAP at {} (IMAPS {})", mail.smtp, mail.imap, mail.imaps);
    eprintln!("xtask: starting Kannel (bearerbox, smsbox, fake SMSC) and fakesmsc");
    let sms = kannel::KannelPeer::start()?;
    eprintln!("xtask: Kannel up; its webhook calls go to {}", sms.mo);

    eprintln!("xtask: starting chromedriver");
    let browser = browser::Browser::start()?;
    eprintln!("xtask: WebDriver at {}", browser.url());

    eprintln!("xtask: building the aduan binary for the end-to-end tests");
    let status = cargo()
        .args(["build", "-p", "aduan"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = crate::sys::cargo_target(&root).join("debug/aduan");

    let status = cargo()
        .args(["test", "--workspace"])
        .args(&args.cargo_args)
        .current_dir(&root)
        .env("ADUAN_TEST_FULL", "1")
        .env("ADUAN_TEST_PG_URL", &cluster.url)
        .env("ADUAN_BIN", &bin)
        .envs(mail.env())
        .envs(sms.env())
        .envs(browser.env())
        .status()
        .context("cannot run cargo test")?;
    drop(browser);
    drop(sms);
    drop(mail);
    drop(cluster);
    if !status.success() {
        bail!("tests failed");
    }
    eprintln!("xtask: every test passed");
    if args.fuzz_secs > 0 {
        fuzz::run(fuzz::Args::all(args.fuzz_secs))?;
        eprintln!("xtask: no fuzz target crashed");
    }
    Ok(())
}
