//! The routing decision: place, rules and the learned model combined.
//!
//! 1. The text is normalised and the place looked up in the gazetteer.
//! 2. Keyword rules score OPDs: each keyword found adds its length in words to its OPD (a
//!    category routed to `kecamatan` adds to the office of the place's kecamatan). The rule
//!    probability of an OPD is its squared score over the sum of squares plus one: a lone
//!    word gives 0.5 and does not route alone; one clear phrase ("jalan rusak", 2) gives
//!    0.8; keywords that agree reinforce each other and a stray word of another OPD
//!    weighs little.
//! 3. The learned model (once trained on enough operator dispositions) gives calibrated
//!    probabilities; the two are mixed with `learned_weight`.
//! 4. At or above `threshold` the ticket goes to the best OPD; below, it stays in triage
//!    with the top three as suggestions for the operator.
//! 5. A lone keyword routes (`lone_keyword_routes`, on by default): when every rule hit
//!    points at one and the same OPD and the learned model does not name another OPD with
//!    [`MODEL_DISAGREES`] or more as its best, the ticket goes to that OPD below the
//!    threshold too (`sampah numpuk … baunya` → DLH on `sampah` alone). Two OPDs hit, or a
//!    kecamatan category without a place, keep it in triage.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::gazetteer::{Gazetteer, Place};
use crate::model::{Doc, Model};
use crate::registry::{OpdFile, ROUTE_TO_KECAMATAN};
use crate::rules::{Hit, Rules};
use crate::text::{features_of, words};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouterConfig {
    /// Least confidence to route without an operator.
    pub threshold: f64,
    /// Share of the learned model in the combined score once it is trained.
    pub learned_weight: f64,
    /// Route on keywords that all point at one OPD even below `threshold`, unless the
    /// learned model disagrees (`[routing] lone_keyword_routes`).
    pub lone_keyword_routes: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { threshold: 0.6, learned_weight: 0.5, lone_keyword_routes: true }
    }
}

/// The learned model's probability for another OPD at which it overrules a lone keyword.
pub const MODEL_DISAGREES: f64 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub opd: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The OPD to dispose to; `None` leaves the ticket in triage.
    pub opd: Option<String>,
    pub category: Option<String>,
    pub sector: Option<String>,
    pub place: Place,
    pub confidence: f64,
    /// The best three OPDs, best first.
    pub suggestions: Vec<Suggestion>,
    /// The keywords that matched.
    pub keywords: Vec<String>,
    /// Routed below the threshold because every keyword pointed at this one OPD.
    pub lone_keyword: bool,
}

impl Decision {
    /// One line for the audit log: `kategori jalan-rusak; tempat …; keyakinan 0.67; saran DPU
    /// 0.67, DLH 0.10`.
    pub fn note(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.category {
            parts.push(format!("kategori {c}"));
        }
        if let Some(p) = self.place.label() {
            parts.push(format!("tempat {p}"));
        }
        parts.push(format!("keyakinan {:.2}", self.confidence));
        if self.lone_keyword {
            parts.push("kata kunci satu OPD".to_owned());
        }
        if !self.suggestions.is_empty() {
            let s: Vec<String> =
                self.suggestions.iter().map(|s| format!("{} {:.2}", s.opd, s.score)).collect();
            parts.push(format!("saran {}", s.join(", ")));
        }
        parts.join("; ")
    }
}

#[derive(Clone)]
pub struct Router {
    registry: Arc<OpdFile>,
    gazetteer: Option<Arc<Gazetteer>>,
    rules: Arc<Rules>,
    model: Option<Arc<Model>>,
    cfg: RouterConfig,
}

impl Router {
    pub fn new(registry: OpdFile, gazetteer: Option<Gazetteer>, cfg: RouterConfig) -> Router {
        Router {
            rules: Arc::new(Rules::new(&registry)),
            registry: Arc::new(registry),
            gazetteer: gazetteer.map(Arc::new),
            model: None,
            cfg,
        }
    }

    pub fn registry(&self) -> &OpdFile {
        &self.registry
    }

    pub fn config(&self) -> RouterConfig {
        self.cfg
    }

    /// This router with a (re)trained model.
    pub fn with_model(&self, model: Option<Model>) -> Router {
        Router { model: model.map(Arc::new), ..self.clone() }
    }

    pub fn model(&self) -> Option<&Model> {
        self.model.as_deref()
    }

    pub fn place(&self, text: &str) -> Place {
        self.gazetteer.as_ref().map(|g| g.find(text)).unwrap_or_default()
    }

