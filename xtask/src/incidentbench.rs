//! The incident matcher phase of `cargo xtask bench` (issue 20): quality on labelled pairs
//! and matching cost at `--incident-tickets` tickets (1,000,000 by default, 0 skips the
//! cost part). `cargo xtask bench --incidents-only` runs this phase alone (no server, no
//! release build: the figures of a debug xtask are an upper bound).
//!
//! # Quality
//!
//! `xtask/data/incident_pairs.tsv` holds labelled pairs of reports (written by
//! `xtask/data/gen_incident_pairs.py`, see its doc): synthetic paraphrases of ten concrete
//! problems (duplicates: same spot or same desa, different or nearly the same words) and
//! non-duplicates (the same words 600 m – 8 km away, another problem at the same spot,
//! another problem of the same OPD, the same problem 20–60 days apart), and real complaint
//! texts from the shared Lapor Mas Bup set (the same text far away; two texts of other
//! sectors at one spot). Each pair becomes `aduan_core::incident::Facts` (distance, desa,
//! category, OPD, age, and the cosine of the two texts' terms) and is scored with the
//! default `[incidents]` policy. Precision and recall are given at `auto_join_score` and at
//! `suggest_score`; PASS when the precision at `auto_join_score` is ≥ 0.95.
//!
//! # Cost
//!
//! A fresh SQLite database is migrated by `aduan-store`, then filled directly (one
//! transaction) with `--incident-tickets` tickets over twelve months: 70 % in five town
//! clusters (σ ≈ 1.5 km), the rest spread over the regency, 10 % without coordinates (desa
//! only), ten categories with their problem's words as the term signature, old tickets
//! mostly closed. Then 300 new tickets (now, same spread) are matched one at a time through
//! `Store::incident_candidates` — the query and scoring the routing worker runs for every
//! new ticket — and timed; PASS when p99 < 5 ms. The plans of the candidate queries
//! (`Store::explain_incident_candidates`) are printed: an index search, never a scan.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::rng::Rng;
use aduan_core::incident::{self, Agreement, Facts, IncidentPolicy};
use aduan_core::{Location, TicketCode};
use aduan_store::{Store, StoreOptions};
use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use serde_json::json;

/// Precision the auto-join threshold must reach on the labelled pairs.
pub const TARGET_PRECISION: f64 = 0.95;
/// p99 of matching one new ticket at a million tickets.
pub const TARGET_P99_MS: f64 = 5.0;
/// New tickets matched (and timed).
const PROBES: usize = 300;
/// Unmeasured matches first.
const WARMUP: usize = 20;

/// One labelled pair.
struct Pair {
    duplicate: bool,
    kind: String,
    facts: Facts,
    category: Option<String>,
}

fn read_pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 11 {
            bail!("{}:{}: expected 11 fields, got {}", path.display(), i + 1, f.len());
        }
        let num = |s: &str| -> anyhow::Result<f64> {
            s.parse()
                .with_context(|| format!("{}:{}: {s:?} is not a number", path.display(), i + 1))
        };
        let distance_m = if f[2].is_empty() { None } else { Some(num(f[2])?) };
        let facts = Facts {
            distance_m,
            same_desa: f[3] == "1",
            category: Agreement::of(Some(f[4]), Some(f[5])),
            opd: Agreement::of(Some(f[6]), Some(f[7])),
            age: Duration::minutes((num(f[8])? * 60.0) as i64),
            cosine: incident::cosine(&incident::terms(f[9]), &incident::terms(f[10])),
        };
        out.push(Pair {
            duplicate: f[0] == "1",
            kind: f[1].to_owned(),
            facts,
            category: Some(f[4].to_owned()),
        });
    }
    Ok(out)
}

/// Precision and recall of "score ≥ threshold means duplicate".
#[derive(Debug, Clone, Copy)]
pub struct Quality {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub predicted: usize,
}

