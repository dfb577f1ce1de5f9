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
    if not cfg.get("teachers") or "sources" in cfg or not recipe_file.exists():  # a mix run's teacher: _mix_teacher
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


def _mix_training(cfg: dict[str, Any], summary: dict[str, Any], command: str) -> dict[str, Any]:
    """The card's ``training`` block for a run of :mod:`mien.training.mix`."""
    pools = summary["pools"]
    sources = summary["sources"]
    counts = "; ".join(f"{name}: {p['images']} faces, {p['share']:.0%} of every epoch" for name, p in pools.items())
    no_face = ", ".join(f"{name} {c['no_face']}" for name, c in sources.items())
    return {
        "data": "FER2013 images (Goodfellow et al., 2013) with FER+ labels (Barsoum et al., 2016), Training split; "
        "plus the training folds of four sets in ../shared/data/expressions: taiwanese_chen2013 (Chen et al. 2013, "
        "posed), muxspace (press and film stills, one annotator per image), "
        "london_face_research_lab (DeBruine & Jones, neutral and smiling) and yale_faces. Every image of those "
        "sets went through mien's own face detector and 5-point alignment (as the engine does at run time). "
        "Validation: FER+ PublicTest and fixed, seeded, subject-disjoint validation folds (one third of the "
        "performers of the Taiwanese, London and Yale sets; one image in seven of muxspace, which has no "
        "subject column); FER+ PrivateTest for the reported numbers only",
        "terms": "FER2013: research use only (ICML 2013 challenge data). FER+ labels: MIT licence (Microsoft). "
        "taiwanese_chen2013: academic database, research use. muxspace: repository Apache-2.0, photos "
        "third-party copyright, research use. london_face_research_lab: CC-BY 4.0 with signed consent. "
        "yale_faces: research use. The weights inherit these research-use terms.",
        "targets": _mix_targets(float(cfg.get("posed_label_weight") or 0.0)),
        "sources": counts,
        "faces_not_found": f"images where the detector found no face (left out of training, errors in "
        f"validation): {no_face}",
        "train_images": summary["train_images"],
        "removed_duplicates": summary["removed_duplicates"],
        "removed_duplicates_note": "FER+ training images pixel-identical to a PublicTest or PrivateTest image",
        "dropped_unlabelled": summary["dropped_unlabelled"],
        "augmentation": "flips, rotation ±{r}°, scale ±{s:.0%}, shift ±{t:.0%}, gamma/contrast/brightness, "
        "low resolution (16–36 px), random erasing (occlusion), Gaussian blur (p {b}), sensor noise (p {n}), "
        "JPEG re-compression at quality 25–90 (p {j})".format(
            r=cfg["rotate_deg"], s=cfg["scale_range"], t=cfg["translate"], b=cfg["blur_p"], n=cfg["noise_p"],
            j=cfg["jpeg_p"]),
        "imbalance": f"sources weighted by their share of every epoch; loss weight per class = (share in "
        f"the mixed epochs)^-{cfg['class_weight_power']}",
        "initialisation": f"warm start from {_warm_start_name(cfg)} (sha256 {cfg.get('warm_start_file_sha256')}): "
        "batch-norm folded back out of its ONNX, statistics re-measured on 2,048 FER+ training images",
        "optimiser": f"SGD nesterov momentum {cfg['momentum']}, one-cycle lr max {cfg['lr']}, weight decay "
        f"{cfg['weight_decay']}, batch {cfg['batch_size']}, {cfg['epochs_run']} epochs of "
        f"{cfg['epoch_samples']} faces, EMA of weights (decay {cfg['ema_decay']})",
        "selection": f"{summary['selection_rule']}: best epoch {summary['best_epoch']} "
        f"({summary['best_weights']} weights), score {summary['selection_score']:.4f} (warm start "
        f"{summary['warm_start_scores']['score']:.4f})",
        "distillation": _mix_teacher(cfg),
        "seed": cfg["seed"],
        "hardware": f"{summary['device']}, {summary['precision']} training steps; "
        f"{summary['train_minutes']:.1f} minutes of training",
        "command": command,
    }


