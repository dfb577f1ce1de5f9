"""``mien export``: analysis-ready tables from a batch (or one results file)."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="event-locked or resampled tables from a batch's results, for R/Python",
        description="Export a batch's combined results (the -o folder of `mien analyze DIR`) or one "
        "results file as an analysis-ready table: --events gives the event-locked means with CIs "
        "(as the report shows them); --resample gives each track on a fixed time grid.")
    p.add_argument("results", help="batch output folder (with results/) or a results file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--events", metavar="CSV", help="events CSV (time_s[,end_s],label[,source])")
    what.add_argument("--resample", type=float, metavar="HZ", help="per-track results on a HZ time grid")
    p.add_argument("--window", default="0,2",
                   help="with --events: START,END seconds after each onset, or 'span' (default 0,2)")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from mien.batch.export import event_table, load_frame, resample_tracks, write_table
    from mien.reporting.params import parse_window

    window = parse_window(args.window)  # check it before reading anything
    frame = load_frame(args.results)
    if args.events:
        table = event_table(frame, args.events, window)
        what = f"{len(table)} event rows"
    else:
        table = resample_tracks(frame, args.resample)
        what = f"{len(table)} rows at {args.resample:g} Hz"
    out = write_table(table, args.output)
    if not args.quiet:
        print(f"{what} -> {out}", file=sys.stderr)
    return 0
