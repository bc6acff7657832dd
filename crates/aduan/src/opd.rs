//! The OPD registry file (`[routing] opd_file`, default `config/opd.toml`): read and
//! checked here; its types live in `aduan_routing::registry`.

use std::collections::BTreeSet;
use std::path::Path;

pub use aduan_routing::registry::OpdFile;
use aduan_routing::registry::ROUTE_TO_KECAMATAN;

use crate::config::Problem;

/// Reads and checks the registry. `Ok(None)` when the file is absent and `required` is false.
/// `kabupaten` is the gazetteer kecamatan offices are checked against.
pub fn load(path: &Path, required: bool, kabupaten: &str) -> Result<Option<OpdFile>, Vec<Problem>> {
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
    let problems = check(&file, &path.display().to_string(), kabupaten);
    if problems.is_empty() { Ok(Some(file)) } else { Err(problems) }
}

fn budget(problems: &mut Vec<Problem>, at: &str, value: Option<&String>) {
    if let Some(v) = value
        && let Err(e) = v.parse::<aduan_core::Budget>()
    {
        problems.push(Problem { path: at.to_owned(), message: e.to_string() });
    }
}

fn keywords(problems: &mut Vec<Problem>, at: &str, list: &[String]) {
    if list.is_empty() {
        problems.push(Problem {
            path: format!("{at}.keywords"),
            message: "must list at least one keyword".into(),
        });
    }
    for (j, k) in list.iter().enumerate() {
        if aduan_routing::text::words(k).is_empty() {
            problems.push(Problem {
                path: format!("{at}.keywords[{j}]"),
                message: "must contain a word".into(),
            });
        }
    }
}

/// Every problem of a registry: codes (format, duplicates), names, emails, keywords,
/// deadlines, kecamatan offices, and categories naming unknown OPDs.
pub fn check(file: &OpdFile, source: &str, kabupaten: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let gazetteer = aduan_routing::Gazetteer::for_kabupaten(kabupaten);
    let mut seen = BTreeSet::new();
    for (i, o) in file.opd.iter().enumerate() {
        let at = format!("{source}: opd[{i}]");
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
        keywords(&mut problems, &at, &o.keywords);
        for (j, e) in o.emails.iter().chain(&o.head_email).enumerate() {
            if aduan_core::Identity::email(e).is_err() {
                let field = if j < o.emails.len() {
                    format!("emails[{j}]")
                } else {
                    "head_email".to_owned()
                };
                problems.push(Problem {
                    path: format!("{at}.{field}"),
                    message: format!("{e:?} is not an email address"),
                });
            }
        }
        budget(&mut problems, &format!("{at}.first_response"), o.first_response.as_ref());
        budget(&mut problems, &format!("{at}.resolution"), o.resolution.as_ref());
        if let (Some(k), Some(g)) = (&o.kecamatan, &gazetteer)
            && g.kecamatan(k).is_none()
        {
            problems.push(Problem {
                path: format!("{at}.kecamatan"),
                message: format!("{k:?} is not a kecamatan of {kabupaten}"),
            });
        }
    }
    let mut cats = BTreeSet::new();
    let has_offices = file.opd.iter().any(|o| o.kecamatan.is_some());
    for (i, c) in file.category.iter().enumerate() {
        let at = format!("{source}: category[{i}]");
        if c.code.is_empty() || !c.code.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
            problems.push(Problem {
                path: format!("{at}.code"),
                message: format!("{:?} must be letters, digits and -", c.code),
            });
        }
        if !cats.insert(c.code.clone()) {
            problems.push(Problem {
                path: format!("{at}.code"),
                message: format!("{} appears twice", c.code),
            });
        }
        if c.opd == ROUTE_TO_KECAMATAN {
            if !has_offices {
                problems.push(Problem {
                    path: format!("{at}.opd"),
                    message: "routes to the kecamatan office but no [[opd]] has a kecamatan".into(),
                });
            }
        } else if !seen.contains(&c.opd) {
            problems.push(Problem {
                path: format!("{at}.opd"),
                message: format!("{} is not an OPD of this file", c.opd),
            });
        }
        keywords(&mut problems, &at, &c.keywords);
        budget(&mut problems, &format!("{at}.first_response"), c.first_response.as_ref());
        budget(&mut problems, &format!("{at}.resolution"), c.resolution.as_ref());
    }
    problems
}

