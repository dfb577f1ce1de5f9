"""Group audit against a hand-computed two-group case."""

from __future__ import annotations

import numpy as np
import pytest

from mien.audit.groups import MISSING_GROUP, audit_column, group_audit, negative_mask
from mien.audit.metrics import Scored

LABELS = ("neutral", "happiness", "anger")  # anger is the negative expression here


def _scored(y, pred, k=3):
    probs = np.full((len(y), k), np.nan)
    for i, p in enumerate(pred):
        if p >= 0:
            probs[i] = 0.1 / (k - 1)
            probs[i, p] = 0.9
    return Scored.from_probs(probs, np.asarray(y))


#            group A         group B          missing  small group C
Y = [0, 1, 0, 2] + [0, 1, 0, 2] + [0] + [1]
PRED = [0, 1, 2, 2] + [0, 0, 0, -1] + [2] + [1]
GROUP = ["A"] * 4 + ["B"] * 4 + [""] + ["C"]


@pytest.fixture(scope="module")
def report():
    return audit_column(_scored(Y, PRED), GROUP, labels=LABELS, n_resamples=200, seed=0, min_group_n=2)


def test_negative_mask_uses_canonical_negative_expressions():
    mask = negative_mask()
    assert mask.sum() == 4  # anger, disgust, fear, contempt
    assert negative_mask(LABELS).tolist() == [False, False, True]


def test_per_group_metrics_by_hand(report):
    a, b = report["groups"]["A"], report["groups"]["B"]
    assert a["n"] == 4 and b["n"] == 4
    assert a["accuracy"]["value"] == pytest.approx(0.75)
    assert b["accuracy"]["value"] == pytest.approx(0.5)  # the missed face counts as wrong
    assert b["n_no_prediction"] == 1
    assert b["face_found_rate"]["value"] == pytest.approx(0.75)
    # Rhue test: A is assigned anger on 2 of 4 faces, and on 1 of the 3 non-angry-labelled faces
    assert a["negative_rate"]["value"] == pytest.approx(0.5)
    assert a["negative_rate_non_negative_labels"]["value"] == pytest.approx(1 / 3)
    assert a["negative_label_rate"] == pytest.approx(0.25)
    assert b["negative_rate"]["value"] == 0.0
    assert a["tpr"] == pytest.approx({"neutral": 0.5, "happiness": 1.0, "anger": 1.0})
    assert b["tpr"] == pytest.approx({"neutral": 1.0, "happiness": 0.0, "anger": 0.0})
    assert a["fpr"] == pytest.approx({"neutral": 0.0, "happiness": 0.0, "anger": 1 / 3})
    assert b["fpr"] == pytest.approx({"neutral": 0.5, "happiness": 0.0, "anger": 0.0})


def test_gaps_and_worst_group_by_hand(report):
    assert report["worst_group"] == "B"
    assert report["worst_group_accuracy"]["value"] == pytest.approx(0.5)
    assert report["accuracy_gap"]["value"] == pytest.approx(0.25)
    assert report["negative_rate_gap"]["value"] == pytest.approx(0.5)
    assert report["negative_rate_non_negative_labels_gap"]["value"] == pytest.approx(1 / 3)
    assert report["face_found_rate_gap"]["value"] == pytest.approx(0.25)
    tpr_gap = {k: v["value"] for k, v in report["tpr_gap"].items()}
    fpr_gap = {k: v["value"] for k, v in report["fpr_gap"].items()}
    assert tpr_gap == pytest.approx({"neutral": 0.5, "happiness": 1.0, "anger": 1.0})
    assert fpr_gap == pytest.approx({"neutral": 0.5, "happiness": 0.0, "anger": 1 / 3})


def test_missing_and_small_groups_are_reported_but_not_in_gaps(report):
    assert report["groups"][MISSING_GROUP]["included_in_gaps"] is False
    assert report["groups"]["C"]["included_in_gaps"] is False  # n=1 < min_group_n
    assert report["groups"]["C"]["accuracy"]["value"] == 1.0
    assert report["groups"]["A"]["included_in_gaps"] is True


def test_group_cis_bracket_values(report):
    acc = report["groups"]["A"]["accuracy"]
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    gap = report["accuracy_gap"]
    assert gap["ci_low"] is not None and gap["ci_high"] >= gap["ci_low"]


def test_group_audit_is_reproducible_and_covers_each_column():
    scored = _scored(Y, PRED)
    cols = {"g": GROUP, "h": ["x", "y"] * 5}
    r1 = group_audit(scored, cols, labels=LABELS, n_resamples=50, seed=4, min_group_n=2)
    r2 = group_audit(scored, cols, labels=LABELS, n_resamples=50, seed=4, min_group_n=2)
    assert r1 == r2 and set(r1) == {"g", "h"}
    assert group_audit(scored, {}) == {}


def test_group_column_length_must_match():
    with pytest.raises(ValueError):
        audit_column(_scored(Y, PRED), ["A"], labels=LABELS, n_resamples=10)
