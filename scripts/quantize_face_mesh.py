"""Make the int8 face mesh from the float mesh that ships, and say what it costs.

    python scripts/quantize_face_mesh.py [--crops-per-clip 60] [--json summary.json] [--mode static|dynamic]
        [--keep-float first,last] [--out runs/mesh_int8/face_mesh_int8.onnx]

1. Calibration crops are the mesh network's own input: faces detected in the shared talking-head
   clips of :data:`CALIBRATION_CLIPS` (every few frames, ``--crops-per-clip`` evenly spaced from each),
   cropped exactly as the engine crops them for the mesh (:func:`mien.geometry.mesh.crop_transforms`
   on the detector's box and 5 points). None of the clips the mesh is validated or benchmarked on
   (:data:`CHECK_CLIPS`, ``bench/speed.py``'s WolfgangLanger and Hamilton clips, the dlib stills and the
   expression sets) is among them.
2. ONNX Runtime's static quantisation: int8 weights per output channel, uint8 activations, QDQ
   format (ORT fuses it into QLinearConv kernels), MinMax ranges from the calibration crops. Only the
   convolutions are quantised (the PReLU arithmetic between them stays float). ``--keep-float``
   leaves the first and/or last convolutions float; ``--mode dynamic`` tries dynamic quantisation
   instead (no calibration).
3. The card ``face_mesh_int8.json`` beside it is the float card with the int8 file's name and SHA-256
   and ``quantization`` (source model name and hash, settings, calibration clips and crop count).
4. It prints, side by side in one process: ms per face at batch 1 and 4 (network only), and the
   points' difference float vs int8 on crops of held-out clips (:data:`CHECK_CLIPS`), in crop pixels
   and as a share of the face's inter-ocular distance. ``bench/geometry.py int8`` compares the
   two on the validation sets (68-point NME, pose, measure AUCs).

Needs ``../shared/data`` beside the checkout (the clips).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VIDEOS = SHARED / "videos"
CALIBRATION_CLIPS = ("talking_d0.mp4", "talking_d1.mp4", "talking_d3.mp4", "talking_d5.mp4", "talking_d7.mp4",
                     "talking_d9.mp4", "RD_Radio2_000.mp4", "WDA_BobMenendez_000.mp4")
CHECK_CLIPS = ("talking_d6.mp4", "talking_d8.mp4", "WDA_KatieHill_000.mp4", "single_face.mp4")
#: the mesh's outer eye corners (image-left, image-right), for errors relative to the face's size
EYE_CORNERS = (33, 263)


def mesh_crops(clip: Path, limit: int | None, every: int = 3) -> np.ndarray:
    """The mesh network's input (n, 192, 192, 3) float32 for the faces detected in ``clip`` (every
    ``every``-th frame; ``limit`` evenly spaced ones when given), cropped as the engine crops them."""

    from mien.detection import FaceDetector, frames_with_faces
    from mien.geometry.mesh import crop_transforms, crops_for

    det = FaceDetector()
    out = []
    for img, faces in frames_with_faces(clip, every, det):
        out.extend(crops_for(img, crop_transforms(faces.xyxy, faces.landmarks)))
    crops = np.asarray(out, np.float32).reshape(-1, 192, 192, 3)
    if limit is not None and len(crops) > limit:
        crops = crops[np.linspace(0, len(crops) - 1, limit).round().astype(int)]
    return crops


class _Crops:
    """ONNX Runtime calibration reader: one crop a batch."""

    def __init__(self, crops: np.ndarray) -> None:
        self.items = iter([{"input": c[None]} for c in crops])

    def get_next(self) -> dict | None:
        return next(self.items, None)


#: what ``--ops`` quantises: every convolution; only the 1x1 (pointwise) ones, the depthwise 3x3 left
#: float; or every convolution and the PReLU arithmetic, pooling and padding between them
OP_SETS = {"conv": ["Conv"], "pointwise": ["Conv"], "all": ["Conv", "Add", "Mul", "Relu", "MaxPool", "Pad"]}


def _named(src: Path, dst: Path) -> list:
    """Copy ``src`` to ``dst`` with every node named (the converter leaves names empty, and ONNX
    Runtime's quantiser excludes nodes by name); returns the convolution nodes in graph order."""
    import onnx

    model = onnx.load(str(src))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    onnx.save(model, str(dst))
    return [n for n in model.graph.node if n.op_type == "Conv"]


def quantize(src: Path, dst: Path, crops: np.ndarray, mode: str, ops: str,
             keep_float: tuple[str, ...]) -> list[str]:
    """Write the quantised ``dst``; returns the names of the convolutions left float."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = _named(pre, pre)
        excluded = []
        if ops == "pointwise":
            excluded += [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
        if "first" in keep_float:
            excluded.append(convs[0].name)
        if "last" in keep_float:  # the two heads (landmarks, face logit) each end in a convolution
            excluded += [n.name for n in convs[-2:]]
        excluded = list(dict.fromkeys(excluded))
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(dst), op_types_to_quantize=OP_SETS[ops], per_channel=True,
                             weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
        else:
            quantize_static(
                str(pre), str(dst), _Crops(crops),
                quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=OP_SETS[ops], calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=excluded,
            )
    return excluded


def int8_card(float_card: dict, dst: Path, mode: str, ops: str, excluded: list[str], n_crops: int) -> dict:
    from mien.manifest import file_sha256

    card = dict(float_card)
    card.update(
        name=f"{float_card['name']}-int8",
        file=dst.name,
        sha256=file_sha256(dst),
        quantization={
            "from": {"name": float_card["name"], "file": float_card["file"], "sha256": float_card["sha256"]},
            "method": ("ONNX Runtime static quantisation, QDQ format: int8 weights per output channel, "
                       "uint8 activations, MinMax ranges" if mode == "static" else
                       "ONNX Runtime dynamic quantisation: int8 weights per output channel"),
            "ops": OP_SETS[ops],
            "left_float": excluded,
            "calibration": None if mode == "dynamic" else {
                "clips": list(CALIBRATION_CLIPS), "crops": int(n_crops),
                "crops_from": "faces detected by mien's detector, cropped for the mesh as the engine crops them"},
            "script": "scripts/quantize_face_mesh.py",
        },
    )
    return card


def ms_per_face(mesh, crops: np.ndarray, batch: int, repeats: int = 120) -> float:
    x = crops[np.arange(batch) % len(crops)]
    mesh.run_crops(x)
    n = max(1, repeats // batch)
    t = time.perf_counter()
    for _ in range(n):
        mesh.run_crops(x)
    return (time.perf_counter() - t) * 1000 / (n * batch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "mesh_int8" / "face_mesh_int8.onnx",
                    help="where to write it (not shipped: every int8 variant measured slower than float, docs/geometry.md)")
    ap.add_argument("--crops-per-clip", type=int, default=60)
    ap.add_argument("--mode", choices=("static", "dynamic"), default="static")
    ap.add_argument("--ops", choices=tuple(OP_SETS), default="conv", help="what to quantise (see OP_SETS)")
    ap.add_argument("--keep-float", default="", help="comma-separated: first, last (convolutions left float)")
    ap.add_argument("--json", type=Path, default=None, help="write the side-by-side figures here")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from mien.geometry.mesh import FaceMesh, default_card_path

    missing = [p for p in (VIDEOS / c for c in CALIBRATION_CLIPS + CHECK_CLIPS) if not p.is_file()]
    if missing:
        print(f"quantize_face_mesh: {missing[0]} not found; needs ../shared/data beside the checkout", file=sys.stderr)
        return 2
    keep = tuple(k for k in args.keep_float.split(",") if k)
    if set(keep) - {"first", "last"}:
        print(f"quantize_face_mesh: --keep-float takes first and/or last, got {args.keep_float!r}", file=sys.stderr)
        return 2
    fmesh = FaceMesh.load(default_card_path())
    calib = np.zeros((0, 192, 192, 3), np.float32)
    if args.mode == "static":  # dynamic quantisation needs no calibration
        t = time.perf_counter()
        calib = np.concatenate([mesh_crops(VIDEOS / c, args.crops_per_clip) for c in CALIBRATION_CLIPS])
        print(f"calibration: {len(calib)} mesh crops from {len(CALIBRATION_CLIPS)} clips "
              f"({time.perf_counter() - t:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canonical = args.out.parent / fmesh.card["canonical_file"]
    if not canonical.is_file():  # the card names the canonical face beside it, as the float card does
        shutil.copy(fmesh.onnx_path.parent / fmesh.card["canonical_file"], canonical)
    excluded = quantize(fmesh.onnx_path, args.out, calib, args.mode, args.ops, keep)
    card = int8_card(fmesh.card, args.out, args.mode, args.ops, excluded, len(calib))
    card_path = args.out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {card['sha256'][:12]}…) and {card_path}")
    qmesh = FaceMesh.load(card_path)

    check = np.concatenate([mesh_crops(VIDEOS / c, 50, every=2) for c in CHECK_CLIPS])
    pf, sf = fmesh.run_crops(check)
    pq, sq = qmesh.run_crops(check)
    iod = np.linalg.norm(pf[:, EYE_CORNERS[0], :2] - pf[:, EYE_CORNERS[1], :2], axis=1)
    err = np.linalg.norm(pf[..., :2] - pq[..., :2], axis=-1)  # (n, 468) crop pixels
    rel = err.mean(1) / iod
    speed = {b: (ms_per_face(fmesh, check, b), ms_per_face(qmesh, check, b)) for b in (1, 4)}
    summary = {
        "float": {"name": fmesh.card["name"], "sha256": fmesh.card["sha256"]},
        "int8": {"name": card["name"], "sha256": card["sha256"], "mode": args.mode, "ops": args.ops, "left_float": excluded},
        "calibration_crops": int(len(calib)),
        "check_crops": int(len(check)),
        "point_diff_px_mean": float(err.mean()),
        "point_diff_over_iod_mean": float(rel.mean()),
        "point_diff_over_iod_p95": float(np.percentile(rel, 95)),
        "score_diff_max": float(np.abs(sf - sq).max()),
        "ms_per_face": {str(b): {"float": f, "int8": q, "speedup": f / q} for b, (f, q) in speed.items()},
    }
    print(f"{len(check)} crops of held-out clips ({', '.join(CHECK_CLIPS)}): float vs int8 points differ by "
          f"{err.mean():.2f} px of 192 on average; per face, mean {rel.mean():.4f} (95th pct "
          f"{summary['point_diff_over_iod_p95']:.4f}) of the outer-eye-corner distance; mesh_score max diff "
          f"{summary['score_diff_max']:.4f}")
    for b, (f, q) in speed.items():
        print(f"network ms per face at batch {b}: float {f:.3f}, int8 {q:.3f} ({f / q:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
