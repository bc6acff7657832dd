//! `aduan routing eval`: the learned router trained on part of a labelled CSV and scored on
//! the rest, through the same features (normalisation, rule and place tokens) as in
//! production.

use std::fmt::Write as _;
use std::io::Read;

use crate::RoutingError;
use crate::model::{Model, TrainConfig};
use crate::router::Router;

/// How to split the rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// Row `i` is in test fold `i mod k`; every row is scored once.
    Folds(usize),
    /// The first fraction (file order) trains, the rest is scored.
    TrainFraction(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub labels: Vec<String>,
    /// `confusion[true][predicted]`, indexes into `labels`.
    pub confusion: Vec<Vec<usize>>,
    pub n: usize,
    pub correct: usize,
    pub top3: usize,
    /// Accuracy of each fold (one entry for a train fraction).
    pub folds: Vec<(usize, f64)>,
}

impl Report {
    pub fn accuracy(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.correct as f64 / self.n as f64 }
    }

    pub fn top3_accuracy(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.top3 as f64 / self.n as f64 }
    }

    /// The contract's last line.
    pub fn summary_line(&self) -> String {
        format!(
            "accuracy={:.3} top3={:.3} n={} labels={}",
            self.accuracy(),
            self.top3_accuracy(),
            self.n,
            self.labels.len()
        )
    }

    /// Per-fold figures and the confusion matrix, then the summary line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, (n, acc)) in self.folds.iter().enumerate() {
            let _ = writeln!(s, "fold {}: n={n} accuracy={acc:.3}", i + 1);
        }
        let _ = writeln!(s, "confusion (rows: true label, columns: predicted, in this order):");
        for (i, l) in self.labels.iter().enumerate() {
            let row: Vec<String> = self.confusion[i].iter().map(|c| format!("{c:>5}")).collect();
            let _ = writeln!(s, "{} {:<24}{}", i + 1, truncate(l, 24), row.join(""));
        }
        s.push_str(&self.summary_line());
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Reads `(text, label)` rows of a CSV with a header. Rows with an empty text or label are
/// skipped.
pub fn read_csv(
    reader: impl Read,
    text_column: &str,
    label_column: &str,
) -> Result<Vec<(String, String)>, RoutingError> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = r.headers().map_err(|e| RoutingError::Csv(e.to_string()))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            RoutingError::Csv(format!(
                "no column {name:?}; the header has {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (t, l) = (col(text_column)?, col(label_column)?);
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| RoutingError::Csv(e.to_string()))?;
        let (Some(text), Some(label)) = (rec.get(t), rec.get(l)) else { continue };
        let (text, label) = (text.trim(), label.trim());
        if !text.is_empty() && !label.is_empty() {
            rows.push((text.to_owned(), label.to_owned()));
        }
    }
    Ok(rows)
}

/// Trains and scores.
pub fn evaluate(
    router: &Router,
    rows: &[(String, String)],
    split: Split,
    cfg: &TrainConfig,
) -> Result<Report, RoutingError> {
    evaluate_with_model(router, rows, split, cfg).map(|(report, _)| report)
}

/// As [`evaluate`], also returning the model of the last fold (for timing the scoring).
pub fn evaluate_with_model(
    router: &Router,
    rows: &[(String, String)],
    split: Split,
    cfg: &TrainConfig,
) -> Result<(Report, Model), RoutingError> {
    let mut labels: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
    labels.sort();
    labels.dedup();
    if labels.len() < 2 {
        return Err(RoutingError::Eval("the CSV needs at least two labels".into()));
    }
    let docs: Vec<_> = rows.iter().map(|(t, _)| router.doc(t)).collect();
    let plan: Vec<(Vec<usize>, Vec<usize>)> = match split {
        Split::Folds(k) => {
            if k < 2 || k > rows.len() {
                return Err(RoutingError::Eval(format!(
                    "--folds must be from 2 to the number of rows ({})",
                    rows.len()
                )));
            }
            (0..k)
                .map(|f| {
                    let (test, train): (Vec<usize>, Vec<usize>) =
                        (0..rows.len()).partition(|i| i % k == f);
                    (train, test)
                })
                .collect()
        }
        Split::TrainFraction(frac) => {
            let cut = (rows.len() as f64 * frac).round() as usize;
            if !(frac > 0.0 && frac < 1.0) || cut == 0 || cut >= rows.len() {
                return Err(RoutingError::Eval(
                    "--train-fraction must leave rows on both sides (0 < F < 1)".into(),
                ));
            }
            vec![((0..cut).collect(), (cut..rows.len()).collect())]
        }
    };
    let k = labels.len();
    let mut report = Report {
        labels: labels.clone(),
        confusion: vec![vec![0; k]; k],
        n: 0,
        correct: 0,
        top3: 0,
        folds: Vec::new(),
    };
    // Accuracy and top-3 rank labels, which the softmax temperature does not change: the
    // calibration split is skipped here.
    let cfg = &TrainConfig { calibrate: false, ..*cfg };
    let mut last = None;
    for (train, test) in plan {
        let tr_docs: Vec<_> = train.iter().map(|&i| docs[i].clone()).collect();
        let tr_labels: Vec<String> = train.iter().map(|&i| rows[i].1.clone()).collect();
        let model = Model::train(&tr_docs, &tr_labels, cfg).ok_or_else(|| {
            RoutingError::Eval("a training part has fewer than two labels".into())
        })?;
        let mut right = 0;
        for &i in &test {
            let ranked = model.predict(&docs[i]);
            let truth = &rows[i].1;
            let t = labels.binary_search(truth).unwrap_or(0);
            if let Some(best) = ranked.first() {
                let p = labels.binary_search(&best.label).unwrap_or(0);
                report.confusion[t][p] += 1;
                if &best.label == truth {
                    right += 1;
                }
            }
            if ranked.iter().take(3).any(|s| &s.label == truth) {
                report.top3 += 1;
            }
        }
        report.n += test.len();
        report.correct += right;
        report.folds.push((test.len(), right as f64 / test.len().max(1) as f64));
        last = Some(model);
    }
    let model = last.ok_or_else(|| RoutingError::Eval("nothing to evaluate".into()))?;
    Ok((report, model))
}
