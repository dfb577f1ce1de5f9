"""Overall progress of a batch on stderr: files i/N, frames/s, ETA.

On a terminal one line is rewritten in place; in a log (a cluster job's output) each finished
input adds a line, so the log tells what happened when. The ETA scales the time spent so far by
the bytes still to do over the bytes analysed (a proxy for frames that costs nothing to know in
advance); inputs that failed count as done but not as analysed, since a broken file fails in
moments whatever its size.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class BatchProgress:
    def __init__(self, total_files: int, total_bytes: int, *, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total_files, self.total_bytes = total_files, max(total_bytes, 1)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.files = self.failed = self.frames = self.bytes = self.analysed_bytes = 0
        self.started = time.monotonic()

    def update(self, name: str, status: str, frames: int | None, size_bytes: int) -> None:
        self.files += 1
        self.failed += status == "failed"
        self.frames += frames or 0
        self.bytes += size_bytes
        if status != "failed":
            self.analysed_bytes += size_bytes
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        rate = self.frames / elapsed if elapsed > 0 else 0.0
        left = self.total_bytes - self.bytes
        eta = _clock(elapsed * left / self.analysed_bytes) if self.analysed_bytes and left > 0 else "-"
        line = (f"files {self.files}/{self.total_files}"
                + (f" ({self.failed} failed)" if self.failed else "")
                + f" · {rate:.1f} frames/s · elapsed {_clock(elapsed)} · ETA {eta}")
        if self.tty:
            print(f"\r{line[:160]:<160}", end="", file=self.stream, flush=True)
        else:
            print(f"{line} · {status}: {name}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.files:
            print(file=self.stream, flush=True)
