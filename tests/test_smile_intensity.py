"""scripts/smile_intensity.py's size-matched recall, by hand."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_module


def _script():
    return load_module("scripts/smile_intensity.py")


def test_size_matched_recall_reweights_each_band_to_the_pooled_share():
    size_matched = _script().size_matched
    pooled = np.array([0.5, 0.25, 0.25])
    # a group with recall 0.5 in the faint band and 1.0 elsewhere, mostly faint smiles (raw recall 0.6)
    hit = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 1], bool)
    band = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2])
    assert hit.mean() == pytest.approx(0.6)
    assert size_matched(hit, band, pooled) == pytest.approx(0.5 * 0.5 + 0.25 + 0.25)
    # a band the group lacks is left out and the rest re-normalised
    assert size_matched(hit[:9], band[:9], pooled) == pytest.approx((0.5 * 0.5 + 0.25) / 0.75)
