"""Face-detector audit: precision, recall, AP at IoU 0.5, recall by face size, FPs per image.

Why measure the detector separately: every expression number downstream is conditional on a face
being found, and detectors fail first on small, occluded, dark or turned faces. Reading:

- **PASCAL-VOC XML** (one ``.xml`` per image, ``annotations/`` beside ``images/`` or all in one
  folder). Every object is a face (the mask set's three classes are all faces); ``difficult=1``
  objects are ignored, VOC-style.
- **dlib imglab XML** (``<dataset><images><image file=...><box top left width height/>``); boxes with
  ``ignore='1'`` are ignored.

Matching follows the VOC devkit: detections in descending score, each matched to the
highest-IoU ground truth; IoU >= threshold with an unmatched face = TP, with an ignored face =
neither TP nor FP, otherwise FP. AP is the all-points interpolated area under the PR curve
(VOC 2010+). Because matching is greedy by score, a single matching at the lowest score gives the
right TP/FP for every higher threshold, so the operating point is read off the same matching.
CIs come from a bootstrap over images.
"""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mien.audit import SCHEMA_VERSION
from mien.audit.datasets import ImageReadError, read_image
from mien.errors import InputError
from mien.faces import Faces
from mien.stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, bootstrap_ci, iou_matrix, json_number

DETECTOR_SCHEMA = "mien.audit.detector"
#: Face-size buckets (shorter side of the ground-truth box, pixels): [low, high).
SIZE_EDGES: tuple[float, ...] = (0.0, 16.0, 32.0, 64.0, 128.0, float("inf"))


@dataclass
class AnnotatedImage:
    """Ground-truth faces of one image: ``boxes`` (n, 4) as x1, y1, x2, y2 pixels."""

    path: Path
    boxes: np.ndarray
    ignore: np.ndarray  # bool (n,)
    classes: np.ndarray | None = None  # object (n,): VOC class name / imglab label, "face" if none

    @property
    def sizes(self) -> np.ndarray:
        wh = self.boxes[:, 2:] - self.boxes[:, :2]
        return wh.min(axis=1) if len(wh) else np.zeros(0)


class DetectorLike(Protocol):
    def detect(self, image_bgr: np.ndarray) -> Faces: ...


# ------------------------------------------------------------------------------------------ parsing
def _parse_xml(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"cannot parse {path} as XML: {exc}") from None


