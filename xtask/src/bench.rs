//! `cargo xtask bench`: durable intake throughput, latency and memory of a release build.
//!
//! # Method
//!
//! 1. `cargo build --release -p aduan -p xtask`, then the optimised xtask takes over
//!    (`target/release/xtask bench --no-build`): the load generator of a debug xtask is
//!    several times slower and would measure itself rather than the server. `--no-build`
//!    uses the binaries as they are.
//! 2. A fresh run directory under `target/bench/` (on the project's disk, not a tmpfs, so
//!    that fsync costs what it costs in production) holds the configuration, the SQLite
//!    database (the default WAL + `synchronous=FULL`: a 201 means the group commit holding
//!    the message was fsynced), the attachments directory and the server log. It is
//!    removed at the end, and kept when the bench fails.
//! 3. `aduan apikey create bench --scope intake` makes the token the load uses.
//! 4. `aduan serve` starts as a child process; the bench polls `GET /healthz` until 200.
//!    The child is stopped with SIGTERM at the end, and killed if the bench fails early.
//! 5. Idle RSS is `VmRSS` of `/proc/<pid>/status` after 2 s of idleness; the same figure
//!    is read again once the load is over and the server has been idle for 2 s.
//! 6. The load generator is a hyper 1 HTTP/1.1 client on its own tokio runtime with ONE
//!    worker thread, so it takes at most about one core: on a 2-core machine the client
//!    and the server share the CPU, which understates what the server does alone.
//!    Each phase has an unmeasured warm-up; only what completes inside the measured
//!    window counts towards throughput.
//!    - closed loop, intake: `--connections` persistent connections, each sending
//!      `POST /api/v1/messages` back to back (unique `external_id`s, so every success is
//!      a 201 = a new durable message);
//!    - closed loop, `GET /healthz`: the same, as the ceiling of the HTTP stack alone;
//!      the ratio intake ÷ healthz tells how much the durable write costs;
//!    - open loop, intake: request `i` is due at `t0 + i / rate` (a pacing thread with
//!      `nanosleep` precision hands it to the runtime) and runs on the first free
//!      connection of a pool of `--open-connections`. Latency is measured from the time
//!      the request was DUE, not from when it was sent, so client-side queueing and a
//!      slow server show up in the figures (no coordinated omission).
//! 7. Latencies go into a sorted `Vec<u32>` of microseconds; percentiles are nearest-rank.
//!    Any non-2xx answer or transport error counts as an error.
//! 8. CPU use of the server and of the client during each measured window comes from
//!    `/proc/<pid>/stat` (user + system time, in % of one core; 200% = both cores), and
//!    the machine's idle time (idle + iowait of all cores, `/proc/stat`) in the same unit:
//!    what none of the three is, other processes used (PostgreSQL in its phase). A phase
//!    with idle time left was bound by latency, not by the CPU.
//!
//!    Diagnostics: `ADUAN_BENCH_SLOW=<file>` appends every measured open-loop request
//!    slower than 5 ms to that file (wall-clock µs it was due, latency µs, phase), to line
//!    up with the server's `RUST_LOG=info,aduan_store::sqlite=debug` timings (the server
//!    inherits `RUST_LOG`); `ADUAN_BENCH_KEEP=1` keeps the run directory (server log,
//!    database) of a good run too.
//!
//! 9. The email phase (`mailbench.rs`, `--mails`, 5,000 by default, 0 skips it): a fresh
//!    daemon reads a mailbox pre-loaded with that many complaints; the time until all are
//!    tickets gives mails/s (target ≥ 300). `--email-only` runs it alone, with the
//!    classifier's cost per mail (the automated and human fixtures parsed once, then
//!    classified over and over; µs per mail, in the xtask's own build).
//! 10. RSS under load (peak `VmRSS` sampled every 20 ms during the two intake phases, and
//!     `VmHWM`; target ≤ 150 MB) and cold start to ready (spawn → first 200 of `/readyz`,
//!     median of 5 starts on the database the load filled; target ≤ 300 ms): `procbench.rs`.
//!
//! 11. The inbox-list phase (`listbench.rs`, `--list-tickets`, 1,000,000 by default, 0
//!     skips it): that many generated tickets on SQLite and on PostgreSQL (a private
//!     cluster, or `--pg-url`), the ticket list's p50/p99 per query mix (target p99 ≤ 20 ms).
//! 12. Peak RSS (`VmHWM`) with large mails (`--large-mails` × `--large-mail-mb`, 10 × 20 MB
//!     by default; target ≤ 200 MB) and with the in-flight body budget full of held
//!     uploads plus intake load (`--held-bodies`); the worst peak × 1.5 is compared with
//!     the memory limit of `deploy/` (384 MB): `rssbench.rs`.
//! 13. The incident matcher (`incidentbench.rs`): precision and recall on the labelled
//!     pairs of `xtask/data/incident_pairs.tsv` (target precision ≥ 0.95 at
//!     `auto_join_score`), and matching one new ticket among `--incident-tickets`
//!     (1,000,000 by default, 0 skips it) on SQLite (target p99 < 5 ms, no scan).
//!     `--incidents-only` runs it alone (no build, no server) into
//!     `target/bench/report-incidents.json`.
//! 14. PostgreSQL intake (`--pg-instances`, 3 by default, 0 skips it): 1, 2 … that many
//!     instances side by side on one private cluster (`fsync=on`), the new-sender mix in
//!     closed loop, with `pg_stat_statements`' top statements and the backends' wait
//!     events (targets: one instance ≥ 5,000 msg/s, three ≥ 2× one). `--pg-only` runs it
//!     alone (about 15 s for one instance) into `target/bench/report-pg.json`.
//!
//! Before the HTTP phases and before each PostgreSQL run the bench writes the machine's
//! dirty pages out (`sync`, `settle_disk`): otherwise the writeback of the release build or
//! of the inbox-list phase's tickets lands in the middle of a phase's `fdatasync`s.
//!
//! The report is printed and written to `target/bench/report.json`. Missing a target is
//! reported (the exit status stays 0); a server that does not start, or any request
//! error, makes the command fail.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

use crate::sys::free_port;

