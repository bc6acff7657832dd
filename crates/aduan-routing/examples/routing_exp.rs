//! The experiment loop behind the table in `model.rs`: `aduan routing eval` with the
//! training settings taken from the environment, so one build tries many settings.
//!
//! ```text
//! ADUAN_EXP='c=0.1,bpm=0,raw=1' cargo run --release -p aduan-routing --example routing_exp -- \
//!     FILE.csv TEXT_COLUMN LABEL_COLUMN (folds=5 | frac=0.75)
//! ```
//!
//! Keys: `c`, `rw` (rule weight), `bal` (0/1), `bp` (balance power), `bpm` (balance power
//! above 30 labels), `cw` (char weight), `cmin`, `cmax`, `mindf`, `tol`, `threads`, `raw`
//! (raw-word weight), `craw` (0/1: char n-grams of raw words), `cap` (char n-gram bytes),
//! `prune` (smallest weight kept), `cm` (cost above 30 labels), `nb` / `nbm` (NB-SVM
//! smoothing up to / above 30 labels, 0 = off), `nbp` (exponent of the NB scale), `cent`
//! (weight of the centroid member).
//!
//! More environment: `ADUAN_EXP_SEED=n` shuffles the rows first (another fold assignment:
//! the noise), `ADUAN_EXP_CONFUSION=1` prints the confusion matrix, `ADUAN_EXP_DUMP=FILE`
//! writes the out-of-fold probabilities of 5 folds, with `ADUAN_EXP_KNN=k,m` a kNN member
//! blended in and `ADUAN_EXP_PAIR=1` the pairwise second stage (the `dump:` line on stderr).
//! The registry is `config/opd.toml` and the gazetteer kabupaten 33.02, as in the bench.

use std::path::Path;
use std::time::Instant;

use aduan_routing::eval::{Split, evaluate_with_model, read_csv};
use aduan_routing::{Gazetteer, OpdFile, Router, RouterConfig, TrainConfig};