    /// The OPD a rule hit points at, given the place.
    fn target(&self, hit: &Hit, place: &Place) -> Option<String> {
        if hit.opd == ROUTE_TO_KECAMATAN {
            let kec = place.kecamatan.as_deref()?;
            Some(self.registry.kecamatan_office(kec)?.code.clone())
        } else {
            Some(hit.opd.clone())
        }
    }

    /// What the learned model reads: the features text and the rule and place tokens.
    pub fn doc(&self, text: &str) -> Doc {
        let w = words(text);
        let hits = self.rules.hits(&w);
        let place = self.place(text);
        self.doc_of(&w, &hits, &place)
    }

    fn doc_of(&self, words: &[String], hits: &[Hit], place: &Place) -> Doc {
        let mut rule_tokens = Vec::new();
        for h in hits {
            if let Some(c) = &h.category {
                rule_tokens.push(format!("rc:{c}"));
            }
            rule_tokens.push(format!("ro:{}", h.opd));
            if let Some(s) = &h.sector {
                rule_tokens.push(format!("rs:{}", s.to_lowercase()));
            }
        }
        if let Some(k) = &place.kecamatan {
            rule_tokens.push(format!("pk:{}", k.to_lowercase()));
        }
        Doc { text: features_of(words), rule_tokens, raw: words.join(" ") }
    }

    pub fn route(&self, text: &str) -> Decision {
        let w = words(text);
        let hits = self.rules.hits(&w);
        let place = self.place(text);
        let mut rule: BTreeMap<String, f64> = BTreeMap::new();
        // Every OPD the hits point at; `None` for a kecamatan category without a place.
        let mut pointed: Vec<Option<String>> = Vec::new();
        for h in &hits {
            let target = self.target(h, &place);
            if let Some(opd) = &target {
                *rule.entry(opd.clone()).or_default() += h.weight;
            }
            if !pointed.contains(&target) {
                pointed.push(target);
            }
        }
        let total: f64 = rule.values().map(|v| v * v).sum::<f64>() + 1.0;
        let mut combined: BTreeMap<String, f64> =
            rule.iter().map(|(k, v)| (k.clone(), v * v / total)).collect();
        // The model's best label and probability.
        let mut model_top: Option<(String, f64)> = None;
        if let Some(model) = &self.model {
            let lw = self.cfg.learned_weight.clamp(0.0, 1.0);
            for v in combined.values_mut() {
                *v *= 1.0 - lw;
            }
            for s in model.predict(&self.doc_of(&w, &hits, &place)) {
                if model_top.as_ref().is_none_or(|(_, p)| s.p > *p) {
                    model_top = Some((s.label.clone(), s.p));
                }
                *combined.entry(s.label).or_default() += lw * s.p;
            }
        }
        let mut ranked: Vec<(String, f64)> = combined.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let confidence = ranked.first().map_or(0.0, |r| r.1);
        let mut opd = ranked.first().filter(|r| r.1 >= self.cfg.threshold).map(|r| r.0.clone());
        let mut lone_keyword = false;
        if opd.is_none()
            && self.cfg.lone_keyword_routes
            && let [Some(only)] = pointed.as_slice()
            && !model_top.as_ref().is_some_and(|(m, p)| m != only && *p >= MODEL_DISAGREES)
        {
            opd = Some(only.clone());
            lone_keyword = true;
        }
        // The category: the heaviest category keyword that points at the chosen OPD, else
        // at the best suggestion.
        let wanted = opd.clone().or_else(|| ranked.first().map(|r| r.0.clone()));
        let mut cats: BTreeMap<String, f64> = BTreeMap::new();
        for h in &hits {
            if let Some(c) = &h.category
                && self.target(h, &place) == wanted
            {
                *cats.entry(c.clone()).or_default() += h.weight;
            }
        }
        let category = cats
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(c, _)| c);
        let sector = category
            .as_deref()
            .and_then(|c| self.registry.category(c))
            .and_then(|c| c.sector.clone());
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Decision {
            opd,
            category,
            sector,
            place,
            confidence: round(confidence),
            suggestions: ranked
                .iter()
                .take(3)
                .map(|(o, s)| Suggestion { opd: o.clone(), score: round(*s) })
                .collect(),
            keywords: hits.iter().map(|h| h.keyword.clone()).collect(),
            lone_keyword,
        }
    }
}

// --- model: `aduan routing explain` ---

