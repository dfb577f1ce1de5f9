"""Labelled datasets for ``mien evaluate`` / ``mien calibrate``.

Three formats, chosen by what ``DATA`` is:

- a **folder** of class subfolders named by labels or aliases (``happy/``, ``Angry/`` ...);
- a **CSV** with columns ``path,label`` and optionally ``subject`` and group columns (every other
  column is a group column unless ``groups=`` picks some, except, by default, columns that cannot
  be groups: ``soft_*`` label proportions and identifiers with a different value on every row,
  see :func:`default_group_columns`); relative paths are relative to the CSV;
- the **FER+ npz** (``fer2013_ferplus.npz``): one split, label = majority over the 10 FER+ vote
  columns, images whose majority is ``unknown`` or ``NF`` dropped (and counted).

A label mien does not know stops the run with an :class:`~mien.errors.InputError` naming the file
and row: guessing would silently corrupt every number. An image that cannot be read does *not* stop
the run: it is kept, and the evaluation counts and lists it as an error.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mien.audit.groups import normalise_group_values
from mien.errors import InputError
from mien.labels import EXPRESSIONS, canonical_label
from mien.manifest import file_sha256
from mien.schema import IMAGE_SUFFIXES
from mien.stats import ferplus_majority

FERPLUS_SPLITS = ("Training", "PublicTest", "PrivateTest")
_FER_KEYS = ("pixels", "usage", "ferplus_votes", "ferplus_vote_names")
#: ``--full-pipeline`` on 48 px FER crops: upscale so the detector sees a face of ~190 px, then pad
#: so the face does not touch the border (detectors need context around a face).
FER_UPSCALE = 4
FER_PAD_FRACTION = 0.5


class ImageReadError(Exception):
    """One image could not be read; the evaluation records it instead of stopping."""


@dataclass
class Dataset:
    """Labelled images, read lazily (paths) or held in memory (FER+ pixels)."""

    source: str
    format: str  # "folder" | "csv" | "ferplus_npz"
    ids: list[str]
    labels: np.ndarray  # int64 (n,), index into EXPRESSIONS
    subjects: np.ndarray | None = None  # object (n,), "" = unknown
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # column -> object (n,)
    split: str | None = None
    paths: list[Path] | None = None
    pixels: np.ndarray | None = None  # uint8 (n, H, W) grayscale, FER+ only
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count, items not loaded
    sha256: str | None = None  # of the data file (npz/csv), for the record
    skipped_columns: dict[str, str] = field(default_factory=dict)  # CSV column -> why it is no group

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_crops(self) -> bool:
        """Whether the images are face crops by nature (FER+), so crops mode is the default."""
        return self.format == "ferplus_npz"

    def labels_present(self) -> list[int]:
        return sorted(set(self.labels.tolist()))

    def read(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8, BGR (files) or grayscale (FER+); raises :class:`ImageReadError`."""
        if self.pixels is not None:
            return self.pixels[i]
        assert self.paths is not None
        return read_image(self.paths[i])

    def read_for_detector(self, i: int) -> np.ndarray:
        """Image ``i`` as BGR for the full pipeline; FER+ crops are upscaled and padded first."""
        img = self.read(i)
        if self.pixels is not None:
            return crop_to_detector_image(img)
        return img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)

    def subset(self, index: np.ndarray) -> Dataset:
        """The items at ``index`` (e.g. a seeded ``--limit`` subsample), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return Dataset(
            source=self.source,
            format=self.format,
            ids=[self.ids[i] for i in index],
            labels=self.labels[index],
            subjects=None if self.subjects is None else self.subjects[index],
            groups={k: v[index] for k, v in self.groups.items()},
            split=self.split,
            paths=None if self.paths is None else [self.paths[i] for i in index],
            pixels=None if self.pixels is None else self.pixels[index],
            dropped=dict(self.dropped),
            sha256=self.sha256,
            skipped_columns=dict(self.skipped_columns),
        )

    def describe(self) -> dict[str, Any]:
        """The ``dataset`` block of the evaluation JSON."""
        present = self.labels_present()
        return {
            "source": self.source,
            "format": self.format,
            "split": self.split,
            "sha256": self.sha256,
            "n_items": len(self),
            "dropped": dict(self.dropped),
            "labels_present": [EXPRESSIONS[i] for i in present],
            "labels_absent": [label for i, label in enumerate(EXPRESSIONS) if i not in present],
            "support": {label: int((self.labels == i).sum()) for i, label in enumerate(EXPRESSIONS)},
            "has_subjects": self.subjects is not None,
            "group_columns": list(self.groups),
            "group_columns_skipped": dict(self.skipped_columns),
        }


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to BGR uint8 (unicode paths work); :class:`ImageReadError` if not."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot open {path}: {exc.strerror or exc}") from None
    from mien.sources import DEFAULT_MAX_PIXELS, image_size

    size = image_size(data[: 1 << 16].tobytes())
    if size is not None and size[0] * size[1] > DEFAULT_MAX_PIXELS:
        raise ImageReadError(f"{path} claims {size[0]}×{size[1]} pixels, above the "
                             f"{DEFAULT_MAX_PIXELS / 1e6:g} MP limit for an image")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error:
        img = None
    if img is None:
        raise ImageReadError(f"{path} is not a readable image")
    return img


def crop_to_detector_image(
    gray: np.ndarray, upscale: int = FER_UPSCALE, pad_fraction: float = FER_PAD_FRACTION
) -> np.ndarray:
    """A tight face crop made findable by a detector: cubic upscale, then mid-grey padding.

    Padding is a constant grey, not reflection: mirrored copies of the face would be found as faces.
    """
    up = cv2.resize(gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    pad = round(max(up.shape[:2]) * pad_fraction)
    padded = cv2.copyMakeBorder(up, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=128)
    return padded if padded.ndim == 3 else cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR)


def _label_index(name: str, where: str) -> int:
    try:
        return EXPRESSIONS.index(canonical_label(name))
    except ValueError:
        raise InputError(
            f"unknown expression label {name!r} in {where}; use one of {', '.join(EXPRESSIONS)} "
            "or an alias (happy, angry, sad, surprised, disgusted, fearful ...)"
        ) from None


# ------------------------------------------------------------------------------------------ folder
def load_folder(root: Path) -> Dataset:
    """A folder of class subfolders; images anywhere below each; other files are skipped."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise InputError(
            f"{root} has no class subfolders; put images in subfolders named by expression "
            f"({', '.join(EXPRESSIONS)}), or pass a CSV with path,label columns"
        )
    ids: list[str] = []
    paths: list[Path] = []
    labels: list[int] = []
    skipped = 0
    for sub in subdirs:
        label = _label_index(sub.name, f"folder name {sub}")
        for p in sorted(sub.rglob("*")):
            if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            ids.append(p.relative_to(root).as_posix())
            paths.append(p)
            labels.append(label)
    if not ids:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under the class folders of {root}")
    dropped = {"non_image_files": skipped} if skipped else {}
    return Dataset(
        source=str(root),
        format="folder",
        ids=ids,
        labels=np.asarray(labels, dtype=np.int64),
        paths=paths,
        dropped=dropped,
    )


