"""Group audit: who the expression model is wrong for.

Group columns (age band, gender, skin tone ...) come from the dataset, never from mien: the tool
does not and will not infer demographic traits. For each column this reports, per group, the
headline metrics with bootstrap CIs, the worst group, max-min gaps, per-class TPR/FPR gaps
(equalised-odds style), how often faces are found, and the Rhue (2018) test: how often each group
is assigned a negative expression (anger, contempt, disgust, fear), overall and among faces whose
label is *not* negative. Rhue found commercial systems read Black men's faces as angrier than white
men's with the same smile; the second rate is the one that isolates that effect from differences
in what the groups actually show.

All group numbers share the same bootstrap resamples (whole subjects when subject ids exist), so a
gap's CI accounts for the correlation between the groups' estimates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mien.audit.metrics import NO_PREDICTION, Scored, accuracy, class_scores
from mien.labels import EXPRESSIONS, NEGATIVE_EXPRESSIONS
from mien.stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, bootstrap_ci, json_number

#: Value used for an item whose group cell is empty; reported, but left out of gaps and worst group.
MISSING_GROUP = "(missing)"
#: Groups smaller than this are reported but left out of gaps and the worst group (too noisy).
MIN_GROUP_N = 10


def negative_mask(labels: Sequence[str] = EXPRESSIONS) -> np.ndarray:
    """Boolean mask over ``labels`` of the negative expressions."""
    return np.array([label in NEGATIVE_EXPRESSIONS for label in labels], dtype=bool)


def normalise_group_values(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Group cells as stripped strings; empty / None / NaN become :data:`MISSING_GROUP`."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            out.append(MISSING_GROUP)
        else:
            out.append(str(v).strip())
    return np.asarray(out, dtype=object)


def _gap(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if v.size >= 2 else math.nan


def _min(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.min()) if v.size else math.nan


def _wshare(mask: np.ndarray, w: np.ndarray) -> float:
    total = float(w.sum())
    return float((w * mask).sum() / total) if total > 0 else math.nan


def audit_column(
    scored: Scored,
    values: Sequence[Any] | np.ndarray,
    *,
    subjects: Sequence[Any] | np.ndarray | None = None,
    labels: Sequence[str] = EXPRESSIONS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    min_group_n: int = MIN_GROUP_N,
) -> dict[str, Any]:
    """Audit one group column (see the module docstring for what and why)."""
    groups_of = normalise_group_values(values)
    if len(groups_of) != len(scored):
        raise ValueError(f"group column has {len(groups_of)} values for {len(scored)} items")
    names = sorted(set(groups_of.tolist()))
    masks = {g: groups_of == g for g in names}
    sizes = {g: int(masks[g].sum()) for g in names}
    eligible = [g for g in names if g != MISSING_GROUP and sizes[g] >= min_group_n]

    k = len(labels)
    neg = negative_mask(labels)
    col = np.where(scored.pred == NO_PREDICTION, k, scored.pred)
    flat = scored.y_true * (k + 1) + col
    pred_negative = (scored.pred >= 0) & neg[np.clip(scored.pred, 0, k - 1)]
    label_negative = neg[scored.y_true]
    found = scored.pred != NO_PREDICTION

    def statistic(w: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        per: dict[str, dict[str, Any]] = {}
        for g in names:
            wg = w * masks[g]
            cm = np.bincount(flat, weights=wg, minlength=k * (k + 1)).reshape(k, k + 1)
            s = class_scores(cm)
            present = s.support > 0
            non_neg_w = wg * ~label_negative
            st = {
                "accuracy": accuracy(cm),
                "balanced_accuracy": float(s.recall[present].mean()) if present.any() else math.nan,
                "macro_f1": float(s.f1[present].mean()) if present.any() else math.nan,
                "face_found_rate": _wshare(found, wg),
                "negative_rate": _wshare(pred_negative, wg),
                "negative_rate_non_negative_labels": _wshare(pred_negative, non_neg_w),
            }
            for key, value in st.items():
                out[f"{g}\x00{key}"] = value
            per[g] = {**st, "tpr": s.recall, "fpr": s.fpr}
        el = [per[g] for g in eligible]
        for key in ("accuracy", "face_found_rate", "negative_rate", "negative_rate_non_negative_labels"):
            out[f"gap\x00{key}"] = _gap([p[key] for p in el])
        out["worst\x00accuracy"] = _min([p["accuracy"] for p in el])
        for c in range(k):
            out[f"tpr_gap\x00{c}"] = _gap([p["tpr"][c] for p in el])
            out[f"fpr_gap\x00{c}"] = _gap([p["fpr"][c] for p in el])
        return out

    ci = bootstrap_ci(
        statistic, len(scored), subjects=subjects, n_resamples=n_resamples, seed=seed, level=level
    )
    point = statistic(np.ones(len(scored)))
    report_groups: dict[str, Any] = {}
    for g in names:
        m = masks[g]
        cm = np.bincount(flat[m], minlength=k * (k + 1)).reshape(k, k + 1)
        s = class_scores(cm)
        report_groups[g] = {
            "n": sizes[g],
            "n_no_prediction": int((~found[m]).sum()),
            "included_in_gaps": g in eligible,
            "accuracy": ci[f"{g}\x00accuracy"],
            "balanced_accuracy": ci[f"{g}\x00balanced_accuracy"],
            "macro_f1": ci[f"{g}\x00macro_f1"],
            "face_found_rate": ci[f"{g}\x00face_found_rate"],
            "negative_label_rate": json_number(label_negative[m].mean()) if m.any() else None,
            "negative_rate": ci[f"{g}\x00negative_rate"],
            "negative_rate_non_negative_labels": ci[f"{g}\x00negative_rate_non_negative_labels"],
            "tpr": {label: json_number(s.recall[c]) for c, label in enumerate(labels)},
            "fpr": {label: json_number(s.fpr[c]) for c, label in enumerate(labels)},
        }
    worst_value = point["worst\x00accuracy"]
    worst = None
    if math.isfinite(worst_value):
        worst = next(g for g in eligible if math.isclose(point[f"{g}\x00accuracy"], worst_value))
    return {
        "min_group_n": min_group_n,
        "groups": report_groups,
        "worst_group": worst,
        "worst_group_accuracy": ci["worst\x00accuracy"],
        "accuracy_gap": ci["gap\x00accuracy"],
        "face_found_rate_gap": ci["gap\x00face_found_rate"],
        "negative_rate_gap": ci["gap\x00negative_rate"],
        "negative_rate_non_negative_labels_gap": ci["gap\x00negative_rate_non_negative_labels"],
        "tpr_gap": {label: ci[f"tpr_gap\x00{c}"] for c, label in enumerate(labels)},
        "fpr_gap": {label: ci[f"fpr_gap\x00{c}"] for c, label in enumerate(labels)},
    }


def group_audit(
    scored: Scored,
    groups: Mapping[str, Sequence[Any] | np.ndarray],
    **options: Any,
) -> dict[str, Any]:
    """:func:`audit_column` for every group column; ``{}`` when the dataset has none."""
    return {name: audit_column(scored, values, **options) for name, values in groups.items()}
