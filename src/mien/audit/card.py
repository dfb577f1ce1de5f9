"""Model-card numbers produced by the tool, not typed by hand.

``mien evaluate fer2013_ferplus.npz --crops --write-card PATH`` runs the evaluation and calls
:func:`update_card_metrics` to put its numbers into the card's ``evaluation`` block, then
:func:`render_model_card_md` writes the human-readable card next to it. A test regenerates the
numbers from the shared data and checks the shipped card still matches, so the card cannot drift
from what the model actually does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mien.audit.metrics import HEADLINE

#: Headline metric names as written in the Markdown card.
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy (mean per-class recall)",
    "macro_f1": "Macro-F1",
    "nll": "NLL (lower is better)",
    "brier": "Brier score, multi-class (lower is better)",
    "ece": "ECE, 15 bins (lower is better)",
}


def update_card_metrics(card: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``card`` whose ``evaluation`` block holds ``evaluation``'s numbers.

    Only what a card reader needs is copied (headline numbers with CIs, per-class scores, the
    confusion matrix, coverage, and how it was computed); per-item results stay in the evaluation
    JSON. Other card fields are left untouched.
    """
    metrics = evaluation["metrics"]
    ds = evaluation["dataset"]
    block: dict[str, Any] = {
        "generated_by": "mien evaluate --write-card",
        "mien_version": evaluation.get("mien_version"),
        "dataset": {
            "source_name": _basename(ds.get("source")),
            "format": ds.get("format"),
            "split": ds.get("split"),
            "sha256": ds.get("sha256"),
            "n_items": ds.get("n_items"),
            "dropped": ds.get("dropped"),
            "support": ds.get("support"),
        },
        "mode": evaluation.get("mode"),
        "model_sha256": (evaluation.get("model") or {}).get("sha256"),
        "temperature": (evaluation.get("model") or {}).get("temperature"),
        "prior_strength": (evaluation.get("model") or {}).get("prior_strength"),
        "bootstrap": evaluation.get("bootstrap"),
        "coverage": {k: v for k, v in evaluation.get("coverage", {}).items() if k != "errors"},
        "metrics": {key: metrics[key] for key in HEADLINE},
        "per_class": metrics["per_class"],
        "confusion": metrics["confusion"],
    }
    restricted = evaluation.get("metrics_restricted")
    if restricted:
        block["metrics_restricted"] = {
            "labels_used": restricted.get("labels_used"),
            **{key: restricted[key] for key in HEADLINE},
        }
    out = copy.deepcopy(card)
    out["evaluation"] = block
    return out


