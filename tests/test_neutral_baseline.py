"""scripts/neutral_baseline.py's per-person baseline, by hand."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_module


def _script():
    return load_module("scripts/neutral_baseline.py")


def test_a_photo_is_moved_by_its_own_persons_other_neutral_photos_against_the_reference():
    adjusted = _script().baseline_adjusted
    logp = np.log(np.array([
        [0.8, 0.2],  # a: neutral
        [0.6, 0.4],  # a: neutral
        [0.3, 0.7],  # a: smile
        [0.9, 0.1],  # b: neutral, b's only one: never baselines itself, so not scored
        [0.5, 0.5],  # b: smile
        [0.5, 0.5],  # no subject: not scored
    ]))
    labels = np.array(["neutral", "neutral", "happiness", "neutral", "happiness", "happiness"], dtype=object)
    subjects = np.array(["a", "a", "a", "b", "b", ""], dtype=object)
    ref = np.log(np.array([0.7, 0.3]))
    rows, out = adjusted(logp, labels, subjects, 0.5, ref)
    assert rows.tolist() == [0, 1, 2, 4]
    own_a = (logp[0] + logp[1]) / 2
    assert out[2] == pytest.approx(logp[2] - 0.5 * (own_a - ref))
    assert out[0] == pytest.approx(logp[0] - 0.5 * (logp[1] - ref))  # leave-one-out
    assert out[3] == pytest.approx(logp[4] - 0.5 * (logp[3] - ref))
    # without a reference, the other people's neutral photos are the reference
    rows, out = adjusted(logp, labels, subjects, 1.0, None)
    assert out[rows.tolist().index(2)] == pytest.approx(logp[2] - (own_a - logp[3]))
    assert out[rows.tolist().index(4)] == pytest.approx(logp[4] - (logp[3] - own_a))