/// Why the router decides what it decides (`aduan routing explain`).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The text as the rules read it ([`crate::text::normalize`]).
    pub normalized: String,
    /// The keyword hits, through [`Rules::hits`]: keyword, the OPD it points at (after the
    /// place for kecamatan categories), its weight.
    pub hits: Vec<(String, Option<String>, f64)>,
    /// The rules' probability per OPD, best first.
    pub rules: Vec<(String, f64)>,
    /// The learned model's best three with probabilities (empty without a model).
    pub model: Vec<(String, f64)>,
    /// The model's size: examples learned from.
    pub model_examples: Option<usize>,
    pub decision: Decision,
    pub threshold: f64,
    pub learned_weight: f64,
}

impl Router {
    /// The decision of [`Router::route`] with what went into it.
    pub fn explain(&self, text: &str) -> Explanation {
        let w = words(text);
        let hits = self.rules.hits(&w);
        let place = self.place(text);
        let mut rule: BTreeMap<String, f64> = BTreeMap::new();
        let mut shown = Vec::new();
        for h in &hits {
            let target = self.target(h, &place);
            if let Some(opd) = &target {
                *rule.entry(opd.clone()).or_default() += h.weight;
            }
            shown.push((h.keyword.clone(), target, h.weight));
        }
        let total: f64 = rule.values().map(|v| v * v).sum::<f64>() + 1.0;
        let mut rules: Vec<(String, f64)> =
            rule.into_iter().map(|(k, v)| (k, v * v / total)).collect();
        rules.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let model: Vec<(String, f64)> = self
            .model
            .as_ref()
            .map(|m| {
                m.predict(&self.doc_of(&w, &hits, &place))
                    .into_iter()
                    .take(3)
                    .map(|s| (s.label, s.p))
                    .collect()
            })
            .unwrap_or_default();
        Explanation {
            normalized: crate::text::normalize(text),
            hits: shown,
            rules,
            model,
            model_examples: self.model.as_ref().map(|m| m.examples()),
            decision: self.route(text),
            threshold: self.cfg.threshold,
            learned_weight: self.cfg.learned_weight,
        }
    }
}

impl Explanation {
    /// The report `aduan routing explain` prints.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let d = &self.decision;
        let _ = writeln!(s, "normalised: {}", self.normalized);
        let _ = writeln!(s, "place: {}", d.place.label().unwrap_or_else(|| "-".into()));
        if self.hits.is_empty() {
            let _ = writeln!(s, "keyword hits: none");
        } else {
            let _ = writeln!(s, "keyword hits:");
            for (k, opd, w) in &self.hits {
                let to = opd.as_deref().unwrap_or("(no office for the place)");
                let _ = writeln!(s, "  {k:?} -> {to} (weight {w})");
            }
        }
        if !self.rules.is_empty() {
            let r: Vec<String> = self.rules.iter().map(|(o, p)| format!("{o} {p:.3}")).collect();
            let _ = writeln!(s, "rules: {}", r.join(", "));
        }
        match self.model_examples {
            None => {
                let _ = writeln!(s, "model: none trained (the rules decide alone)");
            }
            Some(n) => {
                let m: Vec<String> =
                    self.model.iter().map(|(o, p)| format!("{o} {p:.3}")).collect();
                let _ = writeln!(s, "model top-3 ({n} examples): {}", m.join(", "));
            }
        }
        let sugg: Vec<String> =
            d.suggestions.iter().map(|x| format!("{} {:.3}", x.opd, x.score)).collect();
        let how = if self.model_examples.is_some() {
            format!(
                "combined = {:.2} x rules + {:.2} x model",
                1.0 - self.learned_weight.clamp(0.0, 1.0),
                self.learned_weight.clamp(0.0, 1.0)
            )
        } else {
            "combined = rules".to_owned()
        };
        let _ = writeln!(
            s,
            "combined ({how}): {}",
            if sugg.is_empty() { "-".into() } else { sugg.join(", ") }
        );
        match &d.opd {
            Some(opd) if d.lone_keyword => {
                let _ = writeln!(
                    s,
                    "action: route to {opd} (lone keyword: every hit names {opd} and no model \
                     disagrees; confidence {:.3} is below the threshold {:.2})",
                    d.confidence, self.threshold
                );
            }
            Some(opd) => {
                let _ = writeln!(
                    s,
                    "action: route to {opd} (confidence {:.3} >= threshold {:.2})",
                    d.confidence, self.threshold
                );
            }
            None if d.suggestions.is_empty() => {
                let _ = writeln!(s, "action: triage (no keyword and no model evidence)");
            }
            None => {
                let _ = writeln!(
                    s,
                    "action: triage (best {} at {:.3} < threshold {:.2})",
                    d.suggestions[0].opd, d.confidence, self.threshold
                );
            }
        }
        s
    }
}
