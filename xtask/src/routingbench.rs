//! `cargo xtask bench routing`: the learned router against scikit-learn's textbook
//! baseline, on the same splits, side by side.
//!
//! # Method
//!
//! 1. `cargo build --release -p aduan` (`--no-build` uses `target/release/aduan` as it is,
//!    or the binary `ADUAN_BIN` names).
//! 2. The baseline (`xtask/py/routing_baseline.py`: TF-IDF word 1–2 + char_wb 2–5 grams,
//!    sublinear tf, `LinearSVC(C=0.5)`, top-3 from `decision_function`) runs in a venv under
//!    `target/routing-venv` that the bench makes itself (`python3 -m venv`, then
//!    `pip install scikit-learn`; on Debian as root, `apt-get install python3-venv` first
//!    when the venv module is missing).
//! 3. Sets: the Lapor Mas Bup set of the repo (834 complaints of Kabupaten Purbalingga,
//!    6 labels; `crates/aduan-routing/tests/fixtures/lapormasbup/SOURCE.txt`), 5-fold (row
//!    `i` tested in fold `i mod 5`), and a synthetic region-scale set ([`synthetic`]: 12,500
//!    texts, 213 labels, seeded, written to `target/bench/routing/synthetic.csv`), first 75 %
//!    (file order) train, the rest scored. Both sides read the same CSV and split it the
//!    same way.
//! 4. `aduan routing eval` and the baseline run as child processes from the workspace root
//!    (the default configuration: `config/opd.toml`, kabupaten 33.02); seconds are wall
//!    time of the child, RSS its peak (`VmHWM` of `/proc/<pid>/status`, sampled every
//!    10 ms until it exits), and the scoring latency the eval's own figure (`routing one
//!    ticket: N µs`: normalisation, places, rules and the model, per complaint).
//!
//! Targets: ours ≥ baseline on top-1 and top-3 on every set; Purbalingga top-1 ≥ 0.78;
//! synthetic train + evaluate < 30 s and < 300 MB; scoring < 1 ms per complaint. A missed
//! target prints FAIL (the exit status stays 0, like the other bench phases); a child that
//! fails makes the command fail.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::rng::Rng;
use crate::sys::{apt_install, can_apt_install};

const PURBALINGGA_TOP1_TARGET: f64 = 0.78;
const SYNTHETIC_SECS_TARGET: f64 = 30.0;
const RSS_TARGET_MB: f64 = 300.0;
const LATENCY_TARGET_US: f64 = 1000.0;

/// What one side scored on one set.
#[derive(Debug, Clone, Default)]
struct Run {
    top1: f64,
    top3: f64,
    n: usize,
    labels: usize,
    secs: f64,
    rss_mb: f64,
    /// Scoring latency per complaint (ours only).
    micros: Option<f64>,
}

struct Set {
    name: &'static str,
    csv: PathBuf,
    text: &'static str,
    label: &'static str,
    /// `--folds 5` or `--train-fraction 0.75`.
    split: [&'static str; 2],
}

pub fn run(root: &Path, no_build: bool) -> anyhow::Result<()> {
    if !no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building: cargo build --release -p aduan");
        let status = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--release", "-p", "aduan"])
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release -p aduan failed ({status})");
        }
    }
    // `ADUAN_BIN` measures another build (as the e2e tests take it).
    let bin = std::env::var_os("ADUAN_BIN")
        .map_or_else(|| crate::sys::cargo_target(root).join("release/aduan"), PathBuf::from);
    if !bin.is_file() {
        bail!("{} does not exist; build it first", bin.display());
    }
    let python = baseline_python(root)?;
    let dir = root.join("target/bench/routing");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let synthetic_csv = dir.join("synthetic.csv");
    write_csv(&synthetic_csv, &synthetic(SEED))?;
    let sets = [
        Set {
            name: "purbalingga 5-fold",
            csv: root
                .join("crates/aduan-routing/tests/fixtures/lapormasbup/lapormasbup_kategori.csv"),
            text: "text",
            label: "kategori",
            split: ["--folds", "5"],
        },
        Set {
            name: "synthetic 75/25",
            csv: synthetic_csv,
            text: "text",
            label: "label",
            split: ["--train-fraction", "0.75"],
        },
    ];
    let script = root.join("xtask/py/routing_baseline.py");
    let mut rows = Vec::new();
    for set in &sets {
        eprintln!("routing bench: {} (ours)", set.name);
        let mut ours = Command::new(&bin);
        ours.current_dir(root).args(["routing", "eval", "--csv"]).arg(&set.csv);
        ours.args(["--text-column", set.text, "--label-column", set.label]).args(set.split);
        let ours = measure(ours)?;
        eprintln!("routing bench: {} (baseline)", set.name);
        let mut base = Command::new(&python);
        base.current_dir(root).arg(&script).arg("--csv").arg(&set.csv);
        base.args(["--text-column", set.text, "--label-column", set.label]).args(set.split);
        let base = measure(base)?;
        rows.push((set.name, ours, base));
    }
    print!("{}", render(&rows));
    Ok(())
}

