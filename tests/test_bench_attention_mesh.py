"""The harness of bench/attention_mesh.py (plain vs attention Face Mesh on mien's own crops): the
crops it hands MediaPipe are exactly mien's, points replayed by crop come back through mien's
back-projection as ``FaceMesh.run`` gives them, its "shipped" brow definition is ``geo_brow_raise``,
and (with a MediaPipe interpreter) MediaPipe's graph on those crops reproduces mien's mesh."""
from __future__ import annotations

import csv
import os
import subprocess

import cv2
import numpy as np
import pytest
from conftest import REPO, SHARED, load_module

TAIWANESE = SHARED / "expressions" / "taiwanese_chen2013"


def load_bench():
    return load_module("bench/attention_mesh.py")


@pytest.fixture(scope="module")
def faces():
    """Three real faces (Taiwanese set: a neutral, a surprise, a happiness photo): image, box, 5 points."""
    if not (TAIWANESE / "labels.csv").is_file():
        pytest.skip(f"shared data absent: {TAIWANESE} (needs ../shared beside the checkout)")
    from mien.detection import FaceDetector

    with (TAIWANESE / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    picked = [next(r for r in rows if r["label"] == lab) for lab in ("neutral", "surprise", "happiness")]
    det = FaceDetector()
    out = []
    for r in picked:
        img = cv2.imread(str(TAIWANESE / r["path"]))
        d = det.detect(img)
        out.append((img, d.xyxy[:1], d.landmarks[:1]))
    return out


def test_recorded_crops_are_mien_crops_and_replay_gives_run_points(faces):
    from mien.geometry import FaceMesh

    bench = load_bench()
    shipped = FaceMesh.load()
    rec = bench.RecordingMesh(shipped)
    expected = [rec.run(img, box, lm).points for img, box, lm in faces]
    assert len(rec.crops) == len(faces)
    raw = {}
    for k, crop in rec.crops.items():
        as_fed = crop[None].astype(np.float32) * np.float32(1 / 255)  # as the worker's input is read
        assert bench._key(as_fed[0]) == k  # the uint8 crop is the float crop exactly
        raw[k] = shipped.run_crops(as_fed)[0][0]
    replay = bench.ReplayMesh(shipped, raw, "replayed")
    for (img, box, lm), want in zip(faces, expected, strict=True):
        np.testing.assert_allclose(replay.run(img, box, lm).points, want, atol=1e-4)


def test_shipped_brow_variant_is_geo_brow_raise(faces):
    from mien.geometry import FaceMesh, geometry_measures
    from mien.geometry.pose import stable_face_frame

    bench = load_bench()
    mesh = FaceMesh.load()
    pts = np.concatenate([mesh.run(img, box, lm).points for img, box, lm in faces])
    frame = stable_face_frame(pts)
    shipped = bench.BROW_VARIANTS["lower line above the origin (shipped)"](frame)
    np.testing.assert_allclose(shipped, geometry_measures(frame)["geo_brow_raise"], rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_mediapipe_graph_on_mien_crops_reproduces_mien_mesh(faces, tmp_path):
    python = os.environ.get("MIEN_MEDIAPIPE_PYTHON")
    if not python:
        pytest.skip("MIEN_MEDIAPIPE_PYTHON not set: an interpreter with mediapipe==0.10.21 "
                    "(see bench/attention_mesh.py) is needed to run MediaPipe's own graph")
    from mien.geometry import FaceMesh
    from mien.geometry.mesh import crop_transforms, crops_for

    mesh = FaceMesh.load()
    crops = np.concatenate([crops_for(img, crop_transforms(box, lm)) for img, box, lm in faces])
    np.savez(tmp_path / "crops.npz", crops=np.round(crops * 255).astype(np.uint8))
    subprocess.run([python, str(REPO / "bench" / "_attention_worker.py"), str(tmp_path / "crops.npz"),
                    str(tmp_path / "out.npz")], check=True, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    assert out["found_plain"].all() and out["found_attention"].all()
    raw, _ = mesh.run_crops(crops)
    np.testing.assert_allclose(out["plain"], raw, atol=0.01)  # px of 192; measured 1.5e-4
    assert out["attention"].shape == (len(crops), 478, 3)
    # a different network: its points differ from the plain mesh's by about a pixel, not by 0 or by 10
    moved = np.linalg.norm((out["attention"][:, :468] - raw)[..., :2], axis=-1).mean()
    assert 0.1 < moved < 5
