//! The routing text path on arbitrary text: the normaliser (`text::words`, `normalize`,
//! `features_text`, `stem`, `edit_distance`), the gazetteer (`Gazetteer::find`) and the
//! whole router (`Router::route`, `Router::doc`) with the shipped registry
//! (config/opd.toml), the Banyumas gazetteer, and a model learned once from 200 rows of the
//! Lapor Mas Bup set.
#![no_main]

use std::sync::OnceLock;

use aduan_routing::eval::read_csv;
use aduan_routing::text::{edit_distance, features_text, normalize, stem, words};
use aduan_routing::{Gazetteer, Model, OpdFile, Router, RouterConfig, TrainConfig};
use libfuzzer_sys::fuzz_target;

const REGISTRY: &str = include_str!("../../config/opd.toml");
const TRAINING: &str =
    include_str!("../../crates/aduan-routing/tests/fixtures/lapormasbup/lapormasbup_kategori.csv");

fn routers() -> &'static (Router, Router) {
    static ROUTERS: OnceLock<(Router, Router)> = OnceLock::new();
    ROUTERS.get_or_init(|| {
        let registry: OpdFile = toml::from_str(REGISTRY).expect("config/opd.toml parses");
        let plain =
            Router::new(registry, Gazetteer::for_kabupaten("33.02"), RouterConfig::default());
        let rows = read_csv(TRAINING.as_bytes(), "text", "kategori").expect("the CSV reads");
        let rows = &rows[..rows.len().min(200)];
        let docs: Vec<_> = rows.iter().map(|(t, _)| plain.doc(t)).collect();
        let labels: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
        let model: Option<Model> = Model::train(&docs, &labels, &TrainConfig::default());
        assert!(model.is_some(), "a model trains on the sample");
        let learned = plain.with_model(model);
        (plain, learned)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let w = words(&text);
    std::hint::black_box(normalize(&text));
    std::hint::black_box(features_text(&text));
    for word in w.iter().take(64) {
        std::hint::black_box(stem(word));
    }
    if let [a, b, ..] = w.as_slice() {
        let d = edit_distance(a, b, 2);
        assert!(d <= 3, "edit_distance must give up at limit + 1");
    }
    let (plain, learned) = routers();
    for router in [plain, learned] {
        let decision = router.route(&text);
        assert!(
            decision.confidence.is_finite() && (0.0..=1.0 + 1e-9).contains(&decision.confidence),
            "confidence {} out of [0, 1]",
            decision.confidence
        );
        assert!(decision.suggestions.len() <= 3);
        std::hint::black_box(decision.note());
        std::hint::black_box(router.doc(&text));
    }
});
