"""Audit an expression model on every shared set with `mien evaluate`, and render before/after tables.

    python scripts/audit_sets.py run --card src/mien/models/expression.json --out runs/audit/new
    python scripts/audit_sets.py table runs/audit/v1.2 runs/audit/new --insert src/mien/models/MODEL_CARD.md

``run`` calls ``mien evaluate`` once per set (FER+ PublicTest/PrivateTest as crops; the expression
sets through the full pipeline: detector, alignment, model) and keeps each evaluation JSON. The
validation folds are the fixed, subject-disjoint ones of ``mien.training.expressions`` (write them
first with ``python -m mien.training.expressions splits``). ``table`` reads the JSONs only: every
number in the tables is one `mien evaluate` computed; nothing is typed. ``--insert`` replaces the
block between the ``cross-domain audit`` markers in a Markdown file (appends it when absent).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path("../shared/data")
SPLITS = Path("runs/expression_splits")
EXPR = SHARED / "expressions"
FER = SHARED / "ferplus/fer2013_ferplus.npz"

#: name -> (mien evaluate arguments, what the set is)
SETS: dict[str, tuple[list[str], str]] = {
    "ferplus_public": ([str(FER), "--split", "PublicTest", "--crops"], "FER+ PublicTest (selection)"),
    "ferplus_private": ([str(FER), "--split", "PrivateTest", "--crops"], "FER+ PrivateTest (report only)"),
    "taiwanese_val": ([str(SPLITS / "taiwanese_chen2013_val.csv"), "--full-pipeline", "--groups",
                       "performance_type"], "Taiwanese validation fold (10 performers held out)"),
    "taiwanese_all": ([str(EXPR / "taiwanese_chen2013/labels.csv"), "--full-pipeline", "--groups",
                       "performance_type"], "Taiwanese, all 29 performers (19 trained on by the new model)"),
    "london_val": ([str(SPLITS / "london_face_research_lab_val.csv"), "--full-pipeline", "--groups",
                    "gender,ethnicity"], "London validation fold (34 people held out)"),
    "london_all": ([str(EXPR / "london_face_research_lab/labels.csv"), "--full-pipeline", "--groups",
                    "gender,ethnicity"], "London, all 102 people (68 trained on by the new model)"),
    "yale_val": ([str(SPLITS / "yale_faces_val.csv"), "--full-pipeline", "--groups", "subject"],
                 "Yale validation fold (5 people held out)"),
    "yale_all": ([str(EXPR / "yale_faces/labels.csv"), "--full-pipeline", "--groups", "subject"],
                 "Yale, all 15 people (10 trained on by the new model)"),
    "muxspace_val": ([str(SPLITS / "muxspace_val.csv"), "--full-pipeline", "--groups", "source_kind"],
                     "muxspace held-out images (1 in 7; subjects unknown, so people may recur)"),
}
BEGIN, END = "<!-- cross-domain audit: begin (scripts/audit_sets.py table) -->", "<!-- cross-domain audit: end -->"
CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def run(card: Path, out: Path, sets: list[str], prior_strength: float | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in sets:
        args, _ = SETS[name]
        cmd = [sys.executable, "-m", "mien", "evaluate", *args, "--model-card", str(card), "--no-items",
               "-o", str(out / f"{name}.json")]
        if prior_strength is not None:
            cmd += ["--prior-strength", str(prior_strength)]
        print("$ " + " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
    (out / "commands.json").write_text(json.dumps({"card": str(card), "sets": sets,
                                                   "prior_strength": prior_strength}, indent=1))


def _ci(v: dict | None, pct: bool = True) -> str:
    if not v or v.get("value") is None:
        return "–"
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.3f}")
    if v.get("ci_low") is None:
        return f(v["value"])
    return f"{f(v['value'])} ({f(v['ci_low'])}–{f(v['ci_high'])})"


def _load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _metrics(ev: dict) -> dict:
    """Argmax over the labels the set holds where it lacks some (as the card's 7-class figures)."""
    return ev.get("metrics_restricted") or ev["metrics"]


def table(folders: list[Path], labels: list[str]) -> str:
    lines = [BEGIN, "", "Every number below is from `mien evaluate` (JSONs written by "
             "`python scripts/audit_sets.py run`; rendered by `python scripts/audit_sets.py table`). "
             "Percentages with 95% bootstrap intervals (1000 resamples; by subject where the set has "
             "subjects). Expression sets go through the full pipeline (detector, 5-point alignment, "
             "model); an image without a face found counts as an error. Where a set lacks some of the "
             "8 classes, the argmax runs over the classes it holds.", ""]
    models = {lab: (_load(folders[0], "ferplus_public") or {}).get("model", {}) for lab in labels[:1]}
    for lab, folder in zip(labels, folders):
        m = (_load(folder, "ferplus_public") or {}).get("model", {})
        models[lab] = m
        lines.append(f"- **{lab}**: {m.get('name')} (sha256 {str(m.get('sha256'))[:12]}…), temperature "
                     f"{m.get('temperature', 0):.3f}, class-prior strength {m.get('prior_strength')}")
    lines += ["", "### Headline, every set", "",
              "| set | n | model | scored | accuracy | balanced accuracy | macro-F1 |", "|---|---|---|---|---|---|---|"]
    for name, (_args, what) in SETS.items():
        for lab, folder in zip(labels, folders):
            ev = _load(folder, name)
            if ev is None:
                continue
            m, cov = _metrics(ev), ev["coverage"]
            lines.append(f"| {what} | {cov['n_items']} | {lab} | {cov['n_scored']} | {_ci(m['accuracy'])} | "
                         f"{_ci(m['balanced_accuracy'])} | {_ci(m['macro_f1'])} |")
    lines += ["", "### Recall per expression", "",
              "| set | model | " + " | ".join(CLASSES) + " |", "|---|---|" + "---|" * len(CLASSES)]
    for name, (_args, what) in SETS.items():
        for lab, folder in zip(labels, folders):
            ev = _load(folder, name)
            if ev is None:
                continue
            pc = ev["metrics"]["per_class"]
            cells = [_ci(pc[c]["recall"]) if pc.get(c, {}).get("support") else "–" for c in CLASSES]
            lines.append(f"| {what} | {lab} | " + " | ".join(cells) + " |")
    lines += ["", "### Per group (the sets' own annotations)", "",
              "| set | column | model | group: n, accuracy | accuracy gap (groups of n ≥ 10) |", "|---|---|---|---|---|"]
    for name, (_args, what) in SETS.items():
        if name.startswith("yale"):
            continue  # groups are single people there: too small to mean anything
        for lab, folder in zip(labels, folders):
            ev = _load(folder, name)
            for col, rep in ((ev or {}).get("groups") or {}).items():
                cells = "; ".join(f"{g} {r['n']}: {_ci(r['accuracy'])}" for g, r in rep["groups"].items())
                lines.append(f"| {what} | {col} | {lab} | {cells} | {_ci(rep['accuracy_gap'])} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def insert(path: Path, block: str) -> None:
    text = path.read_text() if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n## Cross-domain audit\n\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--card", type=Path, default=Path("src/mien/models/expression.json"))
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    r.add_argument("--prior-strength", type=float, default=None)
    t = sub.add_parser("table")
    t.add_argument("folders", type=Path, nargs="+")
    t.add_argument("--labels", nargs="*", default=None, help="one per folder (default: the folder names)")
    t.add_argument("--insert", type=Path, action="append", default=[], help="Markdown file(s) to put the tables in")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.card, args.out, args.sets, args.prior_strength)
        return
    labels = args.labels or [f.name for f in args.folders]
    if len(labels) != len(args.folders):
        sys.exit("audit_sets.py: error: give one --labels entry per folder")
    block = table(args.folders, labels)
    for path in args.insert:
        insert(path, block)
    print(block)


if __name__ == "__main__":
    main()