fn quality(scored: &[(bool, f64)], threshold: f64) -> Quality {
    let tp = scored.iter().filter(|(d, s)| *d && *s >= threshold).count();
    let predicted = scored.iter().filter(|(_, s)| *s >= threshold).count();
    let positives = scored.iter().filter(|(d, _)| *d).count();
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Quality { threshold, precision: ratio(tp, predicted), recall: ratio(tp, positives), predicted }
}

pub struct IncidentReport {
    pub pairs: usize,
    pub duplicates: usize,
    pub auto_join: Quality,
    pub suggest: Quality,
    /// Wrong answers at the suggest threshold, by kind of pair: (kind, count).
    pub misses: Vec<(String, usize)>,
    pub cost: Option<Cost>,
}

pub struct Cost {
    pub tickets: usize,
    pub load_secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub mean_candidates: f64,
    pub plan: Vec<String>,
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// The phase: quality always, cost unless `tickets` is 0.
pub fn run(root: &Path, dir: &Path, tickets: usize) -> anyhow::Result<IncidentReport> {
    let policy = IncidentPolicy::default();
    let pairs = read_pairs(&root.join("xtask/data/incident_pairs.tsv"))?;
    let scored: Vec<(bool, f64)> = pairs
        .iter()
        .map(|p| {
            let radius = policy.radius_for(p.category.as_deref());
            (p.duplicate, incident::score(&p.facts, &policy, radius))
        })
        .collect();
    let mut misses = std::collections::BTreeMap::<String, usize>::new();
    for (p, (_, s)) in pairs.iter().zip(&scored) {
        if p.duplicate != (*s >= policy.suggest_score) {
            *misses.entry(p.kind.clone()).or_default() += 1;
        }
    }
    let cost = match tickets {
        0 => None,
        n => Some(cost(dir, n, &policy)?),
    };
    Ok(IncidentReport {
        pairs: pairs.len(),
        duplicates: pairs.iter().filter(|p| p.duplicate).count(),
        auto_join: quality(&scored, policy.auto_join_score),
        suggest: quality(&scored, policy.suggest_score),
        misses: misses.into_iter().collect(),
        cost,
    })
}

// --- Cost: a million tickets -------------------------------------------------------------

const CATEGORIES: [(&str, &str, &str); 10] = [
    ("drainase", "DPU", "saluran air tersumbat sampah meluap genangan selokan"),
    ("jalan", "DPU", "jalan berlubang rusak aspal motor jatuh tambal"),
    ("penerangan", "DISHUB", "lampu penerangan jalan mati gelap pju padam"),
    ("sampah", "DLH", "sampah menumpuk tps angkut bau truk"),
    ("pohon", "DLH", "pohon tumbang roboh menutup jalan angin"),
    ("air_bersih", "PDAM", "air pdam mengalir mati keruh pipa bocor"),
    ("banjir", "BPBD", "banjir hujan deras air masuk rumah lutut"),
    ("jembatan", "DPU", "jembatan rusak papan lapuk berlubang ambruk"),
    ("parkir", "DISHUB", "parkir liar trotoar macet minimarket"),
    ("kebisingan", "SATPOLPP", "karaoke bising malam musik keras tidur"),
];

/// Five towns of the regency, and its bounding box.
const TOWNS: [(f64, f64); 5] = [
    (-7.4245, 109.2302),
    (-7.5336, 109.2536),
    (-7.3909, 109.3621),
    (-7.5204, 109.0590),
    (-7.4570, 109.1617),
];
const BOX: (f64, f64, f64, f64) = (-7.70, -7.20, 108.90, 109.50);

struct Gen {
    rng: Rng,
}

impl Gen {
    fn place(&mut self) -> (Option<Location>, String, String) {
        let desa = self.rng.below(330);
        let (d, k) = (format!("Desa {desa}"), format!("Kecamatan {}", desa / 12));
        if self.rng.unit() < 0.10 {
            return (None, d, k);
        }
        let at = if self.rng.unit() < 0.70 {
            let (lat, lon) = TOWNS[self.rng.below(5) as usize];
            let sigma = 1500.0 / 111_320.0;
            Location { lat: lat + self.rng.normal() * sigma, lon: lon + self.rng.normal() * sigma }
        } else {
            Location {
                lat: BOX.0 + self.rng.unit() * (BOX.1 - BOX.0),
                lon: BOX.2 + self.rng.unit() * (BOX.3 - BOX.2),
            }
        };
        (Some(at), d, k)
    }

