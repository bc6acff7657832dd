//! Project automation: `cargo xtask test` (the whole suite, peers included),
//! `cargo xtask bench` (intake throughput and latency on a release build, and the email
//! intake rate), `cargo xtask fuzz` (the cargo-fuzz targets, bounded), `cargo xtask mail-peer` (the test mail system, for running the email
//! tests by hand) and `cargo xtask sms-peer` (Kannel with a fake SMSC, for the SMS tests).

mod bench;
mod browser;
mod fuzz;
mod incidentbench;
mod kannel;
mod listbench;
mod mail;
mod mailbench;
mod pg;
mod procbench;
mod rng;
mod routingbench;
mod rssbench;
mod sys;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every test with every peer installed and started (what CI runs).
    Test(test::Args),
    /// Measure durable intake msg/s, latency and memory of a release build.
    Bench(bench::Args),
    /// Build the cargo-fuzz targets (fuzz/) and run each for a bounded time from its seeds;
    /// fails on a crash and prints the input.
    Fuzz(fuzz::Args),
    /// Start the test mail peer (Dovecot + Postfix), print its variables, and keep it
    /// running until Enter or end of input (for running the email tests by hand).
    MailPeer,
    /// Start the test SMS network (Kannel + fakesmsc), print its variables, and keep it
    /// running until Enter or end of input (for running the SMS tests by hand).
    SmsPeer,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::MailPeer => {
            let peer = mail::MailPeer::start()?;
            for (key, value) in peer.env() {
                println!("export {key}='{value}'");
            }
            eprintln!("xtask: mail peer running; press Enter (or close stdin) to stop it");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            drop(peer);
            Ok(())
        }
        Command::SmsPeer => {
            let peer = kannel::KannelPeer::start()?;
            for (key, value) in peer.env() {
                println!("export {key}='{value}'");
            }
            eprintln!("xtask: SMS peer running; press Enter (or close stdin) to stop it");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            drop(peer);
            Ok(())
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
