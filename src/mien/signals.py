"""Stopping a run without losing it: SIGTERM behaves like Ctrl-C, and a second signal never
interrupts the save.

``timeout``, docker and systemd stop a process with SIGTERM, whose default action kills Python at
once; people press Ctrl-C twice. :func:`graceful_stop` makes both signals raise
:class:`KeyboardInterrupt` in the main thread the *first* time (the analysis loop catches it and
keeps the frames it finished); every later signal only prints that the save is under way, so the
table, its sidecars and the annotated video are finalised. The CLI exits 130 afterwards
(SIGTERM too: one code for "interrupted", see README "Exit codes"). SIGKILL cannot be caught; the
checkpoint (:mod:`mien.checkpoint`) bounds what it loses.
"""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_STOPPING = threading.Event()
_SAVING = threading.Event()
_HOLDING = threading.Event()  # inside uninterrupted(): the first signal waits for the block's end
_HELD = threading.Event()  # a signal arrived inside uninterrupted()


def stop_requested() -> bool:
    """True once SIGINT or SIGTERM arrived during :func:`graceful_stop`."""
    return _STOPPING.is_set()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _STOPPING.is_set() or _SAVING.is_set():
        _STOPPING.set()
        print("mien: stopping; saving the finished work first, please wait", file=sys.stderr, flush=True)
        return
    _STOPPING.set()
    if _HOLDING.is_set():
        _HELD.set()
        return
    raise KeyboardInterrupt


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Within the block the first SIGINT/SIGTERM (under :func:`graceful_stop`) is held back and
    raised as KeyboardInterrupt when the block ends, so a step that must not be cut in half (the
    annotated video's encode-and-mux of one frame: packets the encoder handed out and the stop
    dropped left a video with no keyframe) finishes first."""
    _HOLDING.set()
    try:
        yield
    finally:
        _HOLDING.clear()
    if _HELD.is_set():
        _HELD.clear()
        raise KeyboardInterrupt


@contextmanager
def protected_save() -> Iterator[None]:
    """Within the block a signal never interrupts: it is only recorded (see :func:`stop_requested`)."""
    _SAVING.set()
    try:
        yield
    finally:
        _SAVING.clear()


@contextmanager
def graceful_stop() -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM raises KeyboardInterrupt, later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STOPPING.clear()
    _HELD.clear()
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