def _basename(path: Any) -> Any:
    if not isinstance(path, str):
        return path
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ci(v: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not v:
        return "n/a"
    if v.get("ci_low") is None:
        return _fmt(v.get("value"), digits)
    return f"{_fmt(v.get('value'), digits)} ({_fmt(v['ci_low'], digits)}–{_fmt(v['ci_high'], digits)})"


def _text(value: Any) -> str:
    """A card field as Markdown: strings as-is, lists as bullets, dicts as ``key: value`` bullets."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(f"- {_inline(v)}" for v in value)
    if isinstance(value, Mapping):
        return "\n".join(f"- **{k.replace('_', ' ')}**: {_inline(v)}" for k, v in value.items())
    return str(value)


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_inline(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value)
    return str(value)


# Card fields rendered as their own sections, in this order, when present.
_SECTIONS = (
    ("task", "Task"),
    ("description", "Description"),
    ("intended_use", "Intended use"),
    ("out_of_scope", "Out of scope"),
    ("training", "Training"),
    ("training_data", "Training data"),
    ("license", "Licence"),
    ("licence", "Licence"),
    ("known_limits", "Known limits"),
    ("limitations", "Known limits"),
    ("ethical_considerations", "Ethical considerations"),
)


def _facts(card: Mapping[str, Any]) -> list[tuple[str, Any]]:
    spec: Mapping[str, Any] = card["input"] if isinstance(card.get("input"), Mapping) else {}
    arch: Mapping[str, Any] = card["architecture"] if isinstance(card.get("architecture"), Mapping) else {}
    size = spec.get("size") or card.get("input_size")
    temperature = card.get("temperature")
    if temperature is not None and card.get("temperature_fitted_on"):
        temperature = f"{temperature} (fitted on {card['temperature_fitted_on']})"
    facts = [
        ("Version", card.get("version")),
        ("File", card.get("file")),
        ("SHA-256", card.get("sha256")),
        ("Architecture", arch.get("family")),
        ("Parameters", arch.get("parameters")),
        ("Input", f"{size}x{size} {spec.get('colour', 'grayscale')}" if size else None),
        ("Crop framing", spec.get("crop_framing")),
        (
            "Output",
            (card.get("output") or {}).get("meaning") if isinstance(card.get("output"), Mapping) else None,
        ),
        ("Temperature", temperature),
        ("Class-prior strength", _prior_fact(card.get("prior_adjustment"))),
    ]
    return [(k, v) for k, v in facts if v is not None]


def _prior_fact(prior: Any) -> str | None:
    if not isinstance(prior, Mapping) or prior.get("strength") is None:
        return None
    return (f"{prior['strength']} (0: the training data's class frequencies, 1: all expressions equally "
            f"likely a priori; chosen on {prior.get('selected_on', 'validation data')})")


def render_model_card_md(card: Mapping[str, Any]) -> str:
    """The model card as Markdown; the evaluation numbers come from the ``evaluation`` block only."""
    name = card.get("name", "mien expression model")
    labels = ", ".join(card.get("labels", [])) or "the canonical labels"
    lines = [
        f"# Model card: {name}",
        "",
        (
            f"This model classifies facial *expressions* (configurations of the face) into {labels}. "
            "It does not recognise felt emotions, identify people, or infer intent, deception, risk or "
            "demographic traits."
        ),
        "",
    ]
    facts = _facts(card)
    if facts:
        lines += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in facts], ""]
    done = set()
    for key, title in _SECTIONS:
        if key in card and title not in done:
            done.add(title)
            lines += [f"## {title}", "", _text(card[key]), ""]

    ev = card.get("evaluation")
    if ev:
        lines += _evaluation_md(ev)
        lines += _extras_md(ev.get("extra") or {})
    cal = card.get("calibration")
    if cal:
        data = cal.get("data") or {}
        lines += [
            "## Calibration",
            "",
            (
                f"Temperature {_fmt(cal.get('temperature'))} (was {_fmt(cal.get('temperature_before'))}), "
                f"fitted by minimum NLL on {_fmt(data.get('n'))} items of `{_basename(data.get('source'))}`: "
                f"NLL {_fmt(cal.get('nll_before'))} → {_fmt(cal.get('nll_after'))}, "
                f"ECE {_fmt(cal.get('ece_before'))} → {_fmt(cal.get('ece_after'))}."
            ),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _evaluation_md(ev: Mapping[str, Any]) -> list[str]:
    ds = ev.get("dataset", {})
    boot = ev.get("bootstrap") or {}
    cov = ev.get("coverage") or {}
    where = f"`{ds.get('source_name')}`" + (f", split {ds.get('split')}" if ds.get("split") else "")
    lines = [
        "## Evaluation",
        "",
        f"Measured by `mien evaluate` (mien {ev.get('mien_version')}) on {where}: "
        f"{ds.get('n_items')} items, {ev.get('mode')} mode"
        + (f", {cov.get('n_scored')} scored" if cov.get("n_scored") != ds.get("n_items") else "")
        + ". In brackets: "
        f"{int(100 * boot.get('level', 0.95))}% {boot.get('method', 'percentile')} bootstrap CI over "
        f"{boot.get('n_resamples')} resamples of {boot.get('unit', 'item')}s (seed {boot.get('seed')}).",
        "",
        "| Metric | Value (95% CI) |",
        "|---|---|",
    ]
    for key in HEADLINE:
        lines.append(f"| {METRIC_NAMES[key]} | {_ci(ev['metrics'].get(key))} |")
    lines.append("")
    if ev.get("metrics_restricted"):
        r = ev["metrics_restricted"]
        lines += [
            (
                f"With the argmax restricted to the labels present in the data ({', '.join(r.get('labels_used', []))}): "
                f"accuracy {_ci(r.get('accuracy'))}, macro-F1 {_ci(r.get('macro_f1'))}."
            ),
            "",
        ]
    lines += [
        "### Per expression",
        "",
        "| Expression | Support | Precision | Recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for label, s in ev.get("per_class", {}).items():
        lines.append(
            f"| {label} | {s.get('support')} | {_ci(s.get('precision'))} | {_ci(s.get('recall'))} | {_ci(s.get('f1'))} |"
        )
    lines.append("")
    conf = ev.get("confusion")
    if conf:
        cols = conf["columns"]
        lines += [
            "### Confusion matrix (rows: label, columns: prediction)",
            "",
            "| | " + " | ".join(cols) + " |",
            "|---" * (len(cols) + 1) + "|",
        ]
        for row, counts in zip(conf["rows"], conf["counts"]):
            lines.append(f"| **{row}** | " + " | ".join(str(c) for c in counts) + " |")
        lines.append("")
    return lines


def _extras_md(extra: Mapping[str, Any]) -> list[str]:
    """Calibration before temperature scaling, and the 7-class figures (for peers without contempt)."""
    lines: list[str] = []
    raw = extra.get("uncalibrated")
    if raw:
        lines += [
            "## Before temperature scaling",
            "",
            f"Same items, temperature 1: ECE {_ci(raw.get('ece'))}, NLL {_ci(raw.get('nll'))}, "
            f"Brier {_ci(raw.get('brier'))} (accuracy is unchanged by temperature).",
            "",
        ]
    strengths = extra.get("prior_strengths")
    if strengths:
        lines += [
            "## Class-prior strength",
            "",
            "The same items at other class-prior strengths (0: FER+'s class frequencies, as the network "
            "learnt them; 1: all expressions equally likely a priori). Higher strengths find more of the "
            "rare expressions (disgust, fear, contempt) at some cost in overall accuracy on FER+, whose "
            "test set has FER+'s frequencies.",
            "",
            "| Strength | Accuracy | Balanced accuracy | Macro-F1 | ECE | Recall disgust | Recall fear | Recall contempt |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in strengths:
            rec = row.get("recall") or {}
            lines.append(
                f"| {row.get('strength')}{' (default)' if row.get('default') else ''} | {_ci(row.get('accuracy'))} | "
                f"{_ci(row.get('balanced_accuracy'))} | {_ci(row.get('macro_f1'))} | {_ci(row.get('ece'))} | "
                f"{_fmt(rec.get('disgust'))} | {_fmt(rec.get('fear'))} | {_fmt(rec.get('contempt'))} |"
            )
        lines.append("")
    seven = extra.get("without_contempt")
    if seven:
        lines += [
            "## Seven classes (without contempt)",
            "",
            f"{_fmt(seven.get('n_items'))} items ({seven.get('note')}): accuracy {_ci(seven.get('accuracy'))}, "
            f"macro-F1 {_ci(seven.get('macro_f1'))}, balanced accuracy {_ci(seven.get('balanced_accuracy'))}.",
            "",
        ]
    return lines
