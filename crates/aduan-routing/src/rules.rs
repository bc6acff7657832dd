//! Keyword rules of the registry: category keywords route to the category's OPD (or to the
//! kecamatan office of the place), OPD keywords to the OPD. An OPD's name (`Dinas
//! Kesehatan`) and its code (`DINKES`, when it has three letters or more) are keywords of
//! the OPD too, unless its list has them already (kecamatan offices excepted: their name is
//! a place).
//!
//! Keywords and text are compared word by word on the normalised text ([`words`]: slang
//! and abbreviations expanded, `jln` → `jalan`), a word also matching when its stem does
//! ([`crate::stemmer::stem`]: `baunya` ~ `bau`, `berlubang` ~ `lubang`); a keyword is
//! stemmed once, when the rules are built.
//!
//! A keyword of several words (a phrase) matches when its words occur in order, each at
//! most [`WINDOW`] words after the previous one: `jln di depan balai desa sdh lama
//! berlubang` hits `jalan berlubang`. The weight of a hit is its number of words when they
//! are adjacent, and [`WINDOWED`] of that when words lie between: an exact phrase says
//! more than words that merely occur near each other.

use std::collections::HashMap;

use crate::registry::OpdFile;
use crate::stemmer::stem;
use crate::text::words;

/// Most words between two consecutive words of a phrase in a windowed match.
pub const WINDOW: usize = 6;

/// The weight of a windowed match, as a share of an exact one.
pub const WINDOWED: f64 = 0.75;

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

fn phrase(keyword: &str, target: Target) -> Option<Phrase> {
    let words = words(keyword);
    if words.is_empty() {
        return None;
    }
    let stems = words.iter().map(|x| stem(x)).collect();
    Some(Phrase { words, stems, target })
}

impl Phrase {
    fn word_matches(&self, j: usize, word: &str, stem: &str) -> bool {
        self.words[j] == word || self.stems[j] == stem
    }

    /// Whether the phrase starts at text position `i`: `Some(true)` for its words side by
    /// side, `Some(false)` for its words in order within [`WINDOW`], `None` otherwise.
    fn match_at(&self, words: &[String], stems: &[String], i: usize) -> Option<bool> {
        if !self.word_matches(0, &words[i], &stems[i]) {
            return None;
        }
        let n = self.words.len();
        if i + n <= words.len()
            && (1..n).all(|j| self.word_matches(j, &words[i + j], &stems[i + j]))
        {
            return Some(true);
        }
        // Windowed: each next word within WINDOW words of the previous one (the earliest).
        let mut at = i;
        for j in 1..n {
            let last = (at + WINDOW + 1).min(words.len() - 1);
            at = (at + 1..=last).find(|&k| self.word_matches(j, &words[k], &stems[k]))?;
        }
        Some(false)
    }
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
            if let Some(p) = phrase(k, target) {
                phrases.push(p);
            }
        }
        // The OPD's own name and code, unless its keywords have them. Not for a kecamatan
        // office: "Kecamatan Kembaran" in a complaint names the place, not the office.
        for (i, o) in registry.opd.iter().enumerate().filter(|(_, o)| o.kecamatan.is_none()) {
            let code_ok = o.code.chars().filter(char::is_ascii_alphabetic).count() >= 3;
            let names = [Some(o.name.as_str()), code_ok.then_some(o.code.as_str())];
            for name in names.into_iter().flatten() {
                let Some(p) = phrase(name, Target::Opd(i)) else { continue };
                let known = phrases.iter().any(|q| q.target == p.target && q.stems == p.stems);
                if !known {
                    phrases.push(p);
                }
            }
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

    /// Every keyword in the text, each once, in the order of the text: where it matches
    /// exactly if it does anywhere, else where it first matches within the window.
    pub fn hits(&self, text_words: &[String]) -> Vec<Hit> {
        let stems: Vec<String> = text_words.iter().map(|w| stem(w)).collect();
        // Per phrase: (position, exact).
        let mut best: Vec<Option<(usize, bool)>> = vec![None; self.phrases.len()];
        for i in 0..text_words.len() {
            let mut candidates: Vec<usize> = Vec::new();
            for k in [&text_words[i], &stems[i]] {
                if let Some(v) = self.by_first.get(k.as_str()) {
                    candidates.extend(v);
                }
            }
            for p in candidates {
                if best[p].is_some_and(|(_, exact)| exact) {
                    continue;
                }
                let Some(exact) = self.phrases[p].match_at(text_words, &stems, i) else {
                    continue;
                };
                if best[p].is_none() || exact {
                    best[p] = Some((i, exact));
                }
            }
        }
        let mut found: Vec<(usize, usize, bool)> =
            best.iter().enumerate().filter_map(|(p, b)| b.map(|(i, e)| (i, p, e))).collect();
        found.sort_unstable();
        let mut out = Vec::new();
        for (_, p, exact) in found {
            let phrase = &self.phrases[p];
            let n = phrase.words.len() as f64;
            let weight = if exact { n } else { n * WINDOWED };
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
        out
    }
}
