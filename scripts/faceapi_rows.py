"""face-api's FaceExpressionNet on the same validation folds, from the `faceapi` helper's predictions.

    python scripts/faceapi_rows.py /work/wt-faceapi/runs/faceapi/predictions

The `faceapi` branch ports face-api's net to ONNX and writes, per set, its logits for every image
of the set's ``labels.csv`` (``faceapi_logits7_s100``: face-api's 7 classes, on the engine's
detections, row for row with ``path``). This reads them, maps face-api's classes to mien's
(contempt: none), keeps the rows of mien's fixed subject-disjoint validation folds
(:mod:`mien.training.expressions`) and prints accuracy and balanced accuracy with a 95% bootstrap
interval (by subject), an image without a face counting as an error, as ``mien evaluate`` does.
These rows are computed here, not by ``mien evaluate`` (face-api is not a mien model card).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mien.labels import EXPRESSIONS
from mien.training.expressions import EXPRESSIONS_ROOT, SOURCES, read_labels, split_of
from mien.training.selection import EvalSet, _resample_weights, balanced_accuracy

FACEAPI_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
TO_FACEAPI = {"neutral": "neutral", "happiness": "happy", "surprise": "surprised", "sadness": "sad",
              "anger": "angry", "disgust": "disgusted", "fear": "fearful"}


def mien_predictions(logits7: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Index into EXPRESSIONS of face-api's top class; -1 where no face was found."""
    to_mien = np.array([EXPRESSIONS.index(next(m for m, f in TO_FACEAPI.items() if f == fa))
                        for fa in FACEAPI_LABELS])
    pred = to_mien[np.nan_to_num(logits7, nan=-1e9).argmax(1)]
    return np.where(found & np.isfinite(logits7).all(1), pred, -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path)
    ap.add_argument("--key", default="faceapi_logits7_s100")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| set | n | face-api accuracy | face-api balanced accuracy |\n|---|---|---|---|")
    for name, spec in SOURCES.items():
        path = args.predictions / f"{name}.npz"
        if not path.is_file():
            continue
        ls = read_labels(EXPRESSIONS_ROOT / name)
        with np.load(path) as z:
            if z["path"].tolist() != ls.paths:
                raise SystemExit(f"{path}: rows differ from {name}/labels.csv")
            pred = mien_predictions(z[args.key], z["face_found"])
        val = split_of(ls, spec)
        for part, mask in (("validation fold", val), ("all", np.ones(len(ls), bool))):
            if not mask.any():
                continue
            labels, p = ls.labels[mask], pred[mask]
            subj = ls.subjects[mask] if all(ls.subjects[mask]) else None
            es = EvalSet(name, labels, p >= 0, subj)
            acc, bal = [], []
            for _ in range(args.bootstrap):
                w = _resample_weights(es, rng)
                acc.append((w * (p == labels)).sum() / w.sum())
                bal.append(balanced_accuracy(p, labels, w))
            ci = lambda v, s: f"{100 * v:.1f} ({np.percentile(s, 2.5) * 100:.1f}–{np.percentile(s, 97.5) * 100:.1f})"
            print(f"| {name}, {part} | {mask.sum()} | {ci((p == labels).mean(), acc)} | "
                  f"{ci(balanced_accuracy(p, labels), bal)} |")


if __name__ == "__main__":
    main()
