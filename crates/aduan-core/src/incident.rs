//! Incidents: many reports of one problem (issue 20). Pure candidate scoring.
//!
//! A new ticket is compared with the open tickets reported near it in the last
//! `window_days` (the store finds them through a place-cell index, [`cell`] and
//! [`cells_around`], and the desa name, never by a scan). Each candidate is described by
//! [`Facts`] — the distance between the two reports (or only "same desa" when one has no
//! coordinates), whether the category and OPD agree, the age of the candidate, and the
//! cosine of the two texts' term sets — and [`score`] turns them into 0.0–1.0:
//!
//! - place is a gate: farther than the category's radius → 0; without coordinates on
//!   both sides, not in the same desa → 0;
//! - then `0.30 · place + 0.20 · category + 0.40 · text + 0.10 · time`, where place falls
//!   from 1.0 at 0 m to 0.5 at the radius (0.6 for "same desa" without coordinates),
//!   category is 1 when equal, 0.5 when either is unknown, 0.25 for another category of
//!   the same OPD and 0 otherwise, text is the cosine and time falls linearly to 0 at the
//!   end of the window.
//!
//! Text similarity is the cosine of binary term vectors: [`terms`] lower-cases, drops
//! stop words (the words every complaint shares carry no information: a zero IDF), strips
//! the common Indonesian particles and affixes, and keeps each term once. The store keeps
//! the terms of each ticket as a short signature ([`signature`]), so candidates are compared
//! without reading their messages.
//!
//! Thresholds: at [`IncidentPolicy::auto_join_score`] and above a ticket may join the
//! candidate's incident by itself (only when `auto_join` is on); from
//! [`IncidentPolicy::suggest_score`] the operator sees the suggestion with [`explain`]'s
//! sentence ("kemungkinan sama dengan ADU-… (3 laporan, 180 m, 2 hari)"). The defaults were
//! chosen on the labelled pairs of `xtask/data/incident_pairs.tsv` (`cargo xtask bench
//! --incidents-only`).

use std::collections::BTreeMap;

use chrono::Duration;

use crate::Location;
use crate::words::{LightStem, PLAIN_PREFIXES, is_function_word, light_stem};

/// The grid step of a place cell, in degrees of latitude and longitude: about 500 m near
/// the equator (Indonesia lies within 11° of it, where a degree of longitude is ≥ 98 % of
/// one at the equator).
pub const CELL_DEG: f64 = 0.0045;

/// The widest radius a category may set: the 3 × 3 cells around a point cover at least one
/// cell step (≈ 490 m) in every direction.
pub const MAX_RADIUS_M: f64 = 490.0;

/// `[incidents]`: how candidates are found and when they are suggested or joined.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPolicy {
    /// How far back candidates are looked for.
    pub window_days: u32,
    /// Reports of the same problem lie within this distance (metres), unless the category
    /// sets its own.
    pub radius_m: f64,
    /// Category code → radius in metres (a flood spans more than a pothole).
    pub radius_by_category: BTreeMap<String, f64>,
    /// From this score on, the operator sees the candidate.
    pub suggest_score: f64,
    /// From this score on, the ticket joins the candidate's incident (with `auto_join`).
    pub auto_join_score: f64,
    /// Join automatically at all (off by default: an operator decides).
    pub auto_join: bool,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            window_days: 14,
            radius_m: 300.0,
            radius_by_category: BTreeMap::new(),
            suggest_score: 0.5,
            auto_join_score: 0.8,
            auto_join: false,
        }
    }
}

impl IncidentPolicy {
    /// The radius of a category (clamped to what the place cells cover).
    pub fn radius_for(&self, category: Option<&str>) -> f64 {
        let r = category.and_then(|c| self.radius_by_category.get(c)).copied();
        r.unwrap_or(self.radius_m).clamp(1.0, MAX_RADIUS_M)
    }

