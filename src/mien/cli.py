"""The ``mien`` command line.

Every failure caused by input prints one line (``mien: error: ...``) naming the input and what to
do, and exits non-zero; tracebacks are for bugs only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mien._version import __version__
from mien.errors import MienError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_analyze(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse video files, images, folders or live streams",
        description="Detect, track and classify facial expressions; write a per-face-per-frame table.",
    )
    p.add_argument("input", help="video/image file, folder, webcam index (0) or stream URL (rtsp://, udp://, tcp://, http://)")
    p.add_argument("-o", "--output", help="output .parquet/.csv/.jsonl (a folder when INPUT is a folder); "
                   "default: <input name>.parquet in the current folder")
    p.add_argument("--stride", type=int, default=1, help="analyse every N-th frame")
    p.add_argument("--fps", type=float, default=None, help="analyse at most X frames per second")
    p.add_argument("--detect-every", type=int, default=3,
                   help="full-frame face detection every K analysed frames; between them, tracked faces are "
                   "re-detected locally (default 3; 1 = full detection on every frame)")
    p.add_argument("--no-coarse-scan", action="store_true",
                   help="always run full-frame detection at full size (by default, when all faces are large, "
                   "it runs at half size, with a full-size scan at least once a second)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="face detector score threshold")
    p.add_argument("--min-face", type=float, default=20.0, help="faces smaller than this (px) abstain")
    p.add_argument("--min-score", type=float, default=0.6, help="faces with a lower detector score abstain")
    p.add_argument("--min-sharpness", type=float, default=0.08, help="blurrier faces abstain")
    p.add_argument("--max-yaw", type=float, default=70.0, help="faces turned further than this (deg) abstain")
    p.add_argument("--smoothing", type=float, default=0.3, help="temporal smoothing time constant, seconds (0 = off)")
    p.add_argument("--model-card", default=None, help="expression model card JSON (default: mien's own model)")
    p.add_argument("--prior-strength", type=float, default=None, metavar="S",
                   help="class-prior strength, 0 (expressions as frequent as in FER+: mostly neutral and "
                   "happy) to 1 (all 8 equally likely a priori, e.g. posed or balanced designs); "
                   "default: the model card's")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per model (default 1; for a folder: cores / workers)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="folder: analyse N inputs at once, one model copy each (default: as many as "
                   "the cores allow)")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="folder: run on a Ray cluster (auto: the one this machine is in, else a local "
                   "one); needs the [cluster] extra")
    p.add_argument("--force", action="store_true",
                   help="folder: redo inputs whose outputs are up to date (same file, same options)")
    p.add_argument("--annotate", default=None, help="write an annotated video (.mp4) here (single input only)")
    p.add_argument("--blur-faces", action="store_true", help="blur every face in the annotated video")
    p.add_argument("--report", default=None, help="also write a self-contained HTML report here")
    p.add_argument("--events", default=None, help="events CSV (time_s[,end_s],label) for the report")
    p.add_argument("--max-frames", type=int, default=None, help="live: stop after N analysed frames")
    p.add_argument("--max-seconds", type=float, default=None, help="live: stop after N seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_analyze)


def _default_output(spec: str) -> Path:
    name = Path(spec).stem if not spec.isdigit() and "://" not in spec else "stream"
    return Path(f"{name or 'mien'}.parquet")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from mien.pipeline import AnalysisOptions, Analyzer, analyze_each
    from mien.quality import QualityThresholds
    from mien.schema import check_table_suffix
    from mien.sources import expand_inputs

    if args.prior_strength is not None:
        from mien.expression import check_prior_strength

        check_prior_strength(args.prior_strength)
    options = AnalysisOptions(
        stride=args.stride, fps=args.fps, score_threshold=args.score_threshold,
        detect_every=max(1, args.detect_every), coarse_scan=not args.no_coarse_scan,
        smoothing_tau_s=args.smoothing,
        model_card=args.model_card, prior_strength=args.prior_strength, threads=args.threads or 1,
        max_frames=args.max_frames,
        max_seconds=args.max_seconds,
        quality=QualityThresholds(min_face_px=args.min_face, min_det_score=args.min_score,
                                  min_sharpness=args.min_sharpness, max_abs_yaw_deg=args.max_yaw),
    )
    if Path(str(args.input)).is_dir():
        return _analyze_folder(args, options)
    if args.workers is not None or args.ray or args.force:
        raise MienError("--workers, --ray and --force apply to a folder input; "
                        f"{args.input} is a single input")
    specs = expand_inputs(args.input)
    outputs = [check_table_suffix(args.output) if args.output else _default_output(str(specs[0]))]
    show = not args.quiet and sys.stderr.isatty()
    analyzer = Analyzer(options)
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    interrupted = False
    out_for = dict(zip(map(str, specs), outputs))
    for spec, outcome in analyze_each(analyzer, specs, progress=show, annotate=args.annotate,
                                      blur_faces=args.blur_faces):
        if isinstance(outcome, MienError):
            failures.append((str(spec), str(outcome)))
            print(f"mien: error: {outcome}", file=sys.stderr)
            continue
        out = out_for[str(spec)]
        outcome.save(out)
        written.append(out)
        for w in outcome.manifest.warnings:
            print(f"mien: warning: {w}", file=sys.stderr)
        if not args.quiet:
            f = outcome.manifest.frames
            n_tracks = outcome.table["track_id"].nunique() if len(outcome) else 0
            print(f"{spec}: {f['analysed']} frames analysed, {f['faces']} faces "
                  f"({f['abstained']} abstained), {n_tracks} tracks -> {out}")
        interrupted = interrupted or outcome.manifest.status == "interrupted"
    if args.report and written:
        from mien.reporting import write_report

        write_report(written, args.report, events=args.events)
        if not args.quiet:
            print(f"report -> {args.report}")
    if failures:
        print(f"mien: {len(failures)} of {len(specs)} inputs failed:", file=sys.stderr)
        for spec, err in failures:
            print(f"  {spec}: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if interrupted else EXIT_OK


def _analyze_folder(args: argparse.Namespace, options: Any) -> int:
    """A folder: the whole tree as one resumable batch (mien.batch)."""
    from mien.batch import BatchOptions, run_batch

    if args.annotate:
        raise MienError("--annotate takes one input; run it per video")
    out_dir = Path(args.output or "mien_results")
    summary = run_batch(args.input, out_dir, options, BatchOptions(
        workers=args.workers, threads=args.threads, force=args.force, ray=args.ray,
        progress=not args.quiet))
    for w in summary.warnings:
        print(f"mien: warning: {w}", file=sys.stderr)
    if args.report:
        from mien.reporting import write_report

        written = [out_dir / r.output for r in summary.rows if r.status in ("done", "skipped")]
        if written:
            write_report(written, args.report, events=args.events)
            if not args.quiet:
                print(f"report -> {args.report}")
    if not args.quiet:
        print(f"{summary.describe()} -> {out_dir / 'index.parquet'}, {out_dir / 'results'}/")
    if summary.failed:
        print(f"mien: {len(summary.failed)} of {len(summary.rows)} inputs failed:", file=sys.stderr)
        for row in summary.failed:
            print(f"  {row.path}: {row.error}", file=sys.stderr)
    if summary.interrupted:
        print(f"mien: interrupted; run the same command again to finish the "
              f"{summary.counts['pending'] + summary.counts['interrupted']} inputs left", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="show the models mien uses and their checks")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from mien.detection import DETECTOR_NAME, detector_weights
    from mien.expression import ExpressionModel

    detector_weights()
    model = ExpressionModel.load()
    print(json.dumps({
        "mien": __version__,
        "face_detector": DETECTOR_NAME + " (SHA-256 verified)",
        "expression_model": model.name + " (SHA-256 verified)",
        "labels": list(model.labels),
        "temperature": model.temperature,
        "prior_strength": model.prior_strength,
        "privatetest": {k: v.get("value") for k, v in (model.card.get("evaluation") or {}).get("metrics", {}).items()},
    }, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mien",
        description="Measure facial expressions in video, offline. mien identifies no one and infers "
        "no emotion, intent, deception, risk or demographic trait.",
    )
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_analyze(sub)
    _add_info(sub)
    for module in ("mien.audit.cli", "mien.reporting.cli", "mien.batch.cli"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except MienError as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mien: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
