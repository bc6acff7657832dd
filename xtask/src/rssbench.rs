//! Memory phases of `cargo xtask bench` (issue 21.4 and 21.6): the peak resident memory of
//! the release daemon with large mails to fetch, and with the in-flight body budget full.
//! Their worst figure is what the memory limits in `deploy/` are sized from (≥ 1.5×).
//!
//! # Method
//!
//! - **Large mails** (`--large-mails`, 10 by default, 0 skips it): the test mail peer
//!   (`mail.rs`) starts; that many mails of `--large-mail-mb` MB each (20 by default, below
//!   the default `[channels.email] max_message_bytes` of 25 MiB, so they are really fetched)
//!   are written into the Maildir of the intake account's INBOX as a delivery agent would:
//!   each from its own resident, a short text and one base64 attachment of pseudo-random
//!   bytes filling the rest. A fresh release `aduan serve` (SQLite, `[channels.email]` on
//!   INBOX) starts; the phase waits until the INBOX is empty (every mail moved: ingested or
//!   quarantined), then reads `VmHWM` of `/proc/<pid>/status` (the kernel's peak of the
//!   resident set since the process started). Target: ≤ 200 MB.
//! - **In-flight bodies** (`--held-bodies`, on by default): a fresh release daemon with the
//!   default `[server]` limits (64 MiB of request bodies in flight, 10 MiB per JSON body).
//!   Clients open `POST /api/v1/messages` requests each declaring a 9 MiB body (a message
//!   with a 6.7 MiB attachment as base64) and send all of it but the last byte, until the
//!   server refuses one with 503 (the budget is full); meanwhile a closed loop of small
//!   intake requests runs. Then every held request sends its last byte at once, so all the
//!   bodies are parsed, decoded and written together. `VmHWM` after the answers is the
//!   figure. Target: the daemon's memory limit (384 MB) with a margin of 1.5×, i.e. ≤ 256 MB.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::bench::{Server, write_config};
use crate::mail::MailPeer;
use crate::procbench::status_mb;
use crate::sys::free_port;

/// Peak RSS allowed while large mails are fetched (issue 21.4).
pub const LARGE_MAILS_TARGET_MB: f64 = 200.0;
/// The memory limit of the shipped unit and manifest, in MB (MiB).
pub const MEMORY_LIMIT_MB: f64 = 384.0;
/// The margin the limit keeps over the worst measured peak.
pub const MARGIN: f64 = 1.5;
/// How long the large mails may take.
const MAIL_TIMEOUT: Duration = Duration::from_secs(600);
/// One held JSON body (under the 10 MiB `max_json_bytes`).
const HELD_BODY_BYTES: usize = 9 * 1024 * 1024;
/// At most this many held requests (the default budget of 64 MiB takes 7).
const MAX_HELD: usize = 16;

/// One memory figure.
pub struct MemoryFigure {
    pub name: &'static str,
    pub detail: String,
    pub hwm_mb: f64,
    pub target_mb: f64,
}

impl MemoryFigure {
    pub fn pass(&self) -> bool {
        self.hwm_mb <= self.target_mb
    }

    pub fn render(&self) -> String {
        format!(
            "{:<32}{:>8.1} MB   ({})   (target <= {:.0} MB)   {}\n",
            self.name,
            self.hwm_mb,
            self.detail,
            self.target_mb,
            if self.pass() { "PASS" } else { "FAIL" }
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "vmhwm_mb": (self.hwm_mb * 10.0).round() / 10.0,
            "detail": self.detail,
            "target_mb": self.target_mb,
            "pass": self.pass(),
        })
    }
}

/// The limit `MEMORY_LIMIT_MB` is enough when the worst peak times `MARGIN` fits in it.
pub fn limit_line(worst_mb: f64) -> String {
    let needed = worst_mb * MARGIN;
    format!(
        "{:<32}{:>8.1} MB   (worst peak {worst_mb:.1} MB x {MARGIN}; MemoryMax / limits.memory \
         {MEMORY_LIMIT_MB:.0} MB)   {}\n",
        "memory limit needed",
        needed,
        if needed <= MEMORY_LIMIT_MB { "PASS" } else { "FAIL" }
    )
}

/// A small deterministic generator of incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Base64 (standard alphabet, padded), in lines of 76 characters when `wrap`.
fn base64(data: &[u8], wrap: bool) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if wrap && i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    out
}

