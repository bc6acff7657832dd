//! History import (`aduan routing import`) and the training set of the learned router.
//!
//! - **Labels → OPD codes** ([`map_labels`]): a label is a registry code or an OPD name
//!   (case-insensitive, surrounding spaces ignored), or is mapped by the `--map` file (a
//!   TOML table `"label" = "CODE"`, or a CSV whose first two columns are label and code,
//!   with a header row). Labels that map to nothing are listed with their counts and the
//!   whole import is refused: a half-imported history would teach the router a skewed
//!   picture.
//! - **Training set** ([`training_set`]): imported history (weight 1) plus the operators'
//!   dispositions in this database, weighted by age: `1 + 2 · 0.5^(age_days / 90)`, so a
//!   disposition of today counts 3, one of three months ago 2, and an old one tends to 1.
//!   Dispositions say what this desk does now; history what was done elsewhere and before.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::RoutingError;
use crate::registry::OpdFile;

/// Half-life of the extra weight of a disposition, in days.
pub const DISPOSITION_HALF_LIFE_DAYS: f64 = 90.0;
/// The extra weight of a disposition made now (on top of the 1 every example has).
pub const DISPOSITION_BONUS: f64 = 2.0;

/// Labels the registry and the map don't know, with how many rows carry each (most
/// first).
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownLabels(pub Vec<(String, usize)>);

/// Reads a `--map` file: TOML when the name ends in `.toml`, else CSV (label, code; header
/// row). Every code must be in the registry (when the registry has any).
pub fn parse_map(
    name: &str,
    text: &str,
    registry: &OpdFile,
) -> Result<HashMap<String, String>, RoutingError> {
    let mut map = HashMap::new();
    if name.to_ascii_lowercase().ends_with(".toml") {
        let table: BTreeMap<String, String> =
            toml::from_str(text).map_err(|e| RoutingError::Csv(format!("{name}: {e}")))?;
        for (label, code) in table {
            map.insert(label.trim().to_lowercase(), code.trim().to_owned());
        }
    } else {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        for rec in r.records() {
            let rec = rec.map_err(|e| RoutingError::Csv(format!("{name}: {e}")))?;
            if let (Some(label), Some(code)) = (rec.get(0), rec.get(1))
                && !label.trim().is_empty()
                && !code.trim().is_empty()
            {
                map.insert(label.trim().to_lowercase(), code.trim().to_owned());
            }
        }
    }
    if !registry.opd.is_empty() {
        let mut bad: Vec<&String> =
            map.values().filter(|c| registry.opd(c).is_none()).collect::<Vec<_>>();
        bad.sort();
        bad.dedup();
        if !bad.is_empty() {
            let list: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
            return Err(RoutingError::Eval(format!(
                "{name} maps to codes the OPD registry does not have: {}",
                list.join(", ")
            )));
        }
    }
    Ok(map)
}

/// Maps every row's label to an OPD code; refuses with the unknown labels when any is
/// left.
pub fn map_labels(
    rows: &[(String, String)],
    registry: &OpdFile,
    map: &HashMap<String, String>,
) -> Result<Vec<(String, String)>, UnknownLabels> {
    let mut known: HashMap<String, String> = HashMap::new();
    for o in &registry.opd {
        known.insert(o.code.trim().to_lowercase(), o.code.clone());
        known.insert(o.name.trim().to_lowercase(), o.code.clone());
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    for (text, label) in rows {
        let key = label.trim().to_lowercase();
        match map.get(&key).or_else(|| known.get(&key)) {
            Some(code) => out.push((text.clone(), code.clone())),
            None => *unknown.entry(label.trim().to_owned()).or_default() += 1,
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        let mut list: Vec<(String, usize)> = unknown.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Err(UnknownLabels(list))
    }
}

/// The weight of a disposition made at `at` (see the module docs).
pub fn disposition_weight(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let days = ((now - at).num_seconds() as f64 / 86_400.0).max(0.0);
    1.0 + DISPOSITION_BONUS * 0.5f64.powf(days / DISPOSITION_HALF_LIFE_DAYS)
}

/// Imported history (weight 1) and dated dispositions (weighted by age), as
/// `(texts, labels, weights)`.
pub fn training_set(
    history: Vec<(String, String)>,
    dispositions: Vec<(String, String, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> (Vec<String>, Vec<String>, Vec<f64>) {
    let n = history.len() + dispositions.len();
    let (mut texts, mut labels, mut weights) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (t, l) in history {
        texts.push(t);
        labels.push(l);
        weights.push(1.0);
    }
    for (t, l, at) in dispositions {
        texts.push(t);
        labels.push(l);
        weights.push(disposition_weight(at, now));
    }
    (texts, labels, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Opd;

    fn registry() -> OpdFile {
        let opd = |code: &str, name: &str| Opd {
            code: code.into(),
            name: name.into(),
            emails: vec![],
            head_email: None,
            keywords: vec![],
            kecamatan: None,
            first_response: None,
            resolution: None,
        };
        OpdFile {
            opd: vec![opd("DPU", "Dinas Pekerjaan Umum"), opd("DLH", "Dinas Lingkungan Hidup")],
            ..OpdFile::default()
        }
    }

    #[test]
    fn labels_map_by_code_name_or_map_and_unknown_ones_are_counted() {
        let rows: Vec<(String, String)> = [
            ("a", "dpu"),
            ("b", " Dinas Lingkungan Hidup "),
            ("c", "Infrastruktur"),
            ("d", "Kebersihan"),
            ("e", "Kebersihan"),
        ]
        .iter()
        .map(|(t, l)| (t.to_string(), l.to_string()))
        .collect();
        let err = map_labels(&rows, &registry(), &HashMap::new()).unwrap_err();
        assert_eq!(err.0, vec![("Kebersihan".into(), 2), ("Infrastruktur".into(), 1)]);
        let map = parse_map(
            "m.toml",
            "# sectors\n\"Infrastruktur\" = \"DPU\"\nkebersihan = 'DLH'\n",
            &registry(),
        )
        .unwrap();
        let ok = map_labels(&rows, &registry(), &map).unwrap();
        let codes: Vec<&str> = ok.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(codes, ["DPU", "DLH", "DPU", "DLH", "DLH"]);
        let csv =
            parse_map("m.csv", "label,code\nInfrastruktur,DPU\nKebersihan,DLH\n", &registry())
                .unwrap();
        assert_eq!(csv, map);
        assert!(parse_map("m.csv", "label,code\nX,DINKES\n", &registry()).is_err());
        assert!(parse_map("m.toml", "this is not a pair\n", &registry()).is_err());
    }

    #[test]
    fn newer_dispositions_weigh_more() {
        let now = Utc::now();
        let w = |days: i64| disposition_weight(now - chrono::Duration::days(days), now);
        assert!((w(0) - 3.0).abs() < 1e-9);
        assert!((w(90) - 2.0).abs() < 1e-9);
        assert!(w(30) > w(60) && w(3650) > 1.0 && w(3650) < 1.01);
        let (texts, labels, weights) = training_set(
            vec![("h".into(), "DPU".into())],
            vec![("d".into(), "DLH".into(), now)],
            now,
        );
        assert_eq!((texts.len(), labels[1].as_str()), (2, "DLH"));
        assert_eq!(weights, vec![1.0, 3.0]);
    }
}
