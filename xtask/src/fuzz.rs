//! `cargo xtask fuzz [--secs N] [TARGET…]`: builds the cargo-fuzz targets of `fuzz/` (the
//! MIME intake path, every webhook parser, the routing text normaliser) and runs each for a
//! bounded time from its committed seeds, with `-max_len`, `-timeout` and `-rss_limit_mb`
//! set. Fails when a target crashes (a panic, a hang past the timeout, memory past the
//! limit) and prints the input that did it.
//!
//! Only stable Rust is needed: `RUSTC_BOOTSTRAP=1` lets it take the `-Z` flags libFuzzer's
//! instrumentation uses. cargo-fuzz is installed (pinned, `--locked`) when missing, and a
//! C++ compiler (libfuzzer-sys builds libFuzzer) from Debian's packages when missing and
//! root. The default sanitizer is `none` (still coverage-guided, panics caught): the
//! project forbids `unsafe`, so AddressSanitizer mostly costs time; `--sanitizer address`
//! runs with it.
//!
//! The working corpus is `fuzz/corpus/<target>` (not committed; it keeps what earlier runs
//! found), started from `fuzz/seeds/<target>`; crash inputs land in
//! `fuzz/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::sys::{apt_install, can_apt_install};

/// The cargo-fuzz release that builds on the project's toolchain.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// One fuzz target: its name, the largest input it is given, and its dictionary.
struct Target {
    name: &'static str,
    max_len: usize,
    dict: &'static str,
}

const TARGETS: &[Target] = &[
    Target { name: "mime", max_len: 65_536, dict: "mime.dict" },
    Target { name: "telegram", max_len: 16_384, dict: "json.dict" },
    Target { name: "meta", max_len: 16_384, dict: "json.dict" },
    Target { name: "x", max_len: 16_384, dict: "json.dict" },
    Target { name: "twilio", max_len: 8_192, dict: "form.dict" },
    Target { name: "kannel", max_len: 8_192, dict: "form.dict" },
    Target { name: "android", max_len: 8_192, dict: "json.dict" },
    Target { name: "normalise", max_len: 8_192, dict: "text.dict" },
];

/// Seconds one input may take before it counts as a hang.
const TIMEOUT_SECS: u32 = 10;
/// Memory a target may use before it counts as a crash.
const RSS_LIMIT_MB: u32 = 2048;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds each target runs, after the build.
    #[arg(long, default_value_t = 30)]
    pub secs: u64,
    /// `none` (the default: fastest, panics still caught) or `address`.
    #[arg(long, default_value = "none")]
    pub sanitizer: String,
    /// Only these targets (default: all of them).
    pub targets: Vec<String>,
}

impl Args {
    /// Every target, `secs` seconds each, without a sanitizer.
    pub fn all(secs: u64) -> Args {
        Args { secs, sanitizer: "none".into(), targets: Vec::new() }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn works(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs what the fuzz build needs and is missing: a C++ compiler and cargo-fuzz.
fn ensure_tools() -> anyhow::Result<()> {
    if !works(Command::new("c++").arg("--version")) {
        if !can_apt_install() {
            bail!("a C++ compiler is missing (libfuzzer-sys builds libFuzzer): install g++");
        }
        eprintln!("xtask: installing g++ from Debian's packages (libfuzzer-sys builds libFuzzer)");
        apt_install(&[], &["g++"])?;
    }
    if !works(cargo().args(["fuzz", "--version"])) {
        eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        let status = cargo()
            .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION])
            .status()
            .context("cannot run cargo install")?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed");
        }
    }
    Ok(())
}

