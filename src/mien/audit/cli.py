"""The ``evaluate``, ``calibrate`` and ``evaluate-detector`` subcommands of ``mien``.

:func:`register` adds them to the main parser's subparsers; each sets ``func`` to a function
``(args) -> int``. Bad input raises :class:`~mien.errors.InputError`, which the main CLI prints as
one line. The engine (model, detector, pipeline) is imported only when a command runs, so
``mien --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mien.argtypes import any_int, non_negative_int, number, positive_int, probability
from mien.audit.groups import MIN_GROUP_N
from mien.audit.metrics import HEADLINE
from mien.errors import InputError
from mien.options import AnalysisOptions
from mien.stats import DEFAULT_RESAMPLES

#: Operating point of the detector audit (mien analyze's default) and the lowest score kept for the PR curve.
DETECTOR_OPERATING_THRESHOLD = AnalysisOptions().score_threshold
DETECTOR_MIN_SCORE = 0.02


def register(subparsers: Any) -> None:
    """Add ``evaluate``, ``calibrate`` and ``evaluate-detector`` to an argparse subparsers object."""
    _add_evaluate(subparsers)
    _add_calibrate(subparsers)
    _add_evaluate_detector(subparsers)


# ------------------------------------------------------------------------------------------ parsers
def _add_data_options(p: argparse.ArgumentParser, split_default: str) -> None:
    p.add_argument(
        "--split",
        default=None,
        help=f"FER+ npz split: Training, PublicTest or PrivateTest (default {split_default})",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--crops",
        action="store_true",
        help="images are already face crops: send them straight to the expression model "
        "(default for the FER+ npz)",
    )
    mode.add_argument(
        "--full-pipeline",
        action="store_true",
        help="detect, align and classify every image (default for folders and CSVs); "
        "FER+ crops are upscaled x4 and padded first",
    )
    p.add_argument(
        "--model-card", metavar="PATH", help="model card JSON to load (default: the shipped model)"
    )
    p.add_argument(
        "--prior-strength",
        type=probability,
        default=None,
        metavar="S",
        help="class-prior strength, 0 (FER+ class frequencies) to 1 (all expressions equally likely); "
        "default: the model card's",
    )
    p.add_argument("--limit", type=positive_int, metavar="N", help="evaluate a seeded random subset of N items")
    p.add_argument("--seed", type=any_int, default=0, help="seed for --limit and the bootstrap (default 0)")


def _add_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure the expression model on labelled data: accuracy, calibration, groups",
        description="Measure how wrong the expression model is, and for whom, on labelled data: a "
        "folder of class subfolders, a CSV (path,label[,subject][,group columns]) or the FER+ npz. "
        "Every headline number comes with a bootstrap 95% CI. With --compare, put two "
        "evaluation JSONs side by side instead.",
    )
    p.add_argument("data", nargs="?", metavar="DATA", help="folder, CSV or FER+ npz")
    _add_data_options(p, "PrivateTest")
    p.add_argument(
        "--groups", metavar="COLS", help="comma-separated CSV group columns (default: every extra column but soft_* label "
        "proportions and identifiers, which hold a different value on every row)"
    )
    p.add_argument("-o", "--output", metavar="PATH", help="write the evaluation JSON (docs/audit_schema.md)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML page")
    p.add_argument("--write-card", metavar="PATH", help="write the model's card with these numbers (+ .md)")
    p.add_argument(
        "--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two evaluation JSONs (B - A)"
    )
    p.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})",
    )
    p.add_argument(
        "--min-group-n",
        type=positive_int,
        default=MIN_GROUP_N,
        metavar="N",
        help=f"smallest group counted in gaps and the worst group (default {MIN_GROUP_N})",
    )
    p.add_argument("--no-items", action="store_true", help="leave per-item results out of the JSON")
    p.set_defaults(func=cmd_evaluate)


def _add_calibrate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit a softmax temperature on your labelled validation data; write a user model card",
        description="Fit the softmax temperature that minimises NLL on labelled validation data and "
        "write a copy of the model card with it; load it with --model-card PATH. Never calibrate on "
        "the data you report results on.",
    )
    p.add_argument("data", metavar="DATA", help="folder, CSV or FER+ npz (validation data)")
    _add_data_options(p, "PublicTest")
    p.add_argument(
        "-o", "--output", required=True, metavar="PATH", help="where to write the calibrated model card JSON"
    )
    p.add_argument(
        "--fit-prior-strength",
        action="store_true",
        help="also choose the class-prior strength (0, 0.1, ..., 1) with the best macro-F1 on this data, "
        "e.g. for posed or balanced sets; the temperature is then fitted at that strength",
    )
    p.set_defaults(func=cmd_calibrate)


def _add_evaluate_detector(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate-detector",
        help="measure the face detector: precision, recall, AP@0.5, recall by face size",
        description="Measure the face detector against boxes in a PASCAL-VOC folder "
        "(annotations/*.xml + images/) or a dlib imglab XML file.",
    )
    p.add_argument("dir", metavar="DIR", help="PASCAL-VOC folder or dlib imglab .xml")
    p.add_argument("-o", "--output", metavar="PATH", help="write the detector-audit JSON")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML page")
    p.add_argument(
        "--detect-threshold",
        type=probability,
        default=DETECTOR_OPERATING_THRESHOLD,
        metavar="SCORE",
        help="detector score a face needs to be found: the operating point, as in mien analyze "
        f"(default {DETECTOR_OPERATING_THRESHOLD})",
    )
    p.add_argument(
        "--curve-min-score",
        type=probability,
        default=DETECTOR_MIN_SCORE,
        metavar="SCORE",
        help=f"lowest score kept for the PR curve and AP (default {DETECTOR_MIN_SCORE})",
    )
    p.add_argument("--iou", type=number(0, 1, lo_open=True), default=0.5, help="IoU for a match (default 0.5)")
    p.add_argument("--bootstrap", type=non_negative_int, default=DEFAULT_RESAMPLES, metavar="N",
                   help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    p.add_argument("--seed", type=any_int, default=0)
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images")
    p.set_defaults(func=cmd_evaluate_detector)


# ------------------------------------------------------------------------------------------ helpers
def _write(path: str | Path, text: str) -> None:
    from mien.results import write_text_atomic

    write_text_atomic(path, text)


def dumps(obj: Any, indent: int = 1) -> str:
    """JSON text; ``allow_nan=False`` so a stray NaN fails loudly instead of writing invalid JSON."""
    return json.dumps(obj, indent=indent, allow_nan=False) + "\n"


def _progress(label: str):
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r{label} {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive number, got {value}")


def _load_model(card: str | None, prior_strength: float | None = None):
    from mien.expression import ExpressionModel

    model = ExpressionModel.load(card)
    return model if prior_strength is None else model.with_prior_strength(prior_strength)


def _predict(args: argparse.Namespace, ds: Any, model: Any) -> tuple[Any, str, dict[str, Any] | None]:
    """Predictions, mode name and detector record, as the data and the flags ask."""
    from mien.audit.evaluate import pipeline_classifier, predict_crops, predict_full_pipeline

    crops = args.crops or (ds.is_crops and not args.full_pipeline)
    if crops:
        return predict_crops(ds, model, progress=_progress("classifying")), "crops", None
    classify, info = pipeline_classifier(model)
    preds = predict_full_pipeline(ds, model, classify, progress=_progress("detecting + classifying"))
    return preds, "full_pipeline", info


def _check_readable(preds: Any, data: str) -> None:
    """Stop (exit 2) when not one image of ``data`` could be read: scores of 0.0 with zero-width
    intervals would read as a verdict on the model when the paths are wrong. Warn on stderr, with
    the first reason, when only some could not: they stay in the numbers as errors."""
    from mien.audit.evaluate import STATUS_UNREADABLE

    bad = np.flatnonzero(preds.status == STATUS_UNREADABLE)
    if not len(bad):
        return
    n, first = len(preds.status), preds.messages[int(bad[0])]
    if len(bad) == n:
        raise InputError(
            f"none of the {n} images in {data} could be read (first: {first}); check the paths "
            "(a CSV's are relative to the CSV's folder) and that the files are images"
        )
    print(f"mien: warning: {len(bad)} of {n} images in {data} could not be read and count as errors "
          f"(first: {first})", file=sys.stderr)


def _summary_lines(evaluation: dict[str, Any]) -> list[str]:
    cov, m = evaluation["coverage"], evaluation["metrics"]
    lines = [
        (
            f"{cov['n_items']} items, {cov['n_scored']} scored "
            f"({cov['n_no_face']} no face, {cov['n_unreadable']} unreadable; misses count as errors)"
        )
    ]
    for key in HEADLINE:
        v = m[key]
        ci = "" if v["ci_low"] is None else f"  [{v['ci_low']:.4f}, {v['ci_high']:.4f}]"
        lines.append(f"  {key:<18} {v['value'] if v['value'] is None else format(v['value'], '.4f')}{ci}")
    for column, rep in (evaluation.get("groups") or {}).items():
        gap = rep["accuracy_gap"]["value"]
        lines.append(
            f"  group {column}: worst {rep['worst_group']} "
            f"(accuracy gap {'n/a' if gap is None else format(gap, '.3f')})"
        )
    skipped = (evaluation.get("dataset") or {}).get("group_columns_skipped") or {}
    by_reason: dict[str, list[str]] = {}
    for column, reason in skipped.items():
        by_reason.setdefault(reason, []).append(column)
    if by_reason:
        lines.append("  not audited as groups (name them in --groups to audit them): "
                     + "; ".join(f"{', '.join(cols)} ({why})" for why, cols in by_reason.items()))
    return lines


def _card_md_path(card_path: Path) -> Path:
    """The shipped card's Markdown is MODEL_CARD.md; a user's card gets <name>.md beside it."""
    return card_path.with_name("MODEL_CARD.md") if card_path.name == "expression.json" else card_path.with_suffix(".md")


def _card_extras(args: argparse.Namespace, ds: Any, preds: Any, model: Any, mode: str) -> dict[str, Any]:
    """Numbers a card reader compares with peers: calibration before temperature scaling, and
    (on data with contempt) the 7-class figures without it, argmax restricted to those 7 labels."""
    from mien.audit.evaluate import build_evaluation, model_info
    from mien.labels import EXPRESSIONS

    def headline(ev: dict[str, Any], key: str = "metrics") -> dict[str, Any]:
        return {k: ev[key][k] for k in HEADLINE} if ev.get(key) else {}

    kw = {"mode": mode, "n_resamples": args.bootstrap, "seed": args.seed, "include_items": False}
    raw = build_evaluation(ds, preds, temperature=1.0, model=model_info(model, args.model_card), **kw)
    extras: dict[str, Any] = {
        "uncalibrated": {"temperature": 1.0, **headline(raw)},
    }
    extras["prior_strengths"] = _prior_strength_rows(ds, preds, model, kw)
    contempt = EXPRESSIONS.index("contempt")
    keep = np.flatnonzero(ds.labels != contempt)
    if len(keep) < len(ds):
        sub = ds.subset(keep)
        sub_preds = type(preds)(
            preds.logits[keep], preds.status[keep], [preds.messages[i] for i in keep],
            None if preds.n_faces is None else preds.n_faces[keep],
        )
        ev7 = build_evaluation(sub, sub_preds, temperature=float(model.temperature),
                               model=model_info(model, args.model_card), **kw)
        extras["without_contempt"] = {
            "n_items": int(len(keep)),
            "note": "items whose majority label is contempt dropped; argmax over the 7 other labels",
            **headline(ev7, "metrics_restricted"),
        }
    return extras


def _prior_strength_rows(ds: Any, preds: Any, model: Any, kw: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline numbers and rare-class recall at class-prior strengths 0, the model's, and 1."""
    from mien.audit.evaluate import build_evaluation, model_info

    if getattr(model, "training_prior", None) is None:
        return []
    network_logits = preds.logits - model.logit_offset
    rows = []
    for strength in sorted({0.0, float(model.prior_strength), 1.0}):
        other = model.with_prior_strength(strength)
        shifted = type(preds)(network_logits + other.logit_offset, preds.status, preds.messages, preds.n_faces)
        ev = build_evaluation(ds, shifted, temperature=float(model.temperature), model=model_info(other), **kw)
        m = ev["metrics"]
        rows.append({
            "strength": strength,
            "default": strength == float(model.prior_strength),
            **{k: m[k] for k in HEADLINE},
            "recall": {label: c["recall"]["value"] for label, c in m["per_class"].items()},
        })
    return rows


