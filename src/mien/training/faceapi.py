"""face-api's FaceExpressionNet as an ONNX graph: a measured peer and a training-only teacher.

Training-only: nothing in the engine imports this module, and the ONNX it writes stays under
``runs/faceapi/`` (never in the package). It needs npm (to fetch the pinned package) and onnx.

What it does, step by step:

1. ``npm pack @vladmandic/face-api@1.7.15`` (MIT) into a cache folder and check the tarball's
   SHA-256 against :data:`TARBALL_SHA256`;
2. read from the tarball only the face *expression* model (its weights manifest and ``.bin``
   shard), the licence, and the three source files that fix the class order, the preprocessing
   and the layer wiring -- and check those facts against the constants here, so a package whose
   source changed fails loudly instead of giving a silently wrong port. The package also holds
   recognition, age and gender nets: they are never extracted, read or ported;
3. dequantise the weights exactly as tfjs does (``uint8 * scale + min``, to float32) and build the
   network with ``onnx.helper``: input ``rgb`` float32 (N, 112, 112, 3), RGB in 0..255, as face-api
   feeds its tensors; outputs ``logits`` and ``probs`` (N, 7) in :data:`FACEAPI_LABELS` order.

The net (``FaceFeatureExtractor`` + ``FaceProcessor`` in face-api's source): subtract the mean RGB
(122.782, 117.001, 104.298), divide by 255; four dense blocks of four convolutions (the first of
each with stride 2; block 0 starts with a 3x3 conv, every other conv is depthwise-separable with a
bias), each block summing its earlier outputs before every ReLU; a 7x7 average pool; one fully
connected layer to 7 classes; softmax. TF's ``same`` padding puts the odd pixel at the bottom and
right, which the explicit ONNX pads below reproduce.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mien.labels import EXPRESSIONS, canonical_label

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
TARBALL = "vladmandic-face-api-1.7.15.tgz"
#: SHA-256 of ``npm pack @vladmandic/face-api@1.7.15`` (npm's own integrity is sha512-WDMmK3Cf...).
TARBALL_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"

MANIFEST = "package/model/face_expression_model-weights_manifest.json"
LICENSE = "package/LICENSE"
SOURCES = {
    "labels": "package/src/faceExpressionNet/FaceExpressions.ts",
    "extractor": "package/src/faceFeatureExtractor/FaceFeatureExtractor.ts",
    "net": "package/src/faceExpressionNet/FaceExpressionNet.ts",
}
#: Everything this module may take out of the tarball besides the manifest's own shard(s).
ALLOWED_MEMBERS = {MANIFEST, LICENSE, "package/package.json", *SOURCES.values()}

#: The expression model's weight shard(s), the only .bin files read.
_SHARD = re.compile(r"face_expression_model(-shard\d+of\d+)?\.bin")

#: face-api's class order (``FACE_EXPRESSION_LABELS`` in FaceExpressions.ts), checked on port.
FACEAPI_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
#: ``meanRgb`` in FaceFeatureExtractor.ts; the normalised input is ``(rgb - MEAN_RGB) / 255``.
MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SIZE = 112
N_BLOCKS = 4
CONVS_PER_BLOCK = 4

#: Column j of mien's 8-class layout takes face-api's class ``TO_MIEN[j]`` (-1: contempt, which
#: face-api lacks and gets probability 0).
TO_MIEN = np.array(
    [FACEAPI_LABELS.index(a) if a in FACEAPI_LABELS else -1
     for a in (next((f for f in FACEAPI_LABELS if canonical_label(f) == e), "") for e in EXPRESSIONS)],
    dtype=np.int64,
)

ONNX_NAME = "face_expression_net.onnx"
LICENSE_NAME = "LICENSE.face-api.txt"
PROVENANCE_NAME = "face_expression_net.json"


class PortError(RuntimeError):
    """The package could not be fetched, failed its check, or is not what this port expects."""


# ------------------------------------------------------------------------------ fetch and verify
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_tarball(cache_dir: Path) -> Path:
    """The pinned tarball in ``cache_dir`` (``npm pack`` when absent), SHA-256 checked."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / TARBALL
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise PortError(f"npm is not installed; it is needed once to fetch {PACKAGE}@{VERSION}")
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            proc = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp],
                capture_output=True, text=True, check=False,
            )
            got = Path(tmp) / TARBALL
            if proc.returncode != 0 or not got.is_file():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise PortError(f"npm pack {PACKAGE}@{VERSION} failed: {tail[0]}")
            got.replace(path)
    digest = sha256_file(path)
    if digest != TARBALL_SHA256:
        raise PortError(f"{path} has SHA-256 {digest}, expected {TARBALL_SHA256}; delete it and rerun")
    return path


