//! Tidy checks that keep the map of the code honest (the crate layering is checked by
//! `crates/aduan-connector/tests/layering.rs`).
//!
//! - Every code name or path written in backticks in `ARCHITECTURE.md` exists in the code:
//!   a map that names things that are gone misleads the next reader more than no map.
//! - `ARCHITECTURE.md` stays a map (at most 250 lines); detail belongs in module docs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// Every file below `dir`, skipping build output and VCS folders.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name.starts_with('.') || name == "corpus" || name == "artifacts" {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The spans written between backticks, outside fenced code blocks.
fn backticked(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            spans.push(inside.to_owned());
        }
        // An odd count leaves the last part unpaired; it is ordinary text.
    }
    spans
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a span names: a path in the repository, or a Rust-ish name (`a::b::c`, `f()`, `m!`),
/// or nothing we check (prose in backticks, URLs, config lines, HTTP paths).
enum Name {
    Path(String),
    Code(String),
}

fn classify(span: &str) -> Option<Name> {
    let span = span.trim();
    if span.is_empty() || span.contains("://") || span.starts_with('/') {
        return None;
    }
    let path_like =
        span.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    let has_ext = [".rs", ".toml", ".md", ".sql", ".yaml", ".yml", ".service", ".sh"]
        .iter()
        .any(|e| span.ends_with(e));
    if path_like && (span.contains('/') || has_ext) {
        return Some(Name::Path(span.trim_end_matches('/').to_owned()));
    }
    // Cut a call's arguments, a macro's bang, a metric's labels.
    let head = span.split(['(', '{', '!', '<']).next().unwrap_or("");
    let segments: Vec<&str> = head.split("::").collect();
    if !head.is_empty() && segments.iter().all(|s| is_ident(s)) && head.len() == head.trim().len() {
        return Some(Name::Code(segments.last().copied().unwrap_or("").to_owned()));
    }
    None
}

#[test]
fn every_name_in_architecture_md_exists_in_the_code() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    for dir in
        ["crates", "tests", "xtask", "fuzz", "deploy", "config", "migrations", ".ci", ".cargo"]
    {
        walk(&root.join(dir), &mut files);
    }
    let me = root.join("tests/tidy.rs");
    let rel: Vec<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut words = BTreeSet::new();
    for file in files.iter().filter(|p| **p != me) {
        let code = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("rs" | "sql" | "toml" | "yaml" | "yml" | "service" | "sh" | "html" | "css")
        );
        if !code {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.is_empty() {
                words.insert(word.to_owned());
            }
        }
    }
    let mut missing = Vec::new();
    for span in backticked(&doc) {
        match classify(&span) {
            Some(Name::Path(p)) => {
                let found = root.join(&p).exists()
                    || rel.iter().any(|f| f == &p || f.ends_with(&format!("/{p}")))
                    || rel
                        .iter()
                        .any(|f| f.contains(&format!("/{p}/")) || f.starts_with(&format!("{p}/")));
                if !found {
                    missing.push(format!("path `{span}`"));
                }
            }
            Some(Name::Code(name)) if !words.contains(&name) => {
                missing.push(format!("name `{span}`"));
            }
            Some(Name::Code(_)) | None => {}
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names things the code does not have:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn architecture_md_is_a_map_not_a_manual() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let lines = doc.lines().count();
    assert!(lines <= 250, "ARCHITECTURE.md has {lines} lines; move detail into module docs");
}