/// `fuzz/corpus/<target>`, with every seed of `fuzz/seeds/<target>` in it (the SOURCE.txt
/// that says where the seeds came from is not an input).
fn corpus(fuzz: &Path, target: &str) -> anyhow::Result<PathBuf> {
    let corpus = fuzz.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let seeds = fuzz.join("seeds").join(target);
    for entry in std::fs::read_dir(&seeds).with_context(|| format!("{}", seeds.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "SOURCE.txt" || !entry.file_type()?.is_file() {
            continue;
        }
        let dest = corpus.join(format!("seed-{}", name.to_string_lossy()));
        if !dest.exists() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(corpus)
}

/// What libFuzzer's `-print_final_stats=1` said.
#[derive(Default)]
struct Stats {
    runs: u64,
    execs_per_sec: u64,
    new_units: u64,
    peak_rss_mb: u64,
}

fn stats(log: &str) -> Stats {
    let mut s = Stats::default();
    for line in log.lines() {
        let Some((key, value)) = line.strip_prefix("stat::").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let value: u64 = value.trim().parse().unwrap_or(0);
        match key {
            "number_of_executed_units" => s.runs = value,
            "average_exec_per_sec" => s.execs_per_sec = value,
            "new_units_added" => s.new_units = value,
            "peak_rss_mb" => s.peak_rss_mb = value,
            _ => {}
        }
    }
    s
}

/// The crash file libFuzzer wrote (`Test unit written to …`), if it says so.
fn crash_file(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim().to_owned()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let fuzz = root.join("fuzz");
    let chosen: Vec<&Target> = if args.targets.is_empty() {
        TARGETS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.targets {
            let Some(t) = TARGETS.iter().find(|t| t.name == name) else {
                let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                bail!("no fuzz target {name}; the targets are {}", names.join(", "));
            };
            chosen.push(t);
        }
        chosen
    };
    ensure_tools()?;

    let started = Instant::now();
    eprintln!("xtask: building the fuzz targets (sanitizer {})", args.sanitizer);
    let mut build = cargo();
    build
        .args(["fuzz", "build", "--sanitizer", &args.sanitizer])
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1");
    if chosen.len() == 1 {
        build.arg(chosen[0].name);
    }
    if !build.status().context("cannot run cargo fuzz")?.success() {
        bail!("cargo fuzz build failed");
    }
    eprintln!("xtask: fuzz targets built in {:.0?}", started.elapsed());
    let bin_dir = fuzz.join("target/x86_64-unknown-linux-gnu/release");

    let mut crashes = Vec::new();
    let mut table = Vec::new();
    for t in chosen {
        let corpus = corpus(&fuzz, t.name)?;
        let artifacts = fuzz.join("artifacts").join(t.name);
        std::fs::create_dir_all(&artifacts)?;
        eprintln!("xtask: fuzzing {} for {} s", t.name, args.secs);
        let out = Command::new(bin_dir.join(t.name))
            .arg(&corpus)
            .arg(format!("-max_total_time={}", args.secs))
            .arg(format!("-max_len={}", t.max_len))
            .arg(format!("-timeout={TIMEOUT_SECS}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-dict={}", fuzz.join("dict").join(t.dict).display()))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .current_dir(&fuzz)
            .output()
            .with_context(|| format!("cannot run the fuzz target {}", t.name))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let s = stats(&log);
        table.push(format!(
            "{:<10} {:>10} {:>9} {:>9} {:>8}  {}",
            t.name,
            s.runs,
            s.execs_per_sec,
            s.new_units,
            s.peak_rss_mb,
            if out.status.success() { "ok" } else { "CRASH" }
        ));
        if !out.status.success() {
            // The end of the log: the panic message and libFuzzer's summary.
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("{}", lines[lines.len().saturating_sub(40)..].join("\n"));
            let file = crash_file(&log).unwrap_or_else(|| "(no crash file written)".into());
            eprintln!("xtask: {} CRASHED; input: {file}", t.name);
            if let Ok(bytes) = std::fs::read(&file) {
                let shown = &bytes[..bytes.len().min(512)];
                eprintln!(
                    "xtask: the input ({} bytes): {:?}",
                    bytes.len(),
                    String::from_utf8_lossy(shown)
                );
            }
            crashes.push(format!("{}: {file}", t.name));
        }
    }
    eprintln!("\nxtask: fuzz summary ({} s each, sanitizer {})", args.secs, args.sanitizer);
    eprintln!(
        "{:<10} {:>10} {:>9} {:>9} {:>8}  result",
        "target", "runs", "execs/s", "new", "rss MB"
    );
    for row in &table {
        eprintln!("{row}");
    }
    eprintln!("xtask: fuzzing took {:.0?} with the build", started.elapsed());
    if !crashes.is_empty() {
        bail!(
            "fuzz targets crashed; reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run -s {} <target> <file>`:\n{}",
            args.sanitizer,
            crashes.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stats_and_crash_files_are_read() {
        let log = "INFO: seed\n==1== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='a/'; Test unit written to a/crash-0123\n\
                   stat::number_of_executed_units: 12345\nstat::average_exec_per_sec:     411\n\
                   stat::new_units_added:          7\nstat::peak_rss_mb:              88\n";
        let s = stats(log);
        assert_eq!((s.runs, s.execs_per_sec, s.new_units, s.peak_rss_mb), (12345, 411, 7, 88));
        assert_eq!(crash_file(log).as_deref(), Some("a/crash-0123"));
        assert_eq!(crash_file("INFO: Done 10 runs"), None);
    }
}