fn render(rows: &[(&str, Run, Run)]) -> String {
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let mut s = String::new();
    let _ = writeln!(s, "\nrouting: ours (aduan routing eval) vs baseline (TF-IDF + LinearSVC)");
    let _ = writeln!(
        s,
        "{:<20} {:>6} {:>4} {:>11} {:>11} {:>15} {:>15} {:>9}",
        "set", "n", "L", "ours t1/t3", "base t1/t3", "seconds o/b", "RSS MB o/b", "µs/text"
    );
    for (name, o, b) in rows {
        let _ = writeln!(
            s,
            "{:<20} {:>6} {:>4} {:>5.3}/{:.3} {:>5.3}/{:.3} {:>7.1}/{:<7.1} {:>7.0}/{:<7.0} {:>9.0}",
            name,
            o.n,
            o.labels,
            o.top1,
            o.top3,
            b.top1,
            b.top3,
            o.secs,
            b.secs,
            o.rss_mb,
            b.rss_mb,
            o.micros.unwrap_or(f64::NAN)
        );
    }
    let _ = writeln!(s);
    for (name, o, b) in rows {
        let _ = writeln!(
            s,
            "{name}: top-1 {:.3} >= baseline {:.3}  {}",
            o.top1,
            b.top1,
            verdict(o.top1 >= b.top1)
        );
        let _ = writeln!(
            s,
            "{name}: top-3 {:.3} >= baseline {:.3}  {}",
            o.top3,
            b.top3,
            verdict(o.top3 >= b.top3)
        );
        if name.starts_with("purbalingga") {
            let _ = writeln!(
                s,
                "{name}: top-1 {:.3} >= {PURBALINGGA_TOP1_TARGET}  {}",
                o.top1,
                verdict(o.top1 >= PURBALINGGA_TOP1_TARGET)
            );
        }
        if name.starts_with("synthetic") {
            let _ = writeln!(
                s,
                "{name}: train + evaluate {:.1} s < {SYNTHETIC_SECS_TARGET} s  {}",
                o.secs,
                verdict(o.secs < SYNTHETIC_SECS_TARGET)
            );
            let _ = writeln!(
                s,
                "{name}: peak RSS {:.0} MB < {RSS_TARGET_MB} MB  {}",
                o.rss_mb,
                verdict(o.rss_mb < RSS_TARGET_MB)
            );
        }
        if let Some(us) = o.micros {
            let _ = writeln!(
                s,
                "{name}: scoring {us:.0} µs per complaint < {LATENCY_TARGET_US} µs  {}",
                verdict(us < LATENCY_TARGET_US)
            );
        }
    }
    s
}

