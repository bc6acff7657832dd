//! The crate arrows point down, checked on the workspace manifests:
//!
//! - a channel crate (any crate under `crates/` that builds on `aduan-connector`, besides
//!   `aduan-web` and the binary `aduan`) never depends on `aduan-web`: what it needs from
//!   the daemon (the attachment store, the fetch queue, backoff, pacing) is in
//!   `aduan-connector`. Its tests may mount the real router (a dev-dependency).
//! - `aduan-core` (plain data and pure logic, fuzzed) pulls in no runtime or IO crate:
//!   not tokio, sqlx, axum or reqwest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The tables that build the library itself (not its tests).
const BUILD_TABLES: &[&str] = &["dependencies", "build-dependencies"];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn manifests() -> BTreeMap<String, toml::Table> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let table: toml::Table = toml::from_str(&text).unwrap();
        let name = table["package"]["name"].as_str().unwrap().to_owned();
        out.insert(name, table);
    }
    out
}

/// The names of `manifest`'s dependencies that go into its build (also per target).
fn build_deps(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> =
        BUILD_TABLES.iter().filter_map(|t| manifest.get(*t)?.as_table()).collect();
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values().filter_map(toml::Value::as_table) {
            tables.extend(BUILD_TABLES.iter().filter_map(|t| target.get(*t)?.as_table()));
        }
    }
    let mut names = Vec::new();
    for table in tables {
        for (key, value) in table {
            // `foo = { package = "bar" }` depends on bar.
            let real = value.get("package").and_then(toml::Value::as_str).unwrap_or(key);
            names.push(real.to_owned());
        }
    }
    names
}

fn violations(manifests: &BTreeMap<String, toml::Table>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, manifest) in manifests {
        let deps = build_deps(manifest);
        let channel = deps.iter().any(|d| d == "aduan-connector")
            && !matches!(name.as_str(), "aduan-web" | "aduan");
        if channel && deps.iter().any(|d| d == "aduan-web") {
            found.push(format!("{name} (a channel crate) depends on aduan-web"));
        }
        if name == "aduan-core" {
            for banned in ["tokio", "sqlx", "axum", "reqwest"] {
                if deps.iter().any(|d| d == banned) {
                    found.push(format!("aduan-core depends on {banned}"));
                }
            }
        }
    }
    found
}

#[test]
fn crate_arrows_point_down() {
    let manifests = manifests();
    // The rule has something to check: the core and the four channel crates are there.
    for name in ["aduan-core", "aduan-email", "aduan-sms", "aduan-social", "aduan-telegram"] {
        assert!(manifests.contains_key(name), "{name} not found under crates/");
    }
    let found = violations(&manifests);
    assert!(found.is_empty(), "layering broken: {found:#?}");
}

#[test]
fn the_check_sees_a_broken_arrow() {
    let sms: toml::Table = toml::from_str(
        "[package]\nname = \"aduan-sms\"\n[dependencies]\naduan-connector = \"1\"\n\
         [target.'cfg(unix)'.dependencies]\nweb = { package = \"aduan-web\", version = \"1\" }\n",
    )
    .unwrap();
    let core: toml::Table =
        toml::from_str("[package]\nname = \"aduan-core\"\n[dependencies]\ntokio = \"1\"\n")
            .unwrap();
    let test_only: toml::Table = toml::from_str(
        "[package]\nname = \"aduan-email\"\n[dependencies]\naduan-connector = \"1\"\n\
         [dev-dependencies]\naduan-web = \"1\"\n",
    )
    .unwrap();
    let all = BTreeMap::from([
        ("aduan-sms".to_owned(), sms),
        ("aduan-core".to_owned(), core),
        ("aduan-email".to_owned(), test_only),
    ]);
    assert_eq!(
        violations(&all),
        ["aduan-core depends on tokio", "aduan-sms (a channel crate) depends on aduan-web"]
    );
}
