"""Self-contained HTML pages for audit results: no CDN, no script, inline CSS and SVG.

Why self-contained: audit pages are shared as files (attached to a review, archived with a model
release) and opened offline; nothing may be fetched from elsewhere. Every string from the data is
HTML-escaped, since dataset paths and group names are user-controlled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from mien.audit.card import METRIC_NAMES
from mien.audit.metrics import HEADLINE
from mien.htmlkit import facts as facts_table
from mien.htmlkit import fmt, page, svg_open, table

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #d6dbe0;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:3px 9px;border-bottom:1px solid #e4e8ec;text-align:right}td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f5f7}
.note{color:#55606b;font-size:.92em}.warn{background:#fff4e0;border-left:4px solid #e5a100;padding:.5em .8em}
.ci{color:#6b7580;font-size:.88em}.pos{color:#0a7a32}.neg{color:#b3261e}
.facts th{text-align:left;font-weight:600;background:none}.facts td.v{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}code{background:#f3f5f7;padding:0 3px}
"""

_DISCLAIMER = (
    "mien measures facial <em>expressions</em> (configurations of the face), not felt emotions. "
    "It identifies no one and infers no intent, deception, risk or demographic trait; group columns "
    "shown here come from the dataset's own annotations."
)


def _ci(v: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not v:
        return "–"
    out = fmt(v.get("value"), digits)
    if v.get("ci_low") is not None:
        out += f" <span class='ci'>[{fmt(v['ci_low'], digits)}, {fmt(v['ci_high'], digits)}]</span>"
    return out


def _record(d: Any) -> str:
    """A small dict (e.g. the detector record) as ``key value · key value``."""
    if not isinstance(d, Mapping):
        return escape(str(d))
    return " · ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in d.items() if v is not None)


# ---------------------------------------------------------------------------------------------- SVG
def confusion_svg(confusion: Mapping[str, Any], cell: int = 46) -> str:
    """Confusion matrix as an SVG heatmap, shaded by row share (recall), labelled with counts."""
    rows, cols, counts = confusion["rows"], confusion["columns"], confusion["counts"]
    left, top = 100, 92
    w, h = left + cell * len(cols) + 70, top + cell * len(rows) + 30
    parts = [
        (
            svg_open("confusion matrix", width=w, height=h, attrs="font-size='11'")
        )
    ]
    for j, c in enumerate(cols):
        x = left + j * cell + cell / 2
        parts.append(f"<text x='{x}' y='{top - 6}' transform='rotate(-50 {x} {top - 6})'>{escape(c)}</text>")
    for i, r in enumerate(rows):
        total = sum(counts[i]) or 1
        y = top + i * cell
        parts.append(f"<text x='{left - 6}' y='{y + cell / 2 + 4}' text-anchor='end'>{escape(r)}</text>")
        for j, n in enumerate(counts[i]):
            share = n / total
            fill = (
                f"rgba(31,94,168,{0.06 + 0.94 * share:.3f})"
                if j < len(rows)
                else f"rgba(179,38,30,{0.06 + 0.94 * share:.3f})"
            )
            colour = "#fff" if share > 0.5 else "#1d232a"
            x = left + j * cell
            parts.append(
                f"<rect x='{x}' y='{y}' width='{cell - 1}' height='{cell - 1}' fill='{fill}'>"
                f"<title>{escape(r)} → {escape(cols[j])}: {n} ({100 * share:.1f}% of row)</title></rect>"
                f"<text x='{x + cell / 2}' y='{y + cell / 2 + 4}' text-anchor='middle' fill='{colour}'>{n}</text>"
            )
    parts.append(
        f"<text x='{left}' y='{h - 8}' class='note'>rows: label · columns: prediction · shade: share of row</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def reliability_svg(reliability: Mapping[str, Any], size: int = 300) -> str:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with bin counts."""
    bins = reliability["bins"]
    pad = 40
    w = h = size + 2 * pad
    sx = lambda v: pad + v * size
    sy = lambda v: pad + (1 - v) * size
    parts = [
        (
            svg_open("reliability diagram", width=w, height=h + 10, attrs="font-size='11'")
        ),
        f"<rect x='{pad}' y='{pad}' width='{size}' height='{size}' fill='none' stroke='#aab2ba'/>",
        f"<line x1='{sx(0)}' y1='{sy(0)}' x2='{sx(1)}' y2='{sy(1)}' stroke='#888' stroke-dasharray='4 3'/>",
    ]
    for b in bins:
        if not b["count"] or b["accuracy"] is None:
            continue
        x0, x1 = sx(b["low"]), sx(b["high"])
        parts.append(
            f"<rect x='{x0 + 1}' y='{sy(b['accuracy'])}' width='{x1 - x0 - 2}' height='{sy(0) - sy(b['accuracy'])}' "
            f"fill='#1f5ea8' fill-opacity='0.75'><title>confidence {b['low']:.2f}–{b['high']:.2f}: "
            f"{int(b['count'])} items, mean confidence {b['mean_confidence']:.3f}, accuracy {b['accuracy']:.3f}"
            "</title></rect>"
            f"<circle cx='{sx(b['mean_confidence'])}' cy='{sy(b['mean_confidence'])}' r='2.5' fill='#b3261e'/>"
            f"<text x='{(x0 + x1) / 2}' y='{pad - 4}' text-anchor='middle' font-size='8'>{int(b['count'])}</text>"
        )
    for t in (0, 0.5, 1):
        parts.append(f"<text x='{sx(t)}' y='{sy(0) + 14}' text-anchor='middle'>{t:g}</text>")
        parts.append(f"<text x='{pad - 5}' y='{sy(t) + 4}' text-anchor='end'>{t:g}</text>")
    parts.append(f"<text x='{sx(0.5)}' y='{sy(0) + 30}' text-anchor='middle'>confidence (top class)</text>")
    parts.append(
        f"<text x='12' y='{sy(0.5)}' transform='rotate(-90 12 {sy(0.5)})' text-anchor='middle'>accuracy</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def pr_svg(curve: Sequence[Mapping[str, Any]], size: int = 300) -> str:
    """Precision-recall curve of the detector."""
    pad = 40
    sx = lambda v: pad + v * size
    sy = lambda v: pad + (1 - v) * size
    pts = " ".join(f"{sx(p['recall'] or 0):.1f},{sy(p['precision']):.1f}" for p in curve)
    return (
        svg_open("precision-recall curve", width=size + 2 * pad, height=size + 2 * pad + 10, attrs="font-size='11'")
        + f"<rect x='{pad}' y='{pad}' width='{size}' height='{size}' fill='none' stroke='#aab2ba'/>"
        f"<polyline points='{pts}' fill='none' stroke='#1f5ea8' stroke-width='2'/>"
        f"<text x='{sx(0.5)}' y='{sy(0) + 26}' text-anchor='middle'>recall</text>"
        f"<text x='12' y='{sy(0.5)}' transform='rotate(-90 12 {sy(0.5)})' text-anchor='middle'>precision</text>"
        f"<text x='{sx(0)}' y='{sy(0) + 14}'>0</text><text x='{sx(1)}' y='{sy(0) + 14}'>1</text>"
        f"<text x='{pad - 5}' y='{sy(1) + 4}' text-anchor='end'>1</text></svg>"
    )


# ------------------------------------------------------------------------------------- evaluation
def _headline(metrics: Mapping[str, Any]) -> str:
    return table(
        ["metric", "value [95% CI]"], [[escape(METRIC_NAMES[k]), _ci(metrics.get(k))] for k in HEADLINE]
    )


def _per_class(metrics: Mapping[str, Any]) -> str:
    rows = [
        [
            escape(label),
            str(s["support"]),
            str(s["predicted"]),
            _ci(s["precision"]),
            _ci(s["recall"]),
            _ci(s["f1"]),
        ]
        for label, s in metrics["per_class"].items()
    ]
    return table(["expression", "support", "predicted", "precision", "recall", "F1"], rows)


def _scope_block(title: str, metrics: Mapping[str, Any], note: str = "") -> str:
    return (
        f"<h2>{escape(title)}</h2>"
        + (f"<p class='note'>{note}</p>" if note else "")
        + f"<div class='grid'><div>{_headline(metrics)}</div>"
        f"<div>{reliability_svg(metrics['reliability'])}</div></div>"
        f"<h3>Per expression</h3>{_per_class(metrics)}"
        f"<h3>Confusion matrix</h3>{confusion_svg(metrics['confusion'])}"
    )


def _groups_block(groups: Mapping[str, Any]) -> str:
    if not groups:
        return ""
    out = [
        (
            "<h2>Groups</h2><p class='note'>Per group of each column the dataset provides. The negative-"
            "expression rate is the share of faces assigned anger, contempt, disgust or fear (Rhue 2018); "
            "“…, non-negative labels” counts only faces whose label is not negative, so differences there "
            "are the model's, not the data's. Gaps are max − min over groups with n ≥ "
            f"{next(iter(groups.values()))['min_group_n']} (missing values excluded).</p>"
        )
    ]
    for column, rep in groups.items():
        rows = []
        for g, s in rep["groups"].items():
            name = escape(g) + ("" if s["included_in_gaps"] else " <span class='ci'>(not in gaps)</span>")
            rows.append(
                [
                    name,
                    str(s["n"]),
                    _ci(s["accuracy"]),
                    _ci(s["balanced_accuracy"]),
                    _ci(s["macro_f1"]),
                    _ci(s["face_found_rate"]),
                    fmt(s["negative_label_rate"]),
                    _ci(s["negative_rate"]),
                    _ci(s["negative_rate_non_negative_labels"]),
                ]
            )
        out.append(f"<h3>{escape(column)}</h3>")
        out.append(
            table(
                [
                    "group",
                    "n",
                    "accuracy",
                    "balanced acc.",
                    "macro-F1",
                    "face found",
                    "negative labels",
                    "negative assigned",
                    "negative assigned, non-negative labels",
                ],
                rows,
            )
        )
        out.append(
            f"<p>Worst group: <b>{fmt(rep['worst_group'])}</b>, accuracy {_ci(rep['worst_group_accuracy'])}. "
            f"Accuracy gap {_ci(rep['accuracy_gap'])}; face-found gap {_ci(rep['face_found_rate_gap'])}; "
            f"negative-rate gap {_ci(rep['negative_rate_gap'])}; on non-negative labels "
            f"{_ci(rep['negative_rate_non_negative_labels_gap'])}.</p>"
        )
        gap_rows = [
            [escape(lbl), _ci(rep["tpr_gap"][lbl]), _ci(rep["fpr_gap"][lbl])] for lbl in rep["tpr_gap"]
        ]
        out.append(
            "<details><summary>Per-expression TPR / FPR gaps</summary>"
            + table(["expression", "TPR gap", "FPR gap"], gap_rows)
            + "</details>"
        )
    return "".join(out)


def render_evaluation_html(evaluation: Mapping[str, Any]) -> str:
    """The page for one ``mien evaluate`` run."""
    ds, cov, model = evaluation["dataset"], evaluation["coverage"], evaluation.get("model") or {}
    boot = evaluation["bootstrap"]
    title = f"mien evaluate: {ds.get('source')}"
    body = [f"<h1>Expression model audit</h1><p class='note'>{_DISCLAIMER}</p>"]
    facts = [
        [
            "data",
            f"<code>{escape(str(ds.get('source')))}</code>"
            + (f" · split {escape(str(ds['split']))}" if ds.get("split") else ""),
        ],
        ["format · mode", f"{escape(str(ds.get('format')))} · {escape(str(evaluation.get('mode')))}"],
        [
            "model",
            f"{escape(str(model.get('name')))} <span class='ci'>{escape(str(model.get('sha256'))[:12])}</span> · T = {fmt(model.get('temperature'))} · class-prior strength {fmt(model.get('prior_strength'))}",
        ],
        [
            "items",
            f"{cov['n_items']} ({cov['n_scored']} scored, {cov['n_no_face']} no face, {cov['n_unreadable']} unreadable)",
        ],
        [
            "dropped before scoring",
            escape(", ".join(f"{k}: {v}" for k, v in (ds.get("dropped") or {}).items()) or "none"),
        ],
        ["labels absent from data", escape(", ".join(ds.get("labels_absent") or []) or "none")],
        [
            "columns not audited as groups",
            escape("; ".join(f"{c} ({why})" for c, why in (ds.get("group_columns_skipped") or {}).items())
                   or "none"),
        ],
        [
            "bootstrap",
            f"{boot['n_resamples']} resamples of {escape(boot['unit'])}s, seed {boot['seed']}, {int(100 * boot['level'])}% percentile CIs",
        ],
        [
            "mien",
            f"{escape(str(evaluation.get('mien_version')))} · {escape(str(evaluation.get('created_utc')))}",
        ],
    ]
    if evaluation.get("detector"):
        facts.insert(3, ["face detector", _record(evaluation["detector"])])
    body.append(facts_table(facts))
    if cov["n_scored"] < cov["n_items"]:
        body.append(
            f"<p class='warn'>{cov['n_items'] - cov['n_scored']} item(s) were not scored (no face found or "
            "unreadable). They stay in the headline numbers as errors; the found-faces-only numbers are "
            "shown separately below and are not the headline.</p>"
        )
    body.append(
        _scope_block(
            "All items (headline)",
            evaluation["metrics"],
            "Missed faces and unreadable images count as wrong; argmax over all 8 labels.",
        )
    )
    if evaluation.get("metrics_restricted"):
        r = evaluation["metrics_restricted"]
        body.append(
            _scope_block(
                "All items, argmax restricted to the labels present",
                r,
                "Probabilities renormalised over: " + escape(", ".join(r.get("labels_used", []))),
            )
        )
    if evaluation.get("metrics_found_faces_only"):
        body.append(
            _scope_block(
                "Found faces only (not the headline)",
                evaluation["metrics_found_faces_only"],
                "Only items where a face was found and the image was readable.",
            )
        )
    body.append(_groups_block(evaluation.get("groups") or {}))
    if cov["errors"]:
        shown = cov["errors"][:200]
        body.append(
            "<h2>Items not scored</h2>"
            + table(
                ["item", "status", "message"],
                [[escape(e["id"]), escape(e["status"]), escape(e["message"])] for e in shown],
            )
        )
        if len(cov["errors"]) > len(shown):
            body.append(f"<p class='note'>… and {len(cov['errors']) - len(shown)} more (see the JSON).</p>")
    return page(title, "\n".join(body), css=_CSS)


# ------------------------------------------------------------------------------------- comparison
def render_comparison_html(comparison: Mapping[str, Any]) -> str:
    """The page for ``mien evaluate --compare A.json B.json``."""
    boot = comparison["bootstrap"]

    def who(side: Mapping[str, Any]) -> str:
        m, d = side.get("model") or {}, side.get("dataset") or {}
        return (
            f"{escape(str(m.get('name')))} (T = {fmt(m.get('temperature'))}, prior strength "
            f"{fmt(m.get('prior_strength'))}) on "
            f"<code>{escape(str(d.get('source')))}</code> {escape(str(d.get('split') or ''))}, "
            f"{escape(str(side.get('mode')))}"
        )

    rows = []
    for name, r in comparison["metrics"].items():
        d = r["difference"]
        cls = "" if not d.get("excludes_zero") else ("pos" if (d["value"] or 0) > 0 else "neg")
        rows.append([escape(name), _ci(r["a"]), _ci(r["b"]), f"<span class='{cls}'>{_ci(d)}</span>"])
    body = (
        f"<h1>Comparison</h1><p class='note'>{_DISCLAIMER}</p>"
        f"<p><b>A</b>: {who(comparison['a'])}<br><b>B</b>: {who(comparison['b'])}</p>"
        f"<p class='note'>Difference = B − A. {escape(boot['method'])} bootstrap over {escape(boot['unit'])}s, "
        f"{boot['n_resamples']} resamples, seed {boot['seed']}. Coloured when the CI excludes 0 "
        "(for NLL, Brier and ECE lower is better).</p>" + table(["metric", "A", "B", "B − A"], rows)
    )
    return page("mien compare", body, css=_CSS)


# --------------------------------------------------------------------------------------- detector
def render_detector_html(result: Mapping[str, Any]) -> str:
    """The page for ``mien evaluate-detector``."""
    ds, op = result["dataset"], result["operating_point"]
    facts = [
        ["annotations", f"<code>{escape(str(ds['source']))}</code> ({escape(ds['format'])})"],
        [
            "images · faces",
            f"{ds['n_images']} · {ds['n_faces']} (+{ds['n_ignored']} ignored), {ds['n_unreadable']} unreadable",
        ],
        ["detector", _record(result.get("detector"))],
        ["IoU threshold", fmt(result["iou_threshold"], 2)],
        ["AP", _ci(result["ap"])],
        [
            f"at score ≥ {op['threshold']:g}",
            (
                f"precision {_ci(op['precision'])} · recall {_ci(op['recall'])} · F1 {fmt(op['f1'])} · "
                f"FP/image {_ci(op['fp_per_image'])}"
            ),
        ],
        ["max recall (any score)", fmt(result["max_recall"])],
    ]
    sizes = [
        [escape(b["bucket"]), str(b["n_faces"]), fmt(b["recall"]), fmt(b["recall_any_score"])]
        for b in result["recall_by_size"]
    ]
    body = (
        "<h1>Face detector audit</h1>"
        + facts_table(facts)
        + "<div class='grid'><div><h2>Recall by face size</h2><p class='note'>shorter side of the true box, px</p>"
        + table(["size", "faces", f"recall @ {op['threshold']:g}", "recall, any score"], sizes)
        + "<h2>Recall by annotated class</h2>"
        + table(
            ["class", "faces", f"recall @ {op['threshold']:g}", "recall, any score"],
            [
                [escape(c["class"]), str(c["n_faces"]), fmt(c["recall"]), fmt(c["recall_any_score"])]
                for c in result.get("recall_by_class", [])
            ],
        )
        + f"</div><div><h2>Precision–recall</h2>{pr_svg(result['pr_curve'])}</div></div>"
    )
    return page("mien evaluate-detector", body, css=_CSS)
