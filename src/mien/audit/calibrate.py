"""Temperature scaling (Guo et al., 2017) on a user's own validation data.

Why: a model's probabilities are only as calibrated as the data it was calibrated on. Dividing the
logits by one temperature ``T`` changes no prediction (argmax is unchanged) but makes "0.8" mean
"right 80% of the time" on data like the user's. ``mien calibrate`` fits ``T`` by minimising the
NLL on labelled faces, then writes a *user* model card -- a copy of the model's card with
``temperature`` replaced and a ``calibration`` record -- that ``mien analyze --model-card PATH``
loads. The shipped card is never modified.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

import mien
from mien.audit.metrics import expected_calibration_error, nll, softmax

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


def calibration_summary(
    logits: np.ndarray, labels: np.ndarray, temperature_before: float, temperature_after: float
) -> dict[str, float]:
    """NLL and ECE before and after, on the calibration data itself."""

    def scores(t: float) -> tuple[float, float]:
        p = softmax(logits, t)
        conf, correct = p.max(axis=1), p.argmax(axis=1) == labels
        return nll(p, labels), expected_calibration_error(conf, correct)

    nll_b, ece_b = scores(temperature_before)
    nll_a, ece_a = scores(temperature_after)
    return {"nll_before": nll_b, "nll_after": nll_a, "ece_before": ece_b, "ece_after": ece_a}


def calibrated_card(
    card: dict[str, Any],
    temperature: float,
    *,
    data: dict[str, Any],
    summary: dict[str, float],
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
        "mien_version": mien.__version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "note": "fitted by `mien calibrate`; metrics above are on the calibration data itself",
    }
    return out
