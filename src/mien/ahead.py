"""Run an iterator ahead of its consumer, in its own thread behind a bounded queue.

The engine runs the decoder ahead of the analysis (:mod:`mien.sources`) and, with geometry on,
detection + tracking and then the face mesh each ahead of the expression stage
(:meth:`mien.pipeline.Analyzer.process_frames`). Both sides spend most of their time in ONNX
Runtime, OpenCV or the video decoder, which release the GIL, so on two cores they overlap.

The items come out in order and unchanged; an exception raised in the thread is raised in the
consumer after the items produced before it; when the consumer stops early (a ``break``, an error,
Ctrl-C) the thread stops within 0.1 s and the source iterator is closed.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1


def run_ahead(it: Iterator[T], maxsize: int, name: str = "mien-ahead") -> Iterator[T]:
    """Yield ``it``'s items, produced in a thread up to ``maxsize`` items ahead."""
    q: queue.Queue[object] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    sentinel = object()
    error: list[BaseException] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in it:
                if not put(item):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            error.append(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # a generator left early runs its own clean-up here, now
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - re-raised in the consumer
                    error.append(exc)
            put(sentinel)

    th = threading.Thread(target=work, name=name, daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is sentinel:
                break
            yield item  # type: ignore[misc]
        if error:
            raise error[0]
    finally:
        stop.set()
        th.join(timeout=5.0)