    /// What is wrong with the policy, if anything (for `check-config`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.window_days == 0 || self.window_days > 365 {
            out.push("window_days must be from 1 to 365".to_owned());
        }
        let radii = std::iter::once(self.radius_m).chain(self.radius_by_category.values().copied());
        if radii.into_iter().any(|r| !(1.0..=MAX_RADIUS_M).contains(&r)) {
            out.push(format!("radius_m must be from 1 to {MAX_RADIUS_M}"));
        }
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if !unit(self.suggest_score) || !unit(self.auto_join_score) {
            out.push("suggest_score and auto_join_score must be from 0 to 1".to_owned());
        } else if self.suggest_score > self.auto_join_score {
            out.push("suggest_score must not exceed auto_join_score".to_owned());
        }
        out
    }
}

fn cell_index(deg: f64) -> i64 {
    (deg / CELL_DEG).floor() as i64
}

fn cell_of(lat_i: i64, lon_i: i64) -> i64 {
    // Latitude cells span ±20 000, longitude cells ±40 000: both fit side by side.
    (lat_i + 50_000) * 100_000 + (lon_i + 50_000)
}

/// The place cell of a point (about 500 m × 500 m).
pub fn cell(at: Location) -> i64 {
    cell_of(cell_index(at.lat), cell_index(at.lon))
}

/// The cell of a point and its eight neighbours: every point within [`MAX_RADIUS_M`] of
/// `at` lies in one of them.
pub fn cells_around(at: Location) -> Vec<i64> {
    let (la, lo) = (cell_index(at.lat), cell_index(at.lon));
    let mut out = Vec::with_capacity(9);
    for dl in -1..=1 {
        for dn in -1..=1 {
            out.push(cell_of(la + dl, lo + dn));
        }
    }
    out.sort_unstable();
    out
}

/// Great-circle distance in metres.
pub fn distance_m(a: Location, b: Location) -> f64 {
    const R: f64 = 6_371_000.0;
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().clamp(0.0, 1.0).asin()
}

/// Words every complaint shares, besides the [`FUNCTION_WORDS`]: they say nothing about
/// which problem it is.
const STOP: &[&str] = &[
    "segera",
    "udah",
    "belum",
    "tdk",
    "gak",
    "ga",
    "nggak",
    "warga",
    "kenapa",
    "sejak",
    "sampai",
    "sekali",
    "banget",
    "lagi",
    "masih",
    "kok",
    "min",
    "dong",
    "nih",
    "sih",
    "oleh",
    "para",
    "supaya",
    "hari",
    "minggu",
    "bulan",
    "kemarin",
    "sekarang",
    "lapor",
    "laporan",
    "aduan",
    "keluhan",
    "mengadu",
    "dekat",
    "depan",
    "sebelah",
    "jalan",
    "jln",
    "dusun",
    "desa",
    "kelurahan",
    "kecamatan",
    "the",
    "and",
    "sama",
    "tiap",
    "setiap",
    "kalau",
    "kalo",
    "jadi",
    "tapi",
    "namun",
    "sehingga",
    "mau",
    "ingin",
    "harap",
    "mohonkan",
    "tindak",
    "lanjut",
];

fn is_stop(word: &str) -> bool {
    is_function_word(word) || STOP.contains(&word)
}

/// How the matcher strips affixes: a particle leaves three letters, a suffix four.
const STEM: LightStem = LightStem { particle_keep: 3, suffix_keep: 4, prefixes: PLAIN_PREFIXES };

/// The terms of a text: lower-case words of three or more letters, stop words dropped,
/// stemmed, sorted, each once, at most 40.
pub fn terms(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !is_stop(w))
        .map(|w| light_stem(w, &STEM).to_owned())
        .filter(|w| !is_stop(w))
        .collect();
    out.sort();
    out.dedup();
    out.truncate(40);
    out
}

/// [`terms`] as the text the store keeps (space separated).
pub fn signature(text: &str) -> String {
    terms(text).join(" ")
}

/// The terms of a stored signature.
pub fn signature_terms(sig: &str) -> Vec<String> {
    let mut out: Vec<String> = sig.split_whitespace().map(str::to_owned).collect();
    out.sort();
    out.dedup();
    out
}

/// The cosine of two sorted term sets: shared terms over the geometric mean of the sizes.
pub fn cosine(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared as f64 / ((a.len() * b.len()) as f64).sqrt()
}

