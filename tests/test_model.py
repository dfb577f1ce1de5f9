"""The shipped expression model: integrity checks, speed-independent behaviour, and that the
engine's crops (detector → 5-point alignment) frame faces like the training images."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import FERPLUS, shared_video

from mien.errors import ModelError
from mien.expression import ExpressionModel, default_card_path
from mien.labels import EXPRESSIONS


def test_shipped_model_loads_and_is_mien_own():
    model = ExpressionModel.load()
    card = model.card
    assert model.labels == EXPRESSIONS
    assert card["name"].startswith("mien-")
    assert model.input_size == card["input"]["size"]
    for key in ("architecture", "input", "training", "intended_use", "out_of_scope", "known_limits"):
        assert card[key], key
    assert any("identif" in s for s in card["out_of_scope"])
    probs = model.predict_proba(np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8))
    assert probs.shape == (3, 8) and np.allclose(probs.sum(1), 1)


def test_tampered_model_is_refused(tmp_path):
    card_path = default_card_path()
    card = json.loads(card_path.read_text())
    shutil.copy(card_path.parent / card["file"], tmp_path / card["file"])
    (tmp_path / "card.json").write_text(json.dumps(card))
    ExpressionModel.load(tmp_path / "card.json")  # intact copy loads
    with open(tmp_path / card["file"], "r+b") as f:
        f.seek(2000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match="SHA-256"):
        ExpressionModel.load(tmp_path / "card.json")


def _fer_private(n: int):
    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    from mien.training.ferplus import load_ferplus

    test = load_ferplus(FERPLUS, dedupe=False).private_test
    idx = np.random.default_rng(7).choice(len(test), n, replace=False)
    return test.pixels[idx], test.majority[idx]


@pytest.mark.slow
def test_engine_crops_frame_faces_like_training_images(analyzer):
    """FER test images, upscaled into a larger frame, through detection + alignment: accuracy
    within 5 points of the direct crops (on the images where a face is found; 1.2 was within 3,
    mien-mix-vgg-2.0 loses 4.4: it also learnt engine-aligned crops of the other sets)."""
    pixels, labels = _fer_private(500)
    model = analyzer.model
    direct = model.predict_proba(pixels).argmax(1) == labels
    pred, found = [], []
    for img in pixels:
        big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, 48, 48, 48, 48, cv2.BORDER_CONSTANT, value=0)
        res = analyzer.classify_image(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
        found.append(res.face_found)
        pred.append(int(np.argmax(res.probs)) if res.face_found else -1)
    found, pred = np.array(found), np.array(pred)
    acc_direct = direct[found].mean()
    acc_engine = (pred[found] == labels[found]).mean()
    print(f"faces found {found.mean():.3f}; accuracy direct {acc_direct:.3f}, via engine {acc_engine:.3f}")
    assert found.mean() > 0.95
    assert abs(acc_engine - acc_direct) <= 0.05


@pytest.mark.slow
def test_onnx_matches_torch_when_training_extra_installed():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[train]')")
    pytest.importorskip("onnx")
    from mien.training.net import ExpressionNet
    from mien.training.train import Deployable

    model = Deployable(ExpressionNet())
    model.eval()
    import tempfile
    from pathlib import Path

    from mien.training.train import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(model, path, 48)
        import onnxruntime as ort

        x = np.random.default_rng(0).integers(0, 256, (4, 1, 48, 48)).astype(np.float32)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diff = np.abs(sess.run(None, {"gray": x})[0] - model(torch.from_numpy(x)).detach().numpy()).max()
    assert diff < 1e-4


@pytest.mark.slow
def test_real_video_sad_then_laughing():
    """Out of FER's distribution, through the whole engine: WolfgangLanger_Pexels.mp4 shows one
    woman looking sad for the first seconds, then laughing (``../shared/data/README.md``). The
    mean probabilities per stretch must say so (measured with mien-fer-vgg-1.2: sadness 0.90 over
    0-6 s, happiness 0.99 over 10-19 s)."""
    import mien

    df = mien.analyze(shared_video("WolfgangLanger_Pexels.mp4")).to_pandas()
    cols = [f"prob_{e}" for e in EXPRESSIONS]
    early = df.loc[df.time_s < 6, cols].mean()
    late = df.loc[df.time_s >= 10, cols].mean()
    assert early.idxmax() == "prob_sadness" and early["prob_sadness"] > 0.6, early.round(2).to_dict()
    assert late.idxmax() == "prob_happiness" and late["prob_happiness"] > 0.8, late.round(2).to_dict()


# ------------------------------------------------------------------------ class-prior adjustment
def test_prior_strength_is_bayes_rule_for_a_change_of_prior():
    """Strength 1 divides the FER+-prior probabilities by the training prior and renormalises
    (Bayes' rule for a uniform prior); strength 0 leaves the network's logits untouched."""
    model = ExpressionModel.load()
    crops = np.random.default_rng(1).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    base = model.with_prior_strength(0.0)
    np.testing.assert_array_equal(base.predict_logits(crops), base.predict_network_logits(crops))
    p0 = base.predict_proba(crops)
    p1 = model.with_prior_strength(1.0).predict_proba(crops)
    bayes = p0 / model.training_prior
    np.testing.assert_allclose(p1, bayes / bayes.sum(1, keepdims=True), rtol=1e-9)
    # a strength in between moves every face the same way: towards the rare classes
    rare = model.training_prior < 0.05
    pd = model.with_prior_strength(0.5).predict_proba(crops)
    assert model.prior_strength == model.card["prior_adjustment"]["strength"]
    assert (pd[:, rare].sum(1) > p0[:, rare].sum(1)).all() and (pd[:, rare].sum(1) < p1[:, rare].sum(1)).all()
    # recalibrating the temperature keeps the offset the card chose it with
    np.testing.assert_allclose(model.with_temperature(2.0).logit_offset, model.logit_offset)


def test_prior_strength_out_of_range_or_unsupported_is_refused(tmp_path):
    from mien.errors import InputError

    model = ExpressionModel.load()
    for bad in (-0.1, 1.5):
        with pytest.raises(InputError, match="between 0"):
            model.with_prior_strength(bad)
    card = dict(model.card)
    card.pop("prior_adjustment")
    card["file"] = str(model.onnx_path)
    (tmp_path / "card.json").write_text(json.dumps(card))
    old = ExpressionModel.load(tmp_path / "card.json")  # a card without the block: strength 0
    assert old.prior_strength == 0 and not old.logit_offset.any()
    with pytest.raises(ModelError, match="training_prior"):
        old.with_prior_strength(0.5)
    card["prior_adjustment"] = dict(model.card["prior_adjustment"], training_prior=[0.5, 0.5] + [0.0] * 6)
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="positive shares"):
        ExpressionModel.load(tmp_path / "card.json")


@pytest.mark.slow
def test_shipped_prior_strength_is_chosen_by_the_selection_rule_and_helps_the_rare_expressions():
    """The card's strength is the one its rule names: the smallest in its selection table (mean
    balanced accuracy over FER+ PublicTest and the Taiwanese and London validation folds) that the
    table's best does not beat by the paired bootstrap, so it scores within the bootstrap's reach
    of the best; the table's FER+ column is reproduced from PublicTest here; and on PrivateTest
    (report-only) the best strength finds more of the rare expressions than strength 0 (their
    pooled recall and the balanced accuracy up) for some accuracy — the trade the card documents."""
    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    from mien.training.ferplus import load_ferplus
    from mien.training.selection import balanced_accuracy

    data = load_ferplus(FERPLUS)
    model = ExpressionModel.load(precision="float")
    card_prior = model.card["prior_adjustment"]
    table = card_prior["selection_table"]
    best = max(table, key=lambda row: row["score"])
    chosen = next(row for row in table if row["strength"] == model.prior_strength)
    assert "paired bootstrap" in card_prior["selected_on"]
    assert model.prior_strength <= best["strength"] and best["score"] - chosen["score"] < 0.02
    for row in table:  # every smaller strength was tested and the best beat it
        if row["strength"] < model.prior_strength:
            assert row["best_gain_ci_low"] > 0
    assert [row["strength"] for row in table] == pytest.approx([i / 10 for i in range(11)])
    val = data.public_test
    for row in (table[0], best):
        pred = model.with_prior_strength(row["strength"]).predict_proba(val.pixels).argmax(1)
        assert balanced_accuracy(pred, val.majority) == pytest.approx(row["ferplus_public"], abs=1e-6)

    test = data.private_test
    rare = np.isin(test.majority, [EXPRESSIONS.index(e) for e in ("disgust", "fear", "contempt")])
    scores = {}
    for s in (0.0, best["strength"]):
        pred = model.with_prior_strength(s).predict_proba(test.pixels).argmax(1)
        hit = pred == test.majority
        scores[s] = (hit.mean(), hit[rare].mean(), balanced_accuracy(pred, test.majority))
    (acc0, rare0, bal0), (acc, rare_s, bal) = scores[0.0], scores[best["strength"]]
    assert rare_s > rare0 + 0.05 and bal > bal0 + 0.02
    assert acc > acc0 - 0.05


@pytest.mark.slow
def test_calibrate_can_fit_the_prior_strength_on_the_users_data(tmp_path):
    """`mien calibrate --fit-prior-strength` on a user's labelled set (here FER+ PublicTest) picks
    the strength that the documented rule (best macro-F1, select_prior_strength) picks on those
    data, and the user card it writes loads and uses it."""
    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    from mien.audit.calibrate import select_prior_strength
    from mien.cli import main
    from mien.training.ferplus import load_ferplus

    out = tmp_path / "user.json"
    base = ExpressionModel.load().with_prior_strength(0.0)
    base_card = tmp_path / "base.json"
    base_card.write_text(json.dumps(dict(base.card, file=str(base.onnx_path))))
    assert main(["calibrate", str(FERPLUS), "--model-card", str(base_card), "--fit-prior-strength",
                 "-o", str(out)]) == 0
    card = json.loads(out.read_text())
    val = load_ferplus(FERPLUS).public_test
    expected, _ = select_prior_strength(
        base.predict_network_logits(val.pixels), val.majority, base.temperature, base.training_prior
    )
    assert card["calibration"]["prior_strength"]["before"] == 0.0
    assert card["calibration"]["prior_strength"]["after"] == expected
    user = ExpressionModel.load(out)
    assert user.prior_strength == expected
    np.testing.assert_allclose(user.logit_offset, base.with_prior_strength(expected).logit_offset)
