"""The int8 expression model: made from the float model that ships, audited on its own, and what
``precision="int8"`` loads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mien.errors import InputError
from mien.expression import ExpressionModel, default_card_path, int8_card_path
from mien.manifest import file_sha256


def _shipped_int8() -> tuple[dict, dict]:
    path = int8_card_path()
    if path is None:
        pytest.skip("no int8 expression model ships in this checkout (scripts/quantize_expression.py makes it)")
    return json.loads(path.read_text()), json.loads(default_card_path().read_text())


def test_int8_card_matches_its_file_and_the_shipped_float_model():
    card, float_card = _shipped_int8()
    path = int8_card_path()
    assert path is not None
    assert file_sha256(path.parent / card["file"]) == card["sha256"]
    # made from *this* float model: a new float model without a re-quantised int8 fails here
    assert card["quantization"]["from"]["sha256"] == float_card["sha256"], (
        "the int8 model was quantised from another float model; rerun scripts/quantize_expression.py"
    )
    assert card["name"] == f"{float_card['name']}-int8"
    # its figures were measured on the int8 file itself, not copied from the float card
    assert card["evaluation"]["model_sha256"] == card["sha256"]
    assert card["evaluation"]["generated_by"] == "mien evaluate --write-card"
    assert card["input"] == float_card["input"] and card["labels"] == float_card["labels"]


def test_int8_agrees_with_the_float_model_on_real_crops():
    _shipped_int8()
    from conftest import FERPLUS

    from mien.training.ferplus import load_ferplus

    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    test = load_ferplus(FERPLUS, dedupe=False).private_test
    pixels = test.pixels[np.random.default_rng(3).choice(len(test), 400, replace=False)]
    f = ExpressionModel.load(precision="float").predict_proba(pixels)
    q = ExpressionModel.load(precision="int8").predict_proba(pixels)
    assert (f.argmax(1) == q.argmax(1)).mean() >= 0.95
    assert np.abs(f - q).max() < 0.5


def test_precision_selects_the_shipped_model():
    float_model = ExpressionModel.load(precision="float")
    assert float_model.sha256 == json.loads(default_card_path().read_text())["sha256"]
    int8 = ExpressionModel.load(precision="int8")
    if int8_card_path() is None:
        assert int8.sha256 == float_model.sha256  # nothing quantised ships: the float model
    else:
        assert int8.name.endswith("-int8") and int8.sha256 != float_model.sha256
    with pytest.raises(InputError, match="precision"):
        ExpressionModel.load(precision="fp16")


def test_first_frame_does_not_pay_the_session_warm_up():
    model = ExpressionModel.load()
    session = model.session
    assert model.session is session  # built once
    crops = np.random.default_rng(0).integers(0, 256, (1, model.input_size, model.input_size), dtype=np.uint8)
    assert model.predict_proba(crops).shape == (1, 8)