/// Idle resident memory the daemon should stay under.
const IDLE_RSS_TARGET_MB: f64 = 40.0;
/// Durable intake should reach this fraction of the bare HTTP request rate.
const RATIO_TARGET: f64 = 0.30;
/// p99 latency of the open-loop phase.
const OPEN_P99_TARGET_MS: f64 = 10.0;
/// How long the server may take to answer `/healthz` after being started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// A request taking longer than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time before reading the resident memory.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct Args {
    /// Measured seconds of each load phase.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Unmeasured warm-up seconds before each load phase.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Persistent connections (virtual clients) of the closed-loop phases.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Offered rate of the open-loop phase, in messages per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Connection pool of the open-loop phase (large, so requests don't queue client-side).
    #[arg(long, default_value_t = 256)]
    open_connections: usize,
    /// Use target/release/aduan as it is, and this xtask as it is (no optimised hand-over).
    #[arg(long)]
    no_build: bool,
    /// Mails pre-loaded into an IMAP folder for the email phase (0 skips it; it needs
    /// Dovecot + Postfix, installed like `cargo xtask test` does).
    #[arg(long, default_value_t = 5000)]
    mails: usize,
    /// Tickets generated for the inbox-list phase, on SQLite and on PostgreSQL (0 skips
    /// it; see listbench.rs).
    #[arg(long, default_value_t = 1_000_000)]
    list_tickets: usize,
    /// Measured queries per query mix of the inbox-list phase.
    #[arg(long, default_value_t = 300)]
    list_queries: usize,
    /// PostgreSQL server for the inbox-list phase (a database is created on it and dropped
    /// afterwards); without it a private cluster is started as `cargo xtask test` does.
    #[arg(long)]
    pg_url: Option<String>,
    /// Large mails fetched from the mail peer for the peak-RSS phase (0 skips it; see
    /// rssbench.rs).
    #[arg(long, default_value_t = 10)]
    large_mails: usize,
    /// Size of each large mail, in MB (below the default max_message_bytes of 25 MiB).
    #[arg(long, default_value_t = 20)]
    large_mail_mb: usize,
    /// Run the peak-RSS phase with the in-flight body budget full (0 skips it).
    #[arg(long, default_value_t = 1)]
    held_bodies: u8,
    /// Run only the email phase (and the classifier timing that goes with it): no HTTP
    /// phases, no cold starts, no inbox-list phase.
    #[arg(long)]
    email_only: bool,
    /// Run only the inbox-list phase (`--list-tickets`, both engines) with this xtask as it
    /// is: no server, no HTTP phases.
    #[arg(long)]
    list_only: bool,
    /// PostgreSQL intake phase: 1 … this many instances side by side on one private
    /// cluster (`fsync=on`), new-sender mix (0 skips it).
    #[arg(long, default_value_t = 3)]
    pg_instances: usize,
    /// Run only the PostgreSQL intake phase (`--pg-instances`, at least 1): no SQLite
    /// phases, no cold starts, no other phase.
    #[arg(long)]
    pg_only: bool,
    /// Tickets generated for the incident matcher phase (incidentbench.rs; 0 skips its
    /// cost part, the labelled pairs always run).
    #[arg(long, default_value_t = 1_000_000)]
    incident_tickets: usize,
    /// Run only the incident matcher phase: no build, no server, no other phase.
    #[arg(long)]
    incidents_only: bool,
    /// Run only this phase: `routing` (the learned router against scikit-learn's baseline,
    /// see routingbench.rs).
    #[arg(value_parser = ["routing"])]
    phase: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.duration_secs == 0 || args.connections == 0 || args.rate == 0 {
        bail!("--duration-secs, --connections and --rate must be at least 1");
    }
    if args.open_connections == 0 {
        bail!("--open-connections must be at least 1");
    }
    let root = crate::workspace_root();
    if args.list_only {
        return list_only(&args, &root);
    }
    if args.incidents_only {
        return incidents_only(&args, &root);
    }
    if args.phase.as_deref() == Some("routing") {
        return crate::routingbench::run(&root, args.no_build);
    }
    if !args.no_build {
        if cfg!(debug_assertions) {
            // `cargo xtask` is a debug build, whose client would measure itself more than
            // the server: build an optimised xtask along with the server and hand over.
            build(&root, &["aduan", "xtask"])?;
            return run_release_xtask(&root, &args);
        }
        build(&root, &["aduan"])?;
    } else if cfg!(debug_assertions) {
        eprintln!(
            "warning: this xtask is a debug build; its load generator is slow and the \
             figures are lower than they should be (run without --no-build)"
        );
    }
    let bin = crate::sys::cargo_target(&root).join("release/aduan");
    if !bin.is_file() {
        bail!("{} does not exist; build it first", bin.display());
    }
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)
        .with_context(|| format!("cannot create {}", bench_dir.display()))?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&bench_dir)
        .context("cannot create the run directory")?;
    match bench(&args, &root, &bin, run_dir.path(), &bench_dir) {
        // `ADUAN_BENCH_KEEP=1` keeps the server log (and database) of a good run too.
        Ok(()) if std::env::var_os("ADUAN_BENCH_KEEP").is_some() => {
            eprintln!("bench: kept {}", run_dir.keep().display());
            Ok(())
        }
        Ok(()) => Ok(()),
        Err(e) => {
            // The server log and the database are what explains a failure: keep them.
            let kept = run_dir.keep();
            Err(e.context(format!("the server log and database are kept in {}", kept.display())))
        }
    }
}

/// `--list-only`: the inbox-list phase alone, printed and written to
/// `target/bench/list-report.json`.
fn list_only(args: &Args, root: &Path) -> anyhow::Result<()> {
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let run_dir = tempfile::Builder::new().prefix("list-").tempdir_in(&bench_dir)?;
    let n = args.list_tickets.max(1);
    let list =
        crate::listbench::run(root, run_dir.path(), n, args.list_queries, args.pg_url.as_deref())?;
    print!("{}", list.render());
    let json = serde_json::to_string_pretty(&list.to_json())?;
    std::fs::write(bench_dir.join("list-report.json"), json + "\n")?;
    if std::env::var_os("ADUAN_LISTBENCH_KEEP").is_some() {
        eprintln!("bench: inbox list: kept {}", run_dir.keep().display());
    }
    Ok(())
}

