"""The ``mien report`` and ``mien episodes`` subcommands (registered into mien's main parser).

Kept apart from ``mien.cli`` so the engine's CLI only needs ``register(subparsers)``; each
subcommand sets ``func(args) -> int`` and raises :class:`mien.errors.InputError` for bad input,
which the main CLI prints as one line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mien.argtypes import any_int, non_negative_float, non_negative_int, positive_int, probability
from mien.errors import InputError
from mien.reporting.params import DEFAULT_WINDOW, EpisodeParams, ReportOptions, parse_window

if TYPE_CHECKING:  # pragma: no cover - imported where a command runs (``mien --help`` stays light)
    from mien.outputs import Output


def _episode_args(parser: argparse.ArgumentParser) -> None:
    d = EpisodeParams()
    group = parser.add_argument_group("episodes")
    group.add_argument("--min-prob", type=probability, default=d.threshold, metavar="P",
                       help=f"smoothed probability the top expression must reach (default {d.threshold})")
    group.add_argument("--min-duration", type=non_negative_float, default=d.min_duration_s, metavar="S",
                       help=f"shortest episode in seconds (default {d.min_duration_s})")
    group.add_argument("--max-gap", type=non_negative_float, default=d.max_gap_s, metavar="S",
                       help=f"longest gap bridged inside an episode, in seconds (default {d.max_gap_s})")


def _episode_params(args: argparse.Namespace) -> EpisodeParams:
    try:
        return EpisodeParams(args.min_prob, args.min_duration, args.max_gap)
    except ValueError as exc:
        raise InputError(f"{exc}; see `mien episodes --help`.") from exc


def run_report(args: argparse.Namespace) -> int:
    """``mien report``: write the HTML report and print its path."""
    from mien.outputs import REPORT_SUFFIXES, Output, sidecar_path
    from mien.reporting.html import write_report
    from mien.reporting.load import load_many

    window = parse_window(args.window) if isinstance(args.window, str) else args.window
    out = Path(args.output) if args.output else sidecar_path(args.results[0], "report")
    _refuse_overwriting(args, Output(out, "-o", REPORT_SUFFIXES))
    results = load_many(args.results)
    for res in results:
        for w in res.warnings:
            if "describes another table" in w:  # a manifest that does not match its table: say so now
                print(f"mien: warning: {w}", file=sys.stderr)
    path = write_report(results, out, events=args.events, show_faces=args.show_faces, window=window,
                        episodes=_episode_params(args), n_boot=args.bootstrap, seed=args.seed,
                        max_tracks=args.max_tracks, min_track_s=args.min_track, title=args.title)
    print(path)
    return 0


def _refuse_overwriting(args: argparse.Namespace, output: Output) -> None:
    """No output may be one of the results files, their sidecars, or the events file."""
    from mien.outputs import check_outputs, sidecar_path

    inputs = [Path(r) for r in args.results]
    inputs += [sidecar_path(r, k) for r in args.results for k in ("manifest", "tracks")]
    if getattr(args, "events", None):
        inputs.append(Path(args.events))
    check_outputs(inputs, [output])


def run_episodes(args: argparse.Namespace) -> int:
    """``mien episodes``: print the episodes table as CSV, or write it with ``-o``."""
    from mien.outputs import CSV_SUFFIXES, Output
    from mien.reporting.episodes import find_episodes
    from mien.reporting.load import load_many, pooled_frame
    from mien.results import atomic_write

    if args.output:
        _refuse_overwriting(args, Output(Path(args.output), "-o", CSV_SUFFIXES))
    frame = pooled_frame(load_many(args.results))
    table = find_episodes(frame, _episode_params(args))
    if args.output:
        try:
            atomic_write(Path(args.output), lambda p: table.to_csv(p, index=False, float_format="%.3f"))
        except OSError as exc:
            raise InputError(f"cannot write episodes to {args.output} ({exc}); choose a writable -o path.") from exc
        print(f"{len(table)} episode(s) written to {args.output}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.3f")
    return 0


def register(subparsers: Any) -> None:
    """Add ``report`` and ``episodes`` to mien's subcommands."""
    rep = subparsers.add_parser(
        "report", help="write a self-contained HTML report from results files",
        description="Write one self-contained HTML report (works offline) from one or several results "
                    "files written by `mien analyze`: run manifest, per-track expression timelines, "
                    "episodes, quality, blurred face thumbnails, and expressions after events.")
    rep.add_argument("results", nargs="+", help="results files (.parquet, .csv or .jsonl)")
    rep.add_argument("-o", "--output", help="report path, .html (default: <first results file name>.report.html)")
    rep.add_argument("--events", help="CSV with columns time_s[,end_s],label[,source]")
    start, end = DEFAULT_WINDOW
    rep.add_argument("--window", default=f"{start:g},{end:g}",
                     help=f"seconds after each event onset to average, START,END (default {start:g},{end:g}), "
                          "or 'span' for each event's time_s..end_s")
    rep.add_argument("--show-faces", action="store_true",
                     help="show face thumbnails sharp (they are blurred by default)")
    o = ReportOptions()
    rep.add_argument("--bootstrap", type=non_negative_int, default=o.stats.n_boot, metavar="N",
                     help=f"bootstrap resamples for event CIs (default {o.stats.n_boot})")
    rep.add_argument("--seed", type=any_int, default=o.stats.seed, help=f"bootstrap seed (default {o.stats.seed})")
    rep.add_argument("--max-tracks", type=positive_int, default=o.max_tracks,
                     help=f"draw timelines for at most this many of the longest tracks per video (default {o.max_tracks})")
    rep.add_argument("--min-track", type=non_negative_float, default=o.min_track_s, metavar="S",
                     help=f"draw timelines only for tracks lasting at least S seconds (default {o.min_track_s:g})")
    rep.add_argument("--title", help="report title")
    _episode_args(rep)
    rep.set_defaults(func=run_report)

    eps = subparsers.add_parser(
        "episodes", help="list expression episodes as CSV",
        description="List expression episodes (spans where one expression dominates a track) as CSV: "
                    "source, track_id, label, onset_s, apex_s, apex_value, offset_s, duration_s, n_frames.")
    eps.add_argument("results", nargs="+", help="results files (.parquet, .csv or .jsonl)")
    eps.add_argument("-o", "--output", help="CSV to write (default: standard output)")
    _episode_args(eps)
    eps.set_defaults(func=run_episodes)