@dataclass
class PackageFiles:
    """What the port reads from the tarball: the expression model and its facts, nothing else."""

    manifest: list[dict[str, Any]]
    shards: dict[str, bytes]  # shard file name -> bytes
    license_text: str
    sources: dict[str, str]  # key of SOURCES -> text
    package_json: dict[str, Any]


def read_package(tarball: Path) -> PackageFiles:
    """Read only :data:`ALLOWED_MEMBERS` and the expression manifest's shard(s) from ``tarball``.

    One pass over the archive; every other member (the recognition, age, gender and detector
    models among them) is skipped unread.
    """
    wanted: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for info in tar:
            name = info.name
            if info.isfile() and (name in ALLOWED_MEMBERS
                                  or (name.startswith("package/model/")
                                      and _SHARD.fullmatch(name.removeprefix("package/model/")))):
                f = tar.extractfile(info)
                if f is not None:
                    wanted[name] = f.read()

    def member(name: str) -> bytes:
        if name not in wanted:
            raise PortError(f"{tarball} has no {name}; is it {PACKAGE}@{VERSION}?")
        return wanted[name]

    manifest = json.loads(member(MANIFEST))
    names = [p for group in manifest for p in group["paths"]]
    bad = [p for p in names if not _SHARD.fullmatch(p)]
    if bad:
        raise PortError(f"the expression manifest points at {bad}: only face_expression_model*.bin is read")
    return PackageFiles(
        manifest=manifest,
        shards={p: member(f"package/model/{p}") for p in names},
        license_text=member(LICENSE).decode(),
        sources={k: member(v).decode() for k, v in SOURCES.items()},
        package_json=json.loads(member("package/package.json")),
    )


def check_source_facts(files: PackageFiles) -> None:
    """The class order, preprocessing and sizes in face-api's source are the ones ported here."""
    if files.package_json.get("version") != VERSION or files.package_json.get("license") != "MIT":
        raise PortError(f"package.json says {files.package_json.get('version')} "
                        f"({files.package_json.get('license')}), expected {VERSION} (MIT)")
    m = re.search(r"FACE_EXPRESSION_LABELS\s*=\s*\[([^\]]*)\]", files.sources["labels"])
    labels = tuple(re.findall(r"'([a-z]+)'", m.group(1))) if m else ()
    if labels != FACEAPI_LABELS:
        raise PortError(f"face-api's class order is {labels}, this port assumes {FACEAPI_LABELS}")
    ext = files.sources["extractor"]
    m = re.search(r"meanRgb\s*=\s*\[([^\]]*)\]", ext)
    mean = tuple(float(v) for v in m.group(1).split(",")) if m else ()
    if mean != MEAN_RGB or ".div(255)" not in ext or f"toBatchTensor({INPUT_SIZE}, true)" not in ext:
        raise PortError(f"face-api's preprocessing changed (mean {mean}); this port assumes "
                        f"(rgb - {MEAN_RGB}) / 255 at {INPUT_SIZE} px")
    if "tf.avgPool(out, [7, 7], [2, 2], 'valid')" not in ext or ext.count("denseBlock4(") != N_BLOCKS:
        raise PortError("face-api's feature extractor is no longer 4 dense blocks and a 7x7 average pool")
    if "tf.softmax(this.runNet(input))" not in files.sources["net"]:
        raise PortError("FaceExpressionNet no longer ends in a softmax over runNet")