/// The Open311 services of a registry: its categories (grouped by sector), or, when it has
/// none, one service per OPD (code and name of the OPD, a description from its keywords);
/// the flag says which (`aduan_web::WebConfig::services_are_opds`).
pub fn open311_services(file: &OpdFile) -> (Vec<aduan_web::Open311Service>, bool) {
    if file.category.is_empty() {
        let services = file
            .opd
            .iter()
            .map(|o| aduan_web::Open311Service {
                service_code: o.code.clone(),
                service_name: o.name.clone(),
                description: aduan_core::texts::open311_opd_service_description(
                    &o.name,
                    &o.keywords,
                ),
                group: aduan_core::texts::OPEN311_OPD_GROUP.to_owned(),
                keywords: o.keywords.clone(),
            })
            .collect();
        return (services, true);
    }
    let services = file
        .category
        .iter()
        .map(|c| aduan_web::Open311Service {
            service_code: c.code.clone(),
            service_name: c.name.clone(),
            description: c.name.clone(),
            group: c.sector.clone().unwrap_or_else(|| "Lainnya".into()),
            keywords: c.keywords.clone(),
        })
        .collect();
    (services, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18.5: a registry as the contract shows it (no categories) has one Open311
    /// service per OPD; one with categories keeps its categories.
    #[test]
    fn open311_services_without_categories_are_the_opds() {
        let file: OpdFile = toml::from_str(
            "[[opd]]\ncode = \"DPU\"\nname = \"Dinas Pekerjaan Umum\"\n\
             emails = [\"kepala.dpu@example.go.id\"]\n\
             keywords = [\"jalan rusak\", \"jembatan\"]\n\
             [[opd]]\ncode = \"DLH\"\nname = \"Dinas Lingkungan Hidup\"\nkeywords = [\"sampah\"]\n",
        )
        .unwrap();
        let (services, by_opd) = open311_services(&file);
        assert!(by_opd);
        let got: Vec<(&str, &str, &str)> = services
            .iter()
            .map(|s| (s.service_code.as_str(), s.service_name.as_str(), s.description.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "DPU",
                    "Dinas Pekerjaan Umum",
                    "Aduan untuk Dinas Pekerjaan Umum, misalnya: jalan rusak, jembatan."
                ),
                (
                    "DLH",
                    "Dinas Lingkungan Hidup",
                    "Aduan untuk Dinas Lingkungan Hidup, misalnya: sampah."
                ),
            ]
        );
        assert_eq!(services[0].keywords, ["jalan rusak", "jembatan"]);

        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/opd.toml");
        let shipped = load(&path, true, "33.02").unwrap().unwrap();
        let (services, by_opd) = open311_services(&shipped);
        assert!(!by_opd);
        assert_eq!(services.len(), shipped.category.len());
    }

    #[test]
    fn the_shipped_registry_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/opd.toml");
        let file = load(&path, true, "33.02").unwrap().unwrap();
        assert!(file.codes().contains("DPU"));
        assert!(file.codes().contains("PDAM"));
        assert_eq!(file.opd.iter().filter(|o| o.kecamatan.is_some()).count(), 27);
        assert!(file.opd.iter().all(|o| !o.keywords.is_empty()));
        assert!(file.category.len() >= 30);
        assert_eq!(
            file.kecamatan_office("Purwokerto Selatan").map(|o| o.code.as_str()),
            Some("KEC-PURWOKERTO-SELATAN")
        );
    }

    #[test]
    fn problems_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opd.toml");
        std::fs::write(
            &path,
            "[[opd]]\ncode = \"DPU\"\nname = \"\"\nemails = [\"x\"]\nkeywords = [\"jalan\"]\n\
             [[opd]]\ncode = \"DPU\"\nname = \"Lagi\"\nkeywords = []\nresolution = \"5w\"\n\
             [[opd]]\ncode = \"KEC-X\"\nname = \"Kecamatan X\"\nkecamatan = \"Atlantis\"\nkeywords = [\"x\"]\n\
             [[category]]\ncode = \"jalan\"\nname = \"Jalan\"\nopd = \"DPUPR\"\nkeywords = [\"  \"]\n",
        )
        .unwrap();
        let problems = load(&path, true, "33.02").unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let expect = [
            "opd[0].name: must not be empty",
            "opd[0].emails[0]: \"x\" is not an email address",
            "opd[1].code: DPU appears twice",
            "opd[1].keywords: must list at least one keyword",
            "opd[1].resolution: \"5w\" is not a deadline",
            "opd[2].kecamatan: \"Atlantis\" is not a kecamatan of 33.02",
            "category[0].opd: DPUPR is not an OPD of this file",
            "category[0].keywords[0]: must contain a word",
        ];
        assert_eq!(text.len(), expect.len(), "{text:#?}");
        for (got, want) in text.iter().zip(expect) {
            assert!(got.contains(want), "{got} lacks {want}");
        }
        assert_eq!(
            load(&dir.path().join("none.toml"), false, "33.02").unwrap().map(|f| f.opd.len()),
            None
        );
        assert!(load(&dir.path().join("none.toml"), true, "33.02").is_err());
    }
}
