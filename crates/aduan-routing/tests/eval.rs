//! The learned router on the Lapor Mas Bup set (834 complaints of Kabupaten Purbalingga,
//! six sector labels; tests/fixtures/lapormasbup/SOURCE.txt), 5-fold as `aduan routing
//! eval` runs it. A strong baseline (TF-IDF word and character n-grams, linear SVM) scores
//! 0.71 on it.

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
    assert!(report.accuracy() > 0.71, "{}", report.summary_line());
    assert!(report.top3_accuracy() > report.accuracy());
}
