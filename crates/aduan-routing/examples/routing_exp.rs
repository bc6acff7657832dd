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
//! smoothing up to / above 30 labels, 0 = off), `nbp` (exponent of the NB scale).
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
    let rows = read_csv(std::fs::File::open(csv).unwrap(), text, label).unwrap();
    let started = Instant::now();
    let (report, model) = evaluate_with_model(&router, &rows, split, &cfg).unwrap();
    let secs = started.elapsed().as_secs_f64();
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