def _num(el: ET.Element | None, tag: str, where: Path) -> float:
    node = el.find(tag) if el is not None else None
    try:
        return float(node.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{where}: a box lacks a numeric <{tag}>") from None


def parse_voc(path: Path, image_dir: Path) -> AnnotatedImage:
    """One PASCAL-VOC annotation; the image is ``image_dir / <filename>``."""
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise InputError(f"{path} is not a PASCAL-VOC annotation (root <{root.tag}>)")
    filename = (root.findtext("filename") or "").strip() or path.with_suffix(".jpg").name
    boxes, ignore, classes = [], [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        boxes.append([_num(bb, t, path) for t in ("xmin", "ymin", "xmax", "ymax")])
        ignore.append((obj.findtext("difficult") or "0").strip() == "1")
        classes.append((obj.findtext("name") or "face").strip())
    return AnnotatedImage(
        image_dir / filename,
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        np.asarray(ignore, dtype=bool),
        np.asarray(classes, dtype=object),
    )


def load_voc(root: Path) -> list[AnnotatedImage]:
    """``root/annotations/*.xml`` with ``root/images/``, or ``*.xml`` beside the images in ``root``."""
    ann_dir = root / "annotations" if (root / "annotations").is_dir() else root
    img_dir = root / "images" if (root / "images").is_dir() else ann_dir
    files = sorted(ann_dir.glob("*.xml"))
    return [parse_voc(f, img_dir) for f in files]


def load_imglab(path: Path) -> list[AnnotatedImage]:
    """A dlib imglab dataset XML; image paths are relative to the XML's folder."""
    root = _parse_xml(path)
    if root.tag != "dataset" or root.find("images") is None:
        raise InputError(f"{path} is not a dlib imglab dataset (<dataset><images>...)")
    out = []
    for image in root.find("images").iter("image"):  # type: ignore[union-attr]
        boxes, ignore, classes = [], [], []
        for b in image.iter("box"):
            try:
                top, left = float(b.attrib["top"]), float(b.attrib["left"])
                w, h = float(b.attrib["width"]), float(b.attrib["height"])
            except (KeyError, ValueError):
                raise InputError(
                    f"{path}: a box of {image.get('file')} lacks top/left/width/height"
                ) from None
            boxes.append([left, top, left + w, top + h])
            ignore.append(b.attrib.get("ignore", "0").strip().lower() in ("1", "true"))
            classes.append((b.findtext("label") or "face").strip())
        out.append(
            AnnotatedImage(
                path.parent / image.attrib.get("file", ""),
                np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                np.asarray(ignore, dtype=bool),
                np.asarray(classes, dtype=object),
            )
        )
    return out


def load_annotations(path: str | Path) -> tuple[list[AnnotatedImage], str]:
    """Annotations and their format (``voc`` or ``imglab``) from a VOC folder or an imglab XML."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist; pass a PASCAL-VOC folder or a dlib imglab .xml file")
    if p.is_file():
        if p.suffix.lower() != ".xml":
            raise InputError(f"{p} is not an .xml file; pass a PASCAL-VOC folder or a dlib imglab .xml")
        root = _parse_xml(p)
        if root.tag == "annotation":
            return [parse_voc(p, p.parent)], "voc"
        return load_imglab(p), "imglab"
    ann_dir = p / "annotations" if (p / "annotations").is_dir() else p
    xmls = sorted(ann_dir.glob("*.xml"))
    if not xmls:
        raise InputError(f"{p} holds no .xml annotations; pass a PASCAL-VOC folder or a dlib imglab .xml")
    if _parse_xml(xmls[0]).tag == "dataset":
        raise InputError(
            f"{p} holds dlib imglab files ({', '.join(x.name for x in xmls)}); "
            "pass one of them, e.g. mien evaluate-detector " + str(xmls[0])
        )
    return load_voc(p), "voc"


# ------------------------------------------------------------------------------------------ matching
@dataclass
class Matching:
    """Outcome of matching all detections to all faces (see the module docstring)."""

    det_image: np.ndarray  # int (D,) image of each counted detection
    det_score: np.ndarray  # (D,)
    det_tp: np.ndarray  # bool (D,); False = FP (ignored detections are dropped)
    gt_image: np.ndarray  # int (G,) image of each non-ignored face
    gt_size: np.ndarray  # (G,) shorter side, px
    gt_score: np.ndarray  # (G,) score of the detection that matched it; -inf when missed
    n_images: int
    gt_class: np.ndarray | None = None  # object (G,) annotated class of each non-ignored face


def match_image(
    gt: AnnotatedImage, boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VOC matching in one image: (kept detection scores, their TP flags, matched score per face)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes, scores = np.asarray(boxes, dtype=np.float64)[order], np.asarray(scores, dtype=np.float64)[order]
    iou = iou_matrix(boxes, gt.boxes)
    taken = np.zeros(len(gt.boxes), dtype=bool)
    gt_score = np.full(len(gt.boxes), -np.inf)
    kept_scores, kept_tp = [], []
    for d in range(len(boxes)):
        if len(gt.boxes):
            j = int(np.argmax(iou[d]))
            best = iou[d, j]
        else:
            j, best = -1, 0.0
        if best >= iou_threshold:
            if gt.ignore[j]:
                continue  # a detection of an ignored face counts neither way
            if not taken[j]:
                taken[j] = True
                gt_score[j] = scores[d]
                kept_scores.append(scores[d])
                kept_tp.append(True)
                continue
        kept_scores.append(scores[d])
        kept_tp.append(False)
    return np.asarray(kept_scores), np.asarray(kept_tp, dtype=bool), gt_score[~gt.ignore]


def match_all(
    gts: Sequence[AnnotatedImage],
    detections: Sequence[tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> Matching:
    """Match each image's ``(boxes, scores)`` to its faces."""
    di, ds, dt, gi, gs, gsc, gc = [], [], [], [], [], [], []
    for i, (gt, (boxes, scores)) in enumerate(zip(gts, detections)):
        s, tp, matched = match_image(gt, boxes, scores, iou_threshold)
        di.append(np.full(len(s), i))
        ds.append(s)
        dt.append(tp)
        gi.append(np.full(len(matched), i))
        gs.append(gt.sizes[~gt.ignore])
        gsc.append(matched)
        classes = gt.classes if gt.classes is not None else np.full(len(gt.boxes), "face", dtype=object)
        gc.append(classes[~gt.ignore])
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    return Matching(
        det_image=cat(di, np.int64),
        det_score=cat(ds, np.float64),
        det_tp=cat(dt, bool),
        gt_image=cat(gi, np.int64),
        gt_size=cat(gs, np.float64),
        gt_score=cat(gsc, np.float64),
        n_images=len(gts),
        gt_class=np.concatenate(gc).astype(object) if gc else np.zeros(0, object),
    )


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ all-points interpolated AP from a PR curve ordered by descending score."""
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]).sum())


def pr_curve(m: Matching, image_weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(scores, precision, recall) at every detection, descending score; weights repeat images."""
    w = np.ones(m.n_images) if image_weights is None else image_weights
    order = np.argsort(-m.det_score, kind="stable")
    dw = w[m.det_image[order]]
    tp = np.cumsum(dw * m.det_tp[order])
    fp = np.cumsum(dw * ~m.det_tp[order])
    npos = float(w[m.gt_image].sum())
    recall = tp / npos if npos > 0 else np.full(len(tp), np.nan)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    return m.det_score[order], precision, recall


def _statistic(m: Matching, threshold: float) -> Callable[[np.ndarray], dict[str, float]]:
    def stat(w: np.ndarray) -> dict[str, float]:
        _, precision, recall = pr_curve(m, w)
        npos = float(w[m.gt_image].sum())
        above = m.det_score >= threshold
        dw = w[m.det_image]
        tp = float((dw * (above & m.det_tp)).sum())
        fp = float((dw * (above & ~m.det_tp)).sum())
        n_img = float(w.sum())
        return {
            "ap": average_precision(recall, precision) if npos > 0 else float("nan"),
            "precision": tp / (tp + fp) if tp + fp > 0 else float("nan"),
            "recall": tp / npos if npos > 0 else float("nan"),
            "fp_per_image": fp / n_img if n_img > 0 else float("nan"),
        }

    return stat


def summarize(
    m: Matching,
    *,
    threshold: float = 0.5,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    size_edges: Sequence[float] = SIZE_EDGES,
) -> dict[str, Any]:
    """AP, the operating point at ``threshold``, recall by size and a thinned PR curve."""
    ci = bootstrap_ci(_statistic(m, threshold), m.n_images, n_resamples=n_resamples, seed=seed, level=level)
    above = m.det_score >= threshold
    tp, fp = int((above & m.det_tp).sum()), int((above & ~m.det_tp).sum())
    npos = len(m.gt_image)
    p, r = ci["precision"]["value"], ci["recall"]["value"]
    buckets = []
    for lo, hi in itertools.pairwise(size_edges):
        inside = (m.gt_size >= lo) & (m.gt_size < hi)
        n = int(inside.sum())
        label = f"<{hi:g}" if lo == 0 else (f">={lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}")
        buckets.append(
            {
                "bucket": label,
                "low_px": lo,
                "high_px": None if hi == float("inf") else hi,
                "n_faces": n,
                "recall": json_number((m.gt_score[inside] >= threshold).mean()) if n else None,
                "recall_any_score": json_number(np.isfinite(m.gt_score[inside]).mean()) if n else None,
            }
        )
    by_class = []
    classes = m.gt_class if m.gt_class is not None else np.full(len(m.gt_image), "face", dtype=object)
    for name in sorted(set(classes.tolist())):
        inside = classes == name
        by_class.append(
            {
                "class": str(name),
                "n_faces": int(inside.sum()),
                "recall": json_number((m.gt_score[inside] >= threshold).mean()),
                "recall_any_score": json_number(np.isfinite(m.gt_score[inside]).mean()),
            }
        )
    scores, precision, recall = pr_curve(m)
    keep: np.ndarray | list[int] = (
        np.unique(np.linspace(0, len(scores) - 1, min(len(scores), 200)).round().astype(int))
        if len(scores)
        else []
    )
    return {
        "ap": ci["ap"],
        "operating_point": {
            "threshold": threshold,
            "tp": tp,
            "fp": fp,
            "fn": npos - tp,
            "precision": ci["precision"],
            "recall": ci["recall"],
            "f1": json_number(2 * p * r / (p + r)) if p is not None and r is not None and p + r > 0 else None,
            "fp_per_image": ci["fp_per_image"],
        },
        "max_recall": json_number(np.isfinite(m.gt_score).mean()) if npos else None,
        "recall_by_size": buckets,
        "recall_by_class": by_class,
        "pr_curve": [
            {"score": float(scores[i]), "precision": float(precision[i]), "recall": json_number(recall[i])}
            for i in keep
        ],
    }


def evaluate_detector(
    path: str | Path,
    detector: DetectorLike,
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    detector_info: dict[str, Any] | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``detector`` on every annotated image and return the detector-audit JSON.

    ``detector`` should report low scores too (e.g. ``score_threshold=0.02``) so the PR curve and
    AP are complete; ``threshold`` is the operating point (mien's default 0.5). An unreadable or
    missing image is counted, and its faces stay in the denominator as misses.
    """
    gts, fmt = load_annotations(path)
    if limit is not None:
        gts = gts[:limit]
    if not gts:
        raise InputError(f"{path} lists no images")
    dets: list[tuple[np.ndarray, np.ndarray]] = []
    unreadable = []
    t0 = time.perf_counter()
    for i, gt in enumerate(gts):
        try:
            image = read_image(gt.path)
        except ImageReadError as exc:
            unreadable.append({"image": gt.path.name, "message": str(exc)})
            dets.append((np.zeros((0, 4)), np.zeros(0)))
            continue
        d = detector.detect(image)
        dets.append(
            (np.asarray(d.xyxy, dtype=np.float64).reshape(-1, 4), np.asarray(d.score, dtype=np.float64))
        )
        if progress:
            progress(i + 1, len(gts))
    seconds = time.perf_counter() - t0
    m = match_all(gts, dets, iou_threshold)
    result = {
        "schema": DETECTOR_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "dataset": {
            "source": str(path),
            "format": fmt,
            "n_images": len(gts),
            "n_faces": len(m.gt_image),
            "n_ignored": int(sum(int(g.ignore.sum()) for g in gts)),
            "n_unreadable": len(unreadable),
            "unreadable": unreadable,
        },
        "detector": detector_info,
        "iou_threshold": iou_threshold,
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": DEFAULT_LEVEL, "unit": "image"},
        "seconds_per_image": seconds / max(1, len(gts) - len(unreadable)),
    }
    result.update(summarize(m, threshold=threshold, n_resamples=n_resamples, seed=seed))
    return result
