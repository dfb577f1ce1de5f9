"""The ``mien`` command line.

Every failure caused by input prints one line (``mien: error: ...``) naming the input and what to
do, and exits non-zero; tracebacks are for bugs only.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from mien._version import __version__
from mien.argtypes import (
    non_negative_float,
    number,
    positive_float,
    positive_int,
    probability,
)
from mien.errors import MienError
from mien.options import INPUT_KINDS, AnalysisOptions, QualityThresholds

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

EXIT_CODES = """exit codes:
  0    success
  1    some inputs of a folder failed (the others were written)
  2    usage error, or the input cannot be read (missing, empty, damaged beyond use, too large)
  130  interrupted by Ctrl-C or SIGTERM; finished work was saved (status "interrupted")
  141  standard output was closed early (e.g. `mien info | head`)"""


def _add_analyze(sub: Any) -> None:
    d, q = AnalysisOptions(), QualityThresholds()
    p = sub.add_parser(
        "analyze",
        help="analyse video files, images, folders or live streams",
        description="Detect, track and classify facial expressions; write a per-face-per-frame table.",
    )
    p.add_argument("input", nargs="+", metavar="INPUT",
                   help="video/image file, folder, webcam index (0) or stream URL (rtsp://, udp://, tcp://, "
                   "http://); or several files (e.g. clips/*.mp4), analysed as a folder run is")
    p.add_argument("-o", "--output", help="output .parquet/.csv/.jsonl (a folder when INPUT is a folder or "
                   "several files: ROOT/clip.mp4 -> OUTPUT/clip.mp4.parquet, ROOT their common folder); "
                   "default: <input file name>.parquet in the current folder (clip.mp4 -> clip.mp4.parquet), "
                   "mien_results/ for a folder or several files")
    p.add_argument("--stride", type=positive_int, default=d.stride, help=f"analyse every N-th frame (default {d.stride})")
    p.add_argument("--fps", type=positive_float, default=d.fps, help="analyse at most X frames per second")
    p.add_argument("--detect-every", type=positive_int, default=d.detect_every,
                   help="full-frame face detection every K analysed frames; between them, tracked faces are "
                   f"re-detected locally (default {d.detect_every}; 1 = full detection on every frame)")
    p.add_argument("--no-coarse-scan", action="store_true",
                   help="always run full-frame detection at full size (by default, when all faces are large, "
                   "it runs at half size, with a full-size scan at least once a second)")
    p.add_argument("--no-mesh-tracking", action="store_true",
                   help="re-detect every tracked face in its window between full detections (by default, with "
                   "geometry on, the face mesh follows large faces there, framed as their last full detection, "
                   "and full detections run half as often while every face is large)")
    p.add_argument("--detect-threshold", type=probability, default=d.score_threshold, metavar="SCORE",
                   help=f"detector score a face needs to be found (default {d.score_threshold})")
    p.add_argument("--min-face", type=non_negative_float, default=q.min_face_px,
                   help=f"faces smaller than this many pixels abstain (default {q.min_face_px:g})")
    p.add_argument("--min-det-score", type=probability, default=q.min_det_score, metavar="SCORE",
                   help=f"found faces with a lower detector score abstain (default {q.min_det_score})")
    p.add_argument("--min-sharpness", type=non_negative_float, default=q.min_sharpness,
                   help=f"blurrier faces abstain (default {q.min_sharpness})")
    p.add_argument("--max-yaw", type=number(0, 180), default=q.max_abs_yaw_deg, metavar="DEG",
                   help=f"faces whose head yaw (the face mesh's 3-D pose; the 5-point proxy with --no-geometry) "
                   f"is further than this abstain (default {q.max_abs_yaw_deg:g} degrees)")
    p.add_argument("--no-geometry", action="store_true",
                   help="skip the face mesh, 3-D head pose and geo_* measures (faster)")
    p.add_argument("--landmarks", action="store_true",
                   help="also write X.landmarks.parquet beside the table: all 468 mesh points and the "
                   "68-point dlib/iBUG subset per face per frame")
    p.add_argument("--smoothing", type=non_negative_float, default=d.smoothing_tau_s, metavar="S",
                   help=f"temporal smoothing time constant, seconds (default {d.smoothing_tau_s}; 0 = off)")
    p.add_argument("--model-card", default=d.model_card, help="expression model card JSON (default: mien's own model)")
    p.add_argument("--prior-strength", type=probability, default=d.prior_strength, metavar="S",
                   help="class-prior strength, 0 (expressions as frequent as in FER+: mostly neutral and "
                   "happy) to 1 (all 8 equally likely a priori, e.g. posed or balanced designs); "
                   "default: the model card's")
    p.add_argument("--threads", type=number(1, 256, integer=True), default=None,
                   help=f"threads per model (default {d.threads}; for a folder: cores / workers)")
    p.add_argument("--workers", type=number(1, 4096, integer=True), default=None, metavar="N",
                   help="folder: analyse N inputs at once, one model copy each (default: as many as "
                   "the cores allow)")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="folder: run on a Ray cluster (auto: the one this machine is in, else a local "
                   "one); needs the [cluster] extra")
    p.add_argument("--force", action="store_true",
                   help="folder: redo inputs whose outputs are up to date (same file, same options)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=d.device,
                   help="run the networks on the CPU (default) or an NVIDIA GPU (needs mien[gpu])")
    p.add_argument("--precision", choices=("auto", "int8", "float"), default=d.precision,
                   help="expression network: its int8 quantisation (faster on a CPU; audited on its own "
                   "card) or the float model; auto (default): int8 on the CPU where it ships, float on a GPU")
    p.add_argument("--annotate", default=None, help="write an annotated video (.mp4, .mkv or .mov) here, or, for a still-image input, an annotated still (.jpg or .png); single input only")
    p.add_argument("--blur-faces", action="store_true", help="blur every face in the annotated video")
    p.add_argument("--annotate-mesh", action="store_true", help="draw each face's mesh in the annotated video")
    p.add_argument("--report", default=None, help="also write a self-contained HTML report (.html) here")
    p.add_argument("--events", default=None, help="events CSV (time_s[,end_s],label) for the report")
    p.add_argument("--max-frames", type=positive_int, default=d.max_frames, help="live: stop after N analysed frames")
    p.add_argument("--max-seconds", type=positive_float, default=d.max_seconds,
                   help="live: stop after N seconds of reading, frames or not (opening the "
                   "stream waits at most N s or 10 s, whichever is shorter)")
    p.add_argument("--input-kind", choices=INPUT_KINDS, default=d.input_kind,
                   help="http(s) URLs: auto tells a file served over HTTP (finite duration: every frame read) "
                   "from a live stream (frames dropped to keep up); file / live force it (default auto)")
    p.add_argument("--checkpoint-s", type=non_negative_float, default=d.checkpoint_s, metavar="S",
                   help="flush finished rows to OUTPUT.checkpoint/ at most every S seconds, so a killed run "
                   f"keeps all but the last S seconds (default {d.checkpoint_s:g}; 0 = off)")
    p.add_argument("--max-pixels", type=positive_int, default=d.max_pixels, metavar="N",
                   help=f"refuse images and video frames above N pixels before decoding (default {d.max_pixels})")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_analyze)


def _analysis_options(args: argparse.Namespace) -> Any:
    return AnalysisOptions(
        stride=args.stride, fps=args.fps, score_threshold=args.detect_threshold,
        detect_every=args.detect_every, coarse_scan=not args.no_coarse_scan, mesh_tracking=not args.no_mesh_tracking,
        smoothing_tau_s=args.smoothing,
        model_card=args.model_card, prior_strength=args.prior_strength,
        threads=args.threads or AnalysisOptions().threads,
        geometry=not args.no_geometry, landmarks=args.landmarks, annotate_mesh=args.annotate_mesh,
        max_frames=args.max_frames, max_seconds=args.max_seconds, input_kind=args.input_kind,
        max_pixels=args.max_pixels, checkpoint_s=args.checkpoint_s,
        device=args.device, precision=args.precision,
        quality=QualityThresholds(min_face_px=args.min_face, min_det_score=args.min_det_score,
                                  min_sharpness=args.min_sharpness, max_abs_yaw_deg=args.max_yaw),
    )


def _plan_outputs(args: argparse.Namespace, specs: list[str | int]) -> tuple[bool, list[Path]]:
    """(folder run?, one table path per input), checked before any work (see :mod:`mien.outputs`)."""
    from mien.checkpoint import checkpoint_dir
    from mien.outputs import ANNOTATE_SUFFIXES, REPORT_SUFFIXES, Output, check_outputs, display
    from mien.schema import TABLE_SUFFIXES, default_output, mirrored_output

    folder = len(specs) > 1 or Path(str(args.input)).is_dir()
    if folder:
        out_dir = Path(args.output or "mien_results")
        if out_dir.suffix.lower() in TABLE_SUFFIXES:
            raise MienError(f"{display(args.input)} is a folder: -o must name an output folder, not {display(out_dir)}")
        if args.annotate:
            raise MienError("--annotate takes one input; run it per video")
        if out_dir.exists() and not out_dir.is_dir():
            raise MienError(f"-o {display(out_dir)}: is a file; a folder input needs an output folder")
        root = Path(str(args.input))
        outputs = [mirrored_output(root, str(s), out_dir, ".parquet") for s in specs]
    else:
        outputs = [Path(args.output) if args.output else default_output(str(specs[0]))]
    planned = [Output(o, "-o", TABLE_SUFFIXES, sidecars=True) for o in outputs]
    if args.annotate:
        from mien.annotate import check_annotation

        planned.append(Output(Path(args.annotate), "--annotate", ANNOTATE_SUFFIXES))
        check_annotation(args.annotate, specs[0])
    if args.report:
        planned.append(Output(Path(args.report), "--report", REPORT_SUFFIXES))
    inputs: list[str] = [str(s) for s in specs]
    if args.events:
        inputs.append(str(args.events))
    check_outputs(inputs, planned)
    for out in outputs:
        ckpt = checkpoint_dir(out)
        if ckpt.exists():
            raise MienError(
                f"{display(ckpt)} holds the checkpoint of an earlier run that was killed; read it with "
                "mien.checkpoint.read_partial(), then move or delete it, before writing this output again"
            )
    return folder, outputs


def _summary(spec: str, manifest: Any, n_tracks: int, out: Path) -> str:
    from mien.outputs import display

    f = manifest.frames
    lost = []
    if f.get("dropped"):
        lost.append(f"{f['dropped']} dropped")
    if f.get("lost"):
        lost.append(f"{f['lost']} lost")
    missing = f" ({', '.join(lost)})" if lost else ""
    return (f"{display(spec)}: {f['analysed']} frames analysed{missing}, {f['faces']} faces "
            f"({f['abstained']} abstained), {n_tracks} tracks, {manifest.status} -> {display(out)}")


def _error_line(spec: str, err: str) -> str:
    """The message already names its input ("x.mp4: ..."): don't name it twice."""
    from mien.outputs import display

    shown = display(spec)
    return err if err.startswith(shown) or shown in err.split(":", 1)[0] else f"{shown}: {err}"


