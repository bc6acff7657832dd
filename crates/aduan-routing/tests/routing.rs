//! Routing golden tests on real-looking complaints from Banyumas, written as residents write
//! them (slang, abbreviations, misspelled villages), against the shipped registry
//! (config/opd.toml) and gazetteer.

use std::path::Path;

use aduan_routing::{Gazetteer, OpdFile, Router, RouterConfig};
use expect_test::{Expect, expect};

fn router() -> Router {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let registry: OpdFile =
        toml::from_str(&std::fs::read_to_string(root.join("config/opd.toml")).unwrap()).unwrap();
    Router::new(registry, Gazetteer::for_kabupaten("33.02"), RouterConfig::default())
}

fn check(text: &str, want: Expect) {
    let d = router().route(text);
    let suggestions: Vec<String> =
        d.suggestions.iter().map(|s| format!("{} {:.2}", s.opd, s.score)).collect();
    want.assert_eq(&format!(
        "opd={} category={} place={} confidence={:.2}\nsuggestions: {}\nkeywords: {}",
        d.opd.as_deref().unwrap_or("-"),
        d.category.as_deref().unwrap_or("-"),
        d.place.label().unwrap_or_else(|| "-".into()),
        d.confidence,
        suggestions.join(", "),
        d.keywords.join(", ")
    ));
}

#[test]
fn a_broken_road_with_slang_goes_to_dpu() {
    check(
        "pak jln di ds kedungwringin kec jatilawang rusakkk bgt, byk lubang, tolong diaspal",
        expect![[r#"
            opd=DPU category=jalan place=Kedungwringin, Kec. Jatilawang confidence=0.98
            suggestions: DPU 0.98
            keywords: jalan rusak, jalan, jalan desa, jalan rusak, aspal, pengaspalan"#]],
    );
}

#[test]
fn rubbish_in_a_misspelled_village() {
    check(
        "Sampah numpuk di TPS desa karangklesm kec purwokerto selatan udh seminggu gk diangkut, bau bgt",
        expect![[r#"
            opd=DLH category=sampah place=Karangklesem, Kec. Purwokerto Selatan confidence=0.90
            suggestions: DLH 0.90
            keywords: sampah, sampah, tps"#]],
    );
}

#[test]
fn water_goes_to_pdam() {
    check(
        "Air PDAM mati udah 3 hari di perumahan kami, tagihan air tetap jalan",
        expect![[r#"
            opd=PDAM category=air-bersih place=- confidence=0.91
            suggestions: PDAM 0.91, DINPERKIM 0.03, DPU 0.03
            keywords: air mati, pdam, pdam, perumahan, tagihan air, jalan"#]],
    );
}

#[test]
fn village_government_goes_to_the_camat_of_the_place() {
    check(
        "Kades di desa Pliken kecamatan kembaran tidak pernah ada di balai desa, pelayanan surat lambat",
        expect![[r#"
            opd=KEC-KEMBARAN category=pemerintahan-desa place=Pliken, Kec. Kembaran confidence=0.90
            suggestions: KEC-KEMBARAN 0.90
            keywords: kades, balai desa"#]],
    );
}

#[test]
fn without_a_place_a_village_complaint_stays_in_triage() {
    check(
        "perangkat desa minta uang buat bikin surat pengantar",
        expect![[r#"
        opd=- category=pemerintahan-desa place=- confidence=0.00
        suggestions: 
        keywords: perangkat desa"#]],
    );
}

#[test]
fn an_identity_card_complaint() {
    check(
        "sudah 2 bulan e-ktp blm jadi, kata petugas dukcapil blangko habis",
        expect![[r#"
        opd=DINDUKCAPIL category=administrasi-kependudukan place=- confidence=0.97
        suggestions: DINDUKCAPIL 0.97
        keywords: e ktp, ktp, dukcapil, dukcapil, blangko"#]],
    );
}

#[test]
fn a_vague_message_stays_in_triage() {
    check(
        "Mohon perhatiannya pak bupati, terima kasih",
        expect![[r#"
        opd=- category=- place=- confidence=0.00
        suggestions: 
        keywords: "#]],
    );
}

#[test]
fn school_fees() {
    check(
        "Di SMPN 2 Sokaraja ada pungutan uang gedung buat wali murid, memberatkan ortu",
        expect![[r#"
            opd=DINDIK category=sekolah place=Kec. Sokaraja confidence=0.96
            suggestions: DINDIK 0.96
            keywords: smpn, pungutan, wali murid, murid"#]],
    );
}
