"""Schema-conformant synthetic results, for tests and for trying ``mien report`` without a model.

Reporting logic (episodes, event windows, abstention shading) must be checked against answers
known in advance, which real video cannot give. These helpers build results tables whose every
column follows ``docs/schema.md`` but whose probabilities are chosen by hand.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mien.labels import EXPRESSIONS
from mien.schema import COLUMNS


def make_track(source: str, track_id: int, times: Sequence[float] | np.ndarray,
               smooth: Mapping[str, Sequence[float] | np.ndarray | float] | None = None,
               abstain: Sequence[bool] | np.ndarray | None = None, *, fps: float = 25.0,
               box: tuple[float, float, float, float] = (100.0, 80.0, 200.0, 200.0),
               abstain_reason: str = "small_face") -> pd.DataFrame:
    """One track's rows. ``smooth`` gives chosen labels' smoothed probabilities (arrays or constants);
    the remaining probability mass is spread evenly over the other labels, so rows sum to 1.
    Abstained rows get NaN probabilities, ``top_label == ""`` and ``abstain_reason``.
    """
    t = np.asarray(times, dtype=float)
    n = t.size
    given = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in (smooth or {}).items()}
    others = [label for label in EXPRESSIONS if label not in given]
    rest = 1.0 - (np.sum(list(given.values()), axis=0) if given else np.zeros(n))
    probs = np.empty((n, len(EXPRESSIONS)))
    for i, label in enumerate(EXPRESSIONS):
        probs[:, i] = given[label] if label in given else np.clip(rest, 0, None) / max(len(others), 1)
    ab = np.zeros(n, dtype=bool) if abstain is None else np.asarray(abstain, dtype=bool)
    probs[ab] = np.nan
    x1, y1, x2, y2 = box
    data: dict[str, object] = {
        "source": [source] * n,
        "frame_index": np.round(t * fps).astype(np.int64),
        "time_s": t,
        "track_id": np.full(n, track_id, dtype=np.int64),
        "x1": np.full(n, x1), "y1": np.full(n, y1), "x2": np.full(n, x2), "y2": np.full(n, y2),
        "det_score": np.full(n, 0.9),
    }
    w, h = x2 - x1, y2 - y1
    marks = [(0.35, 0.4), (0.65, 0.4), (0.5, 0.55), (0.38, 0.75), (0.62, 0.75)]
    for k, (fx, fy) in enumerate(marks):
        data[f"lm{k}_x"] = np.full(n, x1 + fx * w)
        data[f"lm{k}_y"] = np.full(n, y1 + fy * h)
    data.update({
        "face_px": np.where(ab, min(w, h) / 4, min(w, h)),
        "sharpness": np.full(n, 0.5),  # a sharp video face (docs/schema.md: about 0.2-0.9)
        "yaw_deg": np.zeros(n),
        "roll_deg": np.zeros(n),
        "abstain": ab,
        "abstain_reason": np.where(ab, abstain_reason, ""),
    })
    for i, label in enumerate(EXPRESSIONS):
        data[f"prob_{label}"] = probs[:, i]
    for i, label in enumerate(EXPRESSIONS):
        data[f"smooth_{label}"] = probs[:, i]
    top = np.where(ab, -1, np.nanargmax(np.where(ab[:, None], 0, probs), axis=1))
    data["top_label"] = ["" if k < 0 else EXPRESSIONS[k] for k in top]
    data["top_prob"] = np.where(ab, np.nan, np.nanmax(np.where(ab[:, None], 0, probs), axis=1))
    return pd.DataFrame(data, columns=list(COLUMNS))


def demo_results(source: str = "demo.mp4", duration_s: float = 20.0, fps: float = 25.0,
                 n_tracks: int = 2, seed: int = 0) -> pd.DataFrame:
    """A plausible multi-track table: drifting expressions, a smile bout, an abstained stretch."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, duration_s, 1.0 / fps)
    parts = []
    for track in range(1, n_tracks + 1):
        phase = rng.uniform(0, 2 * np.pi)
        happy = 0.15 + 0.12 * np.sin(times / 2.0 + phase)
        bout = (times > duration_s * 0.3 + track) & (times < duration_s * 0.3 + track + 3.0)
        happy = np.where(bout, 0.8, happy)
        surprise = np.clip(0.1 + 0.05 * rng.standard_normal(times.size).cumsum() / 10, 0.0, 0.3)
        abstain = (times > duration_s * 0.7) & (times < duration_s * 0.7 + 1.2)
        frame = make_track(source, track, times, {"happiness": happy, "surprise": surprise,
                                                  "neutral": np.clip(0.9 - happy - surprise, 0, 1) * 0.8},
                           abstain, fps=fps, box=(60.0 + 220 * (track - 1), 60.0, 180.0 + 220 * (track - 1),
                                                  200.0))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)