/// How two categories (or OPDs) compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Same,
    /// One of the two is not known (yet).
    Unknown,
    Different,
}

impl Agreement {
    pub fn of(a: Option<&str>, b: Option<&str>) -> Agreement {
        match (a, b) {
            (Some(x), Some(y)) if x == y => Agreement::Same,
            (Some(_), Some(_)) => Agreement::Different,
            _ => Agreement::Unknown,
        }
    }
}

/// What is known about a candidate, relative to the new ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Between the two reports, when both have coordinates.
    pub distance_m: Option<f64>,
    /// Both name the same desa/kelurahan (gazetteer).
    pub same_desa: bool,
    pub category: Agreement,
    pub opd: Agreement,
    /// How long before the new ticket the candidate was reported.
    pub age: Duration,
    /// [`cosine`] of the two texts.
    pub cosine: f64,
}

/// The candidate's score, 0.0–1.0 (see the module doc).
pub fn score(f: &Facts, policy: &IncidentPolicy, radius_m: f64) -> f64 {
    let place = match f.distance_m {
        Some(d) if d <= radius_m => 1.0 - 0.5 * d / radius_m,
        // Coordinates say more than a desa name: far apart is another place.
        Some(_) => return 0.0,
        None if f.same_desa => 0.6,
        None => return 0.0,
    };
    let window = Duration::days(i64::from(policy.window_days.max(1)));
    if f.age > window {
        return 0.0;
    }
    let time = 1.0 - f.age.num_seconds().max(0) as f64 / window.num_seconds() as f64;
    let category = match (f.category, f.opd) {
        (Agreement::Same, _) => 1.0,
        (Agreement::Unknown, _) => 0.5,
        (Agreement::Different, Agreement::Same) => 0.25,
        (Agreement::Different, _) => 0.0,
    };
    let s = 0.30 * place + 0.20 * category + 0.40 * f.cosine.clamp(0.0, 1.0) + 0.10 * time;
    (s * 1000.0).round() / 1000.0
}

/// The operator's sentence for a candidate: "kemungkinan sama dengan ADU-… (3 laporan,
/// 180 m, 2 hari)"; "desa sama" when a distance is not known; the age in hours under a day.
pub fn explain(code: &str, reports: i64, f: &Facts) -> String {
    let place = match f.distance_m {
        Some(d) => format!("{} m", (d / 10.0).round() as i64 * 10),
        None => "desa sama".to_owned(),
    };
    let age = if f.age < Duration::days(1) {
        format!("{} jam", f.age.num_hours().max(0))
    } else {
        format!("{} hari", f.age.num_days())
    };
    format!("kemungkinan sama dengan {code} ({reports} laporan, {place}, {age})")
}

/// What the score means under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Join automatically.
    Join,
    /// Show the operator.
    Suggest,
    /// Not the same problem.
    Unrelated,
}

