"""How well do the Taiwanese set's own raters read its posed expressions? (issue #15)

    python scripts/rater_agreement.py [--model CARD.json]

The set's soft labels are the raters' vote proportions; its ``label`` is the expression the
performer posed, which is what ``mien evaluate`` scores against. This prints, per part (training
folds, validation fold), the raters' top choice scored like a model against the posed label
(balanced accuracy, recall per expression), and how often a model's top label (network argmax on
the engine-aligned crops, over the set's classes) matches the posed label and the raters' choice.
Needs ``../shared/data`` and the crop cache (``python -m mien.training.expressions crops``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mien.expression import ExpressionModel
from mien.labels import EXPRESSIONS
from mien.training.expressions import load_source


def recalls(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {EXPRESSIONS[c]: float(np.mean(pred[truth == c] == c)) for c in np.unique(truth)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a model card (default: the shipped float model)")
    ap.add_argument("--set", default="taiwanese_chen2013")
    args = ap.parse_args(argv)
    model = ExpressionModel.load(args.model)
    src = load_source(args.set)
    print(f"{args.set}; model {model.name}")
    print("| part | images | raters' top choice: balanced accuracy | raters' recall per posed expression | "
          "model = posed | model = raters' top | raters' top = posed |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for part, rows in (("training folds", ~src.val), ("validation fold", src.val)):
        posed = src.labels_set.labels[rows]
        raters = src.labels_set.soft[rows].argmax(1)
        mask = np.full(len(EXPRESSIONS), -np.inf)
        mask[np.unique(posed)] = 0
        found = src.found[rows]
        net = np.where(found, (model.predict_network_logits(src.crops[rows]) + mask).argmax(1), -1)
        r = recalls(posed, raters)
        per_class = ", ".join(f"{k} {v:.2f}" for k, v in r.items())
        print(f"| {part} | {rows.sum()} | {100 * np.mean(list(r.values())):.1f} | {per_class} | "
              f"{100 * np.mean(net == posed):.1f} | {100 * np.mean(net == raters):.1f} | "
              f"{100 * np.mean(raters == posed):.1f} |")


if __name__ == "__main__":
    main()
