//! The learned router on the Lapor Mas Bup set (834 complaints of Kabupaten Purbalingga,
//! six sector labels; tests/fixtures/lapormasbup/SOURCE.txt), 5-fold as `aduan routing
//! eval` runs it. scikit-learn's textbook baseline (TF-IDF word 1–2 + char_wb 2–5 grams,
//! sublinear tf, LinearSVC C=0.5; `xtask/py/routing_baseline.py`) scores top-1 0.705 and
//! top-3 0.942 on the same folds; `cargo xtask bench routing` runs both side by side.

use std::path::Path;

use aduan_routing::eval::{Split, evaluate, read_csv};
use aduan_routing::{Gazetteer, OpdFile, Router, RouterConfig, TrainConfig};

fn router() -> Router {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let registry: OpdFile =
        toml::from_str(&std::fs::read_to_string(root.join("config/opd.toml")).unwrap()).unwrap();
    Router::new(registry, Gazetteer::for_kabupaten("33.02"), RouterConfig::default())
}

#[test]
fn five_fold_on_lapor_mas_bup_beats_the_baseline() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lapormasbup/lapormasbup_kategori.csv");
    let rows = read_csv(std::fs::File::open(file).unwrap(), "text", "kategori").unwrap();
    assert_eq!(rows.len(), 834);
    let report = evaluate(&router(), &rows, Split::Folds(5), &TrainConfig::default()).unwrap();
    eprintln!("{}", report.render());
    assert_eq!(report.n, 834);
    assert_eq!(report.labels.len(), 6);
    // Above the baseline (0.705 / 0.942); the issue asks 0.78, not reached yet (0.747).
    assert!(report.accuracy() >= 0.745, "{}", report.summary_line());
    assert!(report.top3_accuracy() >= 0.942, "{}", report.summary_line());
}
