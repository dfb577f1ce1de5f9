"""Temperature fitting against a closed-form optimum, and the user model card it writes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mien.audit.calibrate import calibrated_card, calibration_summary, fit_temperature
from mien.stats import softmax


def test_fit_temperature_closed_form():
    # three items with logits (1, 0): labels 0, 0, 1. The NLL optimum makes p(class 0) = 2/3,
    # i.e. sigmoid(1/T) = 2/3  ->  1/T = ln 2  ->  T = 1/ln 2.
    logits = np.array([[1.0, 0.0]] * 3)
    labels = np.array([0, 0, 1])
    assert fit_temperature(logits, labels) == pytest.approx(1 / math.log(2), rel=1e-4)


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 8))
    p = softmax(logits, 2.5)
    labels = np.array([rng.choice(8, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.08)


def test_fit_temperature_needs_items():
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 8)), np.zeros(0, int))


def test_calibration_lowers_nll_and_keeps_predictions():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (500, 8))  # overconfident: the truth is drawn at T = 3
    labels = np.array([rng.choice(8, p=row) for row in softmax(logits, 3.0)])
    t = fit_temperature(logits, labels)
    s = calibration_summary(logits, labels, 1.0, t)
    assert s["nll_after"] < s["nll_before"]
    assert s["ece_after"] < s["ece_before"]
    assert np.array_equal(softmax(logits, t).argmax(1), logits.argmax(1))


def test_calibrated_card_is_a_copy_with_a_record():
    card = {"name": "m", "temperature": 1.2, "file": "m.onnx", "labels": ["a"], "nested": {"x": 1}}
    out = calibrated_card(card, 1.7, data={"source": "val.csv", "n": 10}, summary={"nll_before": 1.0})
    assert out["temperature"] == 1.7
    assert card["temperature"] == 1.2  # the original card is untouched
    cal = out["calibration"]
    assert cal["temperature_before"] == 1.2 and cal["temperature"] == 1.7
    assert cal["data"] == {"source": "val.csv", "n": 10} and cal["nll_before"] == 1.0
    out["nested"]["x"] = 2
    assert card["nested"]["x"] == 1  # deep copy


def test_select_prior_strength_finds_the_shift_that_recovers_a_rare_class():
    """Class 2 is rare in training, so the network scores it too low: on balanced validation data
    the selection must pick a positive strength that recovers it; where the logits are already
    right, it keeps the smallest strength (0)."""
    from mien.audit.calibrate import PRIOR_STRENGTHS, select_prior_strength

    rng = np.random.default_rng(0)
    prior = np.array([0.6, 0.35, 0.05])
    labels = np.repeat([0, 1, 2], 200)
    clean = np.eye(3)[labels] * 3.0 + rng.normal(0, 1.0, (600, 3))
    biased = clean + np.log(prior)  # what a network trained under `prior` tends to output
    strength, table = select_prior_strength(biased, labels, 1.0, prior)
    assert [row["strength"] for row in table] == list(PRIOR_STRENGTHS)
    assert strength >= 0.5
    by = {row["strength"]: row for row in table}
    assert by[strength]["macro_f1"] > by[0.0]["macro_f1"] + 0.05
    perfect = np.eye(3)[labels] * 50.0
    assert select_prior_strength(perfect, labels, 1.0, prior)[0] == 0.0
    with pytest.raises(ValueError, match="one positive share"):
        select_prior_strength(biased, labels, 1.0, np.array([0.5, 0.5, 0.0]))