/// Everything after the build, in the run directory `dir`.
fn bench(args: &Args, root: &Path, bin: &Path, dir: &Path, bench_dir: &Path) -> anyhow::Result<()> {
    if args.email_only {
        return write_report(
            &bench_dir.join("report-email.json"),
            &email_only(args, root, bin, dir)?,
        );
    }
    if args.pg_only {
        return write_report(&bench_dir.join("report-pg.json"), &pg_only(args, root, bin, dir)?);
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let config = write_config(dir, root, addr)?;
    let token = create_api_key(bin, &config)?;

    let rt = client_runtime()?;
    let target = Arc::new(Target::new(addr, &token));

    settle_disk("the HTTP phases");
    let mut server = Server::start(bin, &config, dir)?;
    let measured = measure(&rt, &mut server, &target, args);
    // Stop the server in every case; a failed measurement is the more useful error.
    let stopped = server.stop();
    let mut report = match (measured, stopped) {
        (Ok(report), Ok(status)) => Report { server_exit: describe_exit(status), ..report },
        (Err(e), Ok(_)) => return Err(e),
        (Err(e), Err(stop)) => return Err(e.context(format!("also: {stop:#}"))),
        (Ok(_), Err(stop)) => return Err(stop),
    };
    report.created = target.created.load(Ordering::Relaxed);
    let cold_start = cold_start(bin, &config, dir, addr, report.created)?;
    let mail = match args.mails {
        0 => None,
        n => Some(crate::mailbench::run(root, bin, dir, n)?),
    };
    let mut memory = Vec::new();
    if args.large_mails > 0 {
        let (n, mb) = (args.large_mails, args.large_mail_mb);
        memory.push(("rss_large_mails", crate::rssbench::large_mails(root, bin, dir, n, mb)?));
    }
    if args.held_bodies > 0 {
        memory.push(("rss_inflight_bodies", crate::rssbench::held_bodies(root, bin, dir)?));
    }
    let list = match args.list_tickets {
        0 => None,
        n => Some(crate::listbench::run(root, dir, n, args.list_queries, args.pg_url.as_deref())?),
    };

    let pg_intake = match args.pg_instances {
        0 => None,
        n => Some(
            pg_intake(&rt, args, root, bin, dir, n)
                .context("the PostgreSQL intake phase failed")?,
        ),
    };
    let incidents = crate::incidentbench::run(root, dir, args.incident_tickets)?;

    print!("{}", report.render(args));
    let mut json = report.to_json(args);
    if let Some(pg) = &pg_intake {
        print!("{}", pg.render());
        json["pg_intake"] = pg.to_json();
    }
    print!("{}{}", report.loaded_rss.render(), cold_start.render());
    json["rss_under_load"] = report.loaded_rss.to_json();
    json["cold_start"] = cold_start.to_json();
    if let Some(mail) = &mail {
        print!("{}", mail.render());
        json["email_intake"] = mail.to_json();
    }
    for (key, figure) in &memory {
        print!("{}", figure.render());
        json[*key] = figure.to_json();
    }
    let worst = memory.iter().map(|(_, f)| f.hwm_mb).fold(report.loaded_rss.peak_mb(), f64::max);
    print!("{}", crate::rssbench::limit_line(worst));
    json["memory_limit_needed_mb"] = json!((worst * crate::rssbench::MARGIN * 10.0).round() / 10.0);
    if let Some(list) = &list {
        print!("{}", list.render());
        json["inbox_list"] = list.to_json();
    }
    print!("{}", incidents.render());
    json["incidents"] = incidents.to_json();
    write_report(&bench_dir.join("report.json"), &json)?;

    let errors = report.errors();
    if errors > 0 {
        let first = report.phases().iter().find_map(|p| p.first_error.clone()).unwrap_or_default();
        bail!("{errors} request(s) failed; the first: {first}");
    }
    Ok(())
}

/// Cold starts on the database the load phases filled (`procbench.rs`); their server logs
/// go to `dir/cold-start/`.
fn cold_start(
    bin: &Path,
    config: &Path,
    dir: &Path,
    addr: SocketAddr,
    messages: u64,
) -> anyhow::Result<crate::procbench::ColdStart> {
    let logs = dir.join("cold-start");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    crate::procbench::cold_start(bin, config, &logs, addr, messages)
        .context("the cold-start phase failed")
}

/// Starts the load phases against a started server and gathers the figures.
fn measure(
    rt: &Runtime,
    server: &mut Server,
    target: &Arc<Target>,
    args: &Args,
) -> anyhow::Result<Report> {
    server.wait_healthy(rt, target.addr)?;
    std::thread::sleep(IDLE_SETTLE);
    server.check_alive()?;
    let idle_rss_mb = rss_mb(server.pid())?;

    let warmup = Duration::from_secs(args.warmup_secs);
    let duration = Duration::from_secs(args.duration_secs);
    let pid = server.pid();
    let load_before = uptime();
    let sampler = crate::procbench::RssSampler::start(pid)?;
    let intake = rt.block_on(closed_loop(
        target.clone(),
        pid,
        Kind::Intake,
        args.connections,
        warmup,
        duration,
    ));
    let intake = intake?;
    server.check_alive()?;
    let intake_new = rt.block_on(closed_loop(
        target.clone(),
        pid,
        Kind::IntakeNew,
        args.connections,
        warmup,
        duration,
    ));
    let intake_rss_mb = sampler.stop()?;
    let intake_new = intake_new?;
    server.check_alive()?;
    let healthz = rt.block_on(closed_loop(
        target.clone(),
        pid,
        Kind::Healthz,
        args.connections,
        warmup,
        duration,
    ))?;
    server.check_alive()?;
    let sampler = crate::procbench::RssSampler::start(pid)?;
    let open = rt.block_on(open_loop(
        target.clone(),
        pid,
        Kind::Intake,
        args.open_connections,
        args.rate,
        args.warmup_secs,
        args.duration_secs,
    ));
    let open = open?;
    server.check_alive()?;
    let open_new = rt.block_on(open_loop(
        target.clone(),
        pid,
        Kind::IntakeNew,
        args.open_connections,
        args.rate,
        args.warmup_secs,
        args.duration_secs,
    ));
    let open_rss_mb = sampler.stop()?;
    let open_new = open_new?;
    server.check_alive()?;
    let loaded_rss = crate::procbench::LoadedRss {
        sampled_peak_mb: intake_rss_mb.max(open_rss_mb),
        hwm_mb: crate::procbench::status_mb(pid, "VmHWM").context("cannot read VmHWM")?,
    };

    let load_after = uptime();
    std::thread::sleep(IDLE_SETTLE);
    let loaded_rss_mb = rss_mb(server.pid())?;
    Ok(Report {
        idle_rss_mb,
        loaded_rss_mb,
        intake,
        intake_new,
        healthz,
        open,
        open_new,
        load_before,
        load_after,
        created: 0,
        server_exit: String::new(),
        loaded_rss,
    })
}

// --- Setting up ------------------------------------------------------------------------

/// `--email-only`: the email phase and the classifier timing, nothing else (written to
/// `target/bench/report-email.json`).
fn email_only(args: &Args, root: &Path, bin: &Path, dir: &Path) -> anyhow::Result<Value> {
    let classifier = crate::mailbench::classifier_timing(root)?;
    print!("{}", classifier.render());
    let mail = crate::mailbench::run(root, bin, dir, args.mails.max(1))?;
    print!("{}", mail.render());
    Ok(json!({
        "email_intake": mail.to_json(),
        "classifier": classifier.to_json(),
    }))
}

/// `--pg-only`: the PostgreSQL intake phase alone, written to `target/bench/report-pg.json`.
fn pg_only(args: &Args, root: &Path, bin: &Path, dir: &Path) -> anyhow::Result<Value> {
    let rt = client_runtime()?;
    let pg = pg_intake(&rt, args, root, bin, dir, args.pg_instances.max(1))
        .context("the PostgreSQL intake phase failed")?;
    print!("{}", pg.render());
    Ok(pg.to_json())
}

/// The load generator's runtime: one worker thread, so the client's share of the cores
/// stays small and is reported apart from the server's.
fn client_runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the client runtime")
}

/// Writes `json` (pretty) to `path` and says where.
fn write_report(path: &Path, json: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(json)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(())
}

/// `--incidents-only`: the incident matcher phase alone, in this xtask (a debug xtask's
/// figures are an upper bound), written to `target/bench/report-incidents.json`.
fn incidents_only(args: &Args, root: &Path) -> anyhow::Result<()> {
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)
        .with_context(|| format!("cannot create {}", bench_dir.display()))?;
    let run_dir = tempfile::Builder::new().prefix("incidents-").tempdir_in(&bench_dir)?;
    let report = crate::incidentbench::run(root, run_dir.path(), args.incident_tickets)?;
    print!("{}", report.render());
    write_report(&bench_dir.join("report-incidents.json"), &report.to_json())?;
    if !report.pass() {
        bail!("the incident matcher missed its targets");
    }
    Ok(())
}