# --------------------------------------------------------------------------------------------- csv
#: Columns with this prefix hold a label's proportion (e.g. raters' votes, ``soft_happiness``).
SOFT_LABEL_PREFIX = "soft_"
#: Why a column is left out of the default group columns.
SOFT_LABEL_COLUMN = "label proportions, not a group"
IDENTIFIER_COLUMN = "an identifier: a different value on every row"
#: A column is an identifier when it has a distinct value on every row of at least this many.
IDENTIFIER_MIN_ROWS = 10


def default_group_columns(columns: dict[str, list[str]]) -> dict[str, str]:
    """The CSV columns that :func:`load_csv` leaves out of the group audit unless ``groups=``
    names them, each with the reason: ``soft_*`` label proportions (a group per proportion is no
    group), and identifiers (a distinct non-empty value on every one of at least
    :data:`IDENTIFIER_MIN_ROWS` rows, such as a file's source path: every group would hold one
    item). ``columns`` maps each candidate column's header name to its cells, in header order."""
    skipped = {}
    for name, column in columns.items():
        cells = [c.strip() for c in column]
        if name.lower().startswith(SOFT_LABEL_PREFIX):
            skipped[name] = SOFT_LABEL_COLUMN
        elif len(cells) >= IDENTIFIER_MIN_ROWS and all(cells) and len(set(cells)) == len(cells):
            skipped[name] = IDENTIFIER_COLUMN
    return skipped