pub fn verdict(score: f64, policy: &IncidentPolicy) -> Verdict {
    if policy.auto_join && score >= policy.auto_join_score {
        Verdict::Join
    } else if score >= policy.suggest_score {
        Verdict::Suggest
    } else {
        Verdict::Unrelated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(d: Option<f64>, desa: bool, cat: Agreement, days: i64, cos: f64) -> Facts {
        Facts {
            distance_m: d,
            same_desa: desa,
            category: cat,
            opd: Agreement::Unknown,
            age: Duration::days(days),
            cosine: cos,
        }
    }

    #[test]
    fn scores_by_place_category_text_and_age() {
        use Agreement::*;
        let p = IncidentPolicy::default();
        let cases: &[(Facts, f64)] = &[
            // Same spot, same category, same words, today: the top.
            (facts(Some(0.0), true, Same, 0, 1.0), 1.0),
            // At the radius: place counts half.
            (facts(Some(300.0), false, Same, 0, 1.0), 0.85),
            // Beyond the radius and another desa: never.
            (facts(Some(301.0), false, Same, 0, 1.0), 0.0),
            // Beyond the radius, even in the same desa: coordinates say more.
            (facts(Some(800.0), true, Same, 0, 1.0), 0.0),
            // No coordinates, same desa.
            (facts(None, true, Same, 0, 1.0), 0.88),
            // No coordinates, no desa: nothing to go on.
            (facts(None, false, Same, 0, 1.0), 0.0),
            // Another problem at the same spot.
            (facts(Some(20.0), true, Different, 0, 0.1), 0.43),
            // Unknown category, half credit.
            (facts(Some(0.0), true, Unknown, 7, 0.5), 0.65),
            // Out of the window.
            (facts(Some(0.0), true, Same, 15, 1.0), 0.0),
        ];
        for (f, want) in cases {
            let got = score(f, &p, p.radius_for(None));
            assert!((got - want).abs() < 1e-9, "{f:?}: {got} != {want}");
        }
    }

    #[test]
    fn verdicts_follow_the_thresholds_and_auto_join_switch() {
        let mut p = IncidentPolicy::default();
        assert_eq!(verdict(0.95, &p), Verdict::Suggest, "auto_join is off by default");
        p.auto_join = true;
        assert_eq!(verdict(0.95, &p), Verdict::Join);
        assert_eq!(verdict(0.8, &p), Verdict::Join);
        assert_eq!(verdict(0.79, &p), Verdict::Suggest);
        assert_eq!(verdict(0.5, &p), Verdict::Suggest);
        assert_eq!(verdict(0.49, &p), Verdict::Unrelated);
    }

    #[test]
    fn explains_in_the_operators_words() {
        let f = Facts {
            distance_m: Some(183.0),
            same_desa: false,
            category: Agreement::Same,
            opd: Agreement::Same,
            age: Duration::hours(50),
            cosine: 0.7,
        };
        assert_eq!(
            explain("ADU-7K3M9QX2", 3, &f),
            "kemungkinan sama dengan ADU-7K3M9QX2 (3 laporan, 180 m, 2 hari)"
        );
        let f = Facts { distance_m: None, age: Duration::hours(5), ..f };
        assert_eq!(
            explain("ADU-7K3M9QX2", 1, &f),
            "kemungkinan sama dengan ADU-7K3M9QX2 (1 laporan, desa sama, 5 jam)"
        );
    }

    #[test]
    fn terms_drop_stop_words_and_affixes() {
        assert_eq!(
            terms("Tolong pak, saluran air di depan rumah kami tersumbat sampahnya!"),
            ["air", "rumah", "salur", "sampah", "sumbat"]
        );
        let a = terms("Selokan tersumbat, air meluap ke jalan");
        let b = terms("selokannya sumbat airnya meluap");
        assert!(cosine(&a, &b) > 0.7, "{a:?} {b:?}");
        let c = terms("lampu penerangan jalan mati");
        assert_eq!(cosine(&a, &c), 0.0);
        assert_eq!(signature_terms(&signature("air air selokan")), ["air", "selo"]);
    }

    #[test]
    fn neighbour_cells_cover_the_widest_radius() {
        let here = Location { lat: -7.7956, lon: 110.3695 };
        let around = cells_around(here);
        assert_eq!(around.len(), 9);
        assert!(around.contains(&cell(here)));
        // Points MAX_RADIUS_M away in eight directions stay inside the nine cells.
        let step = MAX_RADIUS_M / 111_320.0;
        for (dl, dn) in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (0.7, 0.7), (-0.7, -0.7)]
        {
            let there = Location { lat: here.lat + dl * step, lon: here.lon + dn * step };
            assert!(around.contains(&cell(there)), "{there:?}");
        }
        let d = distance_m(here, Location { lat: here.lat + 0.001, lon: here.lon });
        assert!((d - 111.2).abs() < 0.5, "{d}");
    }

    #[test]
    fn policy_problems() {
        assert!(IncidentPolicy::default().problems().is_empty());
        let p = IncidentPolicy { suggest_score: 0.9, auto_join_score: 0.8, ..Default::default() };
        assert_eq!(p.problems().len(), 1);
        let p = IncidentPolicy { radius_m: 5000.0, window_days: 0, ..Default::default() };
        assert_eq!(p.problems().len(), 2);
    }
}
