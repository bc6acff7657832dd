//! Place names in complaint texts, against the official gazetteer (Kepmendagri codes and
//! names of every kecamatan and desa/kelurahan; `data/wilayah`, see its SOURCE.txt).
//!
//! A name counts when it is written out exactly (`Karangklesem`, `karang klesem`), or after
//! a cue word (`desa`, `ds.`, `kelurahan`, `kec.`, `kecamatan`) within a small edit
//! distance (`ds karangklesm`). Bare names must be at least five letters and not ordinary
//! words (`tambak`, `pasir`). A desa whose name exists in several kecamatan is resolved by a
//! kecamatan named in the same text, else left ambiguous.

use std::collections::HashMap;

use serde::Serialize;

use crate::text::{edit_distance, words};

const DESA_CSV: &str = include_str!("../data/wilayah/desa_kelurahan.csv");
const KECAMATAN_CSV: &str = include_str!("../data/wilayah/kecamatan.csv");

/// Names that are also common words: only recognised after a cue word.
const COMMON: &[&str] = &[
    "tambak",
    "pasir",
    "sumbang",
    "kembaran",
    "karang",
    "gunung",
    "sawangan",
    "banyumas",
    "pageralang",
    "kebumen",
    "kalisari",
    "pekuncen",
    "karanganyar",
    "sidamulya",
    "kedungrandu",
    "linggasari",
    "tanjung",
    "bantar",
    "sokawera",
    "pandak",
    "dukuh",
    "kober",
    "kranji",
    "gandasuli",
    "kaliori",
    "banjarsari",
];

const DESA_CUES: &[&str] = &["desa", "kelurahan", "kalurahan", "dusun", "grumbul"];
const KEC_CUES: &[&str] = &["kecamatan", "camat"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desa {
    pub code: String,
    pub name: String,
    pub kecamatan: String,
    /// `desa` or `kelurahan`.
    pub kind: String,
}

/// What a text says about where the complaint is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The desa/kelurahan, when it is known.
    pub desa: Option<String>,
    /// The kecamatan, named or implied by an unambiguous desa.
    pub kecamatan: Option<String>,
    /// Desa named in the text whose kecamatan could not be decided.
    pub ambiguous: Vec<String>,
}

impl Place {
    pub fn is_empty(&self) -> bool {
        self.desa.is_none() && self.kecamatan.is_none() && self.ambiguous.is_empty()
    }

    /// `"Desa Karangklesem, Kec. Purwokerto Selatan"`.
    pub fn label(&self) -> Option<String> {
        match (&self.desa, &self.kecamatan) {
            (Some(d), Some(k)) => Some(format!("{d}, Kec. {k}")),
            (Some(d), None) => Some(d.clone()),
            (None, Some(k)) => Some(format!("Kec. {k}")),
            (None, None) => None,
        }
    }
}

/// The places of one kabupaten.
#[derive(Debug, Clone)]
pub struct Gazetteer {
    kecamatan: Vec<String>,
    desa: Vec<Desa>,
    /// Name without spaces (lower case) → kecamatan indexes.
    kec_index: HashMap<String, Vec<usize>>,
    /// Name without spaces (lower case) → desa indexes.
    desa_index: HashMap<String, Vec<usize>>,
}

fn key(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).flat_map(|c| c.to_lowercase()).collect()
}

