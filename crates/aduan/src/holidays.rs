//! The holiday calendar file (`[sla] calendar_file`, default `config/libur.toml`).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::config::Problem;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    libur: Vec<Day>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Day {
    date: String,
    name: String,
    kind: String,
}

/// The days off listed in the file.
pub fn load(path: &Path) -> Result<BTreeSet<NaiveDate>, Vec<Problem>> {
    let key = "sla.calendar_file";
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem { path: key.into(), message: format!("{}: {e}", path.display()) }]
    })?;
    let file: File = toml::from_str(&text).map_err(|e| {
        vec![Problem { path: format!("{key} ({})", path.display()), message: e.message().into() }]
    })?;
    let mut days = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, d) in file.libur.iter().enumerate() {
        let at = format!("{}: libur[{i}]", path.display());
        match d.date.parse::<NaiveDate>() {
            Ok(date) => {
                if !days.insert(date) {
                    problems.push(Problem {
                        path: format!("{at}.date"),
                        message: format!("{date} appears twice"),
                    });
                }
            }
            Err(_) => problems.push(Problem {
                path: format!("{at}.date"),
                message: format!("{:?} is not a date like 2026-08-17", d.date),
            }),
        }
        if d.name.trim().is_empty() {
            problems
                .push(Problem { path: format!("{at}.name"), message: "must not be empty".into() });
        }
        if !matches!(d.kind.as_str(), "libur_nasional" | "cuti_bersama") {
            problems.push(Problem {
                path: format!("{at}.kind"),
                message: format!("{:?} is not libur_nasional or cuti_bersama", d.kind),
            });
        }
    }
    if problems.is_empty() { Ok(days) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_2026_calendar() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/libur.toml");
        let days = load(&path).unwrap();
        // 17 libur nasional (Idulfitri is two days) and 8 cuti bersama.
        assert_eq!(days.len(), 25);
        assert!(days.contains(&"2026-08-17".parse().unwrap()));
        assert!(days.contains(&"2026-03-23".parse().unwrap()));
    }

    #[test]
    fn problems_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("libur.toml");
        std::fs::write(
            &f,
            "[[libur]]\ndate = \"2026-13-01\"\nname = \"x\"\nkind = \"libur_nasional\"\n\
             [[libur]]\ndate = \"2026-01-01\"\nname = \"\"\nkind = \"cuti\"\n",
        )
        .unwrap();
        let p: Vec<String> = load(&f).unwrap_err().iter().map(ToString::to_string).collect();
        assert!(
            p[0].ends_with("libur[0].date: \"2026-13-01\" is not a date like 2026-08-17"),
            "{p:?}"
        );
        assert!(p[1].ends_with("libur[1].name: must not be empty"), "{p:?}");
        assert!(p[2].contains("libur[1].kind"), "{p:?}");
    }
}
