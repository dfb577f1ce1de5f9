"""Is the ONNX port of face-api's FaceExpressionNet the original? Compare it with tfjs in node.

    python scripts/faceapi_check.py [--setup] [--per-set 3] [--backend cpu wasm]

``--setup`` (once) npm-installs tfjs 4.22.0 (the version face-api 1.7.15 was built with) into
``runs/faceapi/node`` and puts face-api's node build and its expression model there, from the
SHA-256-checked tarball. Then real faces -- ``--per-set`` images from each set of
``../shared/data/expressions`` (rows spread through each labels.csv), cropped from mien's detector
box as ``scripts/faceapi_eval.py`` crops them, and as many FER+ PrivateTest crops -- go through
face-api's own code (``faceapi.nets.faceExpressionNet.loadFromDisk`` + ``forward``: its loader,
preprocessing and layers) and through the ONNX; it prints the largest absolute difference of the
probabilities and exits 1 when it is 1e-4 or more.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mien.training import cli_errors
from mien.training import faceapi as fa

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SETS = ("taiwanese_chen2013", "london_face_research_lab", "yale_faces", "muxspace")
TOLERANCE = 1e-4


def real_crops(per_set: int) -> tuple[np.ndarray, list[str]]:
    """face-api input crops (n, 112, 112, 3) of real faces, and where each came from."""
    from mien.audit.datasets import load_dataset
    from mien.detection import FaceDetector

    detector = FaceDetector()
    crops, names = [], []
    for name in SETS:
        ds = load_dataset(SHARED / "expressions" / name / "labels.csv")
        for i in np.linspace(0, len(ds) - 1, per_set).round().astype(int):
            img = ds.read_for_detector(int(i))
            det = detector.detect(img)
            if not len(det):
                continue
            j = int((det.xyxy[:, 2:] - det.xyxy[:, :2]).prod(1).argmax())
            crops.append(fa.box_crop(img, det.xyxy[j]))
            names.append(f"{name}/{ds.ids[int(i)]}")
    with np.load(SHARED / "ferplus" / "fer2013_ferplus.npz", allow_pickle=False) as d:
        rows = np.flatnonzero(d["usage"] == "PrivateTest")[:per_set]
        for r in rows:
            crops.append(fa.gray_crop_to_rgb(d["pixels"][r]))
            names.append(f"ferplus/row {r}")
    return np.stack(crops), names


def compare(port_dir: Path, node_dir: Path, crops: np.ndarray, backend: str) -> float:
    """Largest |p_onnx - p_tfjs| over all crops and classes."""
    _, onnx_probs = fa.FaceApiExpressionNet(port_dir).predict(crops)
    tfjs_probs, _ = fa.run_reference(node_dir, crops, backend)
    return float(np.abs(onnx_probs.astype(np.float64) - tfjs_probs).max())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="faceapi_check", description=__doc__.split("\n")[0])
    p.add_argument("--port-dir", type=Path, default=REPO / "runs" / "faceapi")
    p.add_argument("--setup", action="store_true", help="install tfjs and face-api's node build first")
    p.add_argument("--per-set", type=int, default=3, help="faces per set (default 3)")
    p.add_argument("--backend", nargs="+", default=["cpu", "wasm"], choices=["cpu", "wasm"],
                   help="tfjs backends to compare with (default both)")
    args = p.parse_args(argv)
    with cli_errors("faceapi_check"):
        node_dir = args.port_dir / "node"
        if args.setup:
            fa.setup_reference(node_dir, fa.fetch_tarball(args.port_dir / "npm"))
        crops, names = real_crops(args.per_set)
        worst = 0.0
        for backend in args.backend:
            diff = compare(args.port_dir, node_dir, crops, backend)
            worst = max(worst, diff)
            print(f"{len(crops)} real face crops ({', '.join(sorted({n.split('/')[0] for n in names}))}), "
                  f"tfjs {backend} backend: max |p_onnx - p_tfjs| = {diff:.2e}")
        if worst >= TOLERANCE:
            sys.exit(f"faceapi_check: error: the port differs from face-api by {worst:.2e} (>= {TOLERANCE:g})")


if __name__ == "__main__":
    main()
