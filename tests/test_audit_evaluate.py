"""Evaluation runs with a fake model: misses stay in the denominator, restricted argmax, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import cv2
import numpy as np
import pytest

from mien.audit.datasets import load_dataset
from mien.audit.evaluate import (
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_UNREADABLE,
    build_evaluation,
    model_info,
    predict_crops,
    predict_full_pipeline,
)
from mien.labels import EXPRESSIONS


class FakeModel:
    """Pixel value v: logit 5 for class v // 10, logit 3 for class v % 10 (if < 8), else 0."""

    input_size = 8
    labels = EXPRESSIONS
    temperature = 1.0
    card: ClassVar[dict] = {"name": "fake", "temperature": 1.0}
    name = "fake"
    sha256 = "0" * 64

    def prepare_crops(self, images):
        out = []
        for im in images:
            im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) if im.ndim == 3 else im
            out.append(cv2.resize(im, (8, 8), interpolation=cv2.INTER_NEAREST))
        return np.stack(out)

    def predict_logits(self, crops):
        logits = np.zeros((len(crops), 8))
        for i, c in enumerate(crops):
            v = int(c[4, 4])
            logits[i, (v // 10) % 8] = 5.0
            if v % 10 < 8 and v % 10 != (v // 10) % 8:
                logits[i, v % 10] = 3.0
        return logits


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 16, 3), value, np.uint8))


@pytest.fixture()
def csv_data(tmp_path: Path) -> Path:
    # label happiness(1): right, right, wrong(->neutral); label surprise(2): right;
    # label neutral(0): model says contempt(7) first, neutral second (restricted argmax fixes it)
    rows = [
        ("h1.png", "happy", 10, "s1", "A"),
        ("h2.png", "happy", 10, "s2", "A"),
        ("h3.png", "happy", 0, "s3", "B"),
        ("s1.png", "surprise", 20, "s4", "B"),
        ("n1.png", "neutral", 70, "s5", "B"),
        ("bad.png", "neutral", -1, "s6", "A"),
    ]
    lines = ["path,label,subject,group"]
    for name, label, value, subject, group in rows:
        if value >= 0:
            _png(tmp_path / name, value)
        else:
            (tmp_path / name).write_bytes(b"garbage")
        lines.append(f"{name},{label},{subject},{group}")
    p = tmp_path / "data.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def _evaluate(ds, preds, **kw):
    return build_evaluation(
        ds, preds, temperature=1.0, model=model_info(FakeModel()), mode="crops", n_resamples=100, **kw
    )


def test_crops_mode_counts_unreadable_images_as_errors(csv_data: Path):
    ds = load_dataset(csv_data)
    preds = predict_crops(ds, FakeModel(), batch_size=4)
    assert preds.status.tolist() == [STATUS_OK] * 5 + [STATUS_UNREADABLE]
    assert np.isnan(preds.logits[5]).all()
    assert preds.logits[:5].argmax(1).tolist() == [1, 1, 0, 2, 7]

    ev = _evaluate(ds, preds)
    cov = ev["coverage"]
    assert (cov["n_items"], cov["n_scored"], cov["n_unreadable"], cov["n_no_face"]) == (6, 5, 1, 0)
    assert cov["errors"][0]["id"] == "bad.png" and "not a readable image" in cov["errors"][0]["message"]
    # headline: 3 right of 6 (the unreadable image stays in the denominator)
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(3 / 6)
    assert ev["metrics"]["confusion"]["counts"][0][8] == 1  # neutral -> no_prediction
    # found faces only: 3 of 5, clearly labelled
    assert ev["metrics_found_faces_only"]["accuracy"]["value"] == pytest.approx(3 / 5)
    assert "NOT the headline" in ev["metrics_found_faces_only"]["scope"]


def test_restricted_argmax_when_labels_are_absent(csv_data: Path):
    ds = load_dataset(csv_data)
    ev = _evaluate(ds, predict_crops(ds, FakeModel()))
    r = ev["metrics_restricted"]
    assert r["labels_used"] == ["neutral", "happiness", "surprise"]
    # contempt is absent, so n1.png's second choice (neutral) wins: 4 right of 6
    assert r["accuracy"]["value"] == pytest.approx(4 / 6)
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(3 / 6)
    assert ev["dataset"]["labels_absent"] == ["sadness", "anger", "disgust", "fear", "contempt"]


