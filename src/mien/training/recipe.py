"""The recipes that produce mien's expression model, from FER+ alone.

    python -m mien.training.recipe --preset cpu --out runs/cpu     # ~77 min on 2 CPU cores with bf16
    python -m mien.training.recipe --preset gpu --out runs/gpu     # about 4 minutes on one H100
    python -m mien.training.recipe --preset gpu-imagenet --out runs/gpu-imagenet   # 7.7 min on one H100
    python -m mien.training.expressions crops && python -m mien.training.recipe --preset mix --out runs/mix

``mix`` (the shipped model since 2.0): the shipped FER+ network fine-tuned on FER+ Training plus the
four sets in ../shared/data/expressions (engine-aligned crops, subject-disjoint folds, source-weighted
epochs), selected by mean balanced accuracy over FER+ PublicTest and the posed sets' validation folds
(``mien.training.mix``, ``mien.training.selection``). It needs the crop cache built first.

``cpu``: one 1.2M-parameter network, trained directly for 100 epochs (what a 2-core machine with
bf16 in hardware does in under 90 minutes; on a CPU without it, ``--precision auto`` falls back to
float32 and the same recipe takes about 2.8x as long).

``gpu``: the same code, run longer and wider. Several wide teachers (same VGG family, 4x the
channels, different seeds) are trained on the FER+ vote distributions; their flip-averaged
ensemble is then distilled into the small network that ships, on the same augmented batches the
student sees ("patient and consistent" distillation), so the shipped model keeps its CPU speed.

``gpu-imagenet``: as ``gpu``, but the teachers are EfficientNet-Lite0 fine-tuned from ImageNet
weights that ship in a pinned registry package (``mien.training.effnet``), at 128 px. Measured
on one H100: teachers of 83.1% and 83.9% on PublicTest, no better than the small net trained alone
on a CPU, and a student of 81.8% (docs/training.md); kept to repeat that measurement.

Every stage writes its own folder (``teacherK/``, ``student/``) with ``config.json`` (the epochs
actually run included), ``train_log.jsonl``, ``best.pt`` and ``summary.json``; ``recipe.json``
sums it up, with the teachers' ensemble accuracy. With ``--time-budget-s`` the epochs of each stage
are fitted to the time and logged; a preset's fixed epochs (as ``gpu`` records for the shipped run)
repeat the schedule without a budget.
Model selection uses PublicTest only; PrivateTest is predicted once per stage for the record.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mien.stats import softmax
from mien.training import cli_errors
from mien.training.ferplus import load_ferplus
from mien.training.net import build_net
from mien.training.train import Deployable, TrainConfig, accuracy, predict_logits, resolve_device, train

#: the FER+-only model the mix preset starts from; recover it with
#: ``git show 8320618:src/mien/models/expression.onnx > runs/model_v1.2/expression.onnx``
V12_ONNX = "runs/model_v1.2/expression.onnx"
V12_SHA256 = "58a27112de62d0dc2cbe6ca2a396b232bfe4a3ea0676d6a1d304c555f59aed93"
#: mien-mix-vgg-2.0, the warm start of the ``mix2`` preset; recover it with
#: ``git show 70944d6:src/mien/models/expression.onnx > runs/model_v2.0/expression.onnx``
V20_ONNX = "runs/model_v2.0/expression.onnx"
V20_SHA256 = "ac0504547e3952ce09668cf93e80e7948486c2ecf9136d698505420c560c8493"
#: mien-mix-vgg-2.1, the warm start of the ``mix3`` preset; recover it with
#: ``git show 356ff33:src/mien/models/expression.onnx > runs/model_v2.1/expression.onnx``
V21_ONNX = "runs/model_v2.1/expression.onnx"
V21_SHA256 = "b2fcd7e1d251853a3c066b19bf11d4961ca8ae3ea0a7efc6bd7da81ae7e281fb"
#: face-api's FaceExpressionNet on every training image (scripts/faceapi_eval.py writes it). The pin
#: is over its arrays (mien.training.mix.npz_content_sha256): a file's own hash changes every time
#: it is written. The 2.1 and 2.2 cards name the file hash of the copy they were trained on
#: (ca67e087...); regenerated on 2026-12-03, its face-api figures in docs/peers_faceapi.md came out the same.
#: The same code writes one of two sets of arrays, by the CPU it runs on: ONNX Runtime picks its
#: kernels by instruction set, so the detector's boxes (and the crops face-api reads) differ a
#: little between x86 CPUs with AVX-512 and AVX2-only ones (found 2026-12-07: 5ed4a65, f3cc828 and
#: 3346dc1 all write the AVX-512 arrays on an AVX-512 machine, and 3346dc1 wrote the AVX2 arrays on
#: an AVX2 machine the day before). These are the AVX2 arrays: the mix2 and mix3 presets' pin.
FACEAPI_TEACHER = "runs/faceapi/teacher_probs.npz"
FACEAPI_TEACHER_SHA256 = "0d053f95271d90bd4d7fe830e8a5c100afb53ccdbf25b694a14e101319232c37"
#: the AVX-512 arrays of the same file: the pin of the presets trained since 2026-12-04 (mix4)
FACEAPI_TEACHER_SHA256_AVX512 = "9cc0c9bc0c1958cbef743bef6229c5f82836782bfc9e14ef22440ce18e2c458a"
#: each teacher pin to the same teacher's arrays as the other instruction set writes them: a preset
#: takes either (and its run records the one it read)
SAME_TEACHER = {FACEAPI_TEACHER_SHA256: FACEAPI_TEACHER_SHA256_AVX512,
                FACEAPI_TEACHER_SHA256_AVX512: FACEAPI_TEACHER_SHA256}
#: file hashes that earlier runs recorded for a teacher, to the content pin of the same arrays
TEACHER_FILE_ALIASES = {"ca67e0876bc52ecd9bf1878784d8fb934a1bdb0c728ae03223b27fc798d74bcd": FACEAPI_TEACHER_SHA256}
MIX_EPOCHS = 9  # the shipped run's config.json: epochs_run (the one-cycle schedule's length) ...
MIX_STOP_AFTER = 6  # ... and epochs_completed: mien-mix-vgg-2.0's run was stopped after 6 of its 9 epochs
# (by hand, to meet a deadline; then ``python -m mien.training.mix --finalize``); 0: run them all

PRESETS: dict[str, dict] = {
    # FER+ and the four expression sets, warm-started from the packaged FER+ network (mien.training.mix);
    # the schedule ``--time-budget-s 3800`` chose on the busy 2-core machine for mien-mix-vgg-2.0
    "mix": {"teachers": 0, "mix": True,
            "student": {"epochs": MIX_EPOCHS, "stop_after": MIX_STOP_AFTER, "lr": 0.02, "epoch_samples": 16384, "batch_size": 128,
                        "threads": 1, "warm_start": V12_ONNX, "warm_start_sha256": V12_SHA256}},
    # 2.0 fine-tuned again at a lower learning rate for 24 full epochs, with face-api's
    # FaceExpressionNet blended into the soft labels (FER+ 0.3, muxspace 0.5, posed sets 0.2)
    "mix2": {"teachers": 0, "mix": True,
             "student": {"epochs": 24, "stop_after": 0, "lr": 0.008, "epoch_samples": 16384, "batch_size": 128,
                         "threads": 1, "warm_start": V20_ONNX, "warm_start_sha256": V20_SHA256,
                         "teacher": FACEAPI_TEACHER, "teacher_sha256": FACEAPI_TEACHER_SHA256,
                         "teacher_ferplus": 0.3, "teacher_muxspace": 0.5, "teacher_posed": 0.2}},
    # 2.1 fine-tuned for 16 epochs with the Taiwanese set's posed label in place of its raters' votes
    # (posed_label_weight 1.0; the face-api teacher still blended in as in mix2)
    "mix3": {"teachers": 0, "mix": True,
             "student": {"epochs": 16, "stop_after": 0, "lr": 0.005, "epoch_samples": 16384, "batch_size": 128,
                         "threads": 1, "warm_start": V21_ONNX, "warm_start_sha256": V21_SHA256,
                         "teacher": FACEAPI_TEACHER, "teacher_sha256": FACEAPI_TEACHER_SHA256,
                         "teacher_ferplus": 0.3, "teacher_muxspace": 0.5, "teacher_posed": 0.2,
                         "posed_label_weight": 1.0, "seed": 1}},
    # mix3 again on the engine's crops since 2026-12-04 (expressions crops, re-centred large faces)
    # and the teacher file today's detector writes: mien-mix-vgg-2.3, shipped since 2026-12-04
    "mix4": {"teachers": 0, "mix": True,
             "student": {"epochs": 16, "stop_after": 0, "lr": 0.005, "epoch_samples": 16384, "batch_size": 128,
                         "threads": 1, "warm_start": V21_ONNX, "warm_start_sha256": V21_SHA256,
                         "teacher": FACEAPI_TEACHER, "teacher_sha256": FACEAPI_TEACHER_SHA256_AVX512,
                         "teacher_ferplus": 0.3, "teacher_muxspace": 0.5, "teacher_posed": 0.2,
                         "posed_label_weight": 1.0, "seed": 1}},
    # 100 epochs of the small net alone: 77 minutes on 2 CPU cores with bf16 (--precision auto)
    "cpu": {"teachers": 0, "student": {"epochs": 100}},
    # The epochs are those that ``--time-budget-s 262`` chose on one H100 for the shipped model
    # (mien-fer-vgg-1.1); with a time budget the *_max_epochs are the upper limits instead.
    "gpu": {
        "teachers": 2,
        "teacher": {"width": 64, "batch_size": 256, "lr": 0.1, "dropout": 0.5},
        "teacher_epochs": [48, 51],
        "teacher_max_epochs": 120,
        "student": {"width": 32, "epochs": 53, "batch_size": 256, "lr": 0.1, "distill_weight": 0.7, "dropout": 0.3},
        "student_max_epochs": 200,
        "teacher_share": 0.5,  # of --time-budget-s
    },
    # Teachers fine-tuned from ImageNet (EfficientNet-Lite0, weights from a pinned registry
    # package) at 128 px inside the graph, distilled into the same 1 ms student. The epochs are
    # those that ``device_train.sh 2 480 gpu-imagenet`` chose on one H100 (2026-11-27): teachers
    # 83.1% / 83.9% on PublicTest, student 81.8%, not shipped (docs/training.md).
    "gpu-imagenet": {
        "teachers": 2,
        "teacher": {"arch": "effnet-lite0", "net_size": 128, "batch_size": 256, "lr": 0.04,
                    "weight_decay": 1e-4, "dropout": 0.3},
        "teacher_epochs": [26, 31],
        "teacher_max_epochs": 60,
        "student": {"arch": "vgg", "width": 32, "epochs": 26, "batch_size": 256, "lr": 0.1,
                    "distill_weight": 0.7, "dropout": 0.3},
        "student_max_epochs": 200,
        "teacher_share": 0.5,
    },
}


def with_this_cpus_teacher(settings: dict) -> dict:
    """``settings`` with its teacher pin swapped for the same teacher's other arrays
    (:data:`SAME_TEACHER`) where the teacher file holds those: the file this CPU writes. Any other
    file is left to the run's own check, which stops with both hashes."""
    from mien.training.mix import npz_content_sha256

    pin, path = settings.get("teacher_sha256"), Path(settings.get("teacher") or "")
    if not pin or pin not in SAME_TEACHER or not path.is_file() or path.suffix != ".npz":
        return settings
    digest = npz_content_sha256(path)
    if digest == SAME_TEACHER[pin]:
        print(f"teacher file {path}: the preset's teacher as this CPU's instruction set writes it "
              f"(SHA-256 {digest[:12]}..., pinned {pin[:12]}... for the other one)", flush=True)
        return settings | {"teacher_sha256": digest}
    return settings


