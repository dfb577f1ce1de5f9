"""Each person's neutral photo as a baseline for the expression model's output: does it pay?

    mien evaluate ../shared/data/expressions/taiwanese_chen2013/labels.csv -o runs/audit/taiwanese.json
    python scripts/neutral_baseline.py runs/audit/taiwanese.json --reference runs/audit/*_train.json

FaceReader's "participant calibration" corrects a person's outputs by their neutral face, as a
track's ``geo_*_delta`` columns do for the mesh's measures. Here a photo's log-probabilities are moved by
``alpha`` times the difference between its person's neutral profile (the mean log-probabilities of
their other neutral photos; leave-one-out, so a neutral photo never baselines itself) and a
reference neutral profile (the mean over the neutral photos of the ``--reference`` evaluations, or,
without it, of the other people of the same set: that reference re-uses the scored set's own
neutral statistics and so is an upper bound, not an operating point). Only photos whose person has
another neutral photo are scored. Prints accuracy, balanced accuracy (over all classes, and over
the expressions other than neutral, which the baseline favours by construction) and recall per class
for each ``alpha``, and accuracy per ``--group`` column where given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def scored_items(evaluation: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Log-probabilities, labels, subjects and group annotations of the items with a face."""
    items = [it for it in evaluation["items"] if it["status"] == "ok"]
    logp = log_softmax(np.array([it["logits"] for it in items])) if items else np.zeros((0, len(evaluation["labels"])))
    return (logp, np.array([it["label"] for it in items], dtype=object),
            np.array([it.get("subject") or "" for it in items], dtype=object), [it.get("groups", {}) for it in items])


def baseline_adjusted(logp: np.ndarray, labels: np.ndarray, subjects: np.ndarray, alpha: float,
                      reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows scored, their adjusted log-probabilities): ``logp - alpha * (own - reference)``, where
    ``own`` is the mean of the person's other neutral photos and ``reference`` the given profile or,
    when None, the mean of the other people's neutral photos of the same set."""
    neutral = labels == "neutral"
    rows, out = [], []
    for i in range(len(logp)):
        own = np.flatnonzero(neutral & (subjects == subjects[i]) & (np.arange(len(logp)) != i) & (subjects != ""))
        if len(own) == 0:
            continue
        ref = reference if reference is not None else logp[neutral & (subjects != subjects[i])].mean(axis=0)
        rows.append(i)
        out.append(logp[i] - alpha * (logp[own].mean(axis=0) - ref))
    return np.array(rows, dtype=np.int64), np.array(out).reshape(len(rows), logp.shape[1])


def load_evaluation(path: Path) -> dict:
    """An evaluation JSON with its per-item rows (stops with a one-line error without them)."""
    ev = json.loads(path.read_text())
    if "items" not in ev:
        sys.exit(f"neutral_baseline: {path} has no items (written with --no-items?): run mien evaluate -o again without it")
    return ev


def reference_profile(paths: list[Path]) -> np.ndarray:
    """Mean log-probabilities of the neutral-labelled items of the given evaluations."""
    parts = []
    for p in paths:
        logp, labels, _, _ = scored_items(load_evaluation(p))
        parts.append(logp[labels == "neutral"])
    ref = np.concatenate(parts)
    if len(ref) == 0:
        sys.exit(f"neutral_baseline: no neutral item with a face in {', '.join(map(str, paths))}")
    return ref.mean(axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("evaluations", type=Path, nargs="+", help="JSONs written by mien evaluate -o (with items)")
    ap.add_argument("--reference", type=Path, nargs="+", default=None,
                    help="evaluations whose neutral items give the reference profile (default: the scored set's other people)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--group", default=None, help="an annotation column to give accuracy for, e.g. gender")
    args = ap.parse_args()
    reference = reference_profile(args.reference) if args.reference else None
    for path in args.evaluations:
        ev = load_evaluation(path)
        names = ev["labels"]
        logp, labels, subjects, groups = scored_items(ev)
        print(f"{path}  (reference: {'the neutral items of ' + ', '.join(map(str, args.reference)) if args.reference else 'the same set, other people'})")
        for alpha in args.alphas:
            rows, adj = baseline_adjusted(logp, labels, subjects, alpha, reference)
            if len(rows) == 0:
                sys.exit(f"neutral_baseline: no item of {path} has a subject with another neutral photo")
            said = np.array([names[k] for k in adj.argmax(axis=1)], dtype=object)
            true = labels[rows]
            recall = {c: float(np.mean(said[true == c] == c)) for c in names if (true == c).any()}
            expr = [v for c, v in recall.items() if c != "neutral"]
            line = (f"  alpha {alpha:.2f}: n {len(rows)}, accuracy {np.mean(said == true):.3f}, balanced "
                    f"{np.mean(list(recall.values())):.3f}, balanced without neutral "
                    f"{np.mean(expr) if expr else float('nan'):.3f}; recall "
                    + " ".join(f"{c} {v:.2f}" for c, v in recall.items()))
            g = np.array([groups[i].get(args.group, "") for i in rows], dtype=object) if args.group else None
            if g is not None and (g != "").any():  # a set without the column gets no group part
                line += " | " + ", ".join(f"{k} {np.mean(said[g == k] == true[g == k]):.3f} (n {int(np.sum(g == k))})"
                                          for k in sorted(set(g)))
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