impl Gazetteer {
    /// The kabupaten with code `kode` (`33.02` Banyumas, `33.03` Purbalingga). `None` when
    /// the bundled gazetteer does not have it.
    pub fn for_kabupaten(kode: &str) -> Option<Gazetteer> {
        let mut kecamatan = Vec::new();
        for line in KECAMATAN_CSV.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            if cols.len() >= 3 && cols[0].starts_with(&format!("{kode}.")) {
                kecamatan.push(cols[2].trim().to_owned());
            }
        }
        if kecamatan.is_empty() {
            return None;
        }
        let mut desa = Vec::new();
        for line in DESA_CSV.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            if cols.len() >= 7 && cols[1] == kode {
                desa.push(Desa {
                    code: cols[0].to_owned(),
                    kecamatan: cols[4].trim().to_owned(),
                    name: cols[5].trim().to_owned(),
                    kind: cols[6].trim().to_owned(),
                });
            }
        }
        let mut kec_index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, k) in kecamatan.iter().enumerate() {
            kec_index.entry(key(k)).or_default().push(i);
        }
        let mut desa_index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in desa.iter().enumerate() {
            desa_index.entry(key(&d.name)).or_default().push(i);
        }
        Some(Gazetteer { kecamatan, desa, kec_index, desa_index })
    }

    pub fn kecamatan_names(&self) -> &[String] {
        &self.kecamatan
    }

    pub fn desa(&self) -> &[Desa] {
        &self.desa
    }

    /// The kecamatan of this name (any case, spaces ignored).
    pub fn kecamatan(&self, name: &str) -> Option<&str> {
        self.kec_index.get(&key(name)).and_then(|v| v.first()).map(|&i| self.kecamatan[i].as_str())
    }

    fn fuzzy<'a>(
        index: &'a HashMap<String, Vec<usize>>,
        candidate: &str,
    ) -> Option<&'a Vec<usize>> {
        if let Some(v) = index.get(candidate) {
            return Some(v);
        }
        let limit = match candidate.len() {
            0..=4 => return None,
            5..=8 => 1,
            _ => 2,
        };
        let mut best: Option<(usize, &Vec<usize>)> = None;
        for (name, ids) in index {
            let d = edit_distance(candidate, name, limit);
            if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, ids));
            }
        }
        best.map(|(_, ids)| ids)
    }

    /// The place a text names.
    pub fn find(&self, text: &str) -> Place {
        let w = words(text);
        let mut kec_hits: Vec<usize> = Vec::new();
        let mut desa_hits: Vec<Vec<usize>> = Vec::new();
        let mut i = 0;
        while i < w.len() {
            let cue_desa = i > 0 && DESA_CUES.contains(&w[i - 1].as_str());
            let cue_kec = i > 0 && KEC_CUES.contains(&w[i - 1].as_str());
            let mut matched = 0;
            // Longest first: "purwokerto selatan" before "purwokerto".
            for len in (1..=3).rev() {
                if i + len > w.len() {
                    continue;
                }
                let cand: String = w[i..i + len].concat();
                let bare_ok = cand.len() >= 5 && !COMMON.contains(&cand.as_str());
                let kec = if cue_kec {
                    Gazetteer::fuzzy(&self.kec_index, &cand)
                } else if bare_ok || cue_desa {
                    self.kec_index.get(&cand)
                } else {
                    None
                };
                let desa = if cue_desa {
                    Gazetteer::fuzzy(&self.desa_index, &cand)
                } else if bare_ok || cue_kec {
                    self.desa_index.get(&cand)
                } else {
                    None
                };
                // After "kecamatan" a kecamatan wins; otherwise a desa does, and a bare
                // name that is both is taken as the kecamatan too.
                match (kec, desa) {
                    (Some(k), _) if cue_kec => kec_hits.extend(k),
                    (Some(k), Some(d)) => {
                        kec_hits.extend(k);
                        desa_hits.push(d.clone());
                    }
                    (None, Some(d)) => desa_hits.push(d.clone()),
                    (Some(k), None) => kec_hits.extend(k),
                    (None, None) => continue,
                }
                matched = len;
                break;
            }
            i += matched.max(1);
        }
        let kecs: Vec<&str> = kec_hits.iter().map(|&k| self.kecamatan[k].as_str()).collect();
        let mut place =
            Place { kecamatan: kecs.first().map(|k| (*k).to_owned()), ..Place::default() };
        for ids in desa_hits {
            let in_named: Vec<usize> = ids
                .iter()
                .copied()
                .filter(|&d| kecs.contains(&self.desa[d].kecamatan.as_str()))
                .collect();
            let pick = match (in_named.as_slice(), ids.as_slice()) {
                ([one], _) | ([], [one]) => Some(*one),
                _ => None,
            };
            match pick {
                Some(d) if place.desa.is_none() => {
                    let desa = &self.desa[d];
                    place.desa = Some(desa.name.clone());
                    if place.kecamatan.as_deref() != Some(desa.kecamatan.as_str()) {
                        // The desa decides: "Desa Karangklesem, Purwokerto Selatan".
                        place.kecamatan = Some(desa.kecamatan.clone());
                    }
                }
                Some(_) => {}
                None => {
                    let name = self.desa[ids[0]].name.clone();
                    if !place.ambiguous.contains(&name) {
                        place.ambiguous.push(name);
                    }
                }
            }
        }
        if place.desa.is_some() {
            place.ambiguous.clear();
        }
        place
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(text: &str, want: Expect) {
        let g = Gazetteer::for_kabupaten("33.02").unwrap();
        let p = g.find(text);
        want.assert_eq(&format!(
            "desa={:?} kecamatan={:?} ambiguous={:?}",
            p.desa, p.kecamatan, p.ambiguous
        ));
    }

    #[test]
    fn the_bundled_gazetteer_has_every_banyumas_place() {
        let g = Gazetteer::for_kabupaten("33.02").unwrap();
        assert_eq!(g.kecamatan_names().len(), 27);
        assert_eq!(g.desa().len(), 331);
        assert_eq!(Gazetteer::for_kabupaten("33.03").unwrap().kecamatan_names().len(), 18);
        assert!(Gazetteer::for_kabupaten("99.99").is_none());
    }

    #[test]
    fn places_in_complaints() {
        check(
            "Jalan berlubang di Desa Kedungwringin Kec. Jatilawang",
            expect![[r#"desa=Some("Kedungwringin") kecamatan=Some("Jatilawang") ambiguous=[]"#]],
        );
        // Two kecamatan have a Karangklesem; the kecamatan named decides.
        check(
            "sampah numpuk di ds karangklesem kec purwokerto selatan",
            expect![[
                r#"desa=Some("Karangklesem") kecamatan=Some("Purwokerto Selatan") ambiguous=[]"#
            ]],
        );
        check(
            "Jalan berlubang di Desa Karangklesem",
            expect![[r#"desa=None kecamatan=None ambiguous=["Karangklesem"]"#]],
        );
        // Misspelled after a cue word.
        check(
            "lampu pju mati di desa kedungwringn, kecamatan jatilwang",
            expect![[r#"desa=Some("Kedungwringin") kecamatan=Some("Jatilawang") ambiguous=[]"#]],
        );
        check(
            "banjir di sokaraja kulon",
            expect![[r#"desa=Some("Sokaraja Kulon") kecamatan=Some("Sokaraja") ambiguous=[]"#]],
        );
        check("ikan di tambak mati semua", expect![[r#"desa=None kecamatan=None ambiguous=[]"#]]);
    }
}
