"""Causal temporal smoothing of expression probabilities, per track.

An exponential filter over time (not frames), so it behaves the same at any frame rate, stride or
under dropped live frames, and needs only the past — it works on live streams. The raw per-frame
probabilities are always kept beside the smoothed ones.
"""
from __future__ import annotations

import math

import numpy as np

from mien.faces import Faces


class ExpressionSmoother:
    """Per-track exponential moving average with time constant ``tau_s`` seconds.

    Weight of a new observation: ``1 - exp(-dt / tau_s)``. After a gap longer than ``reset_s``
    (e.g. the face was away) the track's state restarts from the new observation.
    """

    def __init__(self, tau_s: float = 0.3, reset_s: float = 2.0) -> None:
        if tau_s < 0:
            raise ValueError("smoothing time constant must be ≥ 0")
        self.tau_s, self.reset_s = float(tau_s), float(reset_s)
        self._state: dict[int, tuple[float, np.ndarray]] = {}

    def update(self, track_id: int, time_s: float, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, np.float64)
        prev = self._state.get(track_id)
        if prev is None or self.tau_s == 0 or time_s - prev[0] > self.reset_s or time_s < prev[0]:
            out = probs.copy()
        else:
            dt = max(time_s - prev[0], 0.0)
            alpha = 1.0 - math.exp(-dt / self.tau_s)
            out = prev[1] + alpha * (probs - prev[1])
        self._state[track_id] = (time_s, out)
        return out

    def smooth(self, faces: Faces, time_s: float) -> Faces:
        """``faces`` with ``smoothed`` set for every tracked face that has probabilities."""
        smoothed = np.full_like(faces.probs, np.nan)
        has = (faces.track_id >= 0) & np.isfinite(faces.probs).all(axis=1)
        for i in np.flatnonzero(has):
            smoothed[i] = self.update(int(faces.track_id[i]), time_s, faces.probs[i])
        return faces.replace(smoothed=smoothed)
