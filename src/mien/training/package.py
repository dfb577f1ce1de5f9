"""Package a training run as mien's shipped expression model: ONNX + card JSON in ``mien/models``.

    python -m mien.training.package runs/default

Writes ``expression.onnx`` and ``expression.json`` (architecture, input spec and crop framing,
training data and terms, temperature and class-prior strength chosen on PublicTest, intended and out-of-scope uses, known
limits). The measured metrics are then added by ``mien evaluate ... --write-card`` — the card's
numbers come from the audit tool, never typed by hand.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from mien.alignment import FER_TEMPLATE
from mien.labels import EXPRESSIONS
from mien.training import cli_errors
from mien.training.net import describe_net

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def _distillation(run: Path, cfg: dict[str, Any]) -> str | None:
    recipe_file = run.parent / "recipe.json"
    if not cfg.get("teachers") or not recipe_file.exists():
        return None
    recipe = json.loads(recipe_file.read_text())
    t_cfg = json.loads((run.parent / "teacher0" / "config.json").read_text())
    teachers = recipe["teachers"]
    accs = ", ".join(format(t["private_test_acc"], ".1%") for t in teachers)
    return (
        f"distilled from {len(teachers)} teachers ({describe_net(t_cfg)}; "
        f"{teachers[0]['params'] / 1e6:.2f}M parameters each), trained first by the same code on the same "
        f"data with other seeds ({', '.join(str(t['epochs_run']) for t in teachers)} epochs; PrivateTest "
        f"accuracy {accs}, their ensemble "
        f"{recipe['teacher_ensemble']['private_test_acc']:.1%}). Every augmented batch the student trains on "
        f"also goes through the teachers; the student's loss is {1 - cfg['distill_weight']:.1f} x soft cross-entropy on the FER+ votes (class-weighted) + "
        f"{cfg['distill_weight']:.1f} x cross-entropy on the teachers' mean probabilities over the same "
        "augmented face and its mirror image (consistent distillation, Beyer et al., CVPR 2022)"
    )


def _prior_adjustment(run: Path, summary: dict[str, Any]) -> dict[str, Any]:
    if "prior_strength" not in summary:
        raise ValueError(f"{run / 'summary.json'} has no prior_strength (an older run); "
                         f"run `python -m mien.training.export {run}` to choose it on PublicTest")
    return {
        "strength": summary["prior_strength"],
        "training_prior": summary["training_prior"],
        "temperature": summary["temperature"],
        "offset": "-strength * temperature * log(training_prior), added to the logits",
        "meaning": "strength 0 keeps FER+'s class frequencies (training_prior: neutral and happiness "
        "hold most votes); 1 makes the 8 expressions equally likely a priori, as in balanced or posed "
        "data (Bayes' rule for a change of prior; Saerens et al., 2002; Menon et al., 2021). "
        "mien analyze --prior-strength S overrides it per run",
        "selected_on": "FER+ PublicTest: the strength in 0, 0.1, ..., 1 with the highest macro-F1",
        "public_test": summary["prior_strength_table"],
    }


def check_preset(run: Path, cfg: dict[str, Any], preset: str) -> None:
    """Refuse to name ``preset`` in a card unless its student settings are the run's (its epochs
    against the epochs the run actually ran), and, for a distilled run, its teacher settings are the
    first teacher's, so the card's command repeats the run."""
    from mien.training.recipe import PRESETS
    from mien.training.train import TrainConfig

    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r} is not one of {', '.join(sorted(PRESETS))}")
    spec, defaults = PRESETS[preset], TrainConfig().__dict__
    stages = [("student", spec["student"], cfg)]
    if cfg.get("teachers") and "teacher" in spec:
        stages.append(("teacher", spec["teacher"],
                       json.loads((run.parent / "teacher0" / "config.json").read_text())))
    for stage, settings, had_cfg in stages:
        for key, wanted in settings.items():
            had = had_cfg.get(key, defaults.get(key))
            if key == "epochs":
                had = had_cfg.get("epochs_run", had)
            if had != wanted:
                raise ValueError(f"this run's {stage} {key} is {had!r} but preset {preset!r} trains {wanted!r}: "
                                 "the card would name a command that does not repeat the run; "
                                 "pass the preset that does")


def build_card(run: Path, onnx_file: str, version: str | None = None,
               preset: str | None = None) -> dict[str, Any]:
    """The model card for ``run``. ``version`` names the model (``mien-fer-<arch>-<version>``); without
    it a distilled run is 1.1 and a directly trained one 1.0, the names those recipes first shipped as.
    ``preset`` is the recipe the card's command names (default: the one in the run's ``recipe.json``,
    else ``gpu`` for a distilled run and ``cpu`` otherwise); it must repeat the run."""
    if version is not None and not re.fullmatch(r"\d+\.\d+", version):
        raise ValueError(f"--version must look like 1.2, not {version!r}")
    cfg = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    sha = hashlib.sha256((run / "expression.onnx").read_bytes()).hexdigest()  # the file that will ship
    distillation = _distillation(run, cfg)
    recipe_file = run.parent / "recipe.json"
    recipe = json.loads(recipe_file.read_text()) if recipe_file.exists() else {}
    preset = preset or recipe.get("preset") or ("gpu" if distillation else "cpu")
    check_preset(run, cfg, preset)
    device = " --device cuda" if distillation else ""
    command = (f"python -m mien.training.recipe --preset {preset}{device} --out runs/{preset} && "
               f"python -m mien.training.export runs/{preset}/student && "
               f"python -m mien.training.package runs/{preset}/student")
    minutes = recipe["minutes"] if distillation else summary["train_minutes"]
    if version is not None:
        command += f" --version {version}"
    else:
        version = "1.1" if distillation else "1.0"
    command += (" && mien evaluate ../shared/data/ferplus/fer2013_ferplus.npz --crops "
                "--write-card src/mien/models/expression.json")
    return {
        "name": f"mien-fer-{cfg.get('arch', 'vgg')}-{version}",
        "version": version,
        "file": onnx_file,
        "sha256": sha,
        "labels": list(EXPRESSIONS),
        "task": "facial expression classification (8 FER+ categories) of one aligned face crop",
        "architecture": {
            "family": describe_net(cfg),
            "parameters": summary["params"],
            "onnx_opset": summary["onnx_opset"],
            "onnx_vs_torch_max_abs_diff": summary["onnx_max_abs_diff"],
        },
        "input": {
            "name": "gray",
            "size": cfg["input_size"],
            "layout": "NCHW float32, (N, 1, S, S)",
            "colour": "grayscale (OpenCV BGR2GRAY weights)",
            "value_range": "0..255 (raw pixel values)",
            "normalisation": "inside the graph: x/255, then per-image zero mean and unit variance",
            "crop_framing": "5-point similarity alignment (eyes, nose tip, mouth corners as found by "
            "RetinaFace) to landmark_template, given as fractions of the crop side; the template is "
            "the mean RetinaFace landmark position on 1,500 upscaled FER+ training crops, made "
            "left-right symmetric, so video faces are framed like the training images",
            "landmark_template": FER_TEMPLATE.round(4).tolist(),
        },
        "output": {"name": "logits", "meaning": "untempered logits; probabilities = softmax((logits + "
                   "offset) / temperature), offset from prior_adjustment"
                   + ("; the graph averages the logits of the crop and its mirror image"
                      if summary.get("flip_averaged") else "")},
        "temperature": summary["temperature"],
        "temperature_fitted_on": "FER+ PublicTest (majority labels), minimising NLL",
        "prior_adjustment": _prior_adjustment(run, summary),
        "training": {
            "data": "FER2013 images (Goodfellow et al., 2013) with FER+ labels (Barsoum et al., 2016): "
            "Training split; PublicTest for model selection and temperature; PrivateTest for the "
            "reported numbers only",
            "terms": "FER2013: research use only (ICML 2013 challenge data). FER+ labels: MIT licence "
            "(Microsoft). The weights inherit FER2013's research-use terms.",
            "targets": "FER+ vote distributions over the 8 expressions (soft targets)",
            "train_images": summary["train_images"],
            "removed_duplicates": summary["removed_duplicates"],
            "removed_duplicates_note": "training images pixel-identical to a PublicTest or PrivateTest image",
            "dropped_unlabelled": summary["dropped_unlabelled"],
            "augmentation": "flips, rotation ±{r}°, scale ±{s:.0%}, shift ±{t:.0%}, gamma/contrast/brightness, "
            "low resolution (16–36 px), random erasing (occlusion)".format(
                r=cfg["rotate_deg"], s=cfg["scale_range"], t=cfg["translate"]),
            "imbalance": f"loss weight per class = (share of votes)^-{cfg['class_weight_power']}",
            "optimiser": f"SGD nesterov momentum {cfg['momentum']}, one-cycle lr max {cfg['lr']}, "
            f"weight decay {cfg['weight_decay']}, batch {cfg['batch_size']}, "
            f"{cfg.get('epochs_run', cfg['epochs'])} epochs, EMA of weights (decay {cfg['ema_decay']}); "
            f"best epoch by PublicTest accuracy: {summary['best_epoch']}"
            + (f" ({summary['best_weights']} weights)" if summary.get("best_weights") else ""),
            "distillation": distillation,
            "seed": cfg["seed"],
            "hardware": f"{summary.get('device') or 'CPU, ' + str(cfg['threads']) + ' threads'}"
            + (f", {summary['precision']} training steps" if summary.get("precision") else "")
            + f"; {minutes:.1f} minutes in all",
            "command": command,
        },
        "intended_use": [
            "research on facial expression in video (psychology, HCI, affective computing, media analysis)",
            "aggregate descriptions of expressions across many frames and people, with the audit's error bars",
            "auditing claims about expression-recognition systems",
        ],
        "out_of_scope": [
            "identifying or re-identifying people",
            "inferring suspicion, deception, criminality, threat, intent, mental state or any risk score",
            "inferring race, gender, age or any other demographic trait",
            "decisions about individuals in policing, hiring, education, border control, insurance or health",
            "claims about what a person feels: facial configurations do not reliably reveal felt emotion "
            "(Barrett et al., 2019)",
        ],
        "known_limits": [
            "trained on 48x48 grayscale, mostly frontal, posed and web-sourced faces; accuracy drops on "
            "profile faces, occlusion, very small or blurred faces (mien abstains on those by default)",
            "FER+ labels are crowd judgements of apparent expression by 10 annotators, not ground truth "
            "about feelings",
            "disgust and contempt are rare in FER+ (under 1% of images); their per-class numbers have wide "
            "confidence intervals",
            "FER2013's demographic make-up is undocumented; per-group error rates are unknown until "
            "audited on data with group labels (mien evaluate --groups)",
        ],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--onnx-file", default="expression.onnx")
    ap.add_argument("--version", default=None,
                    help="model version, e.g. 1.2 (default: 1.1 for a distilled run, 1.0 otherwise)")
    ap.add_argument("--preset", default=None,
                    help="the recipe preset whose command repeats this run (default: the run's recipe.json, "
                    "else cpu); refused unless its settings are the run's")
    args = ap.parse_args(argv)
    with cli_errors("mien.training.package"):
        _run(args)


def _run(args: argparse.Namespace) -> None:
    # read and build everything first, so a bad run folder leaves the shipped model untouched
    card = build_card(args.run, args.onnx_file, args.version, args.preset)
    log = {
        "config": json.loads((args.run / "config.json").read_text()),
        "summary": json.loads((args.run / "summary.json").read_text()),
        "epochs": [json.loads(line) for line in (args.run / "train_log.jsonl").read_text().splitlines() if line],
    }
    if (args.run.parent / "recipe.json").exists():
        recipe = json.loads((args.run.parent / "recipe.json").read_text())
        log["recipe"] = {k: v for k, v in recipe.items() if k != "student"}
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "expression.onnx", MODELS_DIR / args.onnx_file)
    (MODELS_DIR / "expression.json").write_text(json.dumps(card, indent=2) + "\n")
    (MODELS_DIR / "expression_training.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"wrote {args.onnx_file}, expression.json and expression_training.json in {MODELS_DIR}")


if __name__ == "__main__":
    main()
