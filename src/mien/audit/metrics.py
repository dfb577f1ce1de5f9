"""Classification metrics, calibration and the bootstrap, in plain numpy.

Why our own and not scikit-learn: the audit needs every metric to accept *resampling weights*
(a bootstrap resample is just an integer weight per item, a cluster bootstrap a weight per subject),
needs a "no prediction" outcome (a missed face stays in the denominator as an error), and must not
pull a heavy dependency into a CPU tool. Every function here is checked against hand-computed cases
in ``tests/test_audit_metrics.py``.

Conventions (also in ``docs/audit_schema.md``):

- Labels are indexes into :data:`mien.labels.EXPRESSIONS`; a prediction of ``-1``
  (:data:`NO_PREDICTION`) means "no face found / image unreadable": always wrong, never a class.
- Balanced accuracy and macro-F1 average over the classes *present in the labels* (support > 0),
  so a dataset without contempt is not scored on contempt; predicting an absent class still costs
  precision and the recall of the true class.
- NLL clips probabilities at :data:`PROB_FLOOR`; Brier is the multi-class form, summed over classes
  (0 = perfect, 2 = confidently wrong).
- ECE uses :data:`ECE_BINS` equal-width bins of the top-class confidence, bin ``b`` = ``(b/B, (b+1)/B]``
  (confidence 0 falls in the first bin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mien.labels import EXPRESSIONS
from mien.stats import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    Statistic,
    bootstrap_ci,
    json_number,
)

N_CLASSES: int = len(EXPRESSIONS)
NO_PREDICTION: int = -1
ECE_BINS: int = 15
PROB_FLOOR: float = 1e-12
#: The numbers every evaluation reports with a bootstrap CI.
HEADLINE: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "nll", "brier", "ece")

# --------------------------------------------------------------------------------------------- basics
def _weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    return w


def _wmean(values: np.ndarray, w: np.ndarray) -> float:
    total = float(w.sum())
    return float(values @ w / total) if total > 0 else math.nan


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise num/den with NaN (undefined) where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def predictions_from_probs(probs: np.ndarray) -> np.ndarray:
    """Argmax per row; :data:`NO_PREDICTION` for rows that hold NaN (nothing was scored)."""
    probs = np.asarray(probs, dtype=np.float64)
    missing = ~np.isfinite(probs).all(axis=1)
    pred = np.argmax(np.where(np.isfinite(probs), probs, -np.inf), axis=1).astype(np.int64)
    pred[missing] = NO_PREDICTION
    return pred


def restrict_probs(probs: np.ndarray, present: Sequence[int] | np.ndarray) -> np.ndarray:
    """Zero the classes not in ``present`` and renormalise each row over the rest.

    Why: when a dataset has no contempt images, a model that says "contempt" can only be wrong;
    the restricted argmax shows how the model ranks the labels the data can actually contain.
    NaN rows (nothing scored) stay NaN.
    """
    probs = np.asarray(probs, dtype=np.float64)
    mask = np.zeros(probs.shape[1], dtype=bool)
    mask[np.asarray(present, dtype=np.int64)] = True
    out = np.where(mask[None, :], probs, 0.0)
    total = out.sum(axis=1, keepdims=True)
    uniform = mask / mask.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform[None, :])
    out[~np.isfinite(probs).all(axis=1)] = np.nan
    return out


# --------------------------------------------------------------------------------- confusion-based
def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int = N_CLASSES,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Counts (or summed weights) of true class (rows) x predicted class (columns).

    Shape ``(n_classes, n_classes + 1)``: the last column counts :data:`NO_PREDICTION`, so missed
    faces show up in the matrix instead of vanishing from it.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred must have the same shape")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
        raise ValueError(f"true labels must be in 0..{n_classes - 1}")
    if y_pred.size and (y_pred.min() < NO_PREDICTION or y_pred.max() >= n_classes):
        raise ValueError(f"predictions must be in -1..{n_classes - 1}")
    w = _weights(len(y_true), weights)
    col = np.where(y_pred == NO_PREDICTION, n_classes, y_pred)
    flat = y_true * (n_classes + 1) + col
    counts = np.bincount(flat, weights=w, minlength=n_classes * (n_classes + 1))
    return counts.reshape(n_classes, n_classes + 1)


@dataclass(frozen=True)
class ClassScores:
    """Per-class counts and scores from a confusion matrix; NaN where undefined."""

    support: np.ndarray  # true items per class
    predicted: np.ndarray  # items predicted as the class
    tp: np.ndarray
    precision: np.ndarray  # NaN when the class is never predicted
    recall: np.ndarray  # NaN when the class has no support (= TPR)
    f1: np.ndarray  # 2TP / (2TP + FP + FN); NaN when the class is neither present nor predicted
    fpr: np.ndarray  # FP / (items of other classes); NaN when there are none


def class_scores(cm: np.ndarray) -> ClassScores:
    """Precision, recall (TPR), F1 and FPR per class from a ``(K, K+1)`` confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    tp = np.diag(cm[:, :k]).copy()
    support = cm.sum(axis=1)
    predicted = cm[:, :k].sum(axis=0)
    fp = predicted - tp
    fn = support - tp
    negatives = cm.sum() - support
    return ClassScores(
        support=support,
        predicted=predicted,
        tp=tp,
        precision=_ratio(tp, predicted),
        recall=_ratio(tp, support),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        fpr=_ratio(fp, negatives),
    )


