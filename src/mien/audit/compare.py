"""Two evaluations side by side (``mien evaluate --compare A.json B.json``).

Every difference is ``B - A`` with a bootstrap CI. When both evaluations scored the *same items*
(same ids, same labels: two models on one dataset) the bootstrap is **paired**: each resample draws
the same items (or subjects) for both, which removes the shared item difficulty from the noise and
gives much tighter intervals. Otherwise (two datasets) each side is resampled independently and
the difference of the two resampled values gives the interval.

Metrics are recomputed from the per-item logits stored in each JSON (which is why the evaluation
JSON keeps them), with each evaluation's own temperature and the same conventions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mien.audit import SCHEMA_VERSION
from mien.audit.evaluate import EVALUATION_SCHEMA, STATUS_OK
from mien.audit.metrics import HEADLINE, Scored, headline_statistic
from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.stats import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    Statistic,
    bootstrap,
    json_number,
    percentile_interval,
    resample_weights,
    softmax,
)

COMPARISON_SCHEMA = "mien.audit.comparison"


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """Read an evaluation JSON written by ``mien evaluate -o``; InputError if it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {p} as JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != EVALUATION_SCHEMA:
        raise InputError(f"{p} is not a mien evaluation JSON; write one with: mien evaluate DATA -o {p}")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"{p} has evaluation schema version {data.get('schema_version')}, this mien reads "
            f"{SCHEMA_VERSION}; re-run mien evaluate"
        )
    if not data.get("items"):
        raise InputError(f"{p} holds no per-item results; re-run mien evaluate without --no-items")
    return data


@dataclass(frozen=True)
class _Side:
    """One evaluation's items as arrays."""

    ids: list[str]
    labels: np.ndarray  # int64 (n,)
    probs: np.ndarray  # (n, 8), NaN rows for unscored items
    found: np.ndarray  # bool (n,)
    subjects: np.ndarray | None

    @classmethod
    def of(cls, evaluation: dict[str, Any]) -> _Side:
        items = evaluation["items"]
        logits = np.full((len(items), len(EXPRESSIONS)), np.nan)
        for i, it in enumerate(items):
            if it["status"] == STATUS_OK and it.get("logits") is not None:
                logits[i] = it["logits"]
        subjects = [it.get("subject") for it in items]
        return cls(
            ids=[str(it["id"]) for it in items],
            labels=np.array([EXPRESSIONS.index(it["label"]) for it in items], dtype=np.int64),
            probs=softmax(logits, float(evaluation["model"]["temperature"])),
            found=np.array([it["status"] == STATUS_OK for it in items], dtype=bool),
            subjects=None if all(s is None for s in subjects) else np.asarray(subjects, dtype=object),
        )

    def take(self, order: np.ndarray) -> _Side:
        return _Side(
            ids=[self.ids[i] for i in order],
            labels=self.labels[order],
            probs=self.probs[order],
            found=self.found[order],
            subjects=None if self.subjects is None else self.subjects[order],
        )


def _statistic(side: _Side) -> Statistic:
    """Headline metrics plus the share of scored items, as a weights -> numbers function."""
    head = headline_statistic(Scored.from_probs(side.probs, side.labels))

    def stat(w: np.ndarray) -> dict[str, float]:
        out = dict(head(w))
        out["scored_rate"] = float((w * side.found).sum() / w.sum()) if w.sum() > 0 else float("nan")
        return out

    return stat


def _keys() -> list[str]:
    keys = [*HEADLINE, "scored_rate"]
    keys += [f"f1/{c}" for c in range(len(EXPRESSIONS))]
    keys += [f"recall/{c}" for c in range(len(EXPRESSIONS))]
    return keys


def _pairable(a: _Side, b: _Side) -> np.ndarray | None:
    """Order of B's items matching A's, when both hold the same items with the same labels."""
    if len(a.ids) != len(b.ids) or len(set(a.ids)) != len(a.ids) or set(a.ids) != set(b.ids):
        return None
    pos = {item_id: i for i, item_id in enumerate(b.ids)}
    order = np.array([pos[i] for i in a.ids], dtype=np.int64)
    if not np.array_equal(a.labels, b.labels[order]):
        return None
    return order


def compare_evaluations(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    """Side-by-side metrics of ``a`` and ``b`` with ``b - a`` and its bootstrap CI."""
    side_a, side_b = _Side.of(a), _Side.of(b)
    order = _pairable(side_a, side_b)
    stat_a = _statistic(side_a)
    keys = _keys()
    if order is not None:
        side_b = side_b.take(order)
        stat_b = _statistic(side_b)
        subjects = side_a.subjects
        samples: dict[str, list[float]] = {k: [] for k in keys}
        samples_a: dict[str, list[float]] = {k: [] for k in keys}
        samples_b: dict[str, list[float]] = {k: [] for k in keys}
        for w in resample_weights(len(side_a.ids), subjects=subjects, n_resamples=n_resamples, seed=seed):
            va, vb = stat_a(w), stat_b(w)
            for k in keys:
                samples[k].append(vb[k] - va[k])
                samples_a[k].append(va[k])
                samples_b[k].append(vb[k])
        diff = {k: np.asarray(v) for k, v in samples.items()}
        boot_a = {k: np.asarray(v) for k, v in samples_a.items()}
        boot_b = {k: np.asarray(v) for k, v in samples_b.items()}
        method = "paired"
    else:
        stat_b = _statistic(side_b)
        boot_a = bootstrap(
            stat_a, len(side_a.ids), subjects=side_a.subjects, n_resamples=n_resamples, seed=seed
        )
        boot_b = bootstrap(
            stat_b, len(side_b.ids), subjects=side_b.subjects, n_resamples=n_resamples, seed=seed + 1
        )
        diff = {k: boot_b[k] - boot_a[k] for k in keys}
        method = "independent"

    point_a = stat_a(np.ones(len(side_a.ids)))
    point_b = stat_b(np.ones(len(side_b.ids)))
    rows: dict[str, Any] = {}
    for k in keys:
        name = k
        if "/" in k:
            metric, c = k.split("/")
            name = f"{metric}/{EXPRESSIONS[int(c)]}"
        lo_a, hi_a = percentile_interval(boot_a[k], level)
        lo_b, hi_b = percentile_interval(boot_b[k], level)
        lo_d, hi_d = percentile_interval(diff[k], level)
        value_a, value_b = json_number(point_a[k]), json_number(point_b[k])
        rows[name] = {
            "a": {"value": value_a, "ci_low": lo_a, "ci_high": hi_a},
            "b": {"value": value_b, "ci_low": lo_b, "ci_high": hi_b},
            "difference": {
                "value": None if value_a is None or value_b is None else value_b - value_a,
                "ci_low": lo_d,
                "ci_high": hi_d,
                "excludes_zero": None if lo_d is None or hi_d is None else bool(lo_d > 0 or hi_d < 0),
            },
        }

    def describe(e: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": e.get("model"),
            "dataset": {k: e.get("dataset", {}).get(k) for k in ("source", "format", "split", "n_items")},
            "mode": e.get("mode"),
        }

    return {
        "schema": COMPARISON_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "a": describe(a),
        "b": describe(b),
        "bootstrap": {
            "method": method,
            "n_resamples": n_resamples,
            "seed": seed,
            "level": level,
            "unit": "subject" if side_a.subjects is not None else "item",
        },
        "n_items": {"a": len(side_a.ids), "b": len(side_b.ids)},
        "metrics": rows,
    }