/// `cargo build --release -p <package>…` in the workspace root.
fn build(root: &Path, packages: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--release"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let shown = format!("cargo build --release -p {}", packages.join(" -p "));
    eprintln!("building: {shown}");
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Runs `target/release/xtask bench --no-build` with the same settings.
fn run_release_xtask(root: &Path, args: &Args) -> anyhow::Result<()> {
    let xtask = crate::sys::cargo_target(root).join("release/xtask");
    let status = Command::new(&xtask)
        .current_dir(root)
        .arg("bench")
        .arg("--no-build")
        .arg(format!("--duration-secs={}", args.duration_secs))
        .arg(format!("--warmup-secs={}", args.warmup_secs))
        .arg(format!("--connections={}", args.connections))
        .arg(format!("--rate={}", args.rate))
        .arg(format!("--open-connections={}", args.open_connections))
        .arg(format!("--mails={}", args.mails))
        .arg(format!("--list-tickets={}", args.list_tickets))
        .arg(format!("--list-queries={}", args.list_queries))
        .args(args.pg_url.as_ref().map(|u| format!("--pg-url={u}")))
        .arg(format!("--large-mails={}", args.large_mails))
        .arg(format!("--large-mail-mb={}", args.large_mail_mb))
        .arg(format!("--held-bodies={}", args.held_bodies))
        .args(args.email_only.then_some("--email-only"))
        .args(args.pg_only.then_some("--pg-only"))
        .arg(format!("--pg-instances={}", args.pg_instances))
        .arg(format!("--incident-tickets={}", args.incident_tickets))
        .status()
        .with_context(|| format!("cannot run {}", xtask.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_string(path: &Path) -> anyhow::Result<String> {
    let s = path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(serde_json::to_string(s)?)
}

pub(crate) fn write_config(dir: &Path, root: &Path, addr: SocketAddr) -> anyhow::Result<PathBuf> {
    let db = format!("sqlite://{}", dir.join("aduan.db").display());
    write_config_for(dir, root, addr, &db)
}

/// The bench configuration with the database `db` (a URL).
fn write_config_for(
    dir: &Path,
    root: &Path,
    addr: SocketAddr,
    db: &str,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        "[server]\nlisten = \"{addr}\"\n\n\
         [database]\nurl = {db}\n\n\
         [storage]\ndir = {attachments}\n\n\
         [routing]\nopd_file = {opd}\n\n\
         [log]\nlevel = \"warn\"\n",
        db = serde_json::to_string(db)?,
        attachments = toml_string(&dir.join("attachments"))?,
        opd = toml_string(&root.join("config/opd.toml"))?,
    );
    let path = dir.join("aduan.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `aduan apikey create`; the token is the last line it prints.
pub(crate) fn create_api_key(bin: &Path, config: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["apikey", "create", "bench", "--scope", "intake", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "aduan apikey create failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8(out.stdout).context("apikey create printed non-UTF-8")?;
    match stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(token) => Ok(token.to_owned()),
        None => bail!("aduan apikey create printed no token"),
    }
}

/// Writes the machine's dirty pages out (`sync`) before a measured phase, so that the
/// phase's own `fdatasync`s don't wait behind the writeback of whatever ran before it: the
/// release build just before the HTTP phases (the kernel keeps written pages dirty for up
/// to 30 s, `vm.dirty_expire_centisecs`), the inbox-list phase's million tickets before
/// the PostgreSQL one. Says how much was written when it was more than a little.
fn settle_disk(before: &str) {
    let dirty_mb = dirty_kib().map(|k| k / 1024.0);
    let started = Instant::now();
    let synced = Command::new("sync").status().map(|s| s.success()).unwrap_or(false);
    match dirty_mb {
        _ if !synced => eprintln!("bench: warning: `sync` failed before {before}"),
        Some(mb) if mb >= 16.0 => eprintln!(
            "bench: wrote {mb:.0} MiB of dirty pages to disk before {before} ({:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        _ => {}
    }
}

/// `Dirty:` of `/proc/meminfo`, in KiB.
fn dirty_kib() -> Option<f64> {
    crate::procbench::kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "Dirty")
}

/// What `uptime` prints (the load averages tell how busy the shared machine was); the
/// load averages of `/proc/loadavg` when `uptime` is missing.
fn uptime() -> String {
    let printed = Command::new("uptime")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    match printed {
        Some(text) => text.trim().to_owned(),
        None => std::fs::read_to_string("/proc/loadavg")
            .map(|l| format!("load average: {}", l.trim()))
            .unwrap_or_default(),
    }
}

/// `VmRSS` of a process, in MB (MiB).
fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    crate::procbench::status_mb(pid, "VmRSS")
        .with_context(|| format!("cannot read VmRSS of /proc/{pid}/status"))
}

/// The daemon under test. Dropping it kills the process if it is still running.
pub(crate) struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    pub(crate) fn start(bin: &Path, config: &Path, dir: &Path) -> anyhow::Result<Server> {
        let log = dir.join("server.log");
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Server { child, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server logged, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fails if the server has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("the server exited ({status}); its log:\n{}", self.log_tail()),
        }
    }

    /// Polls `GET /healthz` until it answers 200.
    fn wait_healthy(&mut self, rt: &Runtime, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive()?;
            if rt.block_on(probe(addr)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /healthz within {} s; its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then wait; SIGKILL if it takes longer than `STOP_TIMEOUT`.
    pub(crate) fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let term = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        if term.is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Some(status) = self.child.try_wait()? {
                    return Ok(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    if status.success() {
        "stopped cleanly on SIGTERM".to_owned()
    } else {
        format!("did not stop cleanly: {status}")
    }
}

// --- The client ------------------------------------------------------------------------

type Conn = SendRequest<Full<Bytes>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `POST /api/v1/messages` from 5,000 repeating senders (most messages join a ticket).
    Intake,
    Healthz,
    /// `POST /api/v1/messages` from a sender never seen before, every time: each message
    /// creates a reporter, an identity and a ticket the routing worker then routes (what a
    /// real intake burst looks like).
    IntakeNew,
}

/// Where and as whom the load is sent; numbers the messages.
struct Target {
    addr: SocketAddr,
    host: String,
    authorization: String,
    run: u64,
    /// Numbers the messages; shared by the targets of one multi-instance phase.
    seq: Arc<AtomicU64>,
    /// 201 answers over the whole run, warm-ups included: messages durably stored.
    created: AtomicU64,
}

impl Target {
    fn new(addr: SocketAddr, token: &str) -> Target {
        Target::sharing(addr, token, Arc::new(AtomicU64::new(0)))
    }

    /// A target numbering its messages with `seq`, shared with other targets.
    fn sharing(addr: SocketAddr, token: &str, seq: Arc<AtomicU64>) -> Target {
        let run = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Target {
            addr,
            host: addr.to_string(),
            authorization: format!("Bearer {token}"),
            run,
            seq,
            created: AtomicU64::new(0),
        }
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors surface there.
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn request(&self, kind: Kind) -> anyhow::Result<Request<Full<Bytes>>> {
        let req = match kind {
            Kind::Healthz => Request::get("/healthz")
                .header(header::HOST, &self.host)
                .body(Full::new(Bytes::new()))?,
            Kind::IntakeNew | Kind::Intake => {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                // A new sender every time, or one of 5,000 repeating ones.
                let sender = if kind == Kind::IntakeNew {
                    format!(r#""name":"Warga {n}","id":"new-{n}","phone":"+62857{n:08}""#)
                } else {
                    let (name, id, phone) = (n % 500, n % 5000, n % 10_000_000);
                    format!(r#""name":"Warga {name}","id":"u-{id}","phone":"+62812{phone:07}""#)
                };
                let body = format!(
                    concat!(
                        r#"{{"external_id":"bench-{run}-{n}","#,
                        r#""sender":{{{sender}}},"#,
                        r#""text":"Jalan berlubang di Desa Karangklesem, mohon segera diperbaiki ({n})","#,
                        r#""location":{{"lat":-7.4246,"lon":109.2396}}}}"#
                    ),
                    run = self.run,
                    n = n,
                    sender = sender,
                );
                Request::post("/api/v1/messages")
                    .header(header::HOST, &self.host)
                    .header(header::AUTHORIZATION, &self.authorization)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))?
            }
        };
        Ok(req)
    }

    /// One request on `conn`, body read to the end so the connection can be reused.
    /// `Ok` only for a 2xx answer.
    async fn exchange(&self, conn: &mut Conn, kind: Kind) -> anyhow::Result<StatusCode> {
        let req = self.request(kind)?;
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, async {
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await
        .context("no answer within the request timeout")??;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            bail!("HTTP {status}: {body}");
        }
        if status == StatusCode::CREATED {
            self.created.fetch_add(1, Ordering::Relaxed);
        }
        Ok(status)
    }
}

/// `GET /healthz` on a fresh connection answers 200.
async fn probe(addr: SocketAddr) -> bool {
    let attempt = async {
        let target = Target::new(addr, "");
        let mut conn = target.connect().await?;
        target.exchange(&mut conn, Kind::Healthz).await
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), attempt).await, Ok(Ok(StatusCode::OK)))
}

/// What one client (or one phase) saw.
#[derive(Default)]
struct Tally {
    /// Successes completed inside the measured window.
    ok: u64,
    /// Errors over the whole phase, warm-up included.
    errors: u64,
    /// Latencies of the measured successes, in microseconds.
    latencies: Vec<u32>,
    first_error: Option<String>,
}

impl Tally {
    fn success(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    fn error(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{error:#}"));
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// One virtual client of a closed loop: the next request leaves when the last is answered.
async fn closed_client(
    target: Arc<Target>,
    kind: Kind,
    mut conn: Conn,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let start = Instant::now();
        if start >= end {
            return tally;
        }
        match target.exchange(&mut conn, kind).await {
            Ok(_) => {
                let done = Instant::now();
                if done >= measure_from && done <= end {
                    tally.success(done - start);
                }
            }
            Err(e) => {
                tally.error(&e);
                // The connection may be unusable; open another (not too eagerly).
                loop {
                    if Instant::now() >= end {
                        return tally;
                    }
                    match target.connect().await {
                        Ok(fresh) => {
                            conn = fresh;
                            break;
                        }
                        Err(e) => {
                            tally.error(&e);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        }
    }
}

async fn closed_loop(
    target: Arc<Target>,
    server_pid: u32,
    kind: Kind,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Phase> {
    closed_loop_over(&[target], server_pid, kind, connections, warmup, duration).await
}

/// A closed loop whose connections go to `targets` in turn (several instances).
async fn closed_loop_over(
    targets: &[Arc<Target>],
    server_pid: u32,
    kind: Kind,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let mut conns = Vec::with_capacity(connections);
    for i in 0..connections {
        let target = &targets[i % targets.len()];
        conns.push((target.clone(), target.connect().await?));
    }
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let cpu = tokio::spawn(cpu_use(server_pid, measure_from, end));
    let mut clients = JoinSet::new();
    for (target, conn) in conns {
        clients.spawn(closed_client(target, kind, conn, measure_from, end));
    }
    let mut tally = Tally::default();
    while let Some(client) = clients.join_next().await {
        tally.merge(client.context("a client task failed")?);
    }
    let mut phase = Phase::new(connections, tally, duration);
    phase.cpu = cpu.await.context("the CPU sampler failed")?;
    Ok(phase)
}

/// The connections of the open loop; a request holds one while it runs.
struct Pool {
    /// Idle connections, used oldest-idle first: each one carries a request every
    /// `connections / rate` seconds, so none sits idle long enough for the server's
    /// `header_read_timeout` (10 s) to close it under the client (a LIFO stack left the
    /// bottom ones idle, and a burst reaching them met "channel closed").
    idle: Mutex<std::collections::VecDeque<Conn>>,
    /// As many permits as connections; FIFO, so requests get connections in due order.
    permits: Semaphore,
}

impl Pool {
    async fn exchange(&self, target: &Target, kind: Kind) -> anyhow::Result<StatusCode> {
        let _permit = self.permits.acquire().await?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        // A connection that failed was not put back, and one the server closed while it
        // sat idle is dropped: the replacement is opened here, before anything is sent (a
        // request is never sent twice).
        let mut conn = match idle {
            Some(conn) if !conn.is_closed() => conn,
            _ => target.connect().await?,
        };
        let result = target.exchange(&mut conn, kind).await;
        if result.is_ok() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push_back(conn);
        }
        result
    }
}

/// An open-loop request slower than this is written to `ADUAN_BENCH_SLOW` when it is set.
const SLOW_REQUEST: Duration = Duration::from_millis(5);

/// An open-loop request: its number, when it was due, when it finished, how it went.
type Done = (u64, Instant, Instant, anyhow::Result<StatusCode>);

async fn open_loop(
    target: Arc<Target>,
    server_pid: u32,
    kind: Kind,
    connections: usize,
    rate: u64,
    warmup_secs: u64,
    duration_secs: u64,
) -> anyhow::Result<Phase> {
    let mut conns = std::collections::VecDeque::with_capacity(connections);
    for _ in 0..connections {
        conns.push_back(target.connect().await?);
    }
    let pool = Arc::new(Pool { idle: Mutex::new(conns), permits: Semaphore::new(connections) });
    let warmup_requests = rate.saturating_mul(warmup_secs);
    let total = rate.saturating_mul(warmup_secs + duration_secs);
    let t0 = Instant::now() + Duration::from_millis(20);
    let measure_from = t0 + Duration::from_secs(warmup_secs);
    let end = measure_from + Duration::from_secs(duration_secs);
    let cpu = tokio::spawn(cpu_use(server_pid, measure_from, end));

    // The pacer sleeps with nanosleep precision (tokio timers tick per millisecond) and
    // hands each request to the runtime when it is due.
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let pacer = std::thread::Builder::new()
        .name("bench-pacer".into())
        .spawn(move || {
            for i in 0..total {
                let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate);
                let due = t0 + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if due_tx.send((i, due)).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the pacing thread")?;

    let mut tally = Tally::default();
    let mut completed_in_window = 0u64;
    // `ADUAN_BENCH_SLOW=<file>`: every measured request slower than 5 ms is appended to it
    // (wall-clock time it was due, in µs since the epoch, and its latency in µs), to line
    // up with the server's `debug` timings.
    let mut slow = std::env::var_os("ADUAN_BENCH_SLOW").map(|_| String::new());
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let at_wall = Instant::now();
    let mut record = |tally: &mut Tally, done: Result<Done, JoinError>| -> anyhow::Result<()> {
        let (i, due, finished, result) = done.context("a request task failed")?;
        match result {
            Ok(_) => {
                if finished >= measure_from && finished <= end {
                    completed_in_window += 1;
                }
                if i >= warmup_requests {
                    tally.success(finished - due);
                    if let Some(out) = slow.as_mut().filter(|_| finished - due > SLOW_REQUEST) {
                        let due_us = (wall + due.saturating_duration_since(at_wall)).as_micros();
                        let _ = writeln!(out, "{due_us} {} {kind:?}", (finished - due).as_micros());
                    }
                }
            }
            Err(e) => tally.error(&e),
        }
        Ok(())
    };
    let mut requests = JoinSet::new();
    while let Some((i, due)) = due_rx.recv().await {
        let (target, pool) = (target.clone(), pool.clone());
        requests.spawn(async move {
            let result = pool.exchange(&target, kind).await;
            (i, due, Instant::now(), result)
        });
        while let Some(done) = requests.try_join_next() {
            record(&mut tally, done)?;
        }
    }
    while let Some(done) = requests.join_next().await {
        record(&mut tally, done)?;
    }
    if pacer.join().is_err() {
        bail!("the pacing thread panicked");
    }
    if let (Some(path), Some(text)) = (std::env::var_os("ADUAN_BENCH_SLOW"), slow) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(text.as_bytes())?;
    }
    // Latencies cover every measured request, however late it finished; throughput
    // counts what completed inside the window, as in the closed loops.
    let mut phase = Phase::new(connections, tally, Duration::from_secs(duration_secs));
    phase.per_sec = completed_in_window as f64 / duration_secs as f64;
    phase.cpu = cpu.await.context("the CPU sampler failed")?;
    Ok(phase)
}

/// CPU time a process has used, user + system, in clock ticks; `pid` may be `self`.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; count fields after its closing ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15; fields[0] is field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Time no process used, summed over the machine's cores (idle + iowait of the `cpu` line
/// of `/proc/stat`), in clock ticks.
fn idle_ticks() -> Option<u64> {
    idle_of(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Idle + iowait of the `cpu` line of a `/proc/stat` text (`cpu user nice system idle
/// iowait …`).
fn idle_of(stat: &str) -> Option<u64> {
    let mut fields = stat.lines().find(|l| l.starts_with("cpu "))?.split_whitespace().skip(4);
    let idle: u64 = fields.next()?.parse().ok()?;
    let iowait: u64 = fields.next()?.parse().ok()?;
    Some(idle + iowait)
}

/// CPU use of the server and of this process (the client) in `from..to`, and the time the
/// machine's cores were idle, in % of one core. `None` when /proc can't be read.
async fn cpu_use(server_pid: u32, from: Instant, to: Instant) -> Option<CpuUse> {
    // USER_HZ: 100 on every Linux this runs on.
    const TICKS_PER_SEC: f64 = 100.0;
    let server = server_pid.to_string();
    tokio::time::sleep_until(from.into()).await;
    let start = Instant::now();
    let (server0, client0, idle0) = (cpu_ticks(&server)?, cpu_ticks("self")?, idle_ticks()?);
    tokio::time::sleep_until(to.into()).await;
    let (server1, client1, idle1) = (cpu_ticks(&server)?, cpu_ticks("self")?, idle_ticks()?);
    let secs = start.elapsed().as_secs_f64();
    let pct = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs * 100.0;
    Some(CpuUse {
        server_pct: pct(server1.saturating_sub(server0)),
        client_pct: pct(client1.saturating_sub(client0)),
        idle_pct: pct(idle1.saturating_sub(idle0)),
    })
}

// --- Figures ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct CpuUse {
    server_pct: f64,
    client_pct: f64,
    /// Idle time of all cores together (200% = a 2-core machine doing nothing): whatever
    /// is neither this nor server nor client ran something else (PostgreSQL, the kernel).
    idle_pct: f64,
}

/// Latencies, sorted, in microseconds.
struct Histogram(Vec<u32>);

impl Histogram {
    fn new(mut micros: Vec<u32>) -> Histogram {
        micros.sort_unstable();
        Histogram(micros)
    }

    /// Nearest-rank percentile (0 < p <= 100), in milliseconds; 0 without samples.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = (p / 100.0 * self.0.len() as f64).ceil() as usize;
        f64::from(self.0[rank.clamp(1, self.0.len()) - 1]) / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.0.last().map_or(0.0, |&m| f64::from(m) / 1000.0)
    }
}

struct Phase {
    connections: usize,
    /// Successes per second inside the measured window.
    per_sec: f64,
    /// Successes inside the measured window.
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    histogram: Histogram,
    /// CPU use during the measured window.
    cpu: Option<CpuUse>,
}

impl Phase {
    fn new(connections: usize, tally: Tally, window: Duration) -> Phase {
        Phase {
            connections,
            per_sec: tally.ok as f64 / window.as_secs_f64(),
            ok: tally.ok,
            errors: tally.errors,
            first_error: tally.first_error,
            histogram: Histogram::new(tally.latencies),
            cpu: None,
        }
    }

    fn p50(&self) -> f64 {
        self.histogram.percentile_ms(50.0)
    }

    fn p99(&self) -> f64 {
        self.histogram.percentile_ms(99.0)
    }

    /// `  cpu server 108% client 34% idle 12%`, or nothing.
    fn cpu_text(&self) -> String {
        self.cpu.map_or(String::new(), |c| {
            format!(
                "  cpu server {:.0}% client {:.0}% idle {:.0}%",
                c.server_pct, c.client_pct, c.idle_pct
            )
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "connections": self.connections,
            "cpu_server_pct": self.cpu.map(|c| round(c.server_pct, 0)),
            "cpu_client_pct": self.cpu.map(|c| round(c.client_pct, 0)),
            "cpu_idle_pct": self.cpu.map(|c| round(c.idle_pct, 0)),
            "per_sec": round(self.per_sec, 1),
            "measured_requests": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "p50_ms": round(self.p50(), 3),
            "p90_ms": round(self.histogram.percentile_ms(90.0), 3),
            "p99_ms": round(self.p99(), 3),
            "p999_ms": round(self.histogram.percentile_ms(99.9), 3),
            "max_ms": round(self.histogram.max_ms(), 3),
        })
    }
}

struct Report {
    idle_rss_mb: f64,
    loaded_rss_mb: f64,
    /// Closed loop, repeating senders.
    intake: Phase,
    /// Closed loop, a new sender per message (the routing worker routes every ticket).
    intake_new: Phase,
    healthz: Phase,
    /// Open loop, repeating senders.
    open: Phase,
    /// Open loop, a new sender per message.
    open_new: Phase,
    /// `uptime` before the first and after the last load phase.
    load_before: String,
    load_after: String,
    /// 201 answers over the whole run.
    created: u64,
    server_exit: String,
    /// Resident memory during the intake phases (`procbench.rs`).
    loaded_rss: crate::procbench::LoadedRss,
}

impl Report {
    fn phases(&self) -> [&Phase; 5] {
        [&self.intake, &self.intake_new, &self.healthz, &self.open, &self.open_new]
    }

    fn errors(&self) -> u64 {
        self.phases().iter().map(|p| p.errors).sum()
    }

    /// Intake of the mix `intake` ÷ `/healthz` of the same binary.
    fn ratio_of(&self, intake: &Phase) -> f64 {
        if self.healthz.per_sec > 0.0 { intake.per_sec / self.healthz.per_sec } else { 0.0 }
    }

    fn ratio(&self) -> f64 {
        self.ratio_of(&self.intake)
    }

    fn render(&self, args: &Args) -> String {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "aduan bench (release, SQLite WAL, 201 = fdatasynced, {cores} cores shared by client and server; \
             client: {} build, 1 tokio worker thread; {}s warm-up + {}s measured per phase; \
             cpu in % of one core; routing worker on)",
            client_build(),
            args.warmup_secs,
            args.duration_secs
        );
        let _ = writeln!(s, "{:<32}{}", "uptime before the load", self.load_before);
        let _ = writeln!(
            s,
            "{:<32}{:>8.1} MB   (target <= {IDLE_RSS_TARGET_MB:.0} MB)   {}",
            "idle RSS",
            self.idle_rss_mb,
            verdict(self.idle_rss_mb <= IDLE_RSS_TARGET_MB)
        );
        let closed = [
            ("intake closed", "msg/s", &self.intake),
            ("intake new senders closed", "msg/s", &self.intake_new),
            ("healthz closed-loop", "req/s", &self.healthz),
        ];
        for (label, per, i) in closed {
            let _ = writeln!(
                s,
                "{:<32}{:>8} {per}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  errors {}{}",
                format!("{label} ({} conns)", i.connections),
                thousands(i.per_sec),
                i.p50(),
                i.p99(),
                i.histogram.max_ms(),
                i.errors,
                i.cpu_text()
            );
        }
        for (label, i) in [("", &self.intake), (" new senders", &self.intake_new)] {
            let ratio = self.ratio_of(i);
            let _ = writeln!(
                s,
                "{:<32}{:>8.2}          (target >= {RATIO_TARGET:.2})   {}",
                format!("ratio intake{label}/healthz"),
                ratio,
                verdict(ratio >= RATIO_TARGET)
            );
        }
        for (label, o) in [("", &self.open), (" new senders", &self.open_new)] {
            let _ = writeln!(
                s,
                "intake{label} open-loop {} msg/s offered ({} conns): achieved {} msg/s  p50 {:.1} ms  \
                 p99 {:.1} ms  max {:.1} ms  errors {}  (target p99 <= {OPEN_P99_TARGET_MS:.0} ms)  {}{}",
                thousands(args.rate as f64),
                o.connections,
                thousands(o.per_sec),
                o.p50(),
                o.p99(),
                o.histogram.max_ms(),
                o.errors,
                verdict(o.p99() <= OPEN_P99_TARGET_MS),
                o.cpu_text()
            );
        }
        let _ = writeln!(s, "{:<32}{}", "uptime after the load", self.load_after);
        let _ = writeln!(s, "{:<32}{:>8.1} MB", "RSS after load (idle)", self.loaded_rss_mb);
        let _ = writeln!(
            s,
            "{:<32}{:>8}        (201 answers, warm-ups included); server {}",
            "durable messages stored",
            thousands(self.created as f64),
            self.server_exit
        );
        s
    }

    fn to_json(&self, args: &Args) -> Value {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let ratio_new = self.ratio_of(&self.intake_new);
        json!({
            "setup": {
                "build": "release",
                "database": "sqlite WAL synchronous=NORMAL + WAL fdatasync before each answer",
                "cores": cores,
                "client_build": client_build(),
                "client_worker_threads": 1,
                "warmup_secs": args.warmup_secs,
                "duration_secs": args.duration_secs,
                "connections": args.connections,
                "open_loop_rate": args.rate,
                "open_loop_connections": args.open_connections,
                "uptime_before": self.load_before,
                "uptime_after": self.load_after,
            },
            "idle_rss_mb": round(self.idle_rss_mb, 1),
            "idle_rss_target_mb": IDLE_RSS_TARGET_MB,
            "idle_rss_pass": self.idle_rss_mb <= IDLE_RSS_TARGET_MB,
            "intake_closed_loop": self.intake.to_json(),
            "intake_new_senders_closed_loop": self.intake_new.to_json(),
            "healthz_closed_loop": self.healthz.to_json(),
            "ratio_intake_healthz": round(self.ratio(), 3),
            "ratio_new_senders_healthz": round(ratio_new, 3),
            "ratio_target": RATIO_TARGET,
            "ratio_pass": self.ratio() >= RATIO_TARGET,
            "ratio_new_senders_pass": ratio_new >= RATIO_TARGET,
            "intake_open_loop": self.open.to_json(),
            "intake_new_senders_open_loop": self.open_new.to_json(),
            "open_loop_p99_target_ms": OPEN_P99_TARGET_MS,
            "open_loop_p99_pass": self.open.p99() <= OPEN_P99_TARGET_MS,
            "open_loop_new_senders_p99_pass": self.open_new.p99() <= OPEN_P99_TARGET_MS,
            "rss_after_load_mb": round(self.loaded_rss_mb, 1),
            "created_201": self.created,
            "errors": self.errors(),
            "server_exit": self.server_exit,
        })
    }
}

fn client_build() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `14210.4` → `"14,210"`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// --- PostgreSQL intake: 1, 2, 3 instances on one cluster ------------------------------

/// One PostgreSQL intake is at least this fast (messages per second, new-sender mix).
const PG_ONE_TARGET: f64 = 5000.0;
/// Three instances together make at least this multiple of one.
const PG_SCALE_TARGET: f64 = 2.0;

struct PgIntake {
    /// `(instances, closed-loop phase)`.
    runs: Vec<(usize, Phase)>,
    /// Top statements by total execution time during the one-instance run:
    /// `(calls, total ms, mean ms, query)`.
    statements: Vec<(i64, f64, f64, String)>,
    /// Wait events of the cluster's active backends sampled every 20 ms during the
    /// one-instance run: `(type:event, samples)`, most frequent first.
    waits: Vec<(String, u64)>,
    uptime: String,
}

impl PgIntake {
    fn one(&self) -> f64 {
        self.runs.first().map_or(0.0, |(_, p)| p.per_sec)
    }

    fn scale(&self) -> Option<f64> {
        let (_, last) = self.runs.iter().find(|(n, _)| *n == 3)?;
        (self.one() > 0.0).then(|| last.per_sec / self.one())
    }

    fn render(&self) -> String {
        let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "PostgreSQL intake (private cluster, fsync=on; new sender per message; group commit; {})",
            self.uptime
        );
        for (n, p) in &self.runs {
            let _ = writeln!(
                s,
                "{:<32}{:>8} msg/s  p50 {:.1} ms  p99 {:.1} ms  errors {}{}",
                format!("  {n} instance(s) ({} conns)", p.connections),
                thousands(p.per_sec),
                p.p50(),
                p.p99(),
                p.errors,
                p.cpu_text()
            );
        }
        let _ = writeln!(
            s,
            "{:<32}{:>8}          (target >= {}) {}",
            "  one instance",
            thousands(self.one()),
            thousands(PG_ONE_TARGET),
            verdict(self.one() >= PG_ONE_TARGET)
        );
        if let Some(scale) = self.scale() {
            let _ = writeln!(
                s,
                "{:<32}{:>8.2}x         (target >= {PG_SCALE_TARGET:.1}x) {}",
                "  3 instances / one",
                scale,
                verdict(scale >= PG_SCALE_TARGET)
            );
        }
        let _ = writeln!(s, "  top statements (one instance): calls, total ms, mean ms");
        for (calls, total, mean, query) in &self.statements {
            let q: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
            let q: String = q.chars().take(110).collect();
            let _ = writeln!(s, "    {calls:>8} {total:>9.0} {mean:>7.3}  {q}");
        }
        let total: u64 = self.waits.iter().map(|(_, n)| n).sum();
        let _ = write!(s, "  wait events of active backends (one instance, {total} samples):");
        for (event, n) in self.waits.iter().take(8) {
            let _ = write!(s, " {event} {:.0}%", *n as f64 * 100.0 / total.max(1) as f64);
        }
        let _ = writeln!(s);
        s
    }

    fn to_json(&self) -> Value {
        json!({
            "uptime": self.uptime,
            "runs": self.runs.iter().map(|(n, p)| json!({"instances": n, "closed_loop": p.to_json()})).collect::<Vec<_>>(),
            "one_instance_target": PG_ONE_TARGET,
            "one_instance_pass": self.one() >= PG_ONE_TARGET,
            "scale_3_over_1": self.scale().map(|x| round(x, 2)),
            "scale_pass": self.scale().is_some_and(|x| x >= PG_SCALE_TARGET),
            "top_statements": self.statements.iter().map(|(c, t, m, q)| json!({"calls": c, "total_ms": round(*t, 1), "mean_ms": round(*m, 4), "query": q})).collect::<Vec<_>>(),
            "wait_events": self.waits.iter().map(|(e, n)| json!({"event": e, "samples": n})).collect::<Vec<_>>(),
        })
    }
}

/// Starts a private cluster with `fsync=on`, then for 1 … `max` instances: a fresh database,
/// that many `aduan serve` on it, the closed loop of new senders spread over them.
fn pg_intake(
    rt: &Runtime,
    args: &Args,
    root: &Path,
    bin: &Path,
    dir: &Path,
    max: usize,
) -> anyhow::Result<PgIntake> {
    use sqlx::Connection as _;
    eprintln!("bench: PostgreSQL intake: starting a private cluster (fsync=on)");
    let cluster = crate::pg::Cluster::start_durable()?;
    let (head, _) = cluster.url.rsplit_once('/').context("cluster URL without a database")?;
    let mut out =
        PgIntake { runs: Vec::new(), statements: Vec::new(), waits: Vec::new(), uptime: uptime() };
    for n in 1..=max {
        let name = format!("aduan_intake_{n}");
        let db_url = format!("{head}/{name}");
        rt.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&cluster.url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            let mut db = sqlx::PgConnection::connect(&db_url).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut db)
                .await?;
            anyhow::Ok(())
        })?;
        let mut servers = Vec::new();
        let mut addrs = Vec::new();
        let mut token = String::new();
        for i in 0..n {
            let sub = dir.join(format!("pg-{n}-{i}"));
            std::fs::create_dir_all(&sub)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            let config = write_config_for(&sub, root, addr, &db_url)?;
            let mut server = Server::start(bin, &config, &sub)?;
            server.wait_healthy(rt, addr)?;
            if i == 0 {
                token = create_api_key(bin, &config)?;
            }
            servers.push(server);
            addrs.push(addr);
        }
        let seq = Arc::new(AtomicU64::new(0));
        let targets: Vec<Arc<Target>> =
            addrs.iter().map(|a| Arc::new(Target::sharing(*a, &token, seq.clone()))).collect();
        settle_disk(&format!("PostgreSQL intake, {n} instance(s)"));
        eprintln!("bench: PostgreSQL intake: {n} instance(s)");
        let warmup = Duration::from_secs(args.warmup_secs);
        let duration = Duration::from_secs(args.duration_secs);
        let measured = rt.block_on(async {
            let mut stats = sqlx::PgConnection::connect(&db_url).await?;
            let sampling = n == 1;
            let sampler =
                tokio::spawn(sample_waits(cluster.url.clone(), warmup, duration, sampling));
            tokio::time::sleep(Duration::from_millis(1)).await;
            let phase = async {
                tokio::time::sleep(warmup).await;
                if sampling {
                    sqlx::query("SELECT pg_stat_statements_reset()").execute(&mut stats).await?;
                }
                anyhow::Ok(())
            };
            let (load, reset) = tokio::join!(
                closed_loop_over(
                    &targets,
                    servers[0].pid(),
                    Kind::IntakeNew,
                    args.connections,
                    warmup,
                    duration
                ),
                phase
            );
            reset?;
            let waits = sampler.await??;
            let statements = if sampling { top_statements(&mut stats).await? } else { Vec::new() };
            anyhow::Ok((load?, waits, statements))
        });
        for mut server in servers {
            let _ = server.stop();
        }
        let (phase, waits, statements) = measured?;
        if n == 1 {
            out.waits = waits;
            out.statements = statements;
        }
        out.runs.push((n, phase));
    }
    drop(cluster);
    Ok(out)
}

/// Counts the wait events of the active client backends every 20 ms over the measured
/// window (after `warmup`); nothing when `on` is false.
async fn sample_waits(
    url: String,
    warmup: Duration,
    duration: Duration,
    on: bool,
) -> anyhow::Result<Vec<(String, u64)>> {
    use sqlx::Connection as _;
    if !on {
        return Ok(Vec::new());
    }
    let mut c = sqlx::PgConnection::connect(&url).await?;
    tokio::time::sleep(warmup).await;
    let end = Instant::now() + duration;
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    while Instant::now() < end {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity \
             WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut c)
        .await?;
        for (event,) in rows {
            *counts.entry(event).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut waits: Vec<_> = counts.into_iter().collect();
    waits.sort_by_key(|w| std::cmp::Reverse(w.1));
    Ok(waits)
}

/// The top statements of `pg_stat_statements` by total execution time.
async fn top_statements(
    c: &mut sqlx::PgConnection,
) -> anyhow::Result<Vec<(i64, f64, f64, String)>> {
    Ok(sqlx::query_as(
        "SELECT calls, total_exec_time, mean_exec_time, query FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY total_exec_time DESC LIMIT 8",
    )
    .fetch_all(c)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let h = Histogram::new((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(h.percentile_ms(50.0), 50.0);
        assert_eq!(h.percentile_ms(99.0), 99.0);
        assert_eq!(h.max_ms(), 100.0);
        assert_eq!(Histogram::new(Vec::new()).percentile_ms(99.0), 0.0);
    }

    #[test]
    fn this_machines_dirty_pages_are_read() {
        assert!(dirty_kib().is_some(), "this machine's /proc/meminfo");
    }

    #[test]
    fn idle_time_is_idle_plus_iowait_of_all_cores() {
        let stat = "cpu  3316 12 1546 912831 441 0 91 0 0 0\n\
                    cpu0 1658 6 773 456415 220 0 45 0 0 0\n\
                    cpu1 1658 6 773 456416 221 0 46 0 0 0\n";
        assert_eq!(idle_of(stat), Some(912_831 + 441));
        assert_eq!(idle_of("cpu0 1 2 3 4 5\n"), None);
        assert!(idle_ticks().is_some(), "this machine's /proc/stat");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(14210.4), "14,210");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
}