def run_mix(spec: dict, base: TrainConfig, time_budget_s: float) -> dict:
    """The ``mix`` preset: one fine-tuning stage into ``<out>/student`` and a ``recipe.json``."""
    from mien.training.mix import MixConfig, train_mix

    out = Path(base.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    settings = dict(spec["student"])
    if time_budget_s:  # the budget chooses the epochs, up to 60, and where to stop
        settings["epochs"] = max(settings["epochs"], 60)
        settings["stop_after"] = 0
    seed = settings.pop("seed", base.seed)  # a preset that names its seed repeats it
    settings = with_this_cpus_teacher(settings)
    cfg = MixConfig(data=base.data, out=str(out / "student"), device=base.device, seed=seed,
                    precision=base.precision, time_budget_s=time_budget_s, **settings)
    summary = train_mix(cfg)
    record = {"preset": spec.get("name", "mix"), "teachers": [], "student": summary, "minutes": (time.time() - t0) / 60}
    (out / "recipe.json").write_text(json.dumps(record, indent=2))
    return record


def load_model(run: Path, device: str | torch.device = "cpu") -> Deployable:
    cfg = json.loads((run / "config.json").read_text())
    model = Deployable(build_net(cfg))
    model.load_state_dict(torch.load(run / "best.pt", map_location="cpu"))
    return model.to(device).eval()


def run_recipe(preset: str, base: TrainConfig, time_budget_s: float = 0.0, export: bool = True,
               teachers: int | None = None) -> dict:
    """Run a preset; ``teachers`` overrides the preset's number of teachers (extra teachers get the
    preset's largest epochs, or their share of ``time_budget_s``)."""
    spec = PRESETS[preset]
    if spec.get("mix"):
        return run_mix(spec | {"name": preset}, base, time_budget_s)
    if teachers is not None and teachers > 0 and not spec["teachers"]:
        raise ValueError(f"preset {preset!r} trains no teachers")
    out = Path(base.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_ferplus(base.data)
    t0 = time.time()
    n_teachers = spec["teachers"] if teachers is None else teachers
    share = spec.get("teacher_share", 0.0)
    record: dict = {"preset": preset, "teachers": []}

    teacher_nets: list[torch.nn.Module] = []
    for k in range(n_teachers):
        fixed = spec["teacher_epochs"]
        epochs = fixed[k] if not time_budget_s and k < len(fixed) else spec["teacher_max_epochs"]
        cfg = replace(base, **spec["teacher"], epochs=epochs, out=str(out / f"teacher{k}"),
                      seed=base.seed + 1000 * (k + 1),
                      time_budget_s=time_budget_s * share / n_teachers if time_budget_s else 0.0)
        summary = train(cfg, data=data, export=False)
        record["teachers"].append({k2: summary[k2] for k2 in ("params", "epochs_run", "best_epoch",
                                                                "public_test_acc", "private_test_acc")})
        teacher_nets.append(load_model(Path(cfg.out), resolve_device(cfg.device)))
        (out / "recipe.json").write_text(json.dumps(record, indent=2))

    if teacher_nets:
        probs = {
            split.name: np.mean([softmax(predict_logits(m, split.pixels)) for m in teacher_nets], 0)
            for split in (data.public_test, data.private_test)
        }
        record["teacher_ensemble"] = {
            "public_test_acc": accuracy(np.log(probs["PublicTest"] + 1e-12), data.public_test),
            "private_test_acc": accuracy(np.log(probs["PrivateTest"] + 1e-12), data.private_test),
            "note": "mean of the teachers' probabilities, no flip averaging; PrivateTest for the record only",
        }
        (out / "recipe.json").write_text(json.dumps(record, indent=2))
        print(json.dumps(record["teacher_ensemble"]), flush=True)

    remaining = time_budget_s - (time.time() - t0) if time_budget_s else 0.0
    cfg = replace(base, **spec["student"], out=str(out / "student"),
                  time_budget_s=max(remaining, 60.0) if time_budget_s else 0.0)
    if time_budget_s and "student_max_epochs" in spec:
        cfg = replace(cfg, epochs=spec["student_max_epochs"])
    summary = train(cfg, teachers=teacher_nets or None, data=data, export=export)
    record["student"] = summary
    record["minutes"] = (time.time() - t0) / 60
    (out / "recipe.json").write_text(json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--data", default=TrainConfig.data)
    ap.add_argument("--out", default=None, help="default runs/<preset>")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=TrainConfig.threads)
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=TrainConfig.precision,
                    help="of the training steps; auto: bf16 on a GPU or a CPU with bf16 in hardware")
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    ap.add_argument("--time-budget-s", type=float, default=0.0,
                    help="fit every stage's epochs into this many seconds in all (0: the preset's epochs)")
    ap.add_argument("--teachers", type=int, default=None, help="override the preset's number of teachers")
    ap.add_argument("--no-export", action="store_true", help="skip ONNX export (export later on a CPU)")
    args = ap.parse_args(argv)
    base = TrainConfig(data=args.data, out=args.out or f"runs/{args.preset}", device=args.device,
                       threads=args.threads, seed=args.seed, precision=args.precision)
    with cli_errors("mien.training.recipe"):
        record = run_recipe(args.preset, base, args.time_budget_s, export=not args.no_export,
                            teachers=args.teachers)
    print(json.dumps({k: v for k, v in record.items() if k != "student"}, indent=2))


if __name__ == "__main__":
    main()