def load_csv(path: Path, groups: Sequence[str] | None = None) -> Dataset:
    """``path,label[,subject][,group columns...]``; header names are case-insensitive."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the CSV {path}: {exc}; save it as UTF-8 text") from None
    except csv.Error as exc:
        raise InputError(f"cannot read the CSV {path}: {exc} (a field over {csv.field_size_limit() // 1024} KB "
                         "or an unclosed quote); a dataset CSV holds path,label and short group columns") from None
    if not rows:
        raise InputError(f"{path} is empty; it needs a header row with path,label")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    for needed in ("path", "label"):
        if needed not in lower:
            raise InputError(
                f"{path} has no {needed!r} column (header: {', '.join(header)}); "
                "the CSV needs path,label and optionally subject and group columns"
            )
    i_path, i_label = lower.index("path"), lower.index("label")
    i_subject = lower.index("subject") if "subject" in lower else None
    other = [i for i, h in enumerate(lower) if h not in ("path", "label", "subject")]
    if groups is not None:
        wanted = {g.strip().lower(): g for g in groups}
        missing = [g for k, g in wanted.items() if k not in lower]
        if missing:
            raise InputError(
                f"group column(s) {', '.join(missing)} not in {path} (columns: {', '.join(header)})"
            )
        other = [i for i in other if lower[i] in wanted]

    base = path.parent
    ids: list[str] = []
    paths: list[Path] = []
    labels: list[int] = []
    subjects: list[str] = []
    cells: dict[int, list[str]] = {i: [] for i in other}
    seen: dict[str, int] = {}
    for row_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        row = row + [""] * (len(header) - len(row))
        rel = row[i_path].strip()
        if not rel:
            raise InputError(f"{path} row {row_no} has an empty path; give every row an image path")
        labels.append(_label_index(row[i_label], f"{path} row {row_no}"))
        p = Path(rel)
        paths.append(p if p.is_absolute() else base / p)
        count = seen.get(rel, 0)
        seen[rel] = count + 1
        ids.append(rel if count == 0 else f"{rel}#{count + 1}")
        if i_subject is not None:
            subjects.append(row[i_subject].strip())
        for i in other:
            cells[i].append(row[i])
    if not ids:
        raise InputError(f"{path} has a header but no rows")
    skipped = {} if groups is not None else default_group_columns({header[i]: cells[i] for i in other})
    return Dataset(
        source=str(path),
        format="csv",
        ids=ids,
        labels=np.asarray(labels, dtype=np.int64),
        # an all-empty subject column carries no clusters: bootstrap items, and say so
        subjects=None if i_subject is None or not any(subjects) else np.asarray(subjects, dtype=object),
        groups={header[i]: normalise_group_values(cells[i]) for i in other if header[i] not in skipped},
        paths=paths,
        sha256=file_sha256(path),
        skipped_columns=skipped,
    )


# ---------------------------------------------------------------------------------------- FER+ npz
def _canonical_split(split: str) -> str:
    for s in FERPLUS_SPLITS:
        if split.strip().lower() == s.lower():
            return s
    raise InputError(f"unknown FER+ split {split!r}; use one of {', '.join(FERPLUS_SPLITS)}")


def load_ferplus_npz(path: Path, split: str = "PrivateTest") -> Dataset:
    """One split of the FER+ npz described in ``../shared/data/README.md``."""
    split = _canonical_split(split)
    try:
        data = np.load(path, allow_pickle=False)
        missing = [k for k in _FER_KEYS if k not in data.files]
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as an npz file: {exc}") from None
    if missing:
        raise InputError(
            f"{path} is not the FER+ npz: it lacks {', '.join(missing)}; "
            "see ../shared/data/README.md for the expected keys"
        )
    names = tuple(str(n) for n in data["ferplus_vote_names"][: len(EXPRESSIONS)])
    if names != EXPRESSIONS:
        raise InputError(f"{path}: FER+ vote columns {names} are not mien's labels {EXPRESSIONS}")
    usage = data["usage"].astype(str)
    in_split = np.flatnonzero(usage == split)
    majority = ferplus_majority(data["ferplus_votes"][in_split])
    keep = majority >= 0
    idx = in_split[keep]
    rows = data["fer2013_row"][idx] if "fer2013_row" in data.files else idx
    return Dataset(
        source=str(path),
        format="ferplus_npz",
        ids=[f"fer2013_row:{int(r)}" for r in rows],
        labels=majority[keep],
        pixels=data["pixels"][idx],
        split=split,
        dropped={"majority_unknown_or_nf": int((~keep).sum())},
        sha256=file_sha256(path),
    )


# -------------------------------------------------------------------------------------- dispatcher
def load_dataset(
    data: str | Path,
    *,
    split: str | None = None,
    groups: Sequence[str] | None = None,
    default_split: str = "PrivateTest",
) -> Dataset:
    """Load ``data`` by its kind: folder, ``.csv`` or FER+ ``.npz``.

    ``split`` applies to the npz only (``default_split`` when None: PrivateTest to report,
    PublicTest to calibrate, as the FER+ protocol asks).
    """
    path = Path(data)
    if not path.exists():
        raise InputError(f"{path} does not exist; pass a folder of class subfolders, a CSV or the FER+ npz")
    if path.is_dir():
        ds = load_folder(path)
    elif path.suffix.lower() == ".csv":
        ds = load_csv(path, groups)
    elif path.suffix.lower() == ".npz":
        ds = load_ferplus_npz(path, split or default_split)
    else:
        raise InputError(
            f"{path} is neither a folder, a .csv nor a .npz; pass a folder of class subfolders, "
            "a CSV with path,label columns, or the FER+ npz"
        )
    if split is not None and ds.format != "ferplus_npz":
        raise InputError(f"--split applies to the FER+ npz only, not to {path}")
    if groups and ds.format != "csv":
        raise InputError(f"group columns come from a CSV; {path} has none")
    return ds


def subsample(ds: Dataset, limit: int | None, seed: int = 0) -> Dataset:
    """A seeded random subset of ``limit`` items, kept in dataset order (for quick runs)."""
    if limit is None or limit >= len(ds):
        return ds
    if limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}")
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=limit, replace=False))
    out = ds.subset(idx)
    out.dropped["not_sampled"] = len(ds) - limit
    return out
