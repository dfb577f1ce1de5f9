"""The statistics every part of mien shares: softmax, box overlap, the FER+ majority rule and the
bootstrap (percentile intervals over resampling weights, optionally by subject), in plain numpy."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_RESAMPLES: int = 1000
DEFAULT_LEVEL: float = 0.95
#: FER+ vote columns after the 8 expressions: "unknown" and "not a face".
FERPLUS_UNKNOWN, FERPLUS_NOT_FACE = 8, 9

Statistic = Callable[[np.ndarray], Mapping[str, float]]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` over the last axis, numerically stable; NaN rows stay NaN."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), as x1, y1, x2, y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """FER+ majority over all 10 vote columns (ties: the first column); -1 for unknown / not a face.

    The one rule for training and audit, so reported test numbers use the training protocol.
    """
    top = np.asarray(votes).argmax(axis=1)
    return np.where((top == FERPLUS_UNKNOWN) | (top == FERPLUS_NOT_FACE), -1, top).astype(np.int64)


# -------------------------------------------------------------------------------------- bootstrap
def cluster_codes(subjects: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Integer cluster id per item; a missing subject (None, NaN, "") is its own cluster."""
    values = list(subjects)
    codes = np.empty(len(values), dtype=np.int64)
    seen: dict[Any, int] = {}
    for i, s in enumerate(values):
        missing = s is None or s == "" or (isinstance(s, float) and math.isnan(s))
        key: Any = ("__missing__", i) if missing else s
        codes[i] = seen.setdefault(key, len(seen))
    return codes


def resample_weights(
    n: int,
    *,
    subjects: Sequence[Any] | np.ndarray | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | Sequence[int] = 0,
) -> Iterator[np.ndarray]:
    """Yield bootstrap weights: how many times each item appears in one resample.

    With ``subjects``, whole subjects are resampled (cluster bootstrap): images of one person are
    not independent, and resampling them one by one would make the intervals too narrow.
    """
    rng = np.random.default_rng(seed)
    if subjects is None:
        for _ in range(n_resamples):
            yield np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        return
    codes = cluster_codes(subjects)
    if len(codes) != n:
        raise ValueError(f"subjects has {len(codes)} entries for {n} items")
    k = int(codes.max()) + 1 if n else 0
    for _ in range(n_resamples):
        drawn = np.bincount(rng.integers(0, k, k), minlength=k).astype(np.float64)
        yield drawn[codes]


def bootstrap(statistic: Statistic, n: int, *, subjects: Sequence[Any] | np.ndarray | None = None,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int | Sequence[int] = 0) -> dict[str, np.ndarray]:
    """Evaluate ``statistic(weights)`` on each resample; return the samples per key.

    ``statistic`` maps a weight vector to named numbers, so all metrics share the same resamples
    (which is what makes paired differences and gaps meaningful).
    """
    samples: dict[str, list[float]] = {}
    for w in resample_weights(n, subjects=subjects, n_resamples=n_resamples, seed=seed):
        for key, value in statistic(w).items():
            samples.setdefault(key, []).append(float(value))
    return {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}


def percentile_interval(
    samples: np.ndarray, level: float = DEFAULT_LEVEL
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval, ignoring resamples where the statistic was undefined."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None, None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(s, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(
    statistic: Statistic,
    n: int,
    *,
    subjects: Sequence[Any] | np.ndarray | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, dict[str, float | None]]:
    """Point value and percentile CI for every number ``statistic`` returns.

    Returns ``{key: {"value": v, "ci_low": lo, "ci_high": hi}}``.
    """
    point = statistic(np.ones(n, dtype=np.float64))
    samples = bootstrap(statistic, n, subjects=subjects, n_resamples=n_resamples, seed=seed)
    out = {}
    for key, value in point.items():
        lo, hi = percentile_interval(samples.get(key, np.array([])), level)
        out[key] = {"value": json_number(value), "ci_low": lo, "ci_high": hi}
    return out


def bootstrap_mean_ci(
    values: np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | Sequence[int] = 0,
    level: float = DEFAULT_LEVEL,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the column means of ``values`` (rows resampled; NaNs ignored).

    Fewer than two rows give NaN bounds: one row says nothing about spread.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n < 2:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan.copy()
    w = np.stack(list(resample_weights(n, n_resamples=n_resamples, seed=seed)))
    finite = np.isfinite(values)
    with np.errstate(all="ignore"):
        means = (w @ np.where(finite, values, 0.0)) / (w @ finite)
    alpha = (1.0 - level) / 2.0
    return np.nanquantile(means, alpha, axis=0), np.nanquantile(means, 1.0 - alpha, axis=0)


def json_number(x: float | np.floating | None) -> float | None:
    """A float for JSON, or None for NaN/inf/None (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