/// A mail of about `bytes` bytes from resident `i`: a text and one JPEG-typed attachment.
fn large_mail(i: usize, run: u64, bytes: usize) -> Vec<u8> {
    let head = format!(
        "Return-Path: <besar{i}@example.id>\r\nFrom: Warga Besar {i} <besar{i}@example.id>\r\n\
         To: Lapak Aduan <intake@aduan.test>\r\nSubject: Foto jalan rusak {i}\r\n\
         Message-ID: <rss.{run}.{i}@example.id>\r\nDate: Mon, 20 Apr 2026 10:00:00 +0700\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{run}\"\r\n\r\n\
         --b{run}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Jalan di depan SD 1 berlubang besar, fotonya terlampir.\r\n\r\n\
         --b{run}\r\nContent-Type: image/jpeg\r\n\
         Content-Disposition: attachment; filename=\"jalan{i}.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    let tail = format!("\r\n--b{run}--\r\n");
    // 76 characters + CRLF carry 57 bytes.
    let room = bytes.saturating_sub(head.len() + tail.len());
    let data = noise(room / 78 * 57, run ^ (i as u64 + 1));
    let mut mail = head.into_bytes();
    mail.extend_from_slice(base64(&data, true).as_bytes());
    mail.extend_from_slice(tail.as_bytes());
    mail
}

fn maildir_count(dir: &Path) -> usize {
    ["cur", "new"]
        .iter()
        .map(|s| std::fs::read_dir(dir.join(s)).map(|d| d.count()).unwrap_or(0))
        .sum()
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

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// The large-mails phase (see the module docs).
pub fn large_mails(
    root: &Path,
    bin: &Path,
    dir: &Path,
    mails: usize,
    mail_mb: usize,
) -> anyhow::Result<MemoryFigure> {
    eprintln!("bench: starting the mail peer and writing {mails} mails of {mail_mb} MB");
    let peer = MailPeer::start()?;
    let home = peer.home("intake");
    let inbox = home.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(inbox.join(sub))?;
    }
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bytes = mail_mb * 1_000_000;
    for i in 0..mails {
        let name = format!("{run}.R{i}P{}.rss", std::process::id());
        std::fs::write(inbox.join("new").join(name), large_mail(i, run, bytes))?;
    }
    let status =
        std::process::Command::new("chown").args(["-R", "mail:mail"]).arg(&inbox).status()?;
    if !status.success() {
        bail!("chown of the intake Maildir failed");
    }

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let phase_dir = dir.join("large-mails");
    std::fs::create_dir_all(&phase_dir)?;
    let config = write_config(&phase_dir, root, addr)?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&crate::mailbench::email_section(&peer, "INBOX", "rss"));
    std::fs::write(&config, text)?;

    let started = Instant::now();
    let mut server = Server::start(bin, &config, &phase_dir)?;
    let pid = server.pid();
    let result = (|| {
        loop {
            server.check_alive()?;
            if maildir_count(&inbox) == 0 {
                // Moved out of INBOX: committed first. Let the last answers settle.
                std::thread::sleep(Duration::from_millis(500));
                let metrics = http_get(addr, "/metrics").unwrap_or_default();
                let tickets = metric(&metrics, "aduan_tickets_created_total{channel=\"email\"}");
                let hwm = status_mb(pid, "VmHWM").context("cannot read VmHWM")?;
                return Ok((started.elapsed(), tickets, hwm));
            }
            if started.elapsed() > MAIL_TIMEOUT {
                bail!("{mails} large mails were not all taken after {MAIL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    let stopped = server.stop();
    let (elapsed, tickets, hwm) = result.context("the large-mails phase failed")?;
    stopped?;
    Ok(MemoryFigure {
        name: "RSS, large mails (VmHWM)",
        detail: format!(
            "{mails} mails of {mail_mb} MB fetched from IMAP in {:.1} s, {tickets:.0} tickets",
            elapsed.as_secs_f64()
        ),
        hwm_mb: hwm,
        target_mb: LARGE_MAILS_TARGET_MB,
    })
}

/// A `POST /api/v1/messages` of `HELD_BODY_BYTES` bytes sent but for its last byte.
struct Held {
    stream: TcpStream,
    last: u8,
}

/// The JSON body of a held request: a message with one attachment filling the body.
fn held_body(n: usize, run: u64) -> Vec<u8> {
    let head = format!(
        r#"{{"external_id":"held-{run}-{n}","sender":{{"id":"held-{n}"}},"text":"Foto jalan","attachments":[{{"filename":"jalan.jpg","content_type":"image/jpeg","data_base64":""#
    );
    let tail = r#""}]}"#;
    let room = HELD_BODY_BYTES - head.len() - tail.len();
    let data = noise(room / 4 * 3, run ^ (n as u64 + 7));
    let mut body = head.into_bytes();
    body.extend_from_slice(base64(&data, false).as_bytes());
    body.extend_from_slice(tail.as_bytes());
    body
}

/// Sends the head and all but the last byte of a held request. `Ok(None)`: the server
/// answered at once (the budget is full: 503).
fn hold(addr: SocketAddr, token: &str, n: usize, run: u64) -> anyhow::Result<Option<Held>> {
    let body = held_body(n, run);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_millis(300)))?;
    write!(
        stream,
        "POST /api/v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    // A refusal comes before the body is read.
    let mut peek = [0u8; 12];
    match stream.peek(&mut peek) {
        Ok(n) if n > 0 => return Ok(None),
        _ => {}
    }
    let (all_but_last, last) = body.split_at(body.len() - 1);
    if stream.write_all(all_but_last).is_err() {
        return Ok(None);
    }
    Ok(Some(Held { stream, last: last[0] }))
}

fn status_of(stream: &mut TcpStream) -> Option<u16> {
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

/// Small intake requests back to back on a few connections until `stop`.
fn intake_load(addr: SocketAddr, token: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = format!(
            r#"{{"external_id":"load-{}-{n}","sender":{{"id":"load-{}"}},"text":"Lampu jalan mati di Desa Karangklesem ({n})"}}"#,
            std::process::id(),
            n % 50
        );
        let attempt = || -> anyhow::Result<()> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            write!(
                s,
                "POST /api/v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            status_of(&mut s);
            Ok(())
        };
        if attempt().is_ok() {
            done.fetch_add(1, Ordering::Relaxed);
        }
        n += 1;
    }
}

/// The in-flight bodies phase (see the module docs).
pub fn held_bodies(root: &Path, bin: &Path, dir: &Path) -> anyhow::Result<MemoryFigure> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let phase_dir = dir.join("held-bodies");
    std::fs::create_dir_all(&phase_dir)?;
    let config = write_config(&phase_dir, root, addr)?;
    let token = crate::bench::create_api_key(bin, &config)?;
    let mut server = Server::start(bin, &config, &phase_dir)?;
    let pid = server.pid();
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(addr, "/healthz").is_err() {
            server.check_alive()?;
            if Instant::now() > deadline {
                bail!("the server did not answer /healthz");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let load: Vec<_> = (0..4)
            .map(|_| {
                let (token, stop, done) = (token.clone(), stop.clone(), done.clone());
                std::thread::spawn(move || intake_load(addr, token, stop, done))
            })
            .collect();
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut held = Vec::new();
        for n in 0..MAX_HELD {
            match hold(addr, &token, n, run)? {
                Some(h) => held.push(h),
                None => break,
            }
        }
        let holding_mb = status_mb(pid, "VmRSS").unwrap_or(0.0);
        std::thread::sleep(Duration::from_secs(1));
        // Every held body completes at once: parsed, decoded and written together.
        for h in &mut held {
            h.stream.write_all(&[h.last])?;
        }
        let mut statuses = Vec::new();
        for h in &mut held {
            statuses.push(status_of(&mut h.stream).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        for t in load {
            let _ = t.join();
        }
        server.check_alive()?;
        let hwm = status_mb(pid, "VmHWM").context("cannot read VmHWM")?;
        Ok((held.len(), statuses, holding_mb, hwm, done.load(Ordering::Relaxed)))
    })();
    let stopped = server.stop();
    let (held, statuses, holding_mb, hwm, small) =
        result.context("the held-bodies phase failed")?;
    stopped?;
    let created = statuses.iter().filter(|s| **s == 201).count();
    Ok(MemoryFigure {
        name: "RSS, in-flight bodies full",
        detail: format!(
            "{held} held bodies of {} MiB (the next refused), {created} stored with their \
             attachments at once, {small} small intake requests meanwhile; VmRSS while held \
             {holding_mb:.1} MB",
            HELD_BODY_BYTES / (1024 * 1024)
        ),
        hwm_mb: hwm,
        target_mb: MEMORY_LIMIT_MB / MARGIN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b"", false), "");
        assert_eq!(base64(b"f", false), "Zg==");
        assert_eq!(base64(b"fo", false), "Zm8=");
        assert_eq!(base64(b"foobar", false), "Zm9vYmFy");
        let wrapped = base64(&[0u8; 120], true);
        assert!(wrapped.lines().all(|l| l.len() <= 76), "{wrapped}");
    }

    #[test]
    fn a_large_mail_has_about_the_size_asked() {
        let mail = large_mail(3, 1, 2_000_000);
        assert!(mail.len() <= 2_000_000 && mail.len() > 1_990_000, "{}", mail.len());
        let held = held_body(1, 1).len();
        assert!(held <= HELD_BODY_BYTES && held > HELD_BODY_BYTES - 4, "{held}");
    }
}
