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


def test_engine_crops_frame_faces_like_training_images(analyzer):
    """FER test images, upscaled into a larger frame, through detection + alignment: accuracy
    within 3 points of the direct crops (on the images where a face is found)."""
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
    assert abs(acc_engine - acc_direct) <= 0.03


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


def test_real_video_sad_then_laughing():
    """Out of FER's distribution, through the whole engine: WolfgangLanger_Pexels.mp4 shows one
    woman looking sad for the first seconds, then laughing (``../shared/data/README.md``). The
    mean probabilities per stretch must say so (measured with mien-fer-vgg-1.1: sadness 0.91 over
    0-6 s, happiness 1.00 over 10-19 s)."""
    import mien

    df = mien.analyze(shared_video("WolfgangLanger_Pexels.mp4")).to_pandas()
    cols = [f"prob_{e}" for e in EXPRESSIONS]
    early = df.loc[df.time_s < 6, cols].mean()
    late = df.loc[df.time_s >= 10, cols].mean()
    assert early.idxmax() == "prob_sadness" and early["prob_sadness"] > 0.6, early.round(2).to_dict()
    assert late.idxmax() == "prob_happiness" and late["prob_happiness"] > 0.8, late.round(2).to_dict()