# ------------------------------------------------------------------------------------ weights
def decode_weights(files: PackageFiles) -> dict[str, np.ndarray]:
    """The named float32 tensors, dequantised as tfjs's ``decodeWeights`` does."""
    weights: dict[str, np.ndarray] = {}
    for group in files.manifest:
        blob = b"".join(files.shards[p] for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(s) for s in spec["shape"])
            n = int(np.prod(shape)) if shape else 1
            q = spec.get("quantization")
            if q is None:
                if spec["dtype"] != "float32":
                    raise PortError(f"{spec['name']}: unexpected dtype {spec['dtype']}")
                arr = np.frombuffer(blob, "<f4", n, offset).astype(np.float32)
                offset += 4 * n
            elif q["dtype"] == "uint8" and "scale" in q:
                raw = np.frombuffer(blob, np.uint8, n, offset)
                # JS evaluates v * scale + min in double precision and stores it in a Float32Array
                arr = (raw.astype(np.float64) * float(q["scale"]) + float(q["min"])).astype(np.float32)
                offset += n
            else:
                raise PortError(f"{spec['name']}: unsupported quantisation {q}")
            weights[spec["name"]] = arr.reshape(shape)
        if offset != len(blob):
            raise PortError(f"weights manifest covers {offset} bytes of a {len(blob)}-byte shard")
    return weights


# ---------------------------------------------------------------------------------- ONNX graph
def _same_pads(size: int, k: int, stride: int) -> tuple[list[int], int]:
    """ONNX pads [top, left, bottom, right] for TF's ``same`` padding, and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    lo = total // 2
    return [lo, lo, total - lo, total - lo], out


class _Graph:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, arr: np.ndarray) -> str:
        n = self.name(stem)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, w_hwio: np.ndarray, bias: np.ndarray, size: int, stride: int,
             stem: str, depthwise: bool = False) -> tuple[str, int]:
        k = int(w_hwio.shape[0])
        if depthwise:  # tfjs (kh, kw, in, 1) -> ONNX (in, 1, kh, kw), one group per channel
            w = w_hwio.transpose(2, 3, 0, 1)
            group = int(w_hwio.shape[2])
        else:  # tfjs (kh, kw, in, out) -> ONNX (out, in, kh, kw)
            w = w_hwio.transpose(3, 2, 0, 1)
            group = 1
        pads, out_size = _same_pads(size, k, stride)
        inputs = [x, self.const(f"{stem}_w", w.astype(np.float32))]
        if bias is not None:
            inputs.append(self.const(f"{stem}_b", bias.astype(np.float32)))
        y = self.op("Conv", inputs, stem, kernel_shape=[k, k], strides=[stride, stride],
                    pads=pads, group=group)
        return y, out_size


def _nested_sum(g: _Graph, terms: list[str], stem: str) -> str:
    """``t0 + (t1 + (... + tn))``: face-api's order of additions, so float rounding matches too."""
    total = terms[-1]
    for t in reversed(terms[:-1]):
        total = g.op("Add", [t, total], stem)
    return total