# ----------------------------------------------------------------------------------------- commands
def cmd_evaluate(args: argparse.Namespace) -> int:
    """``mien evaluate``: run, or compare, and write JSON / HTML / model card."""
    from mien.audit import html

    _check_positive("--bootstrap", args.bootstrap)
    if args.compare:
        if args.data:
            raise InputError("give either DATA or --compare A.json B.json, not both")
        from mien.audit.compare import compare_evaluations, load_evaluation

        a, b = (load_evaluation(p) for p in args.compare)
        comparison = compare_evaluations(a, b, n_resamples=args.bootstrap, seed=args.seed)
        if args.output:
            _write(args.output, dumps(comparison))
        if args.html:
            _write(args.html, html.render_comparison_html(comparison))
        print(f"B - A ({comparison['bootstrap']['method']} bootstrap):")
        for name in HEADLINE:
            d = comparison["metrics"][name]["difference"]
            if d["value"] is not None:
                ci = "" if d["ci_low"] is None else f" [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                print(f"  {name:<18} {d['value']:+.4f}{ci}")
        return 0
    if not args.data:
        raise InputError("give DATA (a folder, CSV or FER+ npz) or --compare A.json B.json")

    from mien.audit.card import render_model_card_md, update_card_metrics
    from mien.audit.datasets import load_dataset, subsample
    from mien.audit.evaluate import build_evaluation, model_info

    if args.write_card and args.limit:
        raise InputError("--write-card records numbers for the whole dataset; drop --limit")
    groups = [g for g in args.groups.split(",") if g.strip()] if args.groups else None
    ds = subsample(load_dataset(args.data, split=args.split, groups=groups), args.limit, args.seed)
    model = _load_model(args.model_card, args.prior_strength)
    preds, mode, det_info = _predict(args, ds, model)
    _check_readable(preds, args.data)
    evaluation = build_evaluation(
        ds,
        preds,
        temperature=float(model.temperature),
        model=model_info(model, args.model_card),
        mode=mode,
        n_resamples=args.bootstrap,
        seed=args.seed,
        min_group_n=args.min_group_n,
        detector=det_info,
        include_items=not args.no_items,
    )
    if args.output:
        _write(args.output, dumps(evaluation))
    if args.html:
        _write(args.html, html.render_evaluation_html(evaluation))
    if args.write_card:
        card = update_card_metrics(dict(model.card), evaluation)
        card["evaluation"]["extra"] = _card_extras(args, ds, preds, model, mode)
        _write(args.write_card, dumps(card, indent=2))  # the layout mien.training.package writes
        _write(_card_md_path(Path(args.write_card)), render_model_card_md(card))
    print("\n".join(_summary_lines(evaluation)))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``mien calibrate``: fit the temperature on scored items and write the user card."""
    from mien.audit.calibrate import (
        calibrated_card,
        calibration_summary,
        fit_temperature,
        select_prior_strength,
    )
    from mien.audit.datasets import load_dataset, subsample
    from mien.audit.evaluate import STATUS_OK

    ds = load_dataset(args.data, split=args.split, default_split="PublicTest")
    ds = subsample(ds, args.limit, args.seed)
    model = _load_model(args.model_card, args.prior_strength)
    preds, mode, _ = _predict(args, ds, model)
    ok = preds.status == STATUS_OK
    if ok.sum() < 2:
        raise InputError(
            f"only {int(ok.sum())} face(s) of {len(ds)} in {args.data} could be scored; "
            "calibration needs labelled faces (try --crops if the images are face crops)"
        )
    logits, labels = preds.logits[ok], ds.labels[ok]
    logits_before, prior_record = logits, None
    if args.fit_prior_strength:
        if getattr(model, "training_prior", None) is None:
            raise InputError(f"model {model.name} has no training_prior in its card: "
                             "it cannot fit a class-prior strength")
        network = logits - model.logit_offset
        strength, table = select_prior_strength(network, labels, model.prior_temperature, model.training_prior)
        prior_record = {"before": model.prior_strength, "after": strength,
                        "method": "the strength in 0, 0.1, ..., 1 with the highest macro-F1",
                        "table": table}
        model = model.with_prior_strength(strength)
        logits = network + model.logit_offset
    t = fit_temperature(logits, labels)
    summary = calibration_summary(logits, labels, float(model.temperature), t, logits_before=logits_before)
    data = {
        "source": ds.source,
        "format": ds.format,
        "split": ds.split,
        "sha256": ds.sha256,
        "mode": mode,
        "n": int(ok.sum()),
        "n_not_scored": int((~ok).sum()),
        "support": {k: v for k, v in ds.describe()["support"].items()},
    }
    card = calibrated_card(dict(model.card), t, data=data, summary=summary, prior_strength=prior_record)
    _resolve_model_path(card, args.model_card, model)
    _write(args.output, dumps(card))
    if prior_record:
        print(f"class-prior strength {prior_record['before']} -> {prior_record['after']} (macro-F1 on this data)")
    print(
        f"temperature {float(model.temperature):.4f} -> {t:.4f} on {int(ok.sum())} faces; "
        f"NLL {summary['nll_before']:.4f} -> {summary['nll_after']:.4f}, "
        f"ECE {summary['ece_before']:.4f} -> {summary['ece_after']:.4f}\n"
        f"use it with: mien analyze ... --model-card {args.output}"
    )
    return 0


def _resolve_model_path(card: dict[str, Any], card_path: str | None, model: Any) -> None:
    """Point the user card's ``file`` at the model's ONNX by absolute path.

    The engine resolves ``file`` relative to the card; the user card is written elsewhere, so a
    relative name would point at nothing.
    """
    onnx = getattr(model, "onnx_path", None)
    if onnx is not None:
        card["file"] = str(Path(onnx).resolve())
    elif isinstance(card.get("file"), str) and card_path and not Path(card["file"]).is_absolute():
        card["file"] = str((Path(card_path).resolve().parent / card["file"]).resolve())


def cmd_evaluate_detector(args: argparse.Namespace) -> int:
    """``mien evaluate-detector``: AP, operating point, recall by size."""
    from mien.audit import html
    from mien.audit.detector import evaluate_detector
    from mien.detection import DETECTOR_NAME, FaceDetector

    _check_positive("--bootstrap", args.bootstrap)
    _check_positive("--limit", args.limit)
    if not 0 <= args.curve_min_score <= args.detect_threshold <= 1:
        raise InputError("need 0 <= --curve-min-score <= --detect-threshold <= 1")
    detector = FaceDetector(score_threshold=args.curve_min_score)
    info = {"name": DETECTOR_NAME, "min_score": args.curve_min_score}
    result = evaluate_detector(
        args.dir,
        detector,
        threshold=args.detect_threshold,
        iou_threshold=args.iou,
        n_resamples=args.bootstrap,
        seed=args.seed,
        detector_info=info,
        limit=args.limit,
        progress=_progress("detecting"),
    )
    if args.output:
        _write(args.output, dumps(result))
    if args.html:
        _write(args.html, html.render_detector_html(result))
    op = result["operating_point"]
    print(
        f"{result['dataset']['n_images']} images, {result['dataset']['n_faces']} faces: "
        f"AP@{args.iou:g} {_num(result['ap']['value'])}; at score >= {args.detect_threshold:g}: "
        f"precision {_num(op['precision']['value'])}, recall {_num(op['recall']['value'])}, "
        f"FP/image {_num(op['fp_per_image']['value'])}"
    )
    for b in result["recall_by_size"]:
        print(f"  {b['bucket']:>8} px: {b['n_faces']:4d} faces, recall {_num(b['recall'])}")
    if len(result["recall_by_class"]) > 1:
        for c in result["recall_by_class"]:
            print(f"  class {c['class']}: {c['n_faces']} faces, recall {_num(c['recall'])}")
    return 0


def _num(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"
