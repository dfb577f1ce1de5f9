"""The ``mien`` command line.

Every failure caused by input prints one line (``mien: error: ...``) naming the input and what to
do, and exits non-zero; tracebacks are for bugs only.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from mien._version import __version__
from mien.errors import MienError
from mien.options import AnalysisOptions, QualityThresholds

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _add_analyze(sub: Any) -> None:
    d, q = AnalysisOptions(), QualityThresholds()
    p = sub.add_parser(
        "analyze",
        help="analyse video files, images, folders or live streams",
        description="Detect, track and classify facial expressions; write a per-face-per-frame table.",
    )
    p.add_argument("input", help="video/image file, folder, webcam index (0) or stream URL (rtsp://, udp://, tcp://, http://)")
    p.add_argument("-o", "--output", help="output .parquet/.csv/.jsonl (a folder when INPUT is a folder); "
                   "default: <input name>.parquet in the current folder")
    p.add_argument("--stride", type=int, default=d.stride, help=f"analyse every N-th frame (default {d.stride})")
    p.add_argument("--fps", type=float, default=d.fps, help="analyse at most X frames per second")
    p.add_argument("--detect-every", type=int, default=d.detect_every,
                   help="full-frame face detection every K analysed frames; between them, tracked faces are "
                   f"re-detected locally (default {d.detect_every}; 1 = full detection on every frame)")
    p.add_argument("--no-coarse-scan", action="store_true",
                   help="always run full-frame detection at full size (by default, when all faces are large, "
                   "it runs at half size, with a full-size scan at least once a second)")
    p.add_argument("--detect-threshold", type=float, default=d.score_threshold, metavar="SCORE",
                   help=f"detector score a face needs to be found (default {d.score_threshold})")
    p.add_argument("--min-face", type=float, default=q.min_face_px,
                   help=f"faces smaller than this many pixels abstain (default {q.min_face_px:g})")
    p.add_argument("--min-det-score", type=float, default=q.min_det_score, metavar="SCORE",
                   help=f"found faces with a lower detector score abstain (default {q.min_det_score})")
    p.add_argument("--min-sharpness", type=float, default=q.min_sharpness,
                   help=f"blurrier faces abstain (default {q.min_sharpness})")
    p.add_argument("--max-yaw", type=float, default=q.max_abs_yaw_deg, metavar="DEG",
                   help=f"faces whose head yaw (the face mesh's 3-D pose; the 5-point proxy with --no-geometry) "
                   f"is further than this abstain (default {q.max_abs_yaw_deg:g} degrees)")
    p.add_argument("--no-geometry", action="store_true",
                   help="skip the face mesh, 3-D head pose and geo_* measures (faster)")
    p.add_argument("--landmarks", action="store_true",
                   help="also write X.landmarks.parquet beside the table: all 468 mesh points and the "
                   "68-point dlib/iBUG subset per face per frame")
    p.add_argument("--smoothing", type=float, default=d.smoothing_tau_s, metavar="S",
                   help=f"temporal smoothing time constant, seconds (default {d.smoothing_tau_s}; 0 = off)")
    p.add_argument("--model-card", default=d.model_card, help="expression model card JSON (default: mien's own model)")
    p.add_argument("--prior-strength", type=float, default=d.prior_strength, metavar="S",
                   help="class-prior strength, 0 (expressions as frequent as in FER+: mostly neutral and "
                   "happy) to 1 (all 8 equally likely a priori, e.g. posed or balanced designs); "
                   "default: the model card's")
    p.add_argument("--threads", type=int, default=d.threads, help=f"threads per model (default {d.threads})")
    p.add_argument("--annotate", default=None, help="write an annotated video (.mp4) here (single input only)")
    p.add_argument("--blur-faces", action="store_true", help="blur every face in the annotated video")
    p.add_argument("--annotate-mesh", action="store_true", help="draw each face's mesh in the annotated video")
    p.add_argument("--report", default=None, help="also write a self-contained HTML report here")
    p.add_argument("--events", default=None, help="events CSV (time_s[,end_s],label) for the report")
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="live: stop after N analysed frames")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help="live: stop after N seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_analyze)


def _default_output(spec: str) -> Path:
    name = Path(spec).stem if not spec.isdigit() and "://" not in spec else "stream"
    return Path(f"{name or 'mien'}.parquet")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from mien.pipeline import Analyzer, analyze_each
    from mien.schema import TABLE_SUFFIXES, check_table_suffix
    from mien.sources import expand_inputs

    if args.prior_strength is not None:
        from mien.expression import check_prior_strength

        check_prior_strength(args.prior_strength)
    options = AnalysisOptions(
        stride=args.stride, fps=args.fps, score_threshold=args.detect_threshold,
        detect_every=max(1, args.detect_every), coarse_scan=not args.no_coarse_scan,
        smoothing_tau_s=args.smoothing,
        model_card=args.model_card, prior_strength=args.prior_strength, threads=args.threads,
        geometry=not args.no_geometry, landmarks=args.landmarks, annotate_mesh=args.annotate_mesh, max_frames=args.max_frames,
        max_seconds=args.max_seconds,
        quality=QualityThresholds(min_face_px=args.min_face, min_det_score=args.min_det_score,
                                  min_sharpness=args.min_sharpness, max_abs_yaw_deg=args.max_yaw),
    )
    if (args.landmarks or args.annotate_mesh) and args.no_geometry:
        raise MienError("--landmarks and --annotate-mesh need the face mesh: drop --no-geometry")
    specs = expand_inputs(args.input)
    folder = len(specs) > 1 or Path(str(args.input)).is_dir()
    if folder:
        out_dir = Path(args.output or "mien_results")
        if out_dir.suffix.lower() in TABLE_SUFFIXES:
            raise MienError(f"{args.input} is a folder: -o must name an output folder, not {out_dir}")
        outputs = [out_dir / f"{Path(str(s)).stem}.parquet" for s in specs]
        if args.annotate:
            raise MienError("--annotate takes one input; run it per video")
    else:
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
    for module, commands in SUBCOMMANDS.items():
        try:
            register = importlib.import_module(module).register
        except ImportError as exc:  # a broken install: say so when such a command is asked for
            _register_unavailable(sub, commands, module, exc)
            continue
        register(sub)
    return parser


#: The subcommands other packages of mien add, by the module that registers them.
SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "mien.audit.cli": ("evaluate", "calibrate", "evaluate-detector"),
    "mien.reporting.cli": ("report", "episodes"),
}


def _register_unavailable(sub: Any, commands: tuple[str, ...], module: str, exc: ImportError) -> None:
    message = (f"this command is unavailable: {module} cannot be imported ({exc}); "
               "reinstall mien (pip install .) and check its dependencies")

    def fail(args: argparse.Namespace) -> int:
        raise MienError(message)

    for name in commands:
        p = sub.add_parser(name, help=f"(unavailable: {module} cannot be imported)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=fail)


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
        return 130


if __name__ == "__main__":
    sys.exit(main())