def build_onnx(weights: dict[str, np.ndarray]) -> bytes:
    """The FaceExpressionNet graph (input ``rgb`` NHWC 0..255; outputs ``logits``, ``probs``)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    x = g.op("Transpose", ["rgb"], "nchw", perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const("mean_rgb", np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1))], "centred")
    x = g.op("Div", [x, g.const("scale", np.array(255.0, np.float32))], "normalised")
    size = INPUT_SIZE
    for b in range(N_BLOCKS):
        outs: list[str] = []
        for c in range(CONVS_PER_BLOCK):
            p = f"dense{b}/conv{c}"
            stride = 2 if c == 0 else 1
            if c == 0:
                inp = x
            elif c == 1:
                inp = outs[0]
            else:  # relu(out1 + ... + out_c), nested as face-api adds: out1 + (out2 + out3)
                inp = g.op("Relu", [_nested_sum(g, outs, f"d{b}c{c}_sum")], f"d{b}c{c}_in")
            if b == 0 and c == 0:
                y, new = g.conv(inp, weights[f"{p}/filters"], weights[f"{p}/bias"], size, stride, f"d{b}c{c}")
            else:
                dw, new = g.conv(inp, weights[f"{p}/depthwise_filter"], None, size, stride,  # type: ignore[arg-type]
                                 f"d{b}c{c}_dw", depthwise=True)
                y, _ = g.conv(dw, weights[f"{p}/pointwise_filter"], weights[f"{p}/bias"], new, 1, f"d{b}c{c}_pw")
            if c == 0:
                y = g.op("Relu", [y], f"d{b}c0_relu")  # out1 = relu(conv0(x))
            outs.append(y)
            size = new
        x = g.op("Relu", [_nested_sum(g, outs, f"d{b}_sum")], f"d{b}_out")
    if size != 7:
        raise PortError(f"feature map is {size} px before the 7x7 pool, expected 7")
    x = g.op("AveragePool", [x], "pool", kernel_shape=[7, 7], strides=[2, 2])
    x = g.op("Flatten", [x], "features", axis=1)
    fc = g.op("MatMul", [x, g.const("fc_w", weights["fc/weights"].astype(np.float32))], "fc")
    g.nodes.append(helper.make_node("Add", [fc, g.const("fc_b", weights["fc/bias"].astype(np.float32))],
                                    ["logits"], name="logits"))
    g.nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="probs", axis=1))
    graph = helper.make_graph(
        g.nodes, "faceapi_face_expression_net",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["n", INPUT_SIZE, INPUT_SIZE, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", len(FACEAPI_LABELS)]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", len(FACEAPI_LABELS)])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mien.training.faceapi")
    model.ir_version = 8
    model.doc_string = (f"FaceExpressionNet from npm {PACKAGE}@{VERSION} (MIT, see {LICENSE_NAME}); "
                        f"classes: {', '.join(FACEAPI_LABELS)}")
    onnx.checker.check_model(model)
    buf = io.BytesIO()
    onnx.save(model, buf)
    return buf.getvalue()


def port(out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Fetch, verify, convert; write the ONNX, the licence and a provenance JSON to ``out_dir``."""
    tarball = fetch_tarball(cache_dir)
    files = read_package(tarball)
    check_source_facts(files)
    onnx_bytes = build_onnx(decode_weights(files))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ONNX_NAME).write_bytes(onnx_bytes)
    (out_dir / LICENSE_NAME).write_text(
        f"{ONNX_NAME} is converted from the weights of {PACKAGE}@{VERSION} (npm), whose licence "
        f"follows. Training and measurement only; not shipped with mien.\n\n{files.license_text}"
    )
    record = {
        "package": PACKAGE,
        "version": VERSION,
        "tarball_sha256": TARBALL_SHA256,
        "licence": "MIT",
        "read_from_package": sorted([MANIFEST, LICENSE, *SOURCES.values(), *(f"package/model/{p}" for p in files.shards)]),
        "onnx": ONNX_NAME,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "input": {"name": "rgb", "layout": "NHWC", "size": INPUT_SIZE, "range": "RGB 0..255 float32",
                  "normalisation": f"(rgb - {list(MEAN_RGB)}) / 255, inside the graph"},
        "outputs": {"logits": list(FACEAPI_LABELS), "probs": list(FACEAPI_LABELS)},
    }
    (out_dir / PROVENANCE_NAME).write_text(json.dumps(record, indent=2) + "\n")
    return record


