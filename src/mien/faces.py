"""The faces of one frame as a struct of arrays: the record every engine stage takes and returns.

Detection fills the boxes, scores and landmarks; tracking the track ids; quality the quality
columns and the abstention; the expression model the probabilities; smoothing the smoothed ones.
A column a stage has not filled yet holds its "not measured" value (NaN, -1, ``False``, ``""``).
New per-face measures (face geometry, ...) go into :attr:`Faces.data` and reach the results table
without further wiring (see :func:`mien.schema.table_columns`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mien.labels import EXPRESSIONS

_N_LANDMARKS = 5
_N_CLASSES = len(EXPRESSIONS)


def _unset() -> np.ndarray:
    return np.empty(0)


# column -> (shape after the face axis, dtype, value while not measured; None: must be given)
_SPEC: dict[str, tuple[tuple[int, ...], Any, Any]] = {
    "xyxy": ((4,), np.float32, None),
    "score": ((), np.float32, None),
    "landmarks": ((_N_LANDMARKS, 2), np.float32, np.nan),
    "track_id": ((), np.int64, -1),
    "face_px": ((), np.float64, np.nan),
    "sharpness": ((), np.float64, np.nan),
    "yaw_deg": ((), np.float64, np.nan),
    "roll_deg": ((), np.float64, np.nan),
    "abstain": ((), np.bool_, False),
    "abstain_reason": ((), object, ""),
    "probs": ((_N_CLASSES,), np.float64, np.nan),
    "smoothed": ((_N_CLASSES,), np.float64, np.nan),
}


@dataclass
class Faces:
    """n faces of one frame, in pixels of that (upright) frame; every column has n rows.

    ``xyxy`` (n,4) boxes; ``score`` (n,) detector confidence; ``landmarks`` (n,5,2) the detector's
    five points (eyes, nose tip, mouth corners); ``track_id`` (n,) anonymous per-source track, -1
    while untracked; ``face_px``, ``sharpness``, ``yaw_deg``, ``roll_deg`` (n,) quality measures;
    ``abstain`` (n,) and ``abstain_reason`` (n,) the abstention; ``probs`` and ``smoothed`` (n,8)
    raw and smoothed expression probabilities over :data:`mien.labels.EXPRESSIONS` (NaN where none
    was given); ``data`` more per-face columns, each an array whose first axis has n rows.

    A column passed empty (the default) is filled with its "not measured" value.
    """

    xyxy: np.ndarray = field(default_factory=_unset)
    score: np.ndarray = field(default_factory=_unset)
    landmarks: np.ndarray = field(default_factory=_unset)
    track_id: np.ndarray = field(default_factory=_unset)
    face_px: np.ndarray = field(default_factory=_unset)
    sharpness: np.ndarray = field(default_factory=_unset)
    yaw_deg: np.ndarray = field(default_factory=_unset)
    roll_deg: np.ndarray = field(default_factory=_unset)
    abstain: np.ndarray = field(default_factory=_unset)
    abstain_reason: np.ndarray = field(default_factory=_unset)
    probs: np.ndarray = field(default_factory=_unset)
    smoothed: np.ndarray = field(default_factory=_unset)
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, np.float32)
        n = 0 if xyxy.size == 0 else len(xyxy)
        for name, (shape, dtype, missing) in _SPEC.items():
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.size == 0:
                if n and missing is None:
                    raise ValueError(f"Faces: {name} is required for {n} faces")
                value = np.full((n, *shape), missing, dtype=dtype)
            if value.shape != (n, *shape):
                raise ValueError(f"Faces: {name} has shape {value.shape}, expected {(n, *shape)}")
            object.__setattr__(self, name, value)
        data = {}
        for key, column in self.data.items():
            column = np.asarray(column)
            if column.ndim == 0 or len(column) != n:
                raise ValueError(f"Faces: data column {key!r} has shape {column.shape}, expected {n} rows")
            if key in _SPEC:
                raise ValueError(f"Faces: data column {key!r} would shadow the built-in column")
            data[key] = column
        self.data = data

    @classmethod
    def empty(cls) -> Faces:
        return cls()

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Faces:
        """The faces selected by an int (kept as one face), a slice, a boolean mask or indices."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        columns = {name: getattr(self, name)[index] for name in _SPEC}
        return Faces(**columns, data={k: v[index] for k, v in self.data.items()})

    def replace(self, **columns: Any) -> Faces:
        """A copy with some columns replaced (validated again); ``data`` entries merge into data."""
        data = columns.pop("data", None)
        out = dataclasses.replace(self, **columns)
        if data:
            out = dataclasses.replace(out, data={**self.data, **data})
        return out

    @classmethod
    def merge(cls, parts: Sequence[Faces]) -> Faces:
        """One Faces holding the faces of ``parts`` in order; their ``data`` keys must agree."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError("Faces.merge: the parts carry different data columns")
        columns = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _SPEC}
        return cls(**columns, data={k: np.concatenate([p.data[k] for p in parts]) for k in keys})

    # ------------------------------------------------------------------ derived
    @property
    def sizes(self) -> np.ndarray:
        """Shorter side of each box, in pixels."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return wh.min(axis=1)

    @property
    def classified(self) -> np.ndarray:
        """(n,) True where the face has smoothed probabilities (not abstained, classified)."""
        return ~self.abstain & np.isfinite(self.smoothed).all(axis=1)

    @property
    def top_index(self) -> np.ndarray:
        """(n,) index of the top smoothed expression, -1 where the face has none."""
        ok = self.classified
        top = np.argmax(np.where(ok[:, None], self.smoothed, 0.0), axis=1) if len(self) else np.zeros(0, int)
        return np.where(ok, top, -1)

    @property
    def top_label(self) -> list[str]:
        """The top smoothed expression of each face, ``""`` where it has none."""
        return [EXPRESSIONS[k] if k >= 0 else "" for k in self.top_index]

    @property
    def top_prob(self) -> np.ndarray:
        """Its smoothed probability, NaN where the face has none."""
        top = self.top_index
        picked = self.smoothed[np.arange(len(self)), np.maximum(top, 0)] if len(self) else np.zeros(0)
        return np.where(top >= 0, picked, np.nan)
