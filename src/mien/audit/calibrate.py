"""Temperature scaling (Guo et al., 2017) on a user's own validation data.

Why: a model's probabilities are only as calibrated as the data it was calibrated on. Dividing the
logits by one temperature ``T`` changes no prediction (argmax is unchanged) but makes "0.8" mean
"right 80% of the time" on data like the user's. ``mien calibrate`` fits ``T`` by minimising the
NLL on labelled faces, then writes a *user* model card -- a copy of the model's card with
``temperature`` replaced and a ``calibration`` record -- that ``mien analyze --model-card PATH``
loads. The shipped card is never modified.

Class-prior strength: :func:`select_prior_strength` picks, on validation data, how far the
probabilities move from the training set's class frequencies towards a uniform prior (see
:mod:`mien.expression`). Temperature scaling cannot fix a model that almost never says a rare
expression; shifting the prior can, and the validation data says by how much.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from mien._version import __version__
from mien.audit.metrics import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    nll,
)
from mien.stats import softmax

#: Search range for T; outside it the data is degenerate (e.g. a handful of items all right).
T_MIN, T_MAX = 0.05, 20.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T > 0`` minimising the mean NLL of ``softmax(logits / T)`` on ``labels``.

    NLL is convex in ``1/T``, so a bounded 1-D search on ``log T`` finds the optimum.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no items to calibrate on")

    def objective(log_t: float) -> float:
        return nll(softmax(logits, math.exp(log_t)), labels)

    res = minimize_scalar(
        objective, bounds=(math.log(T_MIN), math.log(T_MAX)), method="bounded", options={"xatol": 1e-6}
    )
    return float(math.exp(res.x))


#: Class-prior strengths tried by :func:`select_prior_strength`.
PRIOR_STRENGTHS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


def select_prior_strength(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature: float,
    training_prior: np.ndarray,
    strengths: tuple[float, ...] = PRIOR_STRENGTHS,
) -> tuple[float, list[dict[str, float]]]:
    """The class-prior strength with the best macro-F1 on ``labels``, and the table it chose from.

    ``logits`` are the network's own (no offset). For each strength ``s`` the probabilities are
    ``softmax(logits / temperature - s * log(training_prior))``. Macro-F1 weighs every expression
    alike, so it rewards finding the rare ones without paying for it with the common ones (it
    would not, as balanced accuracy would, push towards calling every doubtful face disgust). Ties
    go to the smaller strength, the smaller departure from the data the model learnt.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    prior = np.asarray(training_prior, dtype=np.float64)
    if prior.shape != (logits.shape[1],) or not (np.isfinite(prior).all() and (prior > 0).all()):
        raise ValueError("training_prior needs one positive share per class")
    log_prior = np.log(prior)
    table = []
    for s in strengths:
        probs = softmax(logits / temperature - s * log_prior)
        cm = confusion_matrix(labels, probs.argmax(axis=1), n_classes=logits.shape[1])
        conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
        table.append({
            "strength": float(s),
            "accuracy": accuracy(cm),
            "balanced_accuracy": balanced_accuracy(cm),
            "macro_f1": macro_f1(cm),
            "nll": nll(probs, labels),
            "ece": expected_calibration_error(conf, correct),
        })
    best = max(table, key=lambda row: (round(row["macro_f1"], 12), -row["strength"]))
    return best["strength"], table


def calibration_summary(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature_before: float,
    temperature_after: float,
    logits_before: np.ndarray | None = None,
) -> dict[str, float]:
    """NLL and ECE before and after, on the calibration data itself. ``logits_before`` are the
    model's logits before calibration when they differ (another class-prior strength)."""

    def scores(z: np.ndarray, t: float) -> tuple[float, float]:
        p = softmax(z, t)
        conf, correct = p.max(axis=1), p.argmax(axis=1) == labels
        return nll(p, labels), expected_calibration_error(conf, correct)

    nll_b, ece_b = scores(logits if logits_before is None else logits_before, temperature_before)
    nll_a, ece_a = scores(logits, temperature_after)
    return {"nll_before": nll_b, "nll_after": nll_a, "ece_before": ece_b, "ece_after": ece_a}


def calibrated_card(
    card: dict[str, Any],
    temperature: float,
    *,
    data: dict[str, Any],
    summary: dict[str, float],
    prior_strength: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of ``card`` with ``temperature`` replaced and a ``calibration`` record appended.

    ``data`` describes the calibration set (source, format, split, n, sha256); the record keeps
    the previous temperature so the change can be audited or undone.
    """
    out = copy.deepcopy(card)
    previous = out.get("temperature")
    out["temperature"] = float(temperature)
    out["calibration"] = {
        "method": "temperature scaling, minimum NLL",
        "temperature_before": previous,
        "temperature": float(temperature),
        "data": data,
        **{k: float(v) for k, v in summary.items()},
        **({"prior_strength": prior_strength} if prior_strength else {}),
        "mien_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "note": "fitted by `mien calibrate`; metrics above are on the calibration data itself",
    }
    return out
