"""The routing baseline of `cargo xtask bench routing`: scikit-learn's textbook text
classifier, TF-IDF (word 1-2 grams + char_wb 2-5 grams, sublinear tf) and LinearSVC(C=0.5),
top-3 from decision_function.

It reads the same CSV and splits it the same way as `aduan routing eval`:
  --folds K            row i (file order, after dropping rows with an empty text or label)
                       is in test fold i mod K
  --train-fraction F   the first round(n * F) rows train, the rest is scored
Last line: `accuracy=0.xxx top3=0.xxx n=N labels=L seconds=S`.
"""

import argparse
import csv
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC


def read_rows(path, text_column, label_column):
    csv.field_size_limit(sys.maxsize)
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            text = (rec.get(text_column) or "").strip()
            label = (rec.get(label_column) or "").strip()
            if text and label:
                rows.append((text, label))
    return rows


def fit_score(train, test):
    vec = FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
    ])
    xtr = vec.fit_transform([t for t, _ in train])
    clf = LinearSVC(C=0.5)
    clf.fit(xtr, [l for _, l in train])
    scores = clf.decision_function(vec.transform([t for t, _ in test]))
    classes = clf.classes_
    if scores.ndim == 1:  # two classes
        scores = np.stack([-scores, scores], axis=1)
    order = np.argsort(-scores, axis=1)
    top1 = top3 = 0
    for (_, truth), ranked in zip(test, order):
        best = [classes[j] for j in ranked[:3]]
        top1 += best[0] == truth
        top3 += truth in best
    return top1, top3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--text-column", required=True)
    ap.add_argument("--label-column", required=True)
    ap.add_argument("--folds", type=int)
    ap.add_argument("--train-fraction", type=float)
    a = ap.parse_args()
    started = time.monotonic()
    rows = read_rows(a.csv, a.text_column, a.label_column)
    if a.train_fraction is not None:
        cut = int(round(len(rows) * a.train_fraction))
        plan = [(rows[:cut], rows[cut:])]
    else:
        k = a.folds or 5
        plan = [
            ([r for i, r in enumerate(rows) if i % k != f], [r for i, r in enumerate(rows) if i % k == f])
            for f in range(k)
        ]
    n = top1 = top3 = 0
    for train, test in plan:
        a1, a3 = fit_score(train, test)
        top1 += a1
        top3 += a3
        n += len(test)
    labels = len({l for _, l in rows})
    print(f"accuracy={top1 / n:.3f} top3={top3 / n:.3f} n={n} labels={labels} "
          f"seconds={time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
