"""Run the expression model over a labelled dataset and build the evaluation JSON.

Two modes:

- **crops**: the images are already face crops; they go straight to the expression model (resized
  to its input). This measures the classifier alone.
- **full pipeline**: every image goes through detect -> align -> classify, as ``mien analyze`` does.
  An image where no face is found is an *error that stays in the denominator*: a missed face never
  vanishes from the numbers. The metrics on found faces only are reported too, labelled as such.

The JSON layout is documented in ``docs/audit_schema.md``; :func:`build_evaluation` is pure (no
model, no files), so it is tested with small arrays.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mien._version import __version__
from mien.audit import SCHEMA_VERSION
from mien.audit.datasets import Dataset, ImageReadError
from mien.audit.groups import MIN_GROUP_N, group_audit
from mien.audit.metrics import Scored, classification_report, restrict_probs
from mien.detection import DETECTOR_NAME, FaceDetector
from mien.expression import ExpressionModel
from mien.labels import EXPRESSIONS
from mien.pipeline import Analyzer, ImageClassification
from mien.stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, softmax

EVALUATION_SCHEMA = "mien.audit.evaluation"
STATUS_OK = "ok"
STATUS_NO_FACE = "no_face"
STATUS_UNREADABLE = "unreadable"
#: Logits are stored rounded in the JSON; metrics are computed from the rounded values so that
#: ``--compare`` recomputes exactly the numbers the evaluation reports.
LOGIT_DECIMALS = 6

Progress = Callable[[int, int], None]


class ExpressionModelLike(Protocol):
    """What the audit needs from :class:`mien.expression.ExpressionModel`."""

    input_size: int
    labels: tuple[str, ...]
    temperature: float
    card: dict
    name: str
    sha256: str

    def predict_logits(self, gray_crops: np.ndarray) -> np.ndarray: ...

    def prepare_crops(self, images: list[np.ndarray]) -> np.ndarray: ...


@dataclass
class Predictions:
    """Model output per dataset item; rows of items that were not scored are NaN."""

    logits: np.ndarray  # float64 (n, 8), before temperature (class-prior offset included)
    status: np.ndarray  # object (n,): "ok" | "no_face" | "unreadable"
    messages: list[str]  # why an item was not scored ("" when it was)
    n_faces: np.ndarray | None = None  # faces found per image (full pipeline only)

    @classmethod
    def empty(cls, n: int, k: int = len(EXPRESSIONS)) -> Predictions:
        return cls(np.full((n, k), np.nan), np.full(n, STATUS_OK, dtype=object), [""] * n)


def model_info(model: ExpressionModelLike, card_path: str | None = None) -> dict[str, Any]:
    """The ``model`` block of the evaluation JSON."""
    return {
        "name": getattr(model, "name", None),
        "sha256": getattr(model, "sha256", None),
        "temperature": float(model.temperature),
        "prior_strength": float(getattr(model, "prior_strength", 0.0)),
        "input_size": int(model.input_size),
        "card_path": card_path,
    }


def _check_labels(model: ExpressionModelLike) -> None:
    if tuple(model.labels) != EXPRESSIONS:
        raise ValueError(f"model labels {model.labels} are not mien's labels {EXPRESSIONS}")


def predict_crops(
    ds: Dataset,
    model: ExpressionModelLike,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> Predictions:
    """Crops mode: every readable image straight into the expression model."""
    _check_labels(model)
    out = Predictions.empty(len(ds))
    for start in range(0, len(ds), batch_size):
        idx, images = [], []
        for i in range(start, min(start + batch_size, len(ds))):
            try:
                images.append(ds.read(i))
                idx.append(i)
            except ImageReadError as exc:
                out.status[i] = STATUS_UNREADABLE
                out.messages[i] = str(exc)
        if images:
            crops = model.prepare_crops(images)
            out.logits[idx] = np.asarray(model.predict_logits(crops), dtype=np.float64)
        if progress:
            progress(min(start + batch_size, len(ds)), len(ds))
    return out


def pipeline_classifier(
    model: ExpressionModel, detector: FaceDetector | None = None
) -> tuple[Callable[[np.ndarray], ImageClassification], dict[str, Any]]:
    """The engine's detect -> align -> classify for one still image
    (:meth:`mien.pipeline.Analyzer.classify_image`), and a record of its detector.

    With ``detector=None`` the detector is built exactly as ``mien analyze`` builds it, so the
    audit measures what users run.
    """
    analyzer = Analyzer(model=model, detector=detector)
    det = analyzer.detector
    info = {"name": DETECTOR_NAME, "score_threshold": det.score_threshold, "min_face_px": det.min_face_px,
            "max_side": det.max_side}
    return analyzer.classify_image, info


def predict_full_pipeline(
    ds: Dataset,
    model: ExpressionModelLike,
    classify: Callable[[np.ndarray], Any],
    *,
    progress: Progress | None = None,
) -> Predictions:
    """Full-pipeline mode: ``classify`` (see :func:`pipeline_classifier`) on every image.

    ``classify(image_bgr)`` returns an object with ``face_found``, ``logits`` (or ``probs``) and
    ``n_faces``, as :class:`mien.pipeline.ImageClassification`; tests pass a fake.
    """
    _check_labels(model)
    out = Predictions.empty(len(ds))
    out.n_faces = np.zeros(len(ds), dtype=np.int64)
    for i in range(len(ds)):
        try:
            image = ds.read_for_detector(i)
        except ImageReadError as exc:
            out.status[i] = STATUS_UNREADABLE
            out.messages[i] = str(exc)
            continue
        result = classify(image)
        out.n_faces[i] = int(getattr(result, "n_faces", int(result.face_found)))
        if not result.face_found:
            out.status[i] = STATUS_NO_FACE
            out.messages[i] = "no face found"
        elif getattr(result, "logits", None) is not None:
            out.logits[i] = np.asarray(result.logits, dtype=np.float64)
        else:  # softmax is shift-invariant: log(p) * T recovers the logits up to a constant
            p = np.clip(np.asarray(result.probs, dtype=np.float64), 1e-300, 1.0)
            out.logits[i] = np.log(p) * float(model.temperature)
        if progress and ((i + 1) % 50 == 0 or i + 1 == len(ds)):
            progress(i + 1, len(ds))
    return out


def _coverage(ds: Dataset, preds: Predictions) -> dict[str, Any]:
    n = len(ds)
    status = preds.status
    n_ok = int((status == STATUS_OK).sum())
    return {
        "n_items": n,
        "n_scored": n_ok,
        "n_no_face": int((status == STATUS_NO_FACE).sum()),
        "n_unreadable": int((status == STATUS_UNREADABLE).sum()),
        "scored_rate": n_ok / n if n else None,
        "errors": [
            {"id": ds.ids[i], "status": str(status[i]), "message": preds.messages[i]}
            for i in np.flatnonzero(status != STATUS_OK)
        ],
    }


def build_evaluation(
    ds: Dataset,
    preds: Predictions,
    *,
    temperature: float,
    model: dict[str, Any],
    mode: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    min_group_n: int = MIN_GROUP_N,
    detector: dict[str, Any] | None = None,
    include_items: bool = True,
) -> dict[str, Any]:
    """The evaluation JSON (``docs/audit_schema.md``) from a dataset and the model's outputs."""
    if len(preds.status) != len(ds):
        raise ValueError("predictions and dataset differ in length")
    labels = np.asarray(ds.labels, dtype=np.int64)
    logits = np.round(np.asarray(preds.logits, dtype=np.float64), LOGIT_DECIMALS)
    probs = softmax(logits, temperature)
    options: dict[str, Any] = {"n_resamples": n_resamples, "seed": seed, "level": level}
    subjects = ds.subjects

    metrics = classification_report(probs, labels, subjects=subjects, **options)
    metrics["scope"] = "all_items"

    present = ds.labels_present()
    restricted = None
    if len(present) < len(EXPRESSIONS):
        restricted = classification_report(
            restrict_probs(probs, present), labels, subjects=subjects, **options
        )
        restricted["scope"] = "all_items, argmax over the labels present in the data"
        restricted["labels_used"] = [EXPRESSIONS[i] for i in present]

    ok = preds.status == STATUS_OK
    found_only = None
    if not ok.all() and ok.any():
        found_only = classification_report(
            probs[ok], labels[ok], subjects=None if subjects is None else subjects[ok], **options
        )
        found_only["scope"] = "scored items only (faces found, images readable): NOT the headline"

    scored = Scored.from_probs(probs, labels)
    groups = group_audit(scored, ds.groups, subjects=subjects, min_group_n=min_group_n, **options)

    evaluation: dict[str, Any] = {
        "schema": EVALUATION_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "mien_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "labels": list(EXPRESSIONS),
        "mode": mode,
        "model": model,
        "detector": detector,
        "dataset": ds.describe(),
        "bootstrap": {
            "n_resamples": n_resamples,
            "seed": seed,
            "level": level,
            "unit": "subject" if subjects is not None else "item",
            "method": "percentile",
        },
        "coverage": _coverage(ds, preds),
        "metrics": metrics,
        "metrics_restricted": restricted,
        "metrics_found_faces_only": found_only,
        "groups": groups,
    }
    if include_items:
        evaluation["items"] = _items(ds, preds, logits)
    return evaluation


def _items(ds: Dataset, preds: Predictions, logits: np.ndarray) -> list[dict[str, Any]]:
    items = []
    for i in range(len(ds)):
        item: dict[str, Any] = {
            "id": ds.ids[i],
            "label": EXPRESSIONS[int(ds.labels[i])],
            "status": str(preds.status[i]),
            "logits": None if preds.status[i] != STATUS_OK else [float(x) for x in logits[i]],
        }
        if ds.subjects is not None:
            item["subject"] = str(ds.subjects[i])
        if ds.groups:
            item["groups"] = {k: str(v[i]) for k, v in ds.groups.items()}
        if preds.n_faces is not None:
            item["n_faces"] = int(preds.n_faces[i])
        items.append(item)
    return items