    /// A few of the category's words, shuffled by chance: a term signature.
    fn terms(&mut self, words: &str) -> String {
        let ws: Vec<&str> = words.split(' ').collect();
        let picked: Vec<&str> = ws.iter().filter(|_| self.rng.unit() < 0.7).copied().collect();
        incident::signature(&picked.join(" "))
    }
}

fn code(rng: &mut Rng) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut s = String::from("ADU-");
    for _ in 0..8 {
        s.push(A[rng.below(32) as usize] as char);
    }
    s
}

fn load(path: &Path, n: usize, probes: usize) -> anyhow::Result<Vec<String>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    let now = Utc::now();
    let mut g = Gen { rng: Rng(0x1DC1_DE27) };
    let mut seen = std::collections::HashSet::new();
    let mut probe_codes = Vec::new();
    {
        let mut ins = tx.prepare(
            "INSERT INTO tickets (code, status, channel, opd, category, lat, lon, created_at, \
             updated_at, last_message_at, first_response_due_at, place, kecamatan, place_cell, \
             terms) VALUES (?1, ?2, 'whatsapp', ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for i in 0..n + probes {
            let probe = i >= n;
            let mut c = code(&mut g.rng);
            while !seen.insert(c.clone()) {
                c = code(&mut g.rng);
            }
            // Tickets in time order over twelve months; probes now.
            let age_secs = if probe { 0 } else { ((n - i) as i64 * 365 * 86_400) / n as i64 };
            let at = now - Duration::seconds(age_secs);
            let status = if probe || age_secs < 30 * 86_400 || g.rng.unit() < 0.07 {
                "assigned"
            } else {
                "closed"
            };
            let (cat, opd, words) = CATEGORIES[g.rng.below(10) as usize];
            let (loc, desa, kec) = g.place();
            let terms = g.terms(words);
            ins.execute(rusqlite::params![
                c,
                status,
                opd,
                cat,
                loc.map(|l| l.lat),
                loc.map(|l| l.lon),
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                desa,
                kec,
                loc.map(incident::cell),
                terms
            ])?;
            if probe {
                probe_codes.push(c);
            }
        }
    }
    tx.commit()?;
    Ok(probe_codes)
}

fn cost(dir: &Path, n: usize, policy: &IncidentPolicy) -> anyhow::Result<Cost> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let path = dir.join("incidentbench.db");
    let url = format!("sqlite://{}", path.display());
    eprintln!("bench: incidents: generating {n} tickets into SQLite");
    let t0 = Instant::now();
    rt.block_on(async {
        let s = Store::open(&url, StoreOptions::default()).await?;
        s.migrate().await?;
        s.close().await;
        anyhow::Ok(())
    })?;
    let probes = load(&path, n, PROBES + WARMUP)?;
    let load_secs = t0.elapsed().as_secs_f64();
    eprintln!("bench: incidents: loaded in {load_secs:.1} s; matching {PROBES} new tickets");
    let opts = StoreOptions { incidents: policy.clone(), ..StoreOptions::default() };
    let result = rt.block_on(async {
        let store = Store::open(&url, opts).await?;
        let codes: Vec<TicketCode> = probes
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let plan = store.explain_incident_candidates(codes[0]).await?;
        let mut micros = Vec::with_capacity(PROBES);
        let mut found = 0usize;
        for (i, code) in codes.iter().enumerate() {
            let t = Instant::now();
            let c = store.incident_candidates(*code).await?;
            let us = t.elapsed().as_micros() as u64;
            if i >= WARMUP {
                micros.push(us);
                found += c.len();
            }
        }
        store.close().await;
        anyhow::Ok((micros, found, plan))
    });
    let _ = std::fs::remove_file(&path);
    let (mut micros, found, plan) = result?;
    micros.sort_unstable();
    let mean_ms = micros.iter().sum::<u64>() as f64 / micros.len().max(1) as f64 / 1000.0;
    Ok(Cost {
        tickets: n,
        load_secs,
        p50_ms: percentile_ms(&micros, 50.0),
        p99_ms: percentile_ms(&micros, 99.0),
        mean_ms,
        mean_candidates: found as f64 / micros.len().max(1) as f64,
        plan,
    })
}

