"""Convert MediaPipe's Face Mesh network and canonical face to the files mien ships.

    python scripts/convert_face_mesh.py            # writes src/mien/models/face_mesh.*
    python scripts/convert_face_mesh.py --check    # converts into a temp dir and compares

Sources (both Apache-2.0, both pinned, every file SHA-256 checked against the constants below):

* PyPI wheel ``mediapipe==0.10.21`` (cp311, manylinux_2_28 x86_64), fetched with
  ``pip download --no-deps``: ``mediapipe/modules/face_landmark/face_landmark.tflite`` (the
  468-point mesh network, 192x192 input) and the wheel's LICENSE.
* npm package ``@mediapipe/face_mesh@0.4.1633559619``, fetched with ``npm pack``: its packed asset
  bundle holds ``geometry_pipeline_metadata_landmarks.binarypb``, the canonical 3-D face
  (468 vertices in centimetres) and the Procrustes landmark weights MediaPipe uses for pose. The
  wheel does not carry that file (it is compiled into its binary).

The converter is our own (flatbuffer -> ``onnx.helper``): the graph has only CONV_2D,
DEPTHWISE_CONV_2D, PRELU, ADD, MAX_POOL_2D, PAD and float16 DEQUANTIZE, so a direct translation is
short and depends on nothing but ``tflite`` (flatbuffer parser) and ``onnx``. PRELU is written as
``a*x + (1-a)*relu(x)`` (the same function; ONNX Runtime runs it 2-3x faster than its PRelu). The ONNX model takes
NHWC float32 RGB in 0..1 with a free batch dimension, like the original, and returns
``landmarks`` (N, 1404: 468 x (x, y, z) in input pixels) and ``face_logit`` (N, 1).

The run needs the network (registries only), ``pip install tflite==2.18.0 onnx``; nothing here runs
at analysis time.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mediapipe==0.10.21"
WHEEL_FILE = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
TFLITE_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
TFLITE_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
LICENSE_MEMBER = "mediapipe-0.10.21.dist-info/LICENSE"

NPM = "@mediapipe/face_mesh@0.4.1633559619"
NPM_FILE = "mediapipe-face_mesh-0.4.1633559619.tgz"
NPM_SHA256 = "a65c9a7509560f29e574c026dc6a667d2154617eb3ba0c287db02350de0c116f"
NPM_ASSETS = "package/face_mesh_solution_packed_assets.data"
METADATA_RANGE = (3737848, 3757224)  # byte range named in face_mesh_solution_packed_assets_loader.js
METADATA_SHA256 = "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4"

OPSET = 17
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "mien" / "models"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked(data: bytes, expected: str, what: str) -> bytes:
    digest = sha256(data)
    if digest != expected:
        sys.exit(f"{what}: SHA-256 {digest}, expected {expected}; the pinned source changed, stop")
    return data


def fetch_sources(work: Path) -> tuple[bytes, bytes, bytes]:
    """(face_landmark.tflite, LICENSE, geometry metadata binarypb), all SHA-256 checked."""
    wheel = work / WHEEL_FILE
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
             "311", "--platform", "manylinux_2_28_x86_64", "-d", str(work), WHEEL],
            check=True,
        )
    checked(wheel.read_bytes(), WHEEL_SHA256, WHEEL_FILE)
    with zipfile.ZipFile(wheel) as z:
        tfl = checked(z.read(TFLITE_MEMBER), TFLITE_SHA256, TFLITE_MEMBER)
        licence = z.read(LICENSE_MEMBER)
    tgz = work / NPM_FILE
    if not tgz.exists():
        subprocess.run(["npm", "pack", NPM, "--pack-destination", str(work)], check=True, cwd=work)
    checked(tgz.read_bytes(), NPM_SHA256, NPM_FILE)
    with tarfile.open(tgz) as t:
        member = t.extractfile(NPM_ASSETS)
        assert member is not None
        assets = member.read()
    meta = checked(assets[METADATA_RANGE[0]:METADATA_RANGE[1]], METADATA_SHA256, "geometry metadata")
    return tfl, licence, meta


# --- protobuf wire format, enough for GeometryPipelineMetadata -------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return out, i


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    out: list[tuple[int, int, object]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
            out.append((num, wire, val))
        elif wire == 2:
            n, i = _varint(buf, i)
            out.append((num, wire, buf[i:i + n]))
            i += n
        elif wire == 5:
            out.append((num, wire, buf[i:i + 4]))
            i += 4
        elif wire == 1:
            out.append((num, wire, buf[i:i + 8]))
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def parse_geometry_metadata(buf: bytes) -> dict:
    """GeometryPipelineMetadata: canonical_mesh=1 (Mesh3d: vertex_type=1, primitive_type=2, vertex_buffer=3 packed
    float, index_buffer=4 packed uint32), procrustes_landmark_basis=2 (landmark_id=1, weight=2),
    input_source=3. Vertex layout VERTEX_PT: x, y, z, u, v."""
    basis: list[tuple[int, float]] = []
    mesh = b""
    for num, wire, val in _fields(buf):
        if num == 2 and wire == 2:
            lid, w = 0, 0.0
            for n2, _, v2 in _fields(val):  # type: ignore[arg-type]
                if n2 == 1:
                    lid = int(v2)  # type: ignore[call-overload]
                elif n2 == 2:
                    w = float(np.frombuffer(v2, "<f4")[0])  # type: ignore[arg-type]
            basis.append((lid, w))
        elif num == 1 and wire == 2:
            mesh = val  # type: ignore[assignment]
    vertices = np.zeros(0, np.float32)
    indices: list[int] = []
    for num, wire, val in _fields(mesh):
        if num == 3:
            vertices = np.concatenate([vertices, np.frombuffer(val, "<f4")]) if wire == 2 else np.append(
                vertices, np.frombuffer(val, "<f4"))  # type: ignore[arg-type]
        elif num == 4:
            if wire == 2:
                j = 0
                while j < len(val):  # type: ignore[arg-type]
                    v, j = _varint(val, j)  # type: ignore[arg-type]
                    indices.append(v)
            else:
                indices.append(int(val))  # type: ignore[call-overload]
    vt = vertices.reshape(-1, 5)
    return {
        "vertices": vt[:, :3].astype(np.float32),
        "uv": vt[:, 3:].astype(np.float32),
        "triangles": np.asarray(indices, np.int32).reshape(-1, 3),
        "procrustes": basis,
    }


# --- tflite -> onnx ----------------------------------------------------------------------------------

def convert(tfl: bytes):
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(tfl, 0)
    graph = model.Subgraphs(0)
    opname = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    np_type = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
               tflite.TensorType.INT32: np.int32}

    def tname(i: int) -> str:
        return graph.Tensors(i).Name().decode()

    def const(i: int) -> np.ndarray | None:
        t = graph.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        return np.frombuffer(data.tobytes(), np_type[t.Type()]).reshape(t.ShapeAsNumpy())

    def shape(i: int) -> list[int]:
        return [int(s) for s in graph.Tensors(i).ShapeAsNumpy()]

    consts: dict[str, np.ndarray] = {}
    nodes: list = []
    inits: list = []

    def add_init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def same_pads(in_hw: list[int], k: list[int], s: list[int], d: list[int]) -> list[int]:
        pads_begin, pads_end = [], []
        for size, kk, ss, dd in zip(in_hw, k, s, d):
            out = -(-size // ss)
            total = max((out - 1) * ss + (kk - 1) * dd + 1 - size, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)
        return pads_begin + pads_end

    def activation(out: str, fused: int) -> str:
        if fused == tflite.ActivationFunctionType.NONE:
            return out
        if fused == tflite.ActivationFunctionType.RELU:
            nodes.append(helper.make_node("Relu", [out + "_pre"], [out]))
        elif fused == tflite.ActivationFunctionType.RELU6:
            lo, hi = add_init(out + "_min", np.array(0, np.float32)), add_init(out + "_max", np.array(6, np.float32))
            nodes.append(helper.make_node("Clip", [out + "_pre", lo, hi], [out]))
        else:
            raise NotImplementedError(f"fused activation {fused}")
        return out + "_pre"

    inp = tname(graph.Inputs(0))
    nodes.append(helper.make_node("Transpose", ["input"], [inp], perm=[0, 3, 1, 2]))
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = opname[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out_i = op.Outputs(0)
        out = tname(out_i)
        if name == "DEQUANTIZE":
            arr = const(ins[0])
            assert arr is not None
            consts[out] = arr.astype(np.float32)
            continue
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opts_cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
            o = opts_cls()
            o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            w = consts.get(tname(ins[1]))
            w = const(ins[1]).astype(np.float32) if w is None else w  # type: ignore[union-attr]
            b = consts.get(tname(ins[2]))
            b = const(ins[2]).astype(np.float32) if b is None else b  # type: ignore[union-attr]
            if name == "CONV_2D":
                w_onnx, group = w.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
            else:
                w_onnx = w.transpose(3, 0, 1, 2)  # 1HW(C*m) -> (C*m)1HW
                group = shape(ins[0])[3]
                assert w.shape[3] == group, "depth multiplier other than 1 not supported"
            kh, kw = w.shape[1], w.shape[2]
            strides = [o.StrideH(), o.StrideW()]
            dil = [o.DilationHFactor(), o.DilationWFactor()]
            in_hw = shape(ins[0])[1:3]
            pads = same_pads(in_hw, [kh, kw], strides, dil) if o.Padding() == tflite.Padding.SAME else [0] * 4
            target = activation(out, o.FusedActivationFunction())
            nodes.append(helper.make_node(
                "Conv", [tname(ins[0]), add_init(out + "_w", w_onnx), add_init(out + "_b", b)], [target],
                kernel_shape=[kh, kw], strides=strides, dilations=dil, pads=pads, group=group))
        elif name == "PRELU":
            alpha = consts.get(tname(ins[1]))
            alpha = const(ins[1]).astype(np.float32) if alpha is None else alpha  # type: ignore[union-attr]
            slope = alpha.reshape(-1)[:, None, None] if alpha.ndim else alpha  # HWC(1,1,C) -> C11
            # PReLU as a*x + (1-a)*relu(x): the same function, but ONNX Runtime's PRelu kernel
            # (per-channel broadcast, no NCHWc layout) took 58% of the network's time; this takes
            # the graph from about 3x to about 1.5x the original tflite's time per face.
            x = tname(ins[0])
            nodes += [
                helper.make_node("Relu", [x], [out + "_relu"]),
                helper.make_node("Mul", [out + "_relu", add_init(out + "_1ma", (1.0 - slope).astype(np.float32))],
                                 [out + "_pos"]),
                helper.make_node("Mul", [x, add_init(out + "_slope", slope.astype(np.float32))], [out + "_ax"]),
                helper.make_node("Add", [out + "_ax", out + "_pos"], [out]),
            ]
        elif name == "ADD":
            o = tflite.AddOptions()
            o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            target = activation(out, o.FusedActivationFunction())
            nodes.append(helper.make_node("Add", [tname(ins[0]), tname(ins[1])], [target]))
        elif name == "MAX_POOL_2D":
            o = tflite.Pool2DOptions()
            o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            kern = [o.FilterHeight(), o.FilterWidth()]
            strides = [o.StrideH(), o.StrideW()]
            pads = (same_pads(shape(ins[0])[1:3], kern, strides, [1, 1])
                    if o.Padding() == tflite.Padding.SAME else [0] * 4)
            target = activation(out, o.FusedActivationFunction())
            nodes.append(helper.make_node("MaxPool", [tname(ins[0])], [target], kernel_shape=kern,
                                          strides=strides, pads=pads))
        elif name == "PAD":
            p = const(ins[1])
            assert p is not None and p.shape == (4, 2)
            if not p[:3].any():
                # Zero channels appended before a residual ADD ("channel padding"): written as a 1x1
                # convolution whose weights are the identity with zero rows, the same numbers. A Pad
                # node has no NCHWc kernel in ONNX Runtime, so it forced two layout reorders and kept
                # the PReLUs around it out of the fused layout: 0.86-0.89x the time (bench/mesh_network.py).
                c_in = shape(ins[0])[3]
                eye = np.zeros((c_in + int(p[3].sum()), c_in, 1, 1), np.float32)
                eye[int(p[3, 0]) + np.arange(c_in), np.arange(c_in)] = 1.0
                nodes.append(helper.make_node("Conv", [tname(ins[0]), add_init(out + "_pad_eye", eye)], [out],
                                              kernel_shape=[1, 1]))
            else:
                nchw = p[[0, 3, 1, 2]]
                pads = np.concatenate([nchw[:, 0], nchw[:, 1]]).astype(np.int64)
                nodes.append(helper.make_node("Pad", [tname(ins[0]), add_init(out + "_pads", pads)], [out],
                                              mode="constant"))
        else:
            raise NotImplementedError(f"tflite op {name} is not handled by this converter")

    outs = [tname(graph.Outputs(j)) for j in range(graph.OutputsLength())]
    shapes = {o_: shape(graph.Outputs(j)) for j, o_ in enumerate(outs)}
    lm_out = next(o_ for o_ in outs if shapes[o_][-1] == 1404)
    score_out = next(o_ for o_ in outs if shapes[o_][-1] == 1)
    add_init("flat_shape", np.array([0, -1], np.int64))
    nodes.append(helper.make_node("Reshape", [lm_out, "flat_shape"], ["landmarks"]))
    nodes.append(helper.make_node("Reshape", [score_out, "flat_shape"], ["face_logit"]))
    g = helper.make_graph(
        nodes, "face_mesh",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 192, 192, 3])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", 1404]),
         helper.make_tensor_value_info("face_logit", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mien convert_face_mesh")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


NOTICE = """Face Mesh network and canonical face model (MediaPipe)

