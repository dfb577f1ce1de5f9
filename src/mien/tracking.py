"""Anonymous multi-face tracking: Kalman motion + IoU association, ByteTrack-style.

Each face gets a per-source ``track_id`` that stays stable while the face is visible and survives
short misses and occlusions. Association uses only geometry (box overlap and motion), never
appearance embeddings: mien follows a face through time, it never recognises who it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import lap
import numpy as np

from mien.faces import Faces
from mien.options import TrackerConfig
from mien.stats import iou_matrix

_Q_SHARE = np.array([0.05] * 4 + [1.0] * 4)  # process noise: sd over 1 s, as a share of the face's size


class _KalmanBank:
    """Constant-velocity Kalman filters on box centre and size (cx, cy, w, h), time steps in s, one
    row per track: states ``x`` (n, 8) and covariances ``P`` (n, 8, 8), predicted and updated for
    all the frame's tracks at once (the same equations as one filter per track, without a Python
    loop over them)."""

    def __init__(self) -> None:
        self.x = np.zeros((0, 8), np.float64)
        self.P = np.zeros((0, 8, 8), np.float64)

    def add(self, boxes: np.ndarray) -> None:
        """New filters at ``boxes`` (k, 4), at rest, uncertain in proportion to the face's size."""
        z = _to_cxcywh(boxes)
        s = z[:, 2:].max(1)
        x = np.hstack([z, np.zeros((len(z), 4))])
        P = np.zeros((len(z), 8, 8))
        P[:, np.arange(8), np.arange(8)] = (s[:, None] * np.array([0.1] * 4 + [2, 2, 1, 1])) ** 2
        self.x, self.P = np.vstack([self.x, x]), np.concatenate([self.P, P])

    def keep(self, rows: np.ndarray) -> None:
        self.x, self.P = self.x[rows], self.P[rows]

    def predict(self, dt: np.ndarray) -> np.ndarray:
        """Advance every filter by its own ``dt`` (n,); the predicted boxes (n, 4)."""
        x, P = self.x, self.P
        dt = np.asarray(dt, np.float64).reshape(len(x))
        s = np.maximum(x[:, 2:4].max(1), 1.0)
        q = (s[:, None] * _Q_SHARE) ** 2 * np.maximum(dt, 1e-3)[:, None]
        x = x.copy()
        x[:, :4] += x[:, 4:] * dt[:, None]
        x[:, 2:4] = np.maximum(x[:, 2:4], 1.0)
        # F P F^T for F = [[I, dt I], [0, I]], by 4x4 blocks [[A, B], [C, D]] of P
        d = dt[:, None, None]
        B, C, D = P[:, :4, 4:], P[:, 4:, :4], P[:, 4:, 4:]
        out = np.empty_like(P)
        out[:, :4, :4] = P[:, :4, :4] + d * (B + C) + (d * d) * D
        out[:, :4, 4:] = B + d * D
        out[:, 4:, :4] = C + d * D
        out[:, 4:, 4:] = D
        out.reshape(len(x), 64)[:, ::9] += q
        self.x, self.P = x, out
        return self.boxes()

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct the filters ``rows`` with their measured ``boxes`` (k, 4)."""
        if not len(rows):
            return
        z = _to_cxcywh(boxes)
        x, P = self.x[rows], self.P[rows]
        s = np.maximum(z[:, 2:].max(1), 1.0)
        S = P[:, :4, :4].copy()
        S.reshape(len(rows), 16)[:, ::5] += (0.05 * s[:, None]) ** 2
        # the gain K = P H^T S^-1; P and S are symmetric, so K^T = S^-1 (H P)
        Kt = np.linalg.solve(S, P[:, :4, :])  # (k, 4, 8)
        self.x[rows] = x + (Kt.transpose(0, 2, 1) @ (z - x[:, :4])[:, :, None])[:, :, 0]
        self.P[rows] = P - Kt.transpose(0, 2, 1) @ P[:, :4, :]

    def boxes(self, dt: np.ndarray | float = 0.0, rows: np.ndarray | None = None) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 of the filters ``rows`` (default all), each mean moved on by its
        ``dt`` (without changing state)."""
        x = self.x if rows is None else self.x[rows]
        return _to_xyxy(x[:, :4] + x[:, 4:] * np.asarray(dt, np.float64).reshape(-1, 1))


def _to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.empty_like(b)
    np.add(b[:, :2], b[:, 2:], out=out[:, :2])
    out[:, :2] *= 0.5
    np.maximum(b[:, 2:] - b[:, :2], 1.0, out=out[:, 2:])
    return out


def _to_xyxy(c: np.ndarray) -> np.ndarray:
    out = np.empty_like(c)
    half = c[:, 2:] / 2
    np.subtract(c[:, :2], half, out=out[:, :2])
    np.add(c[:, :2], half, out=out[:, 2:])
    return out


