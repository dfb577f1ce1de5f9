"""The labelled expression sets in ``../shared/data/expressions`` as training and validation data.

    python -m mien.training.expressions crops      # detect + align every image once, cache under runs/
    python -m mien.training.expressions splits     # write the validation folds as CSVs for mien evaluate

Each set's ``labels.csv`` (``path,label,subject,...,soft_<label>``) is read as it is. Every image
goes once through mien's own face detector and 5-point alignment, exactly as
:meth:`mien.pipeline.Analyzer.classify_image` does at run time (the largest face, grey, aligned to
the model card's template), so the network trains on crops framed the way the engine frames them.
The crops are cached in ``runs/expression_crops/<set>.npz`` (never committed); images where the
detector finds no face are kept in the cache with ``found=False`` and counted.

Splits are **subject-disjoint, fixed and seeded**: the set's performers are shuffled with a seed
derived from the set's name and dealt round-robin into ``folds`` folds; fold 0 is validation, the
rest training. A performer therefore never appears in both. muxspace has no subject column (press
and film stills): its held-out share is drawn per image and can share people with its training
part, so it is reported, never used to select.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.labels import EXPRESSIONS
from mien.training import cli_errors

EXPRESSIONS_ROOT = Path("../shared/data/expressions")
CACHE_DIR = Path("runs/expression_crops")
SPLIT_SEED = 20261201
CROP_SIZE = 48


@dataclass(frozen=True)
class SourceSpec:
    """How one set enters training: its folds, its share of every training batch and its labels."""

    name: str
    folds: int  # subject folds; fold 0 validates (0: no validation part)
    share: float  # of every training epoch's samples
    label_smoothing: float  # mixed into the soft labels (noisy, single-annotator sets)
    selects: bool  # whether its validation fold enters the selection rule
    groups: tuple[str, ...] = ()  # group columns for the audits


SOURCES: dict[str, SourceSpec] = {
    # posed, 29 performers, raters' vote proportions as soft labels
    "taiwanese_chen2013": SourceSpec("taiwanese_chen2013", 3, 0.16, 0.0, True, ("performance_type",)),
    # one annotator per image, very skewed: down-weighted and smoothed
    "muxspace": SourceSpec("muxspace", 7, 0.14, 0.2, False, ("source_kind",)),
    # neutral and smiling, 102 people; gender/ethnicity are the set's own annotations (audits only)
    "london_face_research_lab": SourceSpec("london_face_research_lab", 3, 0.05, 0.05, True,
                                           ("gender", "ethnicity")),
    "yale_faces": SourceSpec("yale_faces", 3, 0.03, 0.05, False, ()),
}
FERPLUS_SHARE = 0.62  # the rest of every epoch: FER+ Training


@dataclass
class LabelledSet:
    """One set's rows from its ``labels.csv``."""

    name: str
    root: Path
    paths: list[str]
    labels: np.ndarray  # int64 (n,)
    soft: np.ndarray  # float32 (n, 8), rows sum to 1
    subjects: np.ndarray  # object (n,), "" where the set has none
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # every other column, as text

    def __len__(self) -> int:
        return len(self.labels)


def read_labels(root: Path) -> LabelledSet:
    """``root/labels.csv`` as a :class:`LabelledSet`; soft labels from its ``soft_<label>`` columns
    (renormalised), one-hot where a row's are missing."""
    path = root / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (see ../shared/data/README.md)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    labels = np.array([EXPRESSIONS.index(r["label"]) for r in rows], dtype=np.int64)
    soft = np.zeros((len(rows), len(EXPRESSIONS)), np.float32)
    for j, name in enumerate(EXPRESSIONS):
        key = f"soft_{name}"
        if key in rows[0]:
            soft[:, j] = [float(r[key] or 0) for r in rows]
    totals = soft.sum(1)
    soft[totals <= 0] = np.eye(len(EXPRESSIONS), dtype=np.float32)[labels[totals <= 0]]
    soft /= soft.sum(1, keepdims=True)
    skip = {"path", "label", "subject"} | {f"soft_{n}" for n in EXPRESSIONS}
    columns = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0] if k not in skip}
    subjects = np.array([r.get("subject", "") or "" for r in rows], dtype=object)
    return LabelledSet(root.name, root, [r["path"] for r in rows], labels, soft, subjects, columns)


