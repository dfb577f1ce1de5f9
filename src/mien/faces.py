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
from functools import lru_cache
from typing import Any

import numpy as np

from mien.labels import EXPRESSIONS

_N_LANDMARKS = 5
_N_CLASSES = len(EXPRESSIONS)


def _column(shape: tuple[int, ...], dtype: Any, missing: Any = None) -> Any:
    """A per-face column: its shape after the face axis, its dtype, and the value it holds while
    not measured (None: it must be given for a non-empty Faces). Passed empty, it is filled."""
    return field(default_factory=lambda: np.empty(0), metadata={"shape": shape, "dtype": dtype, "missing": missing})


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

    xyxy: np.ndarray = _column((4,), np.float32)
    score: np.ndarray = _column((), np.float32)
    landmarks: np.ndarray = _column((_N_LANDMARKS, 2), np.float32, np.nan)
    track_id: np.ndarray = _column((), np.int64, -1)
    face_px: np.ndarray = _column((), np.float64, np.nan)
    sharpness: np.ndarray = _column((), np.float64, np.nan)
    yaw_deg: np.ndarray = _column((), np.float64, np.nan)
    roll_deg: np.ndarray = _column((), np.float64, np.nan)
    abstain: np.ndarray = _column((), np.bool_, False)
    abstain_reason: np.ndarray = _column((), object, "")
    probs: np.ndarray = _column((_N_CLASSES,), np.float64, np.nan)
    smoothed: np.ndarray = _column((_N_CLASSES,), np.float64, np.nan)
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, np.float32)
        n = 0 if xyxy.size == 0 else len(xyxy)
        for name in _columns():
            setattr(self, name, _checked(name, getattr(self, name), n))
        self.data = _checked_data(self.data, n)

    @classmethod
    def empty(cls) -> Faces:
        return cls()

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Faces:
        """The faces selected by an int (kept as one face), a slice, a boolean mask or indices."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        # rows of valid columns are valid: no need to check them again (this runs on every frame)
        return self._trusted({name: getattr(self, name)[index] for name in _columns()},
                             {k: v[index] for k, v in self.data.items()})

    def replace(self, **columns: Any) -> Faces:
        """A copy with some columns replaced (those are checked); ``data`` entries merge into data."""
        n = len(self)
        data = columns.pop("data", None)
        unknown = set(columns) - set(_columns())
        if unknown:
            raise TypeError(f"Faces has no column(s) {', '.join(sorted(unknown))}; put new ones in data=")
        out = {name: getattr(self, name) for name in _columns()}
        out.update({name: _checked(name, value, n) for name, value in columns.items()})
        return self._trusted(out, {**self.data, **_checked_data(data, n)} if data else dict(self.data))

    @classmethod
    def _trusted(cls, columns: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> Faces:
        """A Faces from columns already known to be valid, without checking them again."""
        out = object.__new__(cls)
        out.__dict__.update(columns)
        out.data = data
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
        columns = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _columns()}
        return cls(**columns, data={k: np.concatenate([p.data[k] for p in parts]) for k in keys})

    def clipped(self, width: int, height: int) -> Faces:
        """A copy with the boxes clipped to a ``width`` x ``height`` frame."""
        if not len(self):
            return self
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
        return self.replace(xyxy=xyxy)

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


@lru_cache(maxsize=1)
def _columns() -> dict[str, tuple[tuple[int, ...], Any, Any]]:
    """Each per-face column of :class:`Faces`: (shape after the face axis, dtype, missing value)."""
    return {f.name: (f.metadata["shape"], f.metadata["dtype"], f.metadata["missing"])
            for f in dataclasses.fields(Faces) if "shape" in f.metadata}


def _checked(name: str, value: Any, n: int) -> np.ndarray:
    """Column ``name`` for n faces in its dtype; an empty one filled with its "not measured" value."""
    shape, dtype, missing = _columns()[name]
    column = np.asarray(value, dtype=dtype)
    if column.size == 0:
        if n and missing is None:
            raise ValueError(f"Faces: {name} is required for {n} faces")
        column = np.full((n, *shape), missing, dtype=dtype)
    if column.shape != (n, *shape):
        raise ValueError(f"Faces: {name} has shape {column.shape}, expected {(n, *shape)}")
    return column


def _checked_data(data: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, column in data.items():
        column = np.asarray(column)
        if column.ndim == 0 or len(column) != n:
            raise ValueError(f"Faces: data column {key!r} has shape {column.shape}, expected {n} rows")
        if key in _columns():
            raise ValueError(f"Faces: data column {key!r} would shadow the built-in column")
        out[key] = column
    return out
