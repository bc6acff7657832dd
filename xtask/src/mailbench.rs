//! The email phase of `cargo xtask bench`: a mailbox pre-loaded with `--mails` complaints
//! (5,000 by default) → the time until every one of them is a ticket.
//!
//! # Method
//!
//! 1. The test mail peer starts (Dovecot + Postfix, `mail.rs`).
//! 2. The mails are written straight into the Maildir of the folder `bench` of
//!    `intake@aduan.test` (`~/Maildir/.bench/new`, owned by the mail user), as a delivery
//!    agent would: each from its own resident at `example.id`, with its own Message-ID.
//! 3. A fresh `aduan serve` (release, SQLite, `[channels.email]` on that folder) starts;
//!    the clock starts just before it is spawned.
//! 4. `GET /metrics` is polled every 20 ms until `aduan_tickets_created_total{channel="email"}`
//!    reaches the number of mails; the elapsed time gives mails/s (process start, IMAP login
//!    and the first fetch included). Meanwhile the outbound worker sends the receipts
//!    through Postfix, as it would in production.
//! 5. The folder must then be empty (every mail moved to `bench-processed`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::bench::{Server, write_config};
use crate::mail::MailPeer;
use crate::sys::free_port;

/// Mails per second the intake should reach.
pub const TARGET_PER_SEC: f64 = 300.0;
/// How long the whole mailbox may take before the phase fails.
const TIMEOUT: Duration = Duration::from_secs(600);
const FOLDER: &str = "bench";

pub struct MailReport {
    pub mails: usize,
    pub secs: f64,
    pub left_in_folder: usize,
}

impl MailReport {
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 { self.mails as f64 / self.secs } else { 0.0 }
    }

    pub fn render(&self) -> String {
        format!(
            "{:<32}{:>8.0} mails/s  ({} mails pre-loaded in an IMAP folder → tickets in {:.2} s, \
             process start included)  (target >= {TARGET_PER_SEC:.0})   {}\n",
            "email intake (IMAP → tickets)",
            self.per_sec(),
            self.mails,
            self.secs,
            if self.per_sec() >= TARGET_PER_SEC { "PASS" } else { "FAIL" }
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "mails": self.mails,
            "seconds": (self.secs * 1000.0).round() / 1000.0,
            "mails_per_sec": self.per_sec().round(),
            "target_mails_per_sec": TARGET_PER_SEC,
            "pass": self.per_sec() >= TARGET_PER_SEC,
            "left_in_folder": self.left_in_folder,
        })
    }
}

fn mail(i: usize, run: u64) -> String {
    format!(
        "Return-Path: <warga{i}@example.id>\r\nFrom: Warga {i} <warga{i}@example.id>\r\n\
         To: Lapak Aduan <intake@aduan.test>\r\nSubject: Jalan berlubang di Desa Karangklesem {i}\r\n\
         Message-ID: <bench.{run}.{i}@example.id>\r\nDate: Mon, 20 Apr 2026 10:00:00 +0700\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         Jalan di depan SD 1 berlubang besar, sudah dua minggu dan membahayakan pengendara.\r\n\
         Mohon segera diperbaiki. Terima kasih.\r\n\r\n-- \r\nWarga {i}\r\n"
    )
}

/// Writes `n` mails into the Maildir folder (Maildir++ layout: `~/Maildir/.<folder>`).
fn preload(home: &Path, n: usize) -> anyhow::Result<()> {
    let folder = home.join("Maildir").join(format!(".{FOLDER}"));
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(folder.join(sub))?;
    }
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for i in 0..n {
        let name = format!("{run}.M{i}P{}.bench", std::process::id());
        std::fs::write(folder.join("new").join(name), mail(i, run))?;
    }
    let status = std::process::Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(home.join("Maildir"))
        .status()?;
    if !status.success() {
        bail!("chown of the bench Maildir failed");
    }
    Ok(())
}

/// One `GET path` over HTTP/1.0; the body.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn tickets_created(metrics: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix("aduan_tickets_created_total{channel=\"email\"} ")?.trim().parse().ok()
    })
}

