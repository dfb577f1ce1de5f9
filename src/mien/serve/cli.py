"""``mien serve``: the subcommand. Imports nothing from the ``[serve]`` extra until it runs, so
``mien --help`` works without it and ``mien serve`` says in one line how to install it."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mien.argtypes import non_negative_float, number, positive_float, positive_int
from mien.errors import MienError

INSTALL_HINT = "mien serve needs the [serve] extra: pip install 'mien[serve]' (or pip install '.[serve]' in a checkout)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="run the web app and REST API (drop videos in a browser, get the report)",
        description="A local web app and REST API on mien's engine. Binds 127.0.0.1 by default; a "
        "non-loopback --host needs --token or --token-file, and every request must then carry it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=number(1, 65535, integer=True), default=8765, help="port (default 8765)")
    p.add_argument("--data", default="mien-serve-data",
                   help="folder for the job database, inputs and outputs (default ./mien-serve-data)")
    p.add_argument("--token", default=None, help="require this token on every request")
    p.add_argument("--token-file", default=None, help="read the token from this file (first line)")
    p.add_argument("--workers", type=number(1, 64, integer=True), default=2, help="jobs analysed at once; the rest queue (default 2)")
    p.add_argument("--max-queued", type=positive_int, default=100, help="jobs that may wait in the queue (default 100)")
    p.add_argument("--max-upload-mb", type=positive_float, default=2000.0, help="largest upload request, MB (default 2000)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="let jobs name files on the server under DIR instead of uploading them (repeatable)")
    p.add_argument("--show-faces", action="store_true",
                   help="sharp faces in thumbnails and reports (default: blurred)")
    p.add_argument("--checkpoint-s", type=non_negative_float, default=10.0, metavar="S",
                   help="running jobs save their rows every S seconds, so a job cut off by a crash resumes "
                   "from there at the next start (default 10; 0 = off)")
    p.add_argument("--live-max-seconds", type=positive_float, default=1800.0,
                   help="longest live analysis, seconds (default 1800)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        from mien.serve.app import ServeConfig, serve
    except ImportError as exc:
        raise MienError(f"{INSTALL_HINT} ({exc.name or exc} is missing)") from None
    token = args.token
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise MienError(f"--token-file {args.token_file}: cannot read a token from it ({exc})") from None
    for folder in args.allow_path:
        if not Path(folder).is_dir():
            raise MienError(f"--allow-path {folder}: no such folder")
    config = ServeConfig(data_dir=Path(args.data), host=args.host, port=args.port, token=token,
                         workers=args.workers, max_queued=args.max_queued,
                         max_upload_bytes=int(args.max_upload_mb * 1_000_000),
                         allow_paths=[Path(p) for p in args.allow_path], show_faces=args.show_faces,
                         checkpoint_s=args.checkpoint_s, live_max_seconds=args.live_max_seconds)
    serve(config.check())
    return 0