/// Runs a child to its end: wall time, peak RSS, and the figures of its output.
fn measure(mut command: Command) -> anyhow::Result<Run> {
    let shown = format!("{command:?}");
    let started = Instant::now();
    let out_file = tempfile::tempfile()?;
    let err_file = tempfile::tempfile()?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out_file.try_clone()?)
        .stderr(err_file.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    let mut peak_mb = 0f64;
    let status = loop {
        if let Some(mb) = crate::procbench::status_mb(child.id(), "VmHWM") {
            peak_mb = peak_mb.max(mb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = started.elapsed().as_secs_f64();
    let read = |mut f: std::fs::File| -> anyhow::Result<String> {
        use std::io::{Read, Seek};
        f.rewind()?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        Ok(s)
    };
    let (stdout, stderr) = (read(out_file)?, read(err_file)?);
    if !status.success() {
        bail!("{shown} failed ({status}):\n{stderr}");
    }
    let last = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    let field = |key: &str| -> Option<&str> {
        last.split_whitespace().find_map(|f| f.strip_prefix(key)).map(str::trim)
    };
    let parse = |key: &str| -> anyhow::Result<f64> {
        field(key)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {key} in the last line {last:?} of {shown}"))
    };
    let micros = stderr.lines().find_map(|l| {
        l.strip_prefix("routing one ticket: ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    });
    Ok(Run {
        top1: parse("accuracy=")?,
        top3: parse("top3=")?,
        n: parse("n=")? as usize,
        labels: parse("labels=")? as usize,
        secs,
        rss_mb: peak_mb,
        micros,
    })
}

/// The venv's python with scikit-learn, made on first use.
fn baseline_python(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/routing-venv");
    let python = venv.join("bin/python");
    let has_sklearn = |p: &Path| {
        Command::new(p)
            .args(["-c", "import sklearn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && has_sklearn(&python) {
        return Ok(python);
    }
    let make_venv = || {
        Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
    };
    if !python.is_file() && !make_venv() {
        if !can_apt_install() {
            bail!(
                "python3 -m venv failed. Install Python's venv module (e.g. `sudo apt-get \
                 install python3-venv`) and run the bench again"
            );
        }
        apt_install(&[], &["python3-venv"])?;
        let _ = std::fs::remove_dir_all(&venv);
        if !make_venv() {
            bail!("python3 -m venv {} failed", venv.display());
        }
    }
    eprintln!("routing bench: pip install scikit-learn into {}", venv.display());
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "scikit-learn"])
        .status()
        .context("cannot run pip")?;
    if !status.success() || !has_sklearn(&python) {
        bail!("pip install scikit-learn failed in {}", venv.display());
    }
    Ok(python)
}

fn write_csv(path: &Path, rows: &[(String, String)]) -> anyhow::Result<()> {
    let mut s = String::from("text,label\n");
    for (text, label) in rows {
        // Texts never hold quotes or commas (see `synthetic`), but quote anyway.
        let _ = writeln!(s, "\"{}\",{label}", text.replace('"', "\"\""));
    }
    std::fs::write(path, s).with_context(|| format!("cannot write {}", path.display()))
}

/// The seed of the bench's synthetic set.
pub const SEED: u64 = 0x5eed_2026_1204;

fn zipf_cum(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|i| {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            acc
        })
        .collect()
}

/// Indonesian-like made-up words: two or three syllables, sometimes a final consonant.
fn make_word(rng: &mut Rng) -> String {
    const ONSET: &[&str] = &[
        "b", "c", "d", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "w", "y", "ng", "ny",
        "kr", "tr", "pr", "",
    ];
    const VOWEL: &[&str] = &["a", "a", "i", "u", "e", "o"];
    const CODA: &[&str] = &["n", "ng", "k", "r", "t", "s", "l", "h", "m"];
    let syllables = 2 + usize::from(rng.unit() < 0.45);
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(rng.pick::<&str>(ONSET));
        w.push_str(rng.pick::<&str>(VOWEL));
    }
    if rng.unit() < 0.6 {
        w.push_str(rng.pick::<&str>(CODA));
    }
    w
}

/// Words every complaint uses whatever it is about.
const COMMON: &[&str] = &[
    "yang",
    "di",
    "dan",
    "ini",
    "itu",
    "saya",
    "mohon",
    "tolong",
    "sudah",
    "belum",
    "ada",
    "tidak",
    "ke",
    "dari",
    "untuk",
    "dengan",
    "karena",
    "pak",
    "bu",
    "warga",
    "kami",
    "sangat",
    "sekali",
    "bapak",
    "terima",
    "kasih",
    "agar",
    "segera",
    "bisa",
    "mau",
    "sejak",
    "lama",
    "kenapa",
    "bagaimana",
    "kapan",
    "tahun",
    "bulan",
    "minggu",
    "hari",
    "kemarin",
    "depan",
    "rumah",
    "desa",
    "kelurahan",
    "kecamatan",
    "dinas",
    "pemerintah",
    "kota",
    "lingkungan",
    "masyarakat",
    "keluhan",
    "laporan",
    "aduan",
    "tindak",
    "lanjut",
    "petugas",
    "kantor",
];

/// A region-scale labelled set of the issue's shape: 12,500 texts (mean about 320
/// characters, a long tail to 8,000), 213 labels (the largest 18 %, many with fewer than
/// 10 examples). Labels come in 24 groups (like a dinas and its field offices, or the
/// kelurahan of one kecamatan) that share a vocabulary; each label has its own words and
/// place names. A text mixes common words, group words, its label's words and background
/// words; a third of texts borrow words of a sibling label and 4 % carry a sibling's
/// label (mislabelled or genuinely ambiguous), and 3 % of words have a typo — so the set
/// is not trivially separable. Deterministic for a seed; no quotes or commas in texts.
pub fn synthetic(seed: u64) -> Vec<(String, String)> {
    const N: usize = 12_500;
    const LABELS: usize = 213;
    const GROUPS: usize = 24;
    let mut rng = Rng(seed);
    let mut seen = std::collections::HashSet::new();
    let mut fresh = |rng: &mut Rng| loop {
        let w = make_word(rng);
        if seen.insert(w.clone()) && !COMMON.contains(&w.as_str()) {
            return w;
        }
    };
    let background: Vec<String> = (0..4000).map(|_| fresh(&mut rng)).collect();
    let group_words: Vec<Vec<String>> =
        (0..GROUPS).map(|_| (0..40).map(|_| fresh(&mut rng)).collect()).collect();
    let label_words: Vec<Vec<String>> =
        (0..LABELS).map(|_| (0..15).map(|_| fresh(&mut rng)).collect()).collect();
    let places: Vec<String> = (0..LABELS).map(|_| fresh(&mut rng)).collect();
    let group_of: Vec<usize> = (0..LABELS).map(|l| (l * 7 + l / 9) % GROUPS).collect();
    let names: Vec<String> = (0..LABELS)
        .map(|l| if l < 40 { format!("DINAS-{l:03}") } else { format!("KEL-{l:03}") })
        .collect();
    // Label sizes: the largest 18 %, the rest Zipf-like; at least 2 each.
    let largest = N * 18 / 100;
    let rest = zipf_cum(LABELS - 1, 1.15);
    let total = rest.last().copied().unwrap_or(1.0);
    let mut sizes: Vec<usize> = std::iter::once(largest)
        .chain((0..LABELS - 1).map(|i| {
            let w = 1.0 / ((i + 1) as f64).powf(1.15) / total;
            ((w * (N - largest) as f64).round() as usize).max(2)
        }))
        .collect();
    // Fix the total to exactly N on the second-largest labels.
    let sum: usize = sizes.iter().sum();
    if sum > N {
        sizes[1] -= sum - N;
    } else {
        sizes[1] += N - sum;
    }
    let mut order: Vec<usize> =
        sizes.iter().enumerate().flat_map(|(l, n)| std::iter::repeat_n(l, *n)).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let bg = zipf_cum(background.len(), 1.0);
    let lw = zipf_cum(15, 0.8);
    let gw = zipf_cum(40, 0.9);
    let cw = zipf_cum(COMMON.len(), 0.8);
    let mut rows = Vec::with_capacity(N);
    for &label in &order {
        // Length: log-normal around 220 characters (mean about 320), at most 8,000.
        let chars = ((5.4 + 0.85 * rng.normal()).exp() as usize).clamp(25, 8000);
        let g = group_of[label];
        let siblings: Vec<usize> =
            (0..LABELS).filter(|&l| group_of[l] == g && l != label).collect();
        let borrow = (rng.unit() < 0.33 && !siblings.is_empty()).then(|| *rng.pick(&siblings));
        let mut text = String::new();
        while text.len() < chars {
            let r = rng.unit();
            let word: &str = if r < 0.09 {
                match borrow {
                    Some(b) if rng.unit() < 0.45 => &label_words[b][rng.by_cumulative(&lw)],
                    _ => &label_words[label][rng.by_cumulative(&lw)],
                }
            } else if r < 0.11 {
                &places[label]
            } else if r < 0.22 {
                &group_words[g][rng.by_cumulative(&gw)]
            } else if r < 0.55 {
                COMMON[rng.by_cumulative(&cw)]
            } else {
                &background[rng.by_cumulative(&bg)]
            };
            if !text.is_empty() {
                text.push(' ');
            }
            if rng.unit() < 0.03 && word.len() > 3 {
                // A typo: one letter dropped.
                let k = 1 + rng.below(word.len() as u64 - 2) as usize;
                text.push_str(&word[..k]);
                text.push_str(&word[k + 1..]);
            } else {
                text.push_str(word);
            }
        }
        let shown =
            if rng.unit() < 0.04 && !siblings.is_empty() { *rng.pick(&siblings) } else { label };
        rows.push((text, names[shown].clone()));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_set_has_the_shape_of_the_issue() {
        let rows = synthetic(SEED);
        assert_eq!(rows, synthetic(SEED), "deterministic");
        assert_eq!(rows.len(), 12_500);
        let mut counts = std::collections::HashMap::new();
        for (_, l) in &rows {
            *counts.entry(l.as_str()).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 213);
        let largest = counts.values().max().copied().unwrap_or(0);
        assert!((2000..=2400).contains(&largest), "{largest}");
        assert!(counts.values().filter(|n| **n < 10).count() >= 50);
        let mean = rows.iter().map(|(t, _)| t.len()).sum::<usize>() as f64 / 12_500.0;
        assert!((280.0..=360.0).contains(&mean), "{mean}");
        let longest = rows.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        assert!((4000..=8100).contains(&longest), "{longest}");
        assert!(rows.iter().all(|(t, _)| !t.contains(['"', ',', '\n'])));
    }
}
