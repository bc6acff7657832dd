//! Helpers shared by the fixture tests: walking a corpus and the parse options of the intake
//! address the fixtures are read as.

use std::path::{Path, PathBuf};

use aduan_email::ParseOptions;
use chrono::DateTime;

/// Every `.eml` under `dir`, sorted.
pub fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "eml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The intake mailbox `intake@aduan.test`, at a fixed time.
pub fn opts() -> ParseOptions {
    ParseOptions {
        own_addresses: vec!["intake@aduan.test".into()],
        own_id_domain: "aduan.test".into(),
        received_at: DateTime::from_timestamp(1_776_700_000, 0).unwrap(),
    }
}
