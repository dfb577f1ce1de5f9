"""The training-only port of face-api's FaceExpressionNet (mien.training.faceapi)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mien.labels import EXPRESSIONS, canonical_label
from mien.training import faceapi as fa

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PORT_DIR = REPO / "runs" / "faceapi"
TARBALL = PORT_DIR / "npm" / fa.TARBALL
NODE_DIR = PORT_DIR / "node"


@pytest.fixture(scope="module")
def tarball() -> Path:
    if not TARBALL.is_file():
        pytest.skip(f"{TARBALL} absent: fetch it once with python scripts/faceapi_port.py (needs npm)")
    return TARBALL


@pytest.fixture(scope="module")
def ported(tmp_path_factory: pytest.TempPathFactory, tarball: Path) -> Path:
    """A fresh port from the cached tarball, so the test measures the code, not an old artefact."""
    pytest.importorskip("onnx", reason="the port builds its graph with onnx (the [train] extra)")
    out = tmp_path_factory.mktemp("faceapi")
    fa.port(out, tarball.parent)
    return out


def _real_face_crops(per_set: int = 2) -> np.ndarray:
    from mien.audit.datasets import load_dataset
    from mien.detection import FaceDetector

    detector = FaceDetector()
    crops = []
    for name in ("taiwanese_chen2013", "london_face_research_lab", "yale_faces", "muxspace"):
        csv = SHARED / "expressions" / name / "labels.csv"
        if not csv.is_file():
            pytest.skip(f"shared data absent: {csv}")
        ds = load_dataset(csv)
        for i in np.linspace(0, len(ds) - 1, per_set).round().astype(int):
            img = ds.read_for_detector(int(i))
            det = detector.detect(img)
            if len(det):
                crops.append(fa.box_crop(img, det.xyxy[int((det.xyxy[:, 2:] - det.xyxy[:, :2]).prod(1).argmax())]))
    return np.stack(crops)


@pytest.mark.slow
def test_port_gives_face_apis_probabilities_on_real_faces(ported: Path) -> None:
    if not fa.reference_ready(NODE_DIR):
        pytest.skip(f"node or tfjs absent in {NODE_DIR}: run python scripts/faceapi_check.py --setup")
    crops = _real_face_crops()
    _, onnx_probs = fa.FaceApiExpressionNet(ported).predict(crops)
    tfjs_probs, info = fa.run_reference(NODE_DIR, crops, "cpu")
    assert info["backend"] == "cpu"
    assert "MIT" in (ported / fa.LICENSE_NAME).read_text()  # the notice travels with the ONNX
    assert np.abs(onnx_probs - tfjs_probs).max() < 1e-4
    # the faces are not all one class, so a constant output cannot pass
    assert len(set(tfjs_probs.argmax(1).tolist())) >= 3


def test_port_reads_only_the_expression_model(tarball: Path) -> None:
    files = fa.read_package(tarball)
    assert set(files.shards) == {"face_expression_model.bin"}
    weights = fa.decode_weights(files)
    assert weights["fc/weights"].shape == (256, len(fa.FACEAPI_LABELS))
    assert all(w.dtype == np.float32 for w in weights.values())


def test_a_manifest_pointing_at_another_model_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / fa.TARBALL
    manifest = [{"paths": ["face_recognition_model.bin"], "weights": []}]
    with tarfile.open(fake, "w:gz") as tar:
        for name, data in ((fa.MANIFEST, json.dumps(manifest).encode()),
                           ("package/model/face_recognition_model.bin", b"\0" * 8)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(fa.PortError, match="only face_expression_model"):
        fa.read_package(fake)


def test_changed_class_order_or_preprocessing_in_the_source_stops_the_port(tarball: Path) -> None:
    files = fa.read_package(tarball)
    fa.check_source_facts(files)  # the pinned package passes
    for key, old, new, message in (("labels", "'sad', 'angry'", "'angry', 'sad'", "class order"),
                                   ("extractor", "122.782", "128", "preprocessing"),
                                   ("extractor", ".div(255)", ".div(127.5)", "preprocessing")):
        assert old in files.sources[key]
        changed = dataclasses.replace(files, sources={**files.sources, key: files.sources[key].replace(old, new)})
        with pytest.raises(fa.PortError, match=message):
            fa.check_source_facts(changed)


def test_a_tarball_with_another_hash_is_refused(tmp_path: Path) -> None:
    (tmp_path / fa.TARBALL).write_bytes(b"not the package")
    with pytest.raises(fa.PortError, match="SHA-256"):
        fa.fetch_tarball(tmp_path)


def test_an_edited_onnx_fails_its_hash_check(tmp_path: Path) -> None:
    data = b"stands in for the ported graph"
    record = {"onnx_sha256": hashlib.sha256(data).hexdigest()}
    (tmp_path / fa.PROVENANCE_NAME).write_text(json.dumps(record))
    (tmp_path / fa.ONNX_NAME).write_bytes(data[:-1] + b"!")
    with pytest.raises(fa.PortError, match="SHA-256"):
        fa.FaceApiExpressionNet(tmp_path)


def test_classes_map_onto_mien_order_with_no_contempt() -> None:
    probs8 = fa.to_mien_probs(np.eye(len(fa.FACEAPI_LABELS)))
    for k, name in enumerate(fa.FACEAPI_LABELS):
        assert EXPRESSIONS[int(probs8[k].argmax())] == canonical_label(name)
    assert (probs8[:, EXPRESSIONS.index("contempt")] == 0).all()
    np.testing.assert_allclose(probs8.sum(1), 1.0)


def test_box_crop_pads_to_a_centred_square_in_rgb() -> None:
    img = np.zeros((200, 300, 3), np.uint8)
    img[50:130, 100:140] = (0, 0, 255)  # a red (BGR) box 40 wide, 80 tall
    crop = fa.box_crop(img, (100, 50, 140, 130))
    assert crop.shape == (112, 112, 3)
    assert crop[56, 56].tolist() == [255, 0, 0]  # RGB
    # 40x80 padded to 80x80: 20 px of black each side, i.e. 28 of 112 px
    assert crop[56, :26].max() == 0 and crop[56, -26:].max() == 0
    assert crop[:, 30:82, 0].min() == 255


def test_eval_script_bad_port_dir_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "faceapi_eval.py"), "--port-dir", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceapi_eval: error:"), proc.stderr