face_mesh.onnx is MediaPipe's face_landmark.tflite (Face Mesh, 468 landmarks), converted to ONNX by
scripts/convert_face_mesh.py without retraining or changing any weight (float16 weights widened to
float32). face_mesh_canonical.npz holds MediaPipe's canonical face model and Procrustes landmark
weights, read from geometry_pipeline_metadata_landmarks.binarypb.

Sources:
  PyPI  mediapipe==0.10.21 ({wheel}, sha256 {wheel_sha})
        member {tflite_member} (sha256 {tflite_sha})
  npm   {npm} ({npm_file}, sha256 {npm_sha})
        geometry_pipeline_metadata_landmarks.binarypb (sha256 {meta_sha})

Copyright 2019-2025 The MediaPipe Authors. Licensed under the Apache License, Version 2.0 (the
"License"); you may not use these files except in compliance with the License. The full licence text,
as shipped in the mediapipe wheel, follows.

"""


def write_outputs(out_dir: Path, work: Path) -> dict:
    import onnx

    tfl, licence, meta_buf = fetch_sources(work)
    model = convert(tfl)
    meta = parse_geometry_metadata(meta_buf)
    assert meta["vertices"].shape == (468, 3), meta["vertices"].shape
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_bytes = model.SerializeToString()
    (out_dir / "face_mesh.onnx").write_bytes(onnx_bytes)
    basis = np.array(meta["procrustes"], dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, vertices=meta["vertices"], uv=meta["uv"], triangles=meta["triangles"],
             procrustes_ids=basis[:, 0].astype(np.int32), procrustes_weights=basis[:, 1].astype(np.float32))
    canon = buf.getvalue()
    (out_dir / "face_mesh_canonical.npz").write_bytes(canon)
    notice = NOTICE.format(wheel=WHEEL_FILE, wheel_sha=WHEEL_SHA256, tflite_member=TFLITE_MEMBER,
                           tflite_sha=TFLITE_SHA256, npm=NPM, npm_file=NPM_FILE, npm_sha=NPM_SHA256,
                           meta_sha=METADATA_SHA256) + licence.decode()
    (out_dir / "face_mesh_NOTICE.txt").write_text(notice)
    card = {
        "name": "mediapipe-face-mesh-0.10.21",
        "file": "face_mesh.onnx",
        "sha256": sha256(onnx_bytes),
        "canonical_file": "face_mesh_canonical.npz",
        "canonical_sha256": sha256(canon),
        "licence": "Apache-2.0 (face_mesh_NOTICE.txt)",
        "source": {"pypi": WHEEL, "wheel_sha256": WHEEL_SHA256, "tflite": TFLITE_MEMBER,
                   "tflite_sha256": TFLITE_SHA256, "npm": NPM, "npm_sha256": NPM_SHA256,
                   "geometry_metadata_sha256": METADATA_SHA256},
        "converter": f"scripts/convert_face_mesh.py (tflite flatbuffer -> onnx.helper, opset {OPSET})",
        "input": {"name": "input", "layout": "NHWC float32 (N, 192, 192, 3)", "colour": "RGB",
                  "value_range": "0..1", "size": 192},
        "outputs": {"landmarks": "(N, 1404): 468 x (x, y, z) in input pixels; z is relative depth, same scale as x",
                    "face_logit": "(N, 1): face presence logit; sigmoid gives mesh_score"},
        "parameters": int(sum(int(np.prod(t.dims)) for t in model.graph.initializer
                              if not t.name.endswith(("_1ma", "_pad_eye")))),  # derived constants, not weights
    }
    (out_dir / "face_mesh.json").write_text(json.dumps(card, indent=2) + "\n")
    onnx.checker.check_model(model)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: src/mien/models)")
    ap.add_argument("--work", type=Path, default=None, help="download folder (default: a temp dir)")
    ap.add_argument("--check", action="store_true", help="convert into a temp dir and compare with --out")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.check:
            card = write_outputs(Path(tmp) / "out", work)
            shipped = json.loads((args.out / "face_mesh.json").read_text())
            same = all(card[k] == shipped[k] for k in ("sha256", "canonical_sha256"))
            print("conversion reproduces the shipped files" if same else "conversion DIFFERS from the shipped files")
            return 0 if same else 1
        card = write_outputs(args.out, work)
    print(f"wrote {args.out}/face_mesh.onnx (sha256 {card['sha256']}, {card['parameters']} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