impl IncidentReport {
    pub fn pass(&self) -> bool {
        self.auto_join.precision >= TARGET_PRECISION
            && self.cost.as_ref().is_none_or(|c| c.p99_ms < TARGET_P99_MS && !c.scans())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "\nincident matcher: {} labelled pairs ({} duplicates), default [incidents] policy",
            self.pairs, self.duplicates
        );
        for (name, q) in [("auto_join", &self.auto_join), ("suggest", &self.suggest)] {
            let _ = writeln!(
                out,
                "  at {name}_score {:.2}: precision {:.3}, recall {:.3} ({} flagged)",
                q.threshold, q.precision, q.recall, q.predicted
            );
        }
        let _ = writeln!(
            out,
            "  precision at auto_join_score ≥ {TARGET_PRECISION}: {}",
            verdict(self.auto_join.precision >= TARGET_PRECISION)
        );
        if !self.misses.is_empty() {
            let m: Vec<String> = self.misses.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "  wrong at suggest_score, by kind: {}", m.join(", "));
        }
        if let Some(c) = &self.cost {
            let _ = writeln!(
                out,
                "  matching one new ticket at {} tickets (SQLite, loaded in {:.0} s): \
                 p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms, {:.1} candidates on average",
                c.tickets, c.load_secs, c.p50_ms, c.p99_ms, c.mean_ms, c.mean_candidates
            );
            for line in &c.plan {
                let _ = writeln!(out, "    plan: {line}");
            }
            let _ = writeln!(
                out,
                "  p99 < {TARGET_P99_MS} ms and no scan: {}",
                verdict(c.p99_ms < TARGET_P99_MS && !c.scans())
            );
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let q = |q: &Quality| {
            json!({"threshold": q.threshold, "precision": q.precision, "recall": q.recall,
                   "flagged": q.predicted})
        };
        json!({
            "pairs": self.pairs,
            "duplicates": self.duplicates,
            "auto_join": q(&self.auto_join),
            "suggest": q(&self.suggest),
            "target_precision": TARGET_PRECISION,
            "cost": self.cost.as_ref().map(|c| json!({
                "tickets": c.tickets,
                "load_secs": c.load_secs,
                "p50_ms": c.p50_ms,
                "p99_ms": c.p99_ms,
                "mean_ms": c.mean_ms,
                "mean_candidates": c.mean_candidates,
                "plan": c.plan,
                "target_p99_ms": TARGET_P99_MS,
            })),
            "pass": self.pass(),
        })
    }
}

impl Cost {
    /// Whether a plan line reads the tickets table whole (SQLite `SCAN t`, PostgreSQL
    /// `Seq Scan on tickets`).
    fn scans(&self) -> bool {
        self.plan.iter().any(|l| {
            let l = l.trim_start();
            l.starts_with("SCAN t") || l.contains("Seq Scan on tickets")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labelled_pairs_reach_the_precision_target() {
        let root = crate::workspace_root();
        let r = run(&root, Path::new("/nonexistent"), 0).unwrap();
        assert!(r.pairs >= 200, "{}", r.pairs);
        assert!(r.auto_join.precision >= TARGET_PRECISION, "{}", r.render());
        assert!(r.suggest.recall >= 0.8, "{}", r.render());
    }

    #[test]
    fn quality_counts() {
        let s = [(true, 0.9), (true, 0.6), (false, 0.85), (false, 0.1)];
        let q = quality(&s, 0.8);
        assert_eq!((q.precision, q.recall, q.predicted), (0.5, 0.5, 2));
        let q = quality(&s, 0.95);
        assert_eq!((q.precision, q.recall, q.predicted), (1.0, 0.0, 0));
    }
}