def accuracy(cm: np.ndarray) -> float:
    """Share of items whose prediction is their label (missed faces count as wrong)."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    return float(np.trace(cm[:, : cm.shape[0]]) / total) if total > 0 else math.nan


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in the labels."""
    s = class_scores(cm)
    present = s.support > 0
    return float(s.recall[present].mean()) if present.any() else math.nan


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the labels."""
    s = class_scores(cm)
    present = s.support > 0
    return float(s.f1[present].mean()) if present.any() else math.nan


# ------------------------------------------------------------------------------ probability-based
def _check_probs(probs: np.ndarray, y_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError("probs must be (n, K) with one row per label")
    return probs, y_true


def nll_per_item(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """``-log p(true label)`` per item, probabilities clipped at :data:`PROB_FLOOR`."""
    probs, y_true = _check_probs(probs, y_true)
    p = probs[np.arange(len(y_true)), y_true]
    return -np.log(np.clip(p, PROB_FLOOR, 1.0))


def brier_per_item(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Multi-class Brier score per item: ``sum_k (p_k - [k == y])^2`` (0..2)."""
    probs, y_true = _check_probs(probs, y_true)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(y_true)), y_true] = 1.0
    return ((probs - onehot) ** 2).sum(axis=1)


def nll(probs: np.ndarray, y_true: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of the true labels (natural log)."""
    return _wmean(nll_per_item(probs, y_true), _weights(len(y_true), weights))


def brier(probs: np.ndarray, y_true: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean multi-class Brier score."""
    return _wmean(brier_per_item(probs, y_true), _weights(len(y_true), weights))


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability-diagram bins: per equal-width confidence bin, count, mean confidence, accuracy."""

    edges: np.ndarray  # (B+1,)
    count: np.ndarray  # (B,) summed weights
    mean_confidence: np.ndarray  # (B,) NaN for empty bins
    accuracy: np.ndarray  # (B,) NaN for empty bins

    def to_json(self) -> list[dict[str, float | None]]:
        return [
            {
                "low": float(self.edges[b]),
                "high": float(self.edges[b + 1]),
                "count": float(self.count[b]),
                "mean_confidence": json_number(self.mean_confidence[b]),
                "accuracy": json_number(self.accuracy[b]),
            }
            for b in range(len(self.count))
        ]


def confidence_bin(confidence: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Bin index of each confidence: bin ``b`` holds ``(b/B, (b+1)/B]``, 0 goes to bin 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges, np.asarray(confidence, dtype=np.float64), side="left") - 1
    return np.clip(idx, 0, n_bins - 1)


def reliability_bins(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int = ECE_BINS,
    weights: np.ndarray | None = None,
) -> ReliabilityBins:
    """Bin items by top-class confidence; per bin, how confident and how often right."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    w = _weights(len(confidence), weights)
    idx = confidence_bin(confidence, n_bins)
    count = np.bincount(idx, weights=w, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=w * confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=w * correct, minlength=n_bins)
    return ReliabilityBins(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        count=count,
        mean_confidence=_ratio(conf_sum, count),
        accuracy=_ratio(acc_sum, count),
    )


def expected_calibration_error(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int = ECE_BINS,
    weights: np.ndarray | None = None,
) -> float:
    """ECE: ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|`` over non-empty bins."""
    bins = reliability_bins(confidence, correct, n_bins, weights)
    total = bins.count.sum()
    if total <= 0:
        return math.nan
    filled = bins.count > 0
    gap = np.abs(bins.accuracy[filled] - bins.mean_confidence[filled])
    return float((bins.count[filled] * gap).sum() / total)


# -------------------------------------------------------------------------------- headline report
@dataclass(frozen=True)
class Scored:
    """What the metrics need, with misses made explicit.

    ``probs`` rows of unscored items (missed face, unreadable image) are replaced by the uniform
    distribution and their prediction is :data:`NO_PREDICTION`: the item stays in every
    denominator, is always wrong, costs ``log K`` in NLL and has confidence ``1/K``.
    """

    probs: np.ndarray
    y_true: np.ndarray
    pred: np.ndarray

    @classmethod
    def from_probs(cls, probs: np.ndarray, y_true: np.ndarray) -> Scored:
        probs = np.asarray(probs, dtype=np.float64)
        y_true = np.asarray(y_true, dtype=np.int64)
        pred = predictions_from_probs(probs)
        filled = probs.copy()
        filled[pred == NO_PREDICTION] = 1.0 / probs.shape[1]
        return cls(filled, y_true, pred)

    def __len__(self) -> int:
        return len(self.y_true)


def headline_statistic(scored: Scored, n_bins: int = ECE_BINS) -> Statistic:
    """A weights -> metrics function for :func:`bootstrap`, with per-item work done once."""
    k = scored.probs.shape[1]
    col = np.where(scored.pred == NO_PREDICTION, k, scored.pred)
    flat = scored.y_true * (k + 1) + col
    item_nll = nll_per_item(scored.probs, scored.y_true)
    item_brier = brier_per_item(scored.probs, scored.y_true)
    confidence = scored.probs.max(axis=1)
    correct = (scored.pred == scored.y_true).astype(np.float64)

    def statistic(w: np.ndarray) -> dict[str, float]:
        cm = np.bincount(flat, weights=w, minlength=k * (k + 1)).reshape(k, k + 1)
        s = class_scores(cm)
        present = s.support > 0
        out = {
            "accuracy": accuracy(cm),
            "balanced_accuracy": float(s.recall[present].mean()) if present.any() else math.nan,
            "macro_f1": float(s.f1[present].mean()) if present.any() else math.nan,
            "nll": _wmean(item_nll, w),
            "brier": _wmean(item_brier, w),
            "ece": expected_calibration_error(confidence, correct, n_bins, w),
        }
        for c in range(k):
            out[f"precision/{c}"] = float(s.precision[c])
            out[f"recall/{c}"] = float(s.recall[c])
            out[f"f1/{c}"] = float(s.f1[c])
        return out

    return statistic


def classification_report(
    probs: np.ndarray,
    y_true: np.ndarray,
    *,
    subjects: Sequence[Any] | np.ndarray | None = None,
    labels: Sequence[str] = EXPRESSIONS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    n_bins: int = ECE_BINS,
) -> dict[str, Any]:
    """Every number of one evaluation scope, as a JSON-ready dict (see ``docs/audit_schema.md``).

    ``probs`` holds NaN rows for items that were not scored; they count as errors (see
    :class:`Scored`).
    """
    scored = Scored.from_probs(probs, y_true)
    n = len(scored)
    stat = headline_statistic(scored, n_bins)
    cis = bootstrap_ci(stat, n, subjects=subjects, n_resamples=n_resamples, seed=seed, level=level)
    cm = confusion_matrix(scored.y_true, scored.pred, len(labels))
    s = class_scores(cm)
    bins = reliability_bins(scored.probs.max(axis=1), scored.pred == scored.y_true, n_bins)
    report: dict[str, Any] = {"n": n, "n_no_prediction": int((scored.pred == NO_PREDICTION).sum())}
    for key in HEADLINE:
        report[key] = cis[key]
    report["per_class"] = {
        label: {
            "support": int(s.support[c]),
            "predicted": int(s.predicted[c]),
            "precision": cis[f"precision/{c}"],
            "recall": cis[f"recall/{c}"],
            "f1": cis[f"f1/{c}"],
        }
        for c, label in enumerate(labels)
    }
    report["confusion"] = {
        "rows": list(labels),
        "columns": [*labels, "no_prediction"],
        "counts": cm.astype(np.int64).tolist(),
    }
    report["reliability"] = {"n_bins": n_bins, "bins": bins.to_json()}
    return report