def _mix_targets(posed_weight: float) -> str:
    """The card's ``targets`` line for a mix run that blended the Taiwanese set's posed label into
    its raters' votes with ``posed_weight`` (0: votes alone)."""
    smoothing = ", ".join(f"{n} {s['label_smoothing']}" for n, s in _sources().items() if s["label_smoothing"])
    if posed_weight <= 0:
        taiwanese = "the Taiwanese raters' vote proportions"
    elif posed_weight >= 1:
        taiwanese = "the Taiwanese set's posed labels (one-hot; its raters' votes not used)"
    else:
        taiwanese = (f"the Taiwanese raters' vote proportions with the posed label blended in "
                     f"({1 - posed_weight:g} x votes + {posed_weight:g} x posed label)")
    return f"soft targets: FER+ vote distributions, {taiwanese}, one-hot labels elsewhere; label smoothing {smoothing}"


def _warm_start_name(cfg: dict[str, Any]) -> str:
    from mien.training.recipe import V12_SHA256, V20_SHA256, V21_SHA256

    known = {V12_SHA256: "mien-fer-vgg-1.2", V20_SHA256: "mien-mix-vgg-2.0", V21_SHA256: "mien-mix-vgg-2.1"}
    return known.get(cfg.get("warm_start_file_sha256") or "", str(cfg["warm_start"]))


def _mix_teacher(cfg: dict[str, Any]) -> str | None:
    if not cfg.get("teacher"):
        return None
    return (f"face-api's FaceExpressionNet (MIT, npm @vladmandic/face-api, ported to ONNX by scripts/faceapi_port.py; "
            f"training only) as a teacher: its probabilities on every training image (file sha256 "
            f"{cfg.get('teacher_file_sha256')}) blended into the soft labels, (1 - w) x labels + w x teacher, "
            f"w = {cfg['teacher_ferplus']} on FER+, {cfg['teacher_muxspace']} on muxspace, {cfg['teacher_posed']} on "
            "the posed sets; the label's contempt share is kept (face-api has no contempt class)")


def _sources() -> dict[str, dict[str, Any]]:
    from dataclasses import asdict

    from mien.training.expressions import SOURCES

    return {n: asdict(s) for n, s in SOURCES.items()}


def check_preset(run: Path, cfg: dict[str, Any], preset: str) -> None:
    """Refuse to name ``preset`` in a card unless its student settings are the run's (its epochs
    against the epochs the run actually ran), and, for a distilled run, its teacher settings are the
    first teacher's, so the card's command repeats the run."""
    from mien.training.recipe import PRESETS, SAME_TEACHER, TEACHER_FILE_ALIASES
    from mien.training.train import TrainConfig

    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r} is not one of {', '.join(sorted(PRESETS))}")
    spec, defaults = PRESETS[preset], TrainConfig().__dict__
    stages = [("student", spec["student"], cfg)]
    if cfg.get("teachers") and "teacher" in spec and "sources" not in cfg:  # trained teacher nets (not a mix run's)
        stages.append(("teacher", spec["teacher"],
                       json.loads((run.parent / "teacher0" / "config.json").read_text())))
    for stage, settings, had_cfg in stages:
        for key, wanted in settings.items():
            had = had_cfg.get(key, defaults.get(key))
            if key == "epochs":
                had = had_cfg.get("epochs_run", had)
            # a pinned file is the same file wherever it was read from: compare what was read
            for file_key, sha_key, read_key in (("warm_start", "warm_start_sha256", "warm_start_file_sha256"),
                                                ("teacher", "teacher_sha256", "teacher_file_sha256")):
                if key in (file_key, sha_key) and settings.get(sha_key):
                    had, wanted = had_cfg.get(read_key), settings[sha_key]
                    had = TEACHER_FILE_ALIASES.get(str(had), had)  # an earlier copy's file hash: the same arrays
                    if SAME_TEACHER.get(str(wanted)) == had:  # the same teacher, written on the other instruction set
                        had = wanted
            if key == "stop_after":  # a mix run stopped by its time budget: the epochs it completed
                had = had_cfg.get("epochs_completed")
                wanted = wanted or had_cfg.get("epochs_run")
            if had != wanted:
                raise ValueError(f"this run's {stage} {key} is {had!r} but preset {preset!r} trains {wanted!r}: "
                                 "the card would name a command that does not repeat the run; "
                                 "pass the preset that does")


