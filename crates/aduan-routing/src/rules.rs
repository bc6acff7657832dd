//! Keyword rules of the registry: category keywords route to the category's OPD (or to the
//! kecamatan office of the place), OPD keywords to the OPD. Keywords are matched as whole
//! words on the normalised text, a word also matching when its stem does
//! (`perbaikannya` ~ `perbaikan`).

use std::collections::HashMap;

use crate::registry::OpdFile;
use crate::text::{stem, words};

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Category(usize),
    Opd(usize),
}

#[derive(Debug, Clone)]
struct Phrase {
    words: Vec<String>,
    stems: Vec<String>,
    target: Target,
}

/// One keyword found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub keyword: String,
    /// The category code, for category keywords.
    pub category: Option<String>,
    /// The OPD code, or [`crate::registry::ROUTE_TO_KECAMATAN`].
    pub opd: String,
    pub sector: Option<String>,
    /// Words in the keyword: longer phrases say more.
    pub weight: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    phrases: Vec<Phrase>,
    by_first: HashMap<String, Vec<usize>>,
    registry: OpdFile,
}

impl Rules {
    pub fn new(registry: &OpdFile) -> Rules {
        let mut phrases = Vec::new();
        let targets = registry
            .category
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.keywords.iter().map(move |k| (k, Target::Category(i))))
            .chain(
                registry
                    .opd
                    .iter()
                    .enumerate()
                    .flat_map(|(i, o)| o.keywords.iter().map(move |k| (k, Target::Opd(i)))),
            );
        for (k, target) in targets {
            let w = words(k);
            if w.is_empty() {
                continue;
            }
            let stems = w.iter().map(|x| stem(x)).collect();
            phrases.push(Phrase { words: w, stems, target });
        }
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in phrases.iter().enumerate() {
            by_first.entry(p.words[0].clone()).or_default().push(i);
            if p.stems[0] != p.words[0] {
                by_first.entry(p.stems[0].clone()).or_default().push(i);
            }
        }
        Rules { phrases, by_first, registry: registry.clone() }
    }

    /// Every keyword in the text (each once, longest match at a position).
    pub fn hits(&self, text_words: &[String]) -> Vec<Hit> {
        let stems: Vec<String> = text_words.iter().map(|w| stem(w)).collect();
        let mut seen = vec![false; self.phrases.len()];
        let mut out = Vec::new();
        for i in 0..text_words.len() {
            let mut candidates: Vec<usize> = Vec::new();
            for k in [&text_words[i], &stems[i]] {
                if let Some(v) = self.by_first.get(k.as_str()) {
                    candidates.extend(v);
                }
            }
            for p in candidates {
                let phrase = &self.phrases[p];
                if seen[p] || i + phrase.words.len() > text_words.len() {
                    continue;
                }
                let matches = phrase
                    .words
                    .iter()
                    .zip(&phrase.stems)
                    .enumerate()
                    .all(|(j, (w, s))| text_words[i + j] == *w || stems[i + j] == *s);
                if !matches {
                    continue;
                }
                seen[p] = true;
                let weight = phrase.words.len() as f64;
                let keyword = phrase.words.join(" ");
                out.push(match phrase.target {
                    Target::Category(c) => {
                        let cat = &self.registry.category[c];
                        Hit {
                            keyword,
                            category: Some(cat.code.clone()),
                            opd: cat.opd.clone(),
                            sector: cat.sector.clone(),
                            weight,
                        }
                    }
                    Target::Opd(o) => Hit {
                        keyword,
                        category: None,
                        opd: self.registry.opd[o].code.clone(),
                        sector: None,
                        weight,
                    },
                });
            }
        }
        out
    }
}