def test_evaluation_json_is_valid_and_carries_items_and_groups(csv_data: Path):
    ds = load_dataset(csv_data)
    ev = _evaluate(ds, predict_crops(ds, FakeModel()), min_group_n=1)
    text = json.dumps(ev, allow_nan=False)  # no NaN anywhere
    back = json.loads(text)
    assert back["schema"] == "mien.audit.evaluation" and back["schema_version"] == 1
    assert back["bootstrap"]["unit"] == "subject"
    assert [it["status"] for it in back["items"]].count("unreadable") == 1
    assert back["items"][0]["groups"] == {"group": "A"} and back["items"][0]["subject"] == "s1"
    assert back["items"][5]["logits"] is None
    g = back["groups"]["group"]
    # A: h1 right, h2 right, bad (unreadable) wrong -> 2/3; B: h3 wrong, s1 right, n1 wrong -> 1/3
    assert g["groups"]["A"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert g["groups"]["B"]["accuracy"]["value"] == pytest.approx(1 / 3)
    assert g["worst_group"] == "B"
    # B: n1 (neutral) is read as contempt, a negative expression
    assert g["groups"]["B"]["negative_rate"]["value"] == pytest.approx(1 / 3)
    assert back["dataset"]["support"]["happiness"] == 3


def test_no_items_option(csv_data: Path):
    ds = load_dataset(csv_data)
    assert "items" not in _evaluate(ds, predict_crops(ds, FakeModel()), include_items=False)


def test_full_pipeline_missed_faces_stay_in_the_denominator(csv_data: Path):
    ds = load_dataset(csv_data)
    model = FakeModel()
    seen = []

    def classify(image):
        seen.append(image.shape)
        v = int(image[0, 0, 0])
        if v == 20:  # the surprise image: no face found
            return SimpleNamespace(face_found=False, probs=None, logits=None, box=None, n_faces=0)
        logits = model.predict_logits(model.prepare_crops([image]))[0]
        if v == 10:  # this path returns only probabilities; logits are recovered up to a constant
            p = np.exp(logits) / np.exp(logits).sum()
            return SimpleNamespace(face_found=True, probs=p, logits=None, box=(0, 0, 1, 1), n_faces=2)
        return SimpleNamespace(face_found=True, probs=None, logits=logits, box=(0, 0, 1, 1), n_faces=1)

    preds = predict_full_pipeline(ds, model, classify)
    assert preds.status.tolist() == [
        STATUS_OK,
        STATUS_OK,
        STATUS_OK,
        STATUS_NO_FACE,
        STATUS_OK,
        STATUS_UNREADABLE,
    ]
    assert preds.n_faces.tolist() == [2, 2, 1, 0, 1, 0]
    assert all(len(s) == 3 for s in seen)  # BGR images go to the pipeline
    ev = build_evaluation(
        ds, preds, temperature=1.0, model=model_info(model), mode="full_pipeline", n_resamples=50
    )
    assert ev["coverage"]["n_no_face"] == 1 and ev["coverage"]["n_unreadable"] == 1
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(2 / 6)
    assert ev["metrics"]["n_no_prediction"] == 2
    assert ev["metrics_found_faces_only"]["accuracy"]["value"] == pytest.approx(2 / 4)
    # a missed face or unreadable image is a uniform guess in NLL: it costs log 8
    values = [10, 10, 0, None, 70, None]
    expected = []
    for v, y in zip(values, ds.labels):
        if v is None:
            expected.append(math.log(8))
        else:
            z = model.predict_logits(np.full((1, 8, 8), v, np.uint8))[0]
            expected.append(-(z[y] - np.log(np.exp(z).sum())))
    assert ev["metrics"]["nll"]["value"] == pytest.approx(np.mean(expected), abs=1e-5)


def test_fer_full_pipeline_gets_upscaled_padded_bgr(tmp_path: Path):
    p = tmp_path / "fer.npz"
    votes = np.zeros((2, 10), np.int16)
    votes[:, 1] = 10
    np.savez(
        p,
        pixels=np.full((2, 48, 48), 10, np.uint8),
        usage=np.array(["PrivateTest"] * 2),
        ferplus_votes=votes,
        ferplus_vote_names=np.array([*EXPRESSIONS, "unknown", "NF"]),
    )
    ds = load_dataset(p)
    shapes = []

    def classify(image):
        shapes.append(image.shape)
        return SimpleNamespace(face_found=True, probs=None, logits=np.eye(8)[1], box=None, n_faces=1)

    preds = predict_full_pipeline(ds, FakeModel(), classify)
    assert shapes == [(384, 384, 3)] * 2
    assert (preds.status == STATUS_OK).all()
    # crops mode sends the raw 48 px gray crops to the model
    crops = predict_crops(ds, FakeModel())
    assert crops.logits.argmax(1).tolist() == [1, 1]


def test_temperature_changes_probabilities_not_predictions(csv_data: Path):
    ds = load_dataset(csv_data)
    preds = predict_crops(ds, FakeModel())
    cold = build_evaluation(ds, preds, temperature=0.5, model={}, mode="crops", n_resamples=20)
    warm = build_evaluation(ds, preds, temperature=4.0, model={}, mode="crops", n_resamples=20)
    assert cold["metrics"]["accuracy"]["value"] == warm["metrics"]["accuracy"]["value"]
    assert cold["metrics"]["nll"]["value"] != warm["metrics"]["nll"]["value"]


def test_model_with_other_labels_is_refused(csv_data: Path):
    model = FakeModel()
    model.labels = ("a", "b")
    with pytest.raises(ValueError, match="labels"):
        predict_crops(load_dataset(csv_data), model)