def _mix_preset_of(run: Path, cfg: dict[str, Any]) -> str:
    """The newest mix preset whose settings are this run's (``mix`` when none is: check_preset then
    says why). Newest first: ``mix4`` repeats ``mix3`` on today's crops, and the two pin the same
    teacher as the two instruction sets write it (:data:`mien.training.recipe.SAME_TEACHER`)."""
    from mien.training.recipe import PRESETS

    for name, spec in reversed(PRESETS.items()):
        if spec.get("mix"):
            try:
                check_preset(run, cfg, name)
            except ValueError:
                continue
            return name
    return "mix"


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
    mix = "sources" in cfg
    preset = preset or recipe.get("preset") or ("gpu" if distillation else _mix_preset_of(run, cfg) if mix
                                                else "cpu")
    check_preset(run, cfg, preset)
    device = " --device cuda" if distillation else ""
    command = (f"python -m mien.training.recipe --preset {preset}{device} --out runs/{preset} && "
               f"python -m mien.training.export runs/{preset}/student && "
               f"python -m mien.training.package runs/{preset}/student")
    minutes = recipe["minutes"] if distillation else summary["train_minutes"]
    if mix:
        command = ("python -m mien.training.expressions crops && python -m mien.training.expressions splits && "
                   f"python -m mien.training.recipe --preset {preset} --out runs/{preset} && "
                   f"python -m mien.training.package runs/{preset}/student --preset {preset}")
    if version is not None:
        command += f" --version {version}"
    else:
        version = "1.1" if distillation else "2.0" if mix else "1.0"
    command += (" && mien evaluate ../shared/data/ferplus/fer2013_ferplus.npz --crops "
                "--write-card src/mien/models/expression.json")
    if mix:
        command += (" && python scripts/audit_sets.py run --out runs/audit/new && python scripts/audit_sets.py "
                    "table runs/audit/v1.2 runs/audit/new --insert src/mien/models/MODEL_CARD.md")
    card = {
        "name": f"mien-{'mix' if mix else 'fer'}-{cfg.get('arch', 'vgg')}-{version}",
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
    if mix:
        card["training"] = _mix_training(cfg, summary, command)
        card["temperature_fitted_on"] = ("the selection sets pooled (FER+ PublicTest and the Taiwanese and London "
                                         "validation folds, engine-aligned crops), minimising NLL")
        card["prior_adjustment"]["selected_on"] = (
            f"{summary['selection_rule']}: " + (summary.get("prior_strength_rule")
                                                or "the strength in 0, 0.1, ..., 1 with the highest score")
            + (f" (the highest score was at {summary['prior_strength_best']})" if "prior_strength_best" in summary else ""))
        card["prior_adjustment"]["meaning"] = card["prior_adjustment"]["meaning"].replace(
            "strength 0 keeps FER+'s class frequencies", "strength 0 keeps the training epochs' class frequencies")
        card["prior_adjustment"]["selection_table"] = card["prior_adjustment"].pop("public_test")
        card["known_limits"] = [
            "trained on 48x48 grayscale, mostly frontal faces: web crops (FER+), press and film stills "
            "(muxspace) and posed studio photos (Taiwanese, London, Yale); accuracy drops on profile faces, "
            "occlusion, very small or blurred faces (mien abstains on those by default)",
            "labels are judgements of apparent expression (crowd votes, raters, single annotators, or the "
            "expression a performer was asked to pose), not ground truth about feelings",
            "disgust, fear and contempt are rare in the training data; contempt appears only in FER+ and "
            "muxspace (9 images); their per-class numbers have wide confidence intervals",
            "the posed validation folds are small (10 Taiwanese performers, 34 London people): their "
            "intervals are wide; per-group numbers come only from the London set's own annotations",
            "scored against the expression a performer posed, the Taiwanese set's own raters reach 75.5% "
            "balanced accuracy on its validation fold and recognise 9% of its posed fear "
            "(scripts/rater_agreement.py); a model trained on the posed labels is partly taught to name "
            "expressions where, to people, the face does not show them",
        ]
    return card


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