fn config(spec: &str) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    for kv in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{kv}: not key=value"));
        let f: f64 = v.trim().parse().unwrap_or_else(|_| panic!("{kv}: not a number"));
        match k.trim() {
            "c" => cfg.c = f,
            "rw" => cfg.rule_weight = f,
            "bal" => cfg.balanced = f != 0.0,
            "bp" => cfg.balance_power = f,
            "bpm" => cfg.balance_power_many = f,
            "cw" => cfg.char_weight = f,
            "cmin" => cfg.char_min = f as usize,
            "cmax" => cfg.char_max = f as usize,
            "mindf" => cfg.min_df = f as u32,
            "tol" => cfg.tolerance = f,
            "threads" => cfg.threads = f as usize,
            "raw" => cfg.raw_weight = f,
            "craw" => cfg.char_from_raw = f != 0.0,
            "cap" => cfg.char_cap = f as usize,
            "prune" => cfg.prune = f,
            "cm" => cfg.c_many = f,
            "nb" => cfg.nb = f,
            "nbp" => cfg.nb_power = f,
            "nbm" => cfg.nb_many = f,
            "cent" => cfg.centroid = f,
            other => panic!("unknown key {other}"),
        }
    }
    cfg
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, text, label, split] = &args[..] else {
        panic!("usage: routing_exp FILE.csv TEXT_COLUMN LABEL_COLUMN (folds=K | frac=F)")
    };
    let split = match split.split_once('=') {
        Some(("folds", k)) => Split::Folds(k.parse().expect("folds")),
        Some(("frac", f)) => Split::TrainFraction(f.parse().expect("frac")),
        _ => panic!("split: folds=K or frac=F"),
    };
    let cfg = config(&std::env::var("ADUAN_EXP").unwrap_or_default());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let registry: OpdFile =
        toml::from_str(&std::fs::read_to_string(root.join("config/opd.toml")).unwrap()).unwrap();
    let router = Router::new(registry, Gazetteer::for_kabupaten("33.02"), RouterConfig::default());
    let mut rows = read_csv(std::fs::File::open(csv).unwrap(), text, label).unwrap();
    // `ADUAN_EXP_SEED=n` (n > 0): the rows in a seeded random order, so `folds=K` is another
    // fold assignment (the spread over seeds is the noise a real gain must exceed).
    if let Some(seed) = std::env::var("ADUAN_EXP_SEED").ok().and_then(|s| s.parse::<u64>().ok())
        && seed > 0
    {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for i in (1..rows.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rows.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }
    if let Some(path) = std::env::var_os("ADUAN_EXP_DUMP") {
        // Out-of-fold probabilities per row (folds by row index mod 5), one line each:
        // row, truth, then label=p for every label, most likely first.
        use std::fmt::Write as _;
        let docs: Vec<_> = rows.iter().map(|(t, _)| router.doc(t)).collect();
        let mut out = String::new();
        let cfg = TrainConfig { calibrate: false, ..cfg };
        let mut lines = vec![String::new(); rows.len()];
        let pairwise = std::env::var_os("ADUAN_EXP_PAIR").is_some();
        // `ADUAN_EXP_KNN=k,m`: blend a kNN member (k neighbours, weight m).
        let knn: Option<(usize, f64)> = std::env::var("ADUAN_EXP_KNN").ok().and_then(|s| {
            let (k, m) = s.split_once(',')?;
            Some((k.parse().ok()?, m.parse().ok()?))
        });
        let (mut right, mut flips) = (0, 0);
        for f in 0..5 {
            let train: Vec<usize> = (0..rows.len()).filter(|i| i % 5 != f).collect();
            let d: Vec<_> = train.iter().map(|&i| docs[i].clone()).collect();
            let l: Vec<String> = train.iter().map(|&i| rows[i].1.clone()).collect();
            let m = aduan_routing::Model::train(&d, &l, &cfg).unwrap();
            let mut pairs: std::collections::HashMap<(String, String), aduan_routing::Model> =
                std::collections::HashMap::new();
            for i in (0..rows.len()).filter(|i| i % 5 == f) {
                let mut line = format!("{i}\t{}", rows[i].1);
                let mut ranked = m.predict(&docs[i]);
                if let Some((kn, mk)) = knn {
                    // kNN member: the `kn` most cosine-similar training texts vote with
                    // their similarity; votes × `mk` added to the SVM's log-probabilities.
                    let unit = |v: Vec<(u32, f32)>| {
                        let n = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt().max(1e-9);
                        v.into_iter().map(|(j, x)| (j, x / n)).collect::<Vec<_>>()
                    };
                    let q = unit(m.vector(&docs[i]));
                    let mut sims: Vec<(f32, usize)> = train
                        .iter()
                        .map(|&t| {
                            let v = unit(m.vector(&docs[t]));
                            let (mut a, mut b, mut s) = (0, 0, 0f32);
                            while a < q.len() && b < v.len() {
                                match q[a].0.cmp(&v[b].0) {
                                    std::cmp::Ordering::Less => a += 1,
                                    std::cmp::Ordering::Greater => b += 1,
                                    std::cmp::Ordering::Equal => {
                                        s += q[a].1 * v[b].1;
                                        a += 1;
                                        b += 1;
                                    }
                                }
                            }
                            (s, t)
                        })
                        .collect();
                    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
                    let mut votes: std::collections::HashMap<&str, f64> = Default::default();
                    for (s, t) in sims.iter().take(kn) {
                        *votes.entry(rows[*t].1.as_str()).or_default() += f64::from(*s);
                    }
                    for r in ranked.iter_mut() {
                        r.p =
                            r.p.max(1e-12).ln() + mk * votes.get(r.label.as_str()).unwrap_or(&0.0);
                    }
                    ranked.sort_by(|a, b| b.p.total_cmp(&a.p));
                }
                if pairwise {
                    // Second stage: the top two re-ranked by a model of those two labels.
                    let (a, b) = (ranked[0].label.clone(), ranked[1].label.clone());
                    let key = if a < b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
                    let pm = pairs.entry(key.clone()).or_insert_with(|| {
                        let sub: Vec<usize> = train
                            .iter()
                            .copied()
                            .filter(|&i| rows[i].1 == key.0 || rows[i].1 == key.1)
                            .collect();
                        let d: Vec<_> = sub.iter().map(|&i| docs[i].clone()).collect();
                        let l: Vec<String> = sub.iter().map(|&i| rows[i].1.clone()).collect();
                        aduan_routing::Model::train(&d, &l, &cfg).unwrap()
                    });
                    let p = pm.predict(&docs[i]);
                    if p[0].label != ranked[0].label {
                        flips += 1;
                        ranked.swap(0, 1);
                    }
                }
                right += usize::from(ranked[0].label == rows[i].1);
                for s in ranked {
                    let _ = write!(line, "\t{}={:.4}", s.label, s.p);
                }
                lines[i] = line;
            }
        }
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        std::fs::write(path, out).unwrap();
        eprintln!("dump: top-1 {:.3}, {flips} flipped", right as f64 / rows.len() as f64);
    }
    let started = Instant::now();
    let (report, model) = evaluate_with_model(&router, &rows, split, &cfg).unwrap();
    let secs = started.elapsed().as_secs_f64();
    if std::env::var_os("ADUAN_EXP_CONFUSION").is_some() {
        eprintln!("{}", report.render());
    }
    let timed = |name: &str, f: &dyn Fn(&str)| {
        let started = Instant::now();
        for (t, _) in &rows {
            f(t);
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
        eprintln!("{name}: {us:.0} µs per text");
    };
    if std::env::var_os("ADUAN_EXP_PARTS").is_some() {
        timed("doc", &|t| {
            std::hint::black_box(router.doc(t));
        });
        timed("place", &|t| {
            std::hint::black_box(router.place(t));
        });
        let docs: Vec<_> = rows.iter().map(|(t, _)| router.doc(t)).collect();
        let started = Instant::now();
        for d in &docs {
            std::hint::black_box(model.predict(d));
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
        eprintln!("predict: {us:.0} µs per text; model size {:?}", model.size());
    }
    let full = router.with_model(Some(model));
    let started = Instant::now();
    for (t, _) in &rows {
        std::hint::black_box(full.route(t));
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
    println!("{} seconds={secs:.1} route_us={micros:.0}", report.summary_line());
}
