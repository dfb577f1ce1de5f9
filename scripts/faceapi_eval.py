"""face-api's FaceExpressionNet beside mien's shipped model, through the same faces; teacher probs.

    python scripts/faceapi_eval.py                      # predict (cached), table, teacher file
    python scripts/faceapi_eval.py --sets yale_faces --no-teacher --table -   # a quick look

Needs the port (``python scripts/faceapi_port.py``) and ``../shared/data``. Training-only; one
ONNX Runtime thread per model (run it under ``nice -n 5`` on the shared machine).

**The same faces for both models.** FER+ images are already 48 px grey face crops: both models get
each crop as it is (mien resizes it to its input; face-api's input is the crop resized to 112 px
bilinear, grey copied to R, G and B). Every image of the four expression sets goes once through
mien's detector, exactly as ``mien evaluate`` runs it (``Analyzer().detector``, largest face), and
that one detection feeds both models:

* mien: ``align_faces`` on the 5 landmarks to the model card's template (what ``mien analyze`` does);
* face-api: a box crop as face-api's own ``extractFaceTensors`` + ``toBatchTensor(112)`` make one
  from a detector box -- the box, clipped to the image, padded to a square with black (centred),
  resized to 112 px RGB (:func:`mien.training.faceapi.box_crop`). face-api normally runs on its own
  SSD-MobileNet box, which is never read here; RetinaFace's box spans brows to chin and cheek to
  cheek as that box does, so the box is used as it is (scale 1.0, the headline). Scale 1.2 (the
  box grown by 20%, as face-api's ``alignedRect`` grows its 68-landmark box) is reported as a
  sensitivity row.

An image where the detector finds no face is an error for both models (it stays in the
denominator, as in ``mien evaluate``). Metrics come from ``mien.audit.metrics`` and ``mien.stats``: accuracy, balanced
accuracy and per-class recall with 95% percentile bootstrap intervals (2,000 resamples, seed 0,
resampling whole subjects where the set names them), and a *paired* bootstrap of face-api minus
mien on the same resamples. Two scopes: argmax over face-api's 7 classes (mien's contempt left out:
the like-for-like comparison, the headline; images labelled contempt -- 9 in muxspace, none elsewhere --
are left out of it as they are from FER+ PrivateTest) and argmax over the labels present in the set
(every image).

**Teacher file** (``--teacher``, default ``runs/faceapi/teacher_probs.npz``), rows matchable to images:

* ``labels`` (8,): mien's classes, the column order of every ``*_probs``; ``faceapi_labels`` (7,):
  the column order of every ``*_logits7`` (face-api's own logits, for re-tempering);
* ``ferplus_index`` (n,) int64: row index into ``fer2013_ferplus.npz`` (its ``pixels``, ``usage``, ...)
  for every Training and PublicTest image (PrivateTest is left out: report-only);
  ``ferplus_usage`` (n,); ``ferplus_probs`` (n, 8) float32: face-api's softmax mapped to mien's
  classes, contempt = 0; ``ferplus_logits7`` (n, 7);
* for each set S of ``../shared/data/expressions``: ``S__path`` (n,) = its labels.csv ``path`` column,
  row for row; ``S__probs`` (n, 8); ``S__logits7`` (n, 7); ``S__face_found`` (n,) bool;
  ``S__box`` (n, 4) float32, the box cropped (x1, y1, x2, y2 in the image's pixels, scale 1.0):
  mien's detector's largest face, or the whole image where it found none (``face_found`` False);
* ``crop`` (str): how the crops were made; ``onnx_sha256``, ``tarball_sha256`` (str).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mien.audit.datasets import ferplus_majority, load_dataset
from mien.audit.metrics import Scored, classification_report, headline_statistic, restrict_probs
from mien.labels import EXPRESSIONS
from mien.stats import bootstrap, percentile_interval, softmax
from mien.training import cli_errors
from mien.training import faceapi as fa

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FERPLUS = SHARED / "ferplus" / "fer2013_ferplus.npz"
EXPRESSION_SETS = ("taiwanese_chen2013", "london_face_research_lab", "yale_faces", "muxspace")
SCALES = (1.0, 1.2)  # face-api box-crop scales; the first is the headline and the teacher's
SEVEN = [EXPRESSIONS.index(c) for c in EXPRESSIONS if c != "contempt"]
N_RESAMPLES, SEED = 2000, 0
CROP_NOTE = (
    "expression sets: mien's RetinaFace detector (mien.pipeline.Analyzer().detector, defaults), "
    "largest face; face-api crop = that box (scale 1.0) clipped to the image, padded to a square "
    "with black (centred), resized to 112x112 RGB (INTER_AREA when shrinking, else bilinear), as "
    "mien.training.faceapi.box_crop; no face found -> the whole image as the box. FER+: the 48 px "
    "grey crop resized bilinear to 112 px, grey copied to R, G, B."
)


def _progress(name: str, done: int, total: int, t0: float) -> None:
    print(f"\r{name}: {done}/{total} ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ predictions
def predict_set(name: str, net: fa.FaceApiExpressionNet, analyzer: Any) -> dict[str, np.ndarray]:
    """One detection per image; mien's aligned crop and face-api's box crops from it."""
    from mien.alignment import align_faces

    ds = load_dataset(SHARED / "expressions" / name / "labels.csv")
    model, detector = analyzer.model, analyzer.detector
    n = len(ds)
    found = np.zeros(n, bool)
    n_faces = np.zeros(n, np.int64)
    box = np.zeros((n, 4), np.float32)
    mien_logits = np.full((n, len(EXPRESSIONS)), np.nan)
    fa_logits = {s: np.full((n, 7), np.nan, np.float32) for s in SCALES}
    teacher_logits = np.full((n, 7), np.nan, np.float32)
    t0 = time.perf_counter()
    for i in range(n):
        img = ds.read_for_detector(i)  # BGR; read errors are real errors: these sets are all readable
        det = detector.detect(img)
        n_faces[i] = len(det)
        if len(det):
            j = int((det.xyxy[:, 2:] - det.xyxy[:, :2]).prod(1).argmax())
            found[i], box[i] = True, det.xyxy[j]
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            crop = align_faces(gray, det.landmarks[j:j + 1], model.input_size, model.template)
            mien_logits[i] = model.predict_logits(crop)[0]
            crops = np.stack([fa.box_crop(img, box[i], s) for s in SCALES])
            lo, _ = net.predict(crops)
            for k, s in enumerate(SCALES):
                fa_logits[s][i] = lo[k]
            teacher_logits[i] = lo[0]
        else:
            h, w = img.shape[:2]
            box[i] = (0, 0, w, h)
            teacher_logits[i] = net.predict(fa.box_crop(img, box[i])[None])[0][0]
        if (i + 1) % 200 == 0 or i + 1 == n:
            _progress(name, i + 1, n, t0)
    print(file=sys.stderr)
    out = {"path": np.asarray(ds.ids), "label": ds.labels, "face_found": found, "n_faces": n_faces,
           "box": box, "mien_logits": mien_logits, "teacher_logits7": teacher_logits,
           "subject": np.asarray(ds.subjects if ds.subjects is not None else [""] * n, dtype=str)}
    for s in SCALES:
        out[f"faceapi_logits7_s{int(round(s * 100))}"] = fa_logits[s]
    return out


def predict_ferplus(net: fa.FaceApiExpressionNet, model: Any) -> dict[str, np.ndarray]:
    """Every FER+ image through both models (crops mode: the 48 px crop is the face)."""
    with np.load(FERPLUS, allow_pickle=False) as d:
        pixels, usage, votes = d["pixels"], d["usage"].astype(str), d["ferplus_votes"]
    n = len(pixels)
    mien_logits = np.empty((n, len(EXPRESSIONS)))
    fa_logits = np.empty((n, 7), np.float32)
    t0 = time.perf_counter()
    step = 512
    for s in range(0, n, step):
        batch = pixels[s:s + step]
        mien_logits[s:s + step] = model.predict_logits(batch)
        fa_logits[s:s + step] = net.predict(np.stack([fa.gray_crop_to_rgb(g) for g in batch]))[0]
        _progress("ferplus", min(s + step, n), n, t0)
    print(file=sys.stderr)
    return {"usage": usage, "label": ferplus_majority(votes), "mien_logits": mien_logits,
            "faceapi_logits7": fa_logits}


def cached(path: Path, compute: Any, recompute: bool, models: dict[str, str]) -> dict[str, np.ndarray]:
    """``compute()``, kept in ``path``; reused only when made by the same two models (SHA-256)."""
    if path.is_file() and not recompute:
        with np.load(path, allow_pickle=False) as d:
            got = {k: d[k] for k in d.files}
        if all(str(got.get(k, "")) == v for k, v in models.items()):
            return got
    out = {**compute(), **{k: np.asarray(v) for k, v in models.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


# --------------------------------------------------------------------------------- metrics
def faceapi_probs8(logits7: np.ndarray) -> np.ndarray:
    """face-api's softmax in mien's 8 columns (contempt 0); NaN rows stay NaN (no face)."""
    p = fa.to_mien_probs(softmax(np.asarray(logits7, np.float64)))
    p[~np.isfinite(logits7).all(axis=1)] = np.nan
    return p


def compare(probs: dict[str, np.ndarray], y: np.ndarray, subjects: np.ndarray | None,
            classes: list[int]) -> dict[str, Any]:
    """Per model: accuracy, balanced accuracy, recalls with CIs; and the paired face-api - mien."""
    restricted = {m: restrict_probs(p, classes) for m, p in probs.items()}
    reports = {m: classification_report(p, y, subjects=subjects, n_resamples=N_RESAMPLES, seed=SEED)
               for m, p in restricted.items()}
    stats = {m: headline_statistic(Scored.from_probs(p, y)) for m, p in restricted.items()}

    def diff(w: np.ndarray) -> dict[str, float]:
        a, b = stats["mien"](w), stats["face-api"](w)
        return {k: b[k] - a[k] for k in ("accuracy", "balanced_accuracy")}

    point = diff(np.ones(len(y)))
    samples = bootstrap(diff, len(y), subjects=subjects, n_resamples=N_RESAMPLES, seed=SEED)
    paired = {k: (point[k], *percentile_interval(samples[k])) for k in point}
    return {"reports": reports, "paired": paired, "classes": classes}


def evaluations(preds: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    rows = []
    for name, p in preds.items():
        if name == "ferplus":
            keep = (p["usage"] == "PrivateTest") & (p["label"] >= 0) & (p["label"] != EXPRESSIONS.index("contempt"))
            y, subjects = p["label"][keep], None
            mien = softmax(p["mien_logits"][keep])
            variants = {"1.0": faceapi_probs8(p["faceapi_logits7"][keep])}
            title, no_face = "FER+ PrivateTest (contempt excluded; crops)", np.zeros(int(keep.sum()), bool)
        else:
            keep = np.ones(len(p["label"]), bool)
            y = p["label"]
            subjects = p["subject"] if (p["subject"] != "").any() else None
            mien = softmax(p["mien_logits"])
            variants = {f"{s:.1f}": faceapi_probs8(p[f"faceapi_logits7_s{int(round(s * 100))}"]) for s in SCALES}
            title, no_face = f"{name} (full pipeline)", ~p["face_found"]
        present = sorted(set(int(v) for v in y))
        # the 7-class scope leaves out contempt images (muxspace has 9): neither side can name them
        in7 = y != EXPRESSIONS.index("contempt")
        for scale, fprobs in variants.items():
            both = {"mien": mien, "face-api": fprobs}
            rows.append({"set": name, "title": title, "scale": scale, "n": int(keep.sum()), "n7": int(in7.sum()),
                         "n_no_face": int(no_face.sum()), "n_no_face7": int(no_face[in7].sum()), "subjects": subjects is not None,
                         "seven": compare({m: v[in7] for m, v in both.items()}, y[in7],
                                          None if subjects is None else subjects[in7], SEVEN),
                         "present": compare(both, y, subjects, present)})
    return rows


# ----------------------------------------------------------------------------------- table
def _ci(r: dict[str, Any], pct: bool = True) -> str:
    v, lo, hi = r["value"], r["ci_low"], r["ci_high"]
    if v is None:
        return "—"
    f = 100.0 if pct else 1.0
    fmt = "{:.1f}" if pct else "{:.2f}"
    return f"{fmt.format(v * f)} [{fmt.format(lo * f)}, {fmt.format(hi * f)}]" if lo is not None else fmt.format(v * f)


def _signed(t: tuple[float, float | None, float | None]) -> str:
    v, lo, hi = t
    return f"{100 * v:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo is not None and hi is not None else f"{100 * v:+.1f}"


def render(rows: list[dict[str, Any]], provenance: dict[str, Any], command: str) -> str:
    out = [
        "# face-api's FaceExpressionNet beside mien, through the same faces",
        "",
        f"Generated by `{command}` on {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        "do not edit by hand. How the crops, scopes and intervals are made: the docstring of "
        "`scripts/faceapi_eval.py`.",
        "",
        f"- mien: the shipped model `{provenance['mien_model']}` (SHA-256 `{provenance['mien_sha256'][:12]}…`), "
        "its class-prior offset included, as `mien evaluate` runs it.",
        *(["- **Whole sets flatter this mien model**: it was trained on the training folds of the four "
           "expression sets (two thirds of their performers), so these rows mix seen and unseen faces. The "
           "like-for-like comparison is on the validation folds: docs/training.md and the model card "
           "(face-api's rows by `scripts/faceapi_rows.py`)."] if provenance.get("mien_trained_on_sets") else []),
        f"- face-api: FaceExpressionNet from npm `{fa.PACKAGE}@{fa.VERSION}` (MIT), ported to ONNX by "
        f"`scripts/faceapi_port.py` (ONNX SHA-256 `{provenance['onnx_sha256'][:12]}…`); measurement and "
        "training only, never shipped. Its classes map to mien's; it has no contempt.",
        f"- Crops: {CROP_NOTE}",
        "- Reproduce: `python scripts/faceapi_port.py` (fetch + port), `python scripts/faceapi_check.py "
        "--setup` (the port against face-api in tfjs), then this command (about 25 min on one busy core; "
        "predictions are cached in `runs/faceapi/predictions/`).",
        "- Intervals: 95% percentile bootstrap, 2,000 resamples, seed 0; whole subjects resampled "
        f"where the set names them ({', '.join(_sets(rows, True)) or 'none'}; single images in "
        f"{', '.join(_sets(rows, False)) or 'none'}). *face-api − mien* is a paired bootstrap "
        "(same resamples for both). No-face images count as errors for both models.",
        "",
    ]
    for scope, heading in (("seven", "argmax over face-api's 7 classes (mien's contempt left out; contempt images "
                                      "left out) — the headline"),
                           ("present", "argmax over the labels present in each set")):
        out += [f"## {heading}", "", "| set | face-api crop | n | no face | model | accuracy % | balanced acc. % |",
                "|---|---|---|---|---|---|---|"]
        for r in rows:
            c = r[scope]
            models = ("mien", "face-api") if r["scale"] == "1.0" else ("face-api",)
            for m in models:
                rep = c["reports"][m]
                first = m == "mien"  # set, n and no-face once per set, on mien's row
                out.append(f"| {r['title'] if first else ''} | {r['scale'] if m == 'face-api' else '—'} | "
                           f"{(r['n7'] if scope == 'seven' else r['n']) if first else ''} | "
                           f"{(r['n_no_face7'] if scope == 'seven' else r['n_no_face']) if first else ''} | {m} | "
                           f"{_ci(rep['accuracy'])} | {_ci(rep['balanced_accuracy'])} |")
            pa = c["paired"]
            out.append(f"| | | | | *face-api − mien* | *{_signed(pa['accuracy'])}* | *{_signed(pa['balanced_accuracy'])}* |")
        out.append("")
    out += ["## Per-class recall (7-class scope; face-api at crop scale 1.0)", ""]
    for r in rows:
        if r["scale"] != "1.0":
            continue
        c = r["seven"]
        labels = [EXPRESSIONS[i] for i in sorted(set(int(v) for v in _support(c)))]
        out += [f"**{r['title']}**", "", "| model | " + " | ".join(labels) + " |",
                "|---|" + "---|" * len(labels)]
        for m in ("mien", "face-api"):
            pc = c["reports"][m]["per_class"]
            out.append(f"| {m} | " + " | ".join(_ci(pc[label]["recall"], pct=False) for label in labels) + " |")
        sup = c["reports"]["mien"]["per_class"]
        out.append("| support | " + " | ".join(str(sup[label]["support"]) for label in labels) + " |")
        out.append("")
    return "\n".join(out)


def _sets(rows: list[dict[str, Any]], with_subjects: bool) -> list[str]:
    return list(dict.fromkeys(r["set"] for r in rows if r["subjects"] == with_subjects))


def _support(c: dict[str, Any]) -> list[int]:
    pc = c["reports"]["mien"]["per_class"]
    return [i for i, label in enumerate(EXPRESSIONS) if pc[label]["support"] > 0]


# --------------------------------------------------------------------------------- teacher
def write_teacher(path: Path, preds: dict[str, dict[str, np.ndarray]], provenance: dict[str, Any]) -> None:
    out: dict[str, Any] = {"labels": np.asarray(EXPRESSIONS), "faceapi_labels": np.asarray(fa.FACEAPI_LABELS),
                           "crop": np.asarray(CROP_NOTE), "onnx_sha256": np.asarray(provenance["onnx_sha256"]),
                           "tarball_sha256": np.asarray(fa.TARBALL_SHA256)}
    if "ferplus" in preds:
        p = preds["ferplus"]
        idx = np.flatnonzero(np.isin(p["usage"], ["Training", "PublicTest"]))
        out.update(ferplus_index=idx.astype(np.int64), ferplus_usage=p["usage"][idx],
                   ferplus_probs=faceapi_probs8(p["faceapi_logits7"][idx]).astype(np.float32),
                   ferplus_logits7=p["faceapi_logits7"][idx].astype(np.float32))
    for name, p in preds.items():
        if name == "ferplus":
            continue
        lo = p["teacher_logits7"]
        if not np.isfinite(lo).all():
            raise RuntimeError(f"{name}: a teacher row has no face-api output")
        out.update({f"{name}__path": p["path"], f"{name}__probs": faceapi_probs8(lo).astype(np.float32),
                    f"{name}__logits7": lo.astype(np.float32), f"{name}__face_found": p["face_found"],
                    f"{name}__box": p["box"].astype(np.float32)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="faceapi_eval", description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=["ferplus", *EXPRESSION_SETS],
                   choices=["ferplus", *EXPRESSION_SETS], help="which sets (default: all five)")
    p.add_argument("--port-dir", type=Path, default=REPO / "runs" / "faceapi", help="where the port put the ONNX")
    p.add_argument("--table", default=str(REPO / "docs" / "peers_faceapi.md"), help="markdown out ('-': stdout)")
    p.add_argument("--teacher", type=Path, default=REPO / "runs" / "faceapi" / "teacher_probs.npz")
    p.add_argument("--no-teacher", action="store_true", help="skip the teacher file")
    p.add_argument("--recompute", action="store_true", help="ignore cached predictions")
    args = p.parse_args(argv)
    with cli_errors("faceapi_eval"):
        if not SHARED.is_dir():
            raise FileNotFoundError(f"{SHARED} is missing: this script measures on ../shared/data")
        net = fa.FaceApiExpressionNet(args.port_dir, threads=1)  # first: a missing port fails fast
        from mien.pipeline import Analyzer

        analyzer = Analyzer()  # mien's defaults: the shipped model and detector, one thread
        cache = args.port_dir / "predictions"
        models = {"onnx_sha256": net.sha256, "mien_sha256": analyzer.model.sha256}
        preds: dict[str, dict[str, np.ndarray]] = {}
        for name in args.sets:
            if name == "ferplus":
                preds[name] = cached(cache / "ferplus.npz", lambda: predict_ferplus(net, analyzer.model), args.recompute, models)
            else:
                preds[name] = cached(cache / f"{name}.npz", lambda n=name: predict_set(n, net, analyzer), args.recompute, models)
        provenance = {"onnx_sha256": net.sha256, "mien_model": analyzer.model.name,
                      "mien_sha256": analyzer.model.sha256,
                      "mien_trained_on_sets": "../shared/data/expressions" in str(
                          analyzer.model.card.get("training", {}).get("data", ""))}
        if not args.no_teacher:
            write_teacher(args.teacher, preds, provenance)
            print(f"wrote {args.teacher}", file=sys.stderr)
        command = "python scripts/faceapi_eval.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
        text = render(evaluations(preds), provenance, command)
        if args.table == "-":
            print(text)
        else:
            Path(args.table).write_text(text + "\n")
            print(f"wrote {args.table}", file=sys.stderr)


if __name__ == "__main__":
    main()
