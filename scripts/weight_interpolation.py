"""Weight interpolation between two expression networks of one lineage, scored by the selection rule.

    python scripts/weight_interpolation.py A.onnx B.onnx --alphas 0,0.5,0.9,1
    python scripts/weight_interpolation.py A.onnx B.onnx --alphas 0.5 --write /tmp/soup.onnx

Each network ``(1 - alpha) * A + alpha * B`` averages every float initializer of the two ONNX files
(same graph, same initializer names: e.g. a model and the one fine-tuned from it, "WiSE-FT", Wortsman
et al., CVPR 2022; or two fine-tunes of one parent, a "model soup", Wortsman et al., ICML 2022). The
batch-norms are folded into the convolutions in these files, so this averages the folded weights.
Printed per alpha, network argmax (no temperature, no prior offset), balanced accuracy in %: the
selection sets (FER+ PublicTest, the Taiwanese and London validation folds; ``sel`` is their mean,
the selection rule's score), the report-only parts (FER+ PrivateTest, also its accuracy; the Yale
fold; the muxspace hold-out) and the Taiwanese fold's recall per posed expression. The sets are
the ``mix`` presets' (``python -m mien.training.expressions crops`` and ``splits`` build them), or
those of a mix run given by ``--run``. Training-only (needs the ``[train]`` extra and ../shared).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from mien.labels import EXPRESSIONS
from mien.training.mix import MixConfig, load_mix
from mien.training.selection import balanced_accuracy


def interpolate(a: Path, b: Path, alpha: float) -> bytes:
    """The ONNX bytes of ``(1 - alpha) * a + alpha * b`` (float initializers; the graph is a's)."""
    ma, mb = onnx.load(str(a)), onnx.load(str(b))
    others = {i.name: numpy_helper.to_array(i) for i in mb.graph.initializer}
    if set(others) != {i.name for i in ma.graph.initializer}:
        raise SystemExit(f"{a} and {b} do not have the same initializers: not one architecture")
    for init in ma.graph.initializer:
        x = numpy_helper.to_array(init)
        if x.dtype == np.float32:
            mixed = ((1.0 - alpha) * x + alpha * others[init.name]).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(mixed, init.name))
    return ma.SerializeToString()


def logits(model: bytes, pixels: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: pixels[i:i + 512].astype(np.float32)[:, None]})[0]
                           for i in range(0, len(pixels), 512)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--alphas", default="0,0.5,1", help="weights of B, comma-separated")
    ap.add_argument("--run", type=Path, default=None, help="a mix run whose sets to score on (default: the presets')")
    ap.add_argument("--write", type=Path, default=None, help="write the (single) interpolated ONNX here")
    args = ap.parse_args()
    alphas = [float(x) for x in args.alphas.split(",")]
    if args.write is not None:
        if len(alphas) != 1:
            raise SystemExit("--write takes one alpha")
        args.write.write_bytes(interpolate(args.a, args.b, alphas[0]))
        print(f"wrote {args.write}")
        return
    cfg = MixConfig()
    if args.run is not None:
        config = json.loads((args.run / "config.json").read_text())
        cfg = MixConfig(**{k: v for k, v in config.items() if k in MixConfig.__dataclass_fields__})
    _fer, _pools, selection, report, _counts = load_mix(cfg)
    for alpha in alphas:
        model = interpolate(args.a, args.b, alpha)
        row: dict[str, object] = {}
        for name, (es, pixels) in (selection | report).items():
            pred = es.predictions(logits(model, pixels))
            row[name] = round(100 * balanced_accuracy(pred, es.labels), 1)
            if name == "ferplus_private":
                row["ferplus_private_accuracy"] = round(100 * float((pred == es.labels).mean()), 1)
            if name == "taiwanese_chen2013_val":
                row["taiwanese_recall"] = {EXPRESSIONS[c]: round(float((pred[es.labels == c] == c).mean()), 2)
                                           for c in np.unique(es.labels)}
        row["sel"] = round(float(np.mean([row[n] for n in selection])), 2)  # type: ignore[arg-type]
        print(f"alpha {alpha:g}: {json.dumps(row)}", flush=True)


if __name__ == "__main__":
    main()