# ------------------------------------------------------------------------------- inference
class FaceApiExpressionNet:
    """The ported ONNX, checked against the SHA-256 its port recorded; one CPU thread by default."""

    def __init__(self, out_dir: Path, threads: int = 1) -> None:
        record_path = out_dir / PROVENANCE_NAME
        onnx_path = out_dir / ONNX_NAME
        if not record_path.is_file() or not onnx_path.is_file():
            raise PortError(f"no ported face-api net in {out_dir}; run: python scripts/faceapi_port.py")
        self.record = json.loads(record_path.read_text())
        data = onnx_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.record["onnx_sha256"]:
            raise PortError(f"{onnx_path} has SHA-256 {digest}, its port recorded "
                            f"{self.record['onnx_sha256']}; rerun python scripts/faceapi_port.py")
        self.sha256 = digest
        from mien.detection import make_session

        self.session = make_session(data, threads)

    def predict(self, rgb_crops: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Logits and probabilities (n, 7), face-api's class order, for uint8 RGB (n, 112, 112, 3)."""
        rgb_crops = np.asarray(rgb_crops)
        if rgb_crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"crops must be (n, {INPUT_SIZE}, {INPUT_SIZE}, 3) RGB, got {rgb_crops.shape}")
        logits, probs = [], []
        for s in range(0, len(rgb_crops), batch_size):
            lo, pr = self.session.run(None, {"rgb": rgb_crops[s:s + batch_size].astype(np.float32)})
            logits.append(lo)
            probs.append(pr)
        k = len(FACEAPI_LABELS)
        if not logits:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.float32)
        return np.concatenate(logits), np.concatenate(probs)


def to_mien_probs(probs7: np.ndarray) -> np.ndarray:
    """face-api's (n, 7) probabilities in mien's 8-class order, contempt = 0."""
    probs7 = np.asarray(probs7)
    out = np.zeros((len(probs7), len(EXPRESSIONS)), probs7.dtype)
    for j, src in enumerate(TO_MIEN):
        if src >= 0:
            out[:, j] = probs7[:, src]
    return out


# ------------------------------------------------------------------------------------ crops
def box_crop(image_bgr: np.ndarray, box_xyxy: np.ndarray | tuple[float, ...], scale: float = 1.0,
             size: int = INPUT_SIZE) -> np.ndarray:
    """face-api's crop of one face box: RGB (size, size, 3) uint8.

    As face-api's ``extractFaceTensors`` + ``NetInput.toBatchTensor(112, true)``: the box (here
    grown by ``scale`` about its centre) clipped at the image borders, padded to a square with
    black, centred, and resized. Shrinking uses INTER_AREA (face-api's bilinear resize aliases),
    enlarging bilinear.
    """
    img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale, (y2 - y1) * scale
    x0, y0 = max(int(round(cx - bw / 2)), 0), max(int(round(cy - bh / 2)), 0)
    x3, y3 = min(int(round(cx + bw / 2)), w), min(int(round(cy + bh / 2)), h)
    if x3 - x0 < 1 or y3 - y0 < 1:
        raise ValueError(f"box {box_xyxy} lies outside the {w}x{h} image")
    face = img[y0:y3, x0:x3]
    fh, fw = face.shape[:2]
    side = max(fh, fw)
    # padToSquare(centred): Math.round(diff / 2) after the image, the rest before it
    top, left = (side - fh) // 2, (side - fw) // 2
    square = cv2.copyMakeBorder(face, top, side - fh - top, left, side - fw - left,
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(square, (size, size), interpolation=interp), cv2.COLOR_BGR2RGB)