@dataclass
class FaceTrack:
    """One anonymous face track (its motion filter is row ``i`` of the tracker's bank, for the
    track at position ``i`` of :attr:`FaceTracker.tracks`)."""

    track_id: int
    last_time: float
    hits: int = 1
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))


class FaceTracker:
    """Assigns a track id to every detection of a frame. Feed frames in time order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[FaceTrack] = []
        self._kalman = _KalmanBank()  # row i: self.tracks[i]
        self._next_id = 0
        self._last_time: float | None = None

    def active_tracks(self) -> list[FaceTrack]:
        """Tracks seen in the most recent frame."""
        return [t for t in self.tracks if t.last_time == self._last_time]

    def predicted_boxes(self, time_s: float, active_only: bool = True) -> np.ndarray:
        """Where tracks are expected at ``time_s`` (without changing state)."""
        rows = np.array([i for i, t in enumerate(self.tracks) if not active_only or t.last_time == self._last_time],
                        np.int64)
        if not len(rows):
            return np.zeros((0, 4), np.float64)
        last = np.array([self.tracks[i].last_time for i in rows], np.float64)
        return self._kalman.boxes(np.maximum(time_s - last, 0.0), rows)

    def update(self, faces: Faces, time_s: float) -> Faces:
        """``faces`` (one frame's, at ``time_s``) with their ``track_id`` set; -1 for a face that
        belongs to no track.

        Faces scored below ``high_score`` are matched to existing tracks only (second stage,
        ByteTrack's insight: a weak detection of a known face is still that face) and start no track.
        """
        return faces.replace(track_id=self._assign(faces.xyxy, faces.score, time_s))

    def _assign(self, boxes: np.ndarray, scores: np.ndarray, time_s: float) -> np.ndarray:
        cfg = self.config
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        ids = np.full(len(boxes), -1, np.int64)

        alive = [i for i, t in enumerate(self.tracks) if time_s - t.last_time <= cfg.max_gap_s]
        if len(alive) < len(self.tracks):
            self.tracks = [self.tracks[i] for i in alive]
            self._kalman.keep(np.array(alive, np.int64))
        since = np.maximum(time_s - np.array([t.last_time for t in self.tracks], np.float64), 0.0)
        predicted = self._kalman.predict(since)
        free_tracks = list(range(len(self.tracks)))
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero(scores < cfg.high_score)
        for det_idx in (high, low):
            if len(det_idx) == 0 or not free_tracks:
                continue
            cost = 1.0 - iou_matrix(predicted[free_tracks], boxes[det_idx])
            # second chance by centre distance (fast motion, strided frames)
            pc = (predicted[free_tracks, :2] + predicted[free_tracks, 2:]) / 2
            dc = (boxes[det_idx, :2] + boxes[det_idx, 2:]) / 2
            size = np.maximum(
                (predicted[free_tracks, 2:] - predicted[free_tracks, :2]).max(1), 1.0
            )[:, None]
            dist = np.linalg.norm(pc[:, None] - dc[None], axis=2) / size
            centre_ok = dist < cfg.centre_gate
            cost = np.where(
                cost <= 1 - cfg.match_iou, cost, np.where(centre_ok, 1 - cfg.match_iou + dist, 9.0)
            )
            _, row_to_col, _ = lap.lapjv(cost, extend_cost=True)  # Jonker-Volgenant, as ByteTrack
            matched_rows, matched_dets = [], []
            for r, c in enumerate(row_to_col):
                if c < 0 or cost[r, c] >= 9.0:
                    continue
                tr = self.tracks[free_tracks[r]]
                d = det_idx[c]
                tr.last_time = time_s
                tr.hits += 1
                tr.box = boxes[d]
                ids[d] = tr.track_id
                matched_rows.append(free_tracks[r])
                matched_dets.append(d)
            self._kalman.update(np.array(matched_rows, np.int64), boxes[np.array(matched_dets, np.int64)])
            matched = set(matched_rows)
            free_tracks = [t for t in free_tracks if t not in matched]

        # unmatched tracks keep their predicted state; restore time so dt counts from last sighting
        if free_tracks:
            rows = np.array(free_tracks, np.int64)
            self._kalman.x[rows, :4] -= self._kalman.x[rows, 4:] * since[rows, None]

        new = [d for d in np.flatnonzero(ids < 0) if scores[d] >= cfg.high_score]
        for d in new:
            self.tracks.append(FaceTrack(self._next_id, time_s, box=boxes[d]))
            ids[d] = self._next_id
            self._next_id += 1
        if new:
            self._kalman.add(boxes[np.array(new, np.int64)])
        self._last_time = time_s
        return ids
