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


class _Kalman:
    """Constant-velocity Kalman filter on box centre and size (cx, cy, w, h) with time steps in s."""

    def __init__(self, box: np.ndarray) -> None:
        cx, cy, w, h = _to_cxcywh(box)
        self.x = np.array([cx, cy, w, h, 0, 0, 0, 0], np.float64)
        s = max(w, h)
        self.P = np.diag([0.1 * s, 0.1 * s, 0.1 * s, 0.1 * s, 2 * s, 2 * s, s, s]) ** 2

    def predict(self, dt: float) -> np.ndarray:
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        s = max(self.x[2], self.x[3], 1.0)
        q = np.array([0.05 * s] * 4 + [1.0 * s] * 4) ** 2 * max(dt, 1e-3)
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + np.diag(q)
        return self.box

    def update(self, box: np.ndarray) -> None:
        z = np.array(_to_cxcywh(box))
        s = max(z[2], z[3], 1.0)
        R = np.diag([0.05 * s] * 4) ** 2
        H = np.zeros((4, 8))
        H[:, :4] = np.eye(4)
        y = z - H @ self.x
        S = H @ self.P @ H.T + R
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ y
        self.P = (np.eye(8) - K @ H) @ self.P

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _to_cxcywh(box: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)


@dataclass
class FaceTrack:
    """One anonymous face track."""

    track_id: int
    kalman: _Kalman
    last_time: float
    hits: int = 1
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))


class FaceTracker:
    """Assigns a track id to every detection of a frame. Feed frames in time order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[FaceTrack] = []
        self._next_id = 0
        self._last_time: float | None = None

    def active_tracks(self) -> list[FaceTrack]:
        """Tracks seen in the most recent frame."""
        return [t for t in self.tracks if t.last_time == self._last_time]

    def predicted_boxes(self, time_s: float, active_only: bool = True) -> np.ndarray:
        """Where tracks are expected at ``time_s`` (without changing state)."""
        out = []
        for t in self.active_tracks() if active_only else self.tracks:
            dt = max(time_s - t.last_time, 0.0)
            x = t.kalman.x
            cx, cy, w, h = x[:4] + x[4:] * dt
            out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        return np.asarray(out, np.float64).reshape(-1, 4)

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

        self.tracks = [t for t in self.tracks if time_s - t.last_time <= cfg.max_gap_s]
        predicted = np.array(
            [t.kalman.predict(max(time_s - t.last_time, 0.0)) for t in self.tracks]
        ).reshape(-1, 4)
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
            matched_tracks = []
            for r, c in enumerate(row_to_col):
                if c < 0 or cost[r, c] >= 9.0:
                    continue
                tr = self.tracks[free_tracks[r]]
                d = det_idx[c]
                tr.kalman.update(boxes[d])
                tr.last_time = time_s
                tr.hits += 1
                tr.box = boxes[d]
                ids[d] = tr.track_id
                matched_tracks.append(free_tracks[r])
            free_tracks = [t for t in free_tracks if t not in matched_tracks]

        # unmatched tracks keep their predicted state; restore time so dt counts from last sighting
        for i in free_tracks:
            tr = self.tracks[i]
            tr.kalman.x[:4] -= tr.kalman.x[4:] * max(time_s - tr.last_time, 0.0)

        for d in np.flatnonzero(ids < 0):
            if scores[d] < cfg.high_score:
                continue
            tr = FaceTrack(self._next_id, _Kalman(boxes[d]), time_s, box=boxes[d])
            self._next_id += 1
            self.tracks.append(tr)
            ids[d] = tr.track_id
        self._last_time = time_s
        return ids