def gray_crop_to_rgb(gray: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """An already-cropped grey face (e.g. a 48 px FER+ image) as face-api's RGB input."""
    interp = cv2.INTER_AREA if min(gray.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(gray, (size, size), interpolation=interp), cv2.COLOR_GRAY2RGB)


# ------------------------------------------------------------ the original, run by tfjs in node
#: The tfjs that face-api 1.7.15 was built against (its dist/tfjs.version.js), pure-JS CPU backend.
TFJS_PACKAGES = ("@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0")
DIST_NODE = "package/dist/face-api.node-wasm.js"  # requires only @tensorflow/tfjs(+ -backend-wasm)

_REFERENCE_JS = r"""
// face-api's own FaceExpressionNet (its loader, preprocessing and layers) on raw RGB crops.
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
const faceapi = require('./face-api.node-wasm.js');

async function main() {
  const [modelDir, cropsPath, n, outPath, backend] = process.argv.slice(2);
  await tf.setBackend(backend);
  await tf.ready();
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
  const buf = fs.readFileSync(cropsPath);
  const size = 112 * 112 * 3;
  const probs = [];
  for (let i = 0; i < Number(n); i += 1) {
    const pixels = Int32Array.from(buf.subarray(i * size, (i + 1) * size));
    const t = tf.tensor3d(pixels, [112, 112, 3], 'int32');
    const p = await faceapi.nets.faceExpressionNet.forward(t);
    probs.push(Array.from(p.dataSync()));
    t.dispose();
    p.dispose();
  }
  fs.writeFileSync(outPath, JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, probs }));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def reference_ready(node_dir: Path) -> bool:
    """Whether ``node_dir`` holds what :func:`run_reference` needs (made by :func:`setup_reference`)."""
    return (shutil.which("node") is not None
            and (node_dir / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file()
            and (node_dir / "face-api.node-wasm.js").is_file()
            and (node_dir / "model" / "face_expression_model-weights_manifest.json").is_file())


def setup_reference(node_dir: Path, tarball: Path) -> None:
    """npm-install tfjs into ``node_dir`` and put face-api's node build and expression model there.

    From the (SHA-256 checked) tarball only ``dist/face-api.node-wasm.js`` and the expression
    model's files are extracted: face-api's loader reads the one manifest it is pointed at.
    """
    if fetch_tarball(tarball.parent) != tarball:
        raise PortError(f"expected the tarball at {tarball}")
    node_dir.mkdir(parents=True, exist_ok=True)
    if not (node_dir / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise PortError("npm is not installed; it is needed to install tfjs for the reference run")
        if not (node_dir / "package.json").is_file():
            (node_dir / "package.json").write_text('{"name": "faceapi-reference", "private": true}\n')
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", *TFJS_PACKAGES],
                              cwd=node_dir, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PortError(f"npm install {' '.join(TFJS_PACKAGES)} failed: {proc.stderr.strip()[-300:]}")
    files = read_package(tarball)
    model_dir = node_dir / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / Path(MANIFEST).name).write_text(json.dumps(files.manifest))
    for name, data in files.shards.items():
        (model_dir / name).write_bytes(data)
    with tarfile.open(tarball, "r:gz") as tar:
        f = tar.extractfile(DIST_NODE)
        if f is None:
            raise PortError(f"{tarball} has no {DIST_NODE}")
        (node_dir / "face-api.node-wasm.js").write_bytes(f.read())
    (node_dir / "reference.js").write_text(_REFERENCE_JS)


def run_reference(node_dir: Path, rgb_crops: np.ndarray, backend: str = "cpu") -> tuple[np.ndarray, dict[str, Any]]:
    """face-api's probabilities (n, 7) for uint8 RGB crops (n, 112, 112, 3), computed by tfjs."""
    if not reference_ready(node_dir):
        raise PortError(f"{node_dir} is not set up; run: python scripts/faceapi_check.py --setup")
    crops = np.ascontiguousarray(rgb_crops, dtype=np.uint8)
    if crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"crops must be (n, {INPUT_SIZE}, {INPUT_SIZE}, 3) RGB, got {crops.shape}")
    (node_dir / "reference.js").write_text(_REFERENCE_JS)
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "crops.u8", Path(tmp) / "probs.json"
        raw.write_bytes(crops.tobytes())
        proc = subprocess.run(
            ["node", "reference.js", str((node_dir / "model").resolve()), str(raw), str(len(crops)), str(out), backend],
            cwd=node_dir, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not out.is_file():
            raise PortError(f"node reference.js failed: {proc.stderr.strip()[-500:]}")
        result = json.loads(out.read_text())
    probs = np.asarray(result.pop("probs"), np.float64).reshape(len(crops), len(FACEAPI_LABELS))
    return probs, result