def _cmd_analyze(args: argparse.Namespace) -> int:
    from mien.outputs import display
    from mien.pipeline import Analyzer, analyze_each
    from mien.results import preload_table_writers
    from mien.signals import protected_save, stop_requested
    from mien.sources import expand_inputs, is_stream

    options = _analysis_options(args)
    if (args.landmarks or args.annotate_mesh) and args.no_geometry:
        raise MienError("--landmarks and --annotate-mesh need the face mesh: drop --no-geometry")
    named = [str(i) for i in args.input] if isinstance(args.input, list) else [str(args.input)]
    if len(named) > 1:
        live = [i for i in named if is_stream(i) or i.isdigit()]
        if live:
            raise MienError(f"{display(live[0])}: a stream or webcam is analysed on its own; "
                            "several inputs must be files")
        return _analyze_folder(args, options, files=named)
    args.input = named[0]
    if Path(args.input).is_dir():
        return _analyze_folder(args, options)
    if args.workers is not None or args.ray or args.force:
        raise MienError("--workers, --ray and --force apply to a folder input; "
                        f"{display(args.input)} is a single input")
    specs = expand_inputs(args.input)
    folder, outputs = _plan_outputs(args, specs)
    show = not args.quiet and sys.stderr.isatty()
    analyzer = Analyzer(options)  # builds the ONNX sessions in the background
    # pyarrow (for Parquet) is needed only to write the table: import it in the background too,
    # while the video is opened and analysed (the table is written without pandas)
    # (not a daemon, as the session builder: a C++ library torn down mid-import can abort the process)
    threading.Thread(target=preload_table_writers, args=(outputs,), name="mien-import").start()
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    interrupted = False
    out_for = dict(zip(map(str, specs), outputs))
    try:
        for spec, outcome in analyze_each(analyzer, specs, progress=show, annotate=args.annotate,
                                          blur_faces=args.blur_faces, checkpoints=outputs):
            if isinstance(outcome, MienError):
                if not folder:
                    raise outcome
                failures.append((str(spec), str(outcome)))
                print(f"mien: error: {_error_line(str(spec), str(outcome))}", file=sys.stderr)
                continue
            out = out_for[str(spec)]
            with protected_save():
                outcome.save(out)
                if outcome.checkpoint is not None:
                    outcome.checkpoint.finish()
            written.append(out)
            for w in outcome.manifest.warnings:
                print(f"mien: warning: {w}", file=sys.stderr)
            if not args.quiet:
                print(_summary(str(spec), outcome.manifest, outcome.n_tracks, out))
            if outcome.manifest.status == "interrupted" or stop_requested():
                interrupted = True
                break
    except KeyboardInterrupt:  # stopped before a source's first frame: nothing of it to keep
        interrupted = True
    if args.report and written:
        from mien.reporting import write_report

        with protected_save():
            write_report(written, args.report, events=args.events)
        if not args.quiet:
            print(f"report -> {display(args.report)}")
    if interrupted:
        print(f"mien: interrupted; kept {len(written)} finished output(s)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failures:
        print(f"mien: {len(failures)} of {len(specs)} inputs failed:", file=sys.stderr)
        for spec, err in failures:
            print(f"  {_error_line(spec, err)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _analyze_folder(args: argparse.Namespace, options: Any, files: list[str] | None = None) -> int:
    """A folder, or several files: the whole tree, or those files, as one resumable batch (mien.batch)."""
    from mien.batch import BatchOptions, run_batch
    from mien.outputs import display

    if args.annotate:
        raise MienError("--annotate takes one input; run it per video")
    out_dir = Path(args.output or "mien_results")
    summary = run_batch(None if files else args.input, out_dir, options, BatchOptions(
        workers=args.workers, threads=args.threads, force=args.force, ray=args.ray,
        progress=not args.quiet), files=files)
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
        for row in summary.rows:
            if row.status == "done":
                print(f"{row.path}: {row.frames} frames analysed, {row.faces} faces, {row.tracks} tracks "
                      f"-> {display(out_dir / row.output)}")
        print(f"{summary.describe()} -> {display(out_dir / 'index.parquet')}, {display(out_dir / 'results')}/")
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
    import onnxruntime  # noqa: F401 - loaded, so the environment below names its version

    from mien.detector_weights import DETECTOR_NAME, detector_weights
    from mien.expression import ExpressionModel, int8_card_path
    from mien.geometry.mesh import FaceMesh
    from mien.schema import run_environment

    detector_weights()
    model = ExpressionModel.load()
    # what `mien analyze` runs on a CPU by default (--precision auto): the int8 twin where one ships
    cpu_model = ExpressionModel.load(precision="int8") if int8_card_path() is not None else model
    mesh = FaceMesh.load()
    print(json.dumps({
        "mien": __version__,
        "face_detector": DETECTOR_NAME + " (SHA-256 verified)",
        "expression_model": model.name + " (SHA-256 verified)",
        "expression_model_on_cpu": cpu_model.name + " (SHA-256 verified; --precision float for the float one)",
        "face_mesh": f"{mesh.card['name']} (SHA-256 verified, canonical face too)",
        "labels": list(model.labels),
        "temperature": model.temperature,
        "prior_strength": model.prior_strength,
        "privatetest": {k: v.get("value") for k, v in (model.card.get("evaluation") or {}).get("metrics", {}).items()},
        "environment": run_environment(),
    }, indent=2))
    return EXIT_OK


#: commands of this module; the audit, report and serve commands live in their own packages, which
#: import pandas and more at load: they are registered only when a command other than these runs
_ENGINE_COMMANDS = ("analyze", "info")


def _command_of(argv: list[str] | None) -> str | None:
    """The command word of ``argv`` (None for a bare ``mien``, ``--help`` or ``--version``)."""
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mien`` parser. Given the ``argv`` about to be parsed, an engine command (analyze,
    info) gets a parser without the audit, report and serve commands, so that start-up does not
    import them (pandas and more); otherwise every command is registered."""
    parser = argparse.ArgumentParser(
        prog="mien", epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure facial expressions in video, offline. mien identifies no one and infers "
        "no emotion, intent, deception, risk or demographic trait.",
    )
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_analyze(sub)
    _add_info(sub)
    if _command_of(argv) in _ENGINE_COMMANDS:
        return parser
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
    "mien.batch.cli": ("export",),
    "mien.serve.cli": ("serve",),
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


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; an unknown flag is reported with the *subcommand's* usage, not the top level's."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        command = getattr(args, "command", None)
        target = subparsers.choices.get(command) if subparsers is not None and command else None
        (target or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        try:  # non-UTF-8 file names print as \xNN instead of crashing
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    from mien.signals import graceful_stop

    parser = build_parser(argv)
    args = _parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with graceful_stop():
            code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except MienError as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mien: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`mien info | head`): stop quietly; Python would otherwise complain
        # again when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