def _seed(name: str) -> int:
    return SPLIT_SEED + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def subject_folds(subjects: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold (0..folds-1) of every row: whole subjects dealt round-robin after a seeded shuffle of
    the sorted subject names, so the split depends only on the names and the seed. Rows without a
    subject ("") are dealt one by one (they cannot be kept together)."""
    subjects = np.asarray(subjects, dtype=object)
    fold = np.empty(len(subjects), dtype=np.int64)
    rng = np.random.default_rng(seed)
    named = sorted({s for s in subjects.tolist() if s})
    order = rng.permutation(len(named))
    by_subject = {named[k]: rank % folds for rank, k in enumerate(order)}
    blank = np.flatnonzero(subjects == "")
    for i, s in enumerate(subjects.tolist()):
        if s:
            fold[i] = by_subject[s]
    fold[blank] = rng.permutation(len(blank)) % folds
    return fold


def split_of(ls: LabelledSet, spec: SourceSpec) -> np.ndarray:
    """``True`` where a row is validation (fold 0), for the set's fixed seeded folds."""
    if spec.folds <= 1:
        return np.zeros(len(ls), dtype=bool)
    return subject_folds(ls.subjects, spec.folds, _seed(spec.name)) == 0


# ------------------------------------------------------------------------------ aligned-crop cache
def engine_crop(image_bgr: np.ndarray, detector, template: np.ndarray, size: int = CROP_SIZE):
    """The crop the engine classifies for a still image (:meth:`Analyzer.classify_image`): the
    largest detected face, grey, 5-point aligned to ``template``; ``None`` when no face is found."""
    import cv2

    from mien.alignment import align_faces

    det = detector.detect(image_bgr)
    if len(det) == 0:
        return None
    areas = (det.xyxy[:, 2:] - det.xyxy[:, :2]).prod(1)
    j = int(areas.argmax())
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    return align_faces(gray, det.landmarks[j : j + 1], size, template)[0]


def build_crops(root: Path, out: Path, detector=None, template: np.ndarray | None = None,
                limit: int | None = None) -> dict:
    """Detect and align every image of the set at ``root`` once; write ``out`` (npz) and return the
    counts. Unreadable images and images without a face are kept with ``found=False``."""
    from mien.audit.datasets import ImageReadError, read_image
    from mien.detection import FaceDetector
    from mien.expression import ExpressionModel

    ls = read_labels(root)
    detector = detector or FaceDetector()
    if template is None:
        template = ExpressionModel.load().template
    n = len(ls) if limit is None else min(limit, len(ls))
    crops = np.zeros((n, CROP_SIZE, CROP_SIZE), np.uint8)
    found = np.zeros(n, dtype=bool)
    unreadable = 0
    t0 = time.time()
    for i in range(n):
        try:
            img = read_image(root / ls.paths[i])
        except ImageReadError:
            unreadable += 1
            continue
        crop = engine_crop(img, detector, template)
        if crop is not None:
            crops[i], found[i] = crop, True
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, crops=crops, found=found, paths=np.array(ls.paths[:n]),
                        template=np.asarray(template, np.float32))
    counts = {"set": ls.name, "images": n, "faces_found": int(found.sum()),
              "no_face": int(n - found.sum() - unreadable), "unreadable": unreadable,
              "seconds": round(time.time() - t0, 1)}
    return counts


@dataclass
class SourceData:
    """One set's cached crops with labels and its fixed validation mask (found faces only)."""

    spec: SourceSpec
    labels_set: LabelledSet
    crops: np.ndarray  # uint8 (n, 48, 48), zeros where not found
    found: np.ndarray  # bool (n,)
    val: np.ndarray  # bool (n,), fold 0

    def part(self, validation: bool) -> np.ndarray:
        """Row indices of the training (or validation) part whose face was found."""
        return np.flatnonzero(self.found & (self.val == validation))


def load_source(name: str, root: Path = EXPRESSIONS_ROOT, cache: Path = CACHE_DIR) -> SourceData:
    spec = SOURCES[name]
    ls = read_labels(root / name)
    path = cache / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `python -m mien.training.expressions crops` first")
    with np.load(path) as z:
        crops, found, paths = z["crops"], z["found"], z["paths"].tolist()
    if paths != ls.paths:
        raise ValueError(f"{path} was built from another {name}/labels.csv; rebuild the crop cache")
    return SourceData(spec, ls, crops, found, split_of(ls, spec))


def write_split_csvs(out: Path, root: Path = EXPRESSIONS_ROOT) -> dict[str, dict[str, int]]:
    """``<set>_val.csv`` and ``<set>_train.csv`` per set (absolute image paths, every original
    column), so ``mien evaluate`` scores exactly the validation fold through the full pipeline."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for name, spec in SOURCES.items():
        src = root / name
        with (src / "labels.csv").open(newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
        val = split_of(read_labels(src), spec)
        counts[name] = {}
        for part, mask in (("val", val), ("train", ~val)):
            if not mask.any():
                continue
            with (out / f"{name}_{part}.csv").open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                for r, keep in zip(rows, mask):
                    if keep:
                        w.writerow(r | {"path": str((src / r["path"]).resolve())})
            counts[name][part] = int(mask.sum())
    return counts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("crops", "splits"))
    ap.add_argument("--root", type=Path, default=EXPRESSIONS_ROOT)
    ap.add_argument("--out", type=Path, default=None,
                    help="default runs/expression_crops (crops) or runs/expression_splits (splits)")
    ap.add_argument("--sets", nargs="*", default=list(SOURCES), choices=list(SOURCES))
    ap.add_argument("--limit", type=int, default=None, help="only the first N images per set (smoke tests)")
    args = ap.parse_args(argv)
    with cli_errors("mien.training.expressions"):
        if args.what == "crops":
            out = args.out or CACHE_DIR
            report = []
            for name in args.sets:
                counts = build_crops(args.root / name, out / f"{name}.npz", limit=args.limit)
                print(json.dumps(counts), flush=True)
                report.append(counts)
            (out / "crops_report.json").write_text(json.dumps(report, indent=2))
        else:
            print(json.dumps(write_split_csvs(args.out or Path("runs/expression_splits"), args.root), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
