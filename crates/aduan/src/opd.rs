//! The OPD registry file (`[routing] opd_file`, default `config/opd.toml`).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::config::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpdFile {
    #[serde(default)]
    pub opd: Vec<Opd>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opd {
    /// Unique, used in the API (`"opd": "DPU"`).
    pub code: String,
    pub name: String,
    /// Officials who receive routed tickets by email.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Words and phrases that route a complaint here.
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl OpdFile {
    /// A one-line description for `check-config`.
    pub fn summary(&self) -> String {
        let keywords: usize = self.opd.iter().map(|o| o.keywords.len()).sum();
        let emails: usize = self.opd.iter().map(|o| o.emails.len()).sum();
        format!("{} OPDs, {emails} official addresses, {keywords} routing keywords", self.opd.len())
    }

    pub fn codes(&self) -> BTreeSet<String> {
        self.opd.iter().map(|o| o.code.clone()).collect()
    }
}

/// Reads and checks the registry. `Ok(None)` when the file is absent and `required` is false.
pub fn load(path: &Path, required: bool) -> Result<Option<OpdFile>, Vec<Problem>> {
    let key = "routing.opd_file";
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(vec![Problem {
                path: key.into(),
                message: format!("{}: {e}", path.display()),
            }]);
        }
    };
    let file: OpdFile = toml::from_str(&text).map_err(|e| {
        vec![Problem {
            path: format!("{key} ({})", path.display()),
            message: e.message().to_owned(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, o) in file.opd.iter().enumerate() {
        let at = format!("{}: opd[{i}]", path.display());
        let code_ok = !o.code.is_empty()
            && o.code.len() <= 50
            && o.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !code_ok {
            problems.push(Problem {
                path: format!("{at}.code"),
                message: format!("{:?} must be letters, digits, - or _", o.code),
            });
        }
        if !seen.insert(o.code.clone()) {
            problems.push(Problem {
                path: format!("{at}.code"),
                message: format!("{} appears twice", o.code),
            });
        }
        if o.name.trim().is_empty() {
            problems
                .push(Problem { path: format!("{at}.name"), message: "must not be empty".into() });
        }
        for (j, k) in o.keywords.iter().enumerate() {
            if k.trim().is_empty() {
                problems.push(Problem {
                    path: format!("{at}.keywords[{j}]"),
                    message: "must not be empty".into(),
                });
            }
        }
        for (j, e) in o.emails.iter().enumerate() {
            if aduan_core::Identity::email(e).is_err() {
                problems.push(Problem {
                    path: format!("{at}.emails[{j}]"),
                    message: format!("{e:?} is not an email address"),
                });
            }
        }
    }
    if problems.is_empty() { Ok(Some(file)) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_registry_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/opd.toml");
        let file = load(&path, true).unwrap().unwrap();
        assert!(file.codes().contains("DPU"));
        assert!(file.opd.iter().all(|o| !o.keywords.is_empty()));
    }

    #[test]
    fn problems_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opd.toml");
        std::fs::write(
            &path,
            "[[opd]]\ncode = \"DPU\"\nname = \"\"\nemails = [\"x\"]\n[[opd]]\ncode = \"DPU\"\nname = \"Lagi\"\n",
        )
        .unwrap();
        let problems = load(&path, true).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text[0].ends_with("opd[0].name: must not be empty"), "{text:?}");
        assert!(text[1].contains("opd[0].emails[0]"), "{text:?}");
        assert!(text[2].contains("opd[1].code: DPU appears twice"), "{text:?}");
        assert_eq!(load(&dir.path().join("none.toml"), false).unwrap().map(|f| f.opd.len()), None);
        assert!(load(&dir.path().join("none.toml"), true).is_err());
    }
}