pub fn run(root: &Path, bin: &Path, dir: &Path, mails: usize) -> anyhow::Result<MailReport> {
    eprintln!("bench: starting the mail peer and pre-loading {mails} mails");
    let peer = MailPeer::start()?;
    preload(&peer.home("intake"), mails)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let mail_dir = dir.join("email");
    std::fs::create_dir_all(&mail_dir)?;
    let config = write_config(&mail_dir, root, addr)?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&email_section(&peer, FOLDER, FOLDER));
    std::fs::write(&config, text)?;

    let started = Instant::now();
    let mut server = Server::start(bin, &config, &mail_dir)?;
    let result = (|| {
        loop {
            server.check_alive()?;
            if let Ok(m) = http_get(addr, "/metrics")
                && tickets_created(&m).is_some_and(|n| n >= mails as f64)
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > TIMEOUT {
                bail!("{mails} mails were not all tickets after {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    let stopped = server.stop();
    let elapsed = result.context("the email phase failed")?;
    stopped?;
    let left = std::fs::read_dir(peer.home("intake").join(format!("Maildir/.{FOLDER}/cur")))
        .map(|d| d.count())
        .unwrap_or(0)
        + std::fs::read_dir(peer.home("intake").join(format!("Maildir/.{FOLDER}/new")))
            .map(|d| d.count())
            .unwrap_or(0);
    Ok(MailReport { mails, secs: elapsed.as_secs_f64(), left_in_folder: left })
}

/// The classifier's cost per mail (`--email-only`).
pub struct ClassifierTiming {
    pub mails: usize,
    pub rounds: usize,
    pub micros_per_mail: f64,
    pub build: &'static str,
}

impl ClassifierTiming {
    pub fn render(&self) -> String {
        format!(
            "{:<32}{:>8.1} µs/mail  ({} fixture mails, automated and human, classified {} times; \
             {} build)\n",
            "email classifier", self.micros_per_mail, self.mails, self.rounds, self.build
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "mails": self.mails,
            "rounds": self.rounds,
            "micros_per_mail": (self.micros_per_mail * 10.0).round() / 10.0,
            "build": self.build,
        })
    }
}

/// Every `.eml` under `dir`.
fn emls(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            emls(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml")
            && let Ok(raw) = std::fs::read(&path)
        {
            out.push(raw);
        }
    }
}

/// Parses the fixtures of `crates/aduan-email/tests` (the 231 automated mails and the human
/// corpora) once, then times `aduan_email::classify::classify` alone over all of them.
pub fn classifier_timing(root: &Path) -> anyhow::Result<ClassifierTiming> {
    let mut raws = Vec::new();
    emls(&root.join("crates/aduan-email/tests/fixtures-automated"), &mut raws);
    emls(&root.join("crates/aduan-email/tests/fixtures"), &mut raws);
    if raws.is_empty() {
        bail!("no fixtures under crates/aduan-email/tests");
    }
    let parser = mail_parser::MessageParser::default();
    let messages: Vec<mail_parser::Message<'_>> =
        raws.iter().filter_map(|r| parser.parse(r.as_slice())).collect();
    let own = vec!["intake@aduan.test".to_owned()];
    let own_id = |id: &str| id.starts_with("aduan.");
    let rounds = 20;
    let mut automated = 0usize;
    let started = Instant::now();
    for _ in 0..rounds {
        for m in &messages {
            automated += usize::from(aduan_email::classify::classify(m, &own, &own_id).is_some());
        }
    }
    let elapsed = started.elapsed();
    std::hint::black_box(automated);
    Ok(ClassifierTiming {
        mails: messages.len(),
        rounds,
        micros_per_mail: elapsed.as_secs_f64() * 1e6 / (rounds * messages.len()) as f64,
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// The `[channels.email]` section of a bench daemon reading `mailbox` of the peer's intake
/// account; processed and quarantined mail go to `{folders}-processed` and
/// `{folders}-quarantine`.
pub(crate) fn email_section(peer: &MailPeer, mailbox: &str, folders: &str) -> String {
    format!(
        "\n[channels.email]\nenabled = true\nimap_host = \"127.0.0.1\"\nimap_port = {}\n\
         imap_tls = \"none\"\nimap_user = \"intake@aduan.test\"\nimap_password = \"{}\"\n\
         mailbox = \"{mailbox}\"\nprocessed_mailbox = \"{folders}-processed\"\n\
         quarantine_mailbox = \"{folders}-quarantine\"\nsmtp_url = \"smtp://{}\"\n\
         from = \"Lapak Aduan <intake@aduan.test>\"\n",
        peer.imap.port(),
        crate::mail::PASSWORD,
        peer.smtp
    )
}
