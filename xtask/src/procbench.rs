//! Process figures of `cargo xtask bench`: resident memory under load, and cold start to
//! ready.
//!
//! # Method
//!
//! - **RSS under load**: while each intake phase runs (closed loop and open loop), a thread
//!   reads `VmRSS` of `/proc/<pid>/status` every 20 ms and keeps the largest value; after
//!   the load, `VmHWM` (the kernel's own peak of the resident set since the process
//!   started, which no sampling interval can miss) is read too. The figure compared with
//!   the target (≤ 150 MB) is the larger of the two.
//! - **Cold start to ready**: once the load phases are over and the server stopped, the
//!   same binary is started again `STARTS` times on the database the load just filled
//!   (migrations already applied, tens of thousands of messages). Each time the clock runs
//!   from just before `spawn` to the first `200` of `GET /readyz` (which answers only once
//!   the store answers a query); `/readyz` is polled every 2 ms on a fresh connection.
//!   Each server is stopped with SIGTERM before the next starts. The median of the starts
//!   is compared with the target (≤ 300 ms); every start is reported.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::bench::Server;

/// Resident memory the daemon should stay under while intake runs.
pub const LOADED_RSS_TARGET_MB: f64 = 150.0;
/// Median time from spawn to the first 200 of `/readyz`.
pub const COLD_START_TARGET_MS: f64 = 300.0;
/// How many cold starts are timed.
const STARTS: usize = 5;
/// How long one start may take before the bench fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the resident memory is read during load.
const RSS_INTERVAL: Duration = Duration::from_millis(20);

/// `VmRSS` or `VmHWM` of a process, in MB (MiB); `None` when it can't be read.
pub fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(kib_field(&status, field)? / 1024.0)
}

/// The value of a `Field:   1234 kB` line of a `/proc` text (`/proc/<pid>/status`,
/// `/proc/meminfo`), in KiB.
pub fn kib_field(text: &str, field: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Reads `VmRSS` of a process every `RSS_INTERVAL` until stopped; keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<f64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> anyhow::Result<RssSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-rss".into())
            .spawn(move || {
                let mut peak = 0f64;
                while !flag.load(Ordering::Relaxed) {
                    if let Some(mb) = status_mb(pid, "VmRSS") {
                        peak = peak.max(mb);
                    }
                    std::thread::sleep(RSS_INTERVAL);
                }
                peak
            })
            .context("cannot start the RSS sampler")?;
        Ok(RssSampler { stop, thread })
    }

    /// The peak `VmRSS` seen, in MB.
    pub fn stop(self) -> anyhow::Result<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))
    }
}

/// Resident memory while intake ran.
pub struct LoadedRss {
    /// Peak of the sampled `VmRSS` during the intake phases.
    pub sampled_peak_mb: f64,
    /// `VmHWM` after the load.
    pub hwm_mb: f64,
}

impl LoadedRss {
    pub fn peak_mb(&self) -> f64 {
        self.sampled_peak_mb.max(self.hwm_mb)
    }

    pub fn pass(&self) -> bool {
        self.peak_mb() <= LOADED_RSS_TARGET_MB
    }

    pub fn render(&self) -> String {
        format!(
            "{:<32}{:>8.1} MB   (peak VmRSS sampled during intake {:.1} MB, VmHWM {:.1} MB)   \
             (target <= {LOADED_RSS_TARGET_MB:.0} MB)   {}\n",
            "RSS under load",
            self.peak_mb(),
            self.sampled_peak_mb,
            self.hwm_mb,
            verdict(self.pass())
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "peak_mb": round1(self.peak_mb()),
            "sampled_vmrss_peak_mb": round1(self.sampled_peak_mb),
            "vmhwm_mb": round1(self.hwm_mb),
            "target_mb": LOADED_RSS_TARGET_MB,
            "pass": self.pass(),
        })
    }
}

/// Cold starts of `aduan serve` on an existing database.
pub struct ColdStart {
    /// Spawn → first 200 of `/readyz`, in ms, in the order measured.
    pub starts_ms: Vec<f64>,
    /// Messages in the database the starts opened.
    pub messages: u64,
}

impl ColdStart {
    pub fn median_ms(&self) -> f64 {
        let mut sorted = self.starts_ms.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn pass(&self) -> bool {
        !self.starts_ms.is_empty() && self.median_ms() <= COLD_START_TARGET_MS
    }

    pub fn render(&self) -> String {
        let each: Vec<String> = self.starts_ms.iter().map(|ms| format!("{ms:.0}")).collect();
        format!(
            "{:<32}{:>8.0} ms   (median of {} starts on a database of {} messages: {} ms)   \
             (target <= {COLD_START_TARGET_MS:.0} ms)   {}\n",
            "cold start to ready",
            self.median_ms(),
            self.starts_ms.len(),
            self.messages,
            each.join(", "),
            verdict(self.pass())
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "median_ms": round1(self.median_ms()),
            "starts_ms": self.starts_ms.iter().map(|ms| round1(*ms)).collect::<Vec<_>>(),
            "database_messages": self.messages,
            "target_ms": COLD_START_TARGET_MS,
            "pass": self.pass(),
        })
    }
}

/// Starts the server `STARTS` times on `config` (whose database exists), timing each
/// start to the first 200 of `/readyz` on `addr`.
pub fn cold_start(
    bin: &Path,
    config: &Path,
    dir: &Path,
    addr: SocketAddr,
    messages: u64,
) -> anyhow::Result<ColdStart> {
    let mut starts_ms = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let t0 = Instant::now();
        let mut server = Server::start(bin, config, dir)?;
        let ready = loop {
            if readyz_ok(addr) {
                break t0.elapsed();
            }
            server.check_alive()?;
            if t0.elapsed() > START_TIMEOUT {
                bail!("the server was not ready within {} s", START_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        starts_ms.push(ready.as_secs_f64() * 1000.0);
        let status = server.stop()?;
        if !status.success() {
            bail!("a cold-started server did not stop cleanly: {status}");
        }
    }
    Ok(ColdStart { starts_ms, messages })
}

/// `GET /readyz` on a fresh connection answers 200 (a blocking probe: no runtime of the
/// client is needed, and connect refusals come back at once).
fn readyz_ok(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_nodelay(true)?;
        write!(s, "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_cold_starts() {
        let odd = ColdStart { starts_ms: vec![90.0, 30.0, 50.0], messages: 0 };
        assert_eq!(odd.median_ms(), 50.0);
        let even = ColdStart { starts_ms: vec![40.0, 10.0, 20.0, 30.0], messages: 0 };
        assert_eq!(even.median_ms(), 25.0);
        assert!(!ColdStart { starts_ms: Vec::new(), messages: 0 }.pass());
    }

    #[test]
    fn kib_fields_of_proc_texts_are_read_by_name() {
        let meminfo = "MemTotal:       24572300 kB\nDirty:              1234 kB\n";
        assert_eq!(kib_field(meminfo, "Dirty"), Some(1234.0));
        assert_eq!(kib_field(meminfo, "Dirt"), None);
        let status = "Name:\taduan\nVmHWM:\t   65900 kB\nVmRSS:\t   63200 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(63200.0));
    }

    #[test]
    fn the_own_resident_memory_is_read() {
        let pid = std::process::id();
        let rss = status_mb(pid, "VmRSS").unwrap();
        let hwm = status_mb(pid, "VmHWM").unwrap();
        assert!(rss > 0.0 && hwm >= rss, "rss {rss} hwm {hwm}");
        // "VmRSS" must not match "VmRSSx"-like prefixes of other fields.
        assert!(status_mb(pid, "VmRS").is_none());
    }
}
