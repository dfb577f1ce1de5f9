"""Training code for mien's own expression model (needs the ``mien[train]`` extra: torch, onnx).

``python -m mien.training.recipe --preset gpu`` (teachers distilled into the small net, on a GPU) or
``--preset cpu`` (the small net alone, on 2 CPU cores) reproduces the shipped model from FER+;
``mien.training.compare`` says whether a new run beats the shipped one (paired, on PublicTest);
``mien.training.export`` and ``mien.training.package`` turn a run into the shipped ONNX and card.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mien.errors import MienError


@contextmanager
def cli_errors(prog: str) -> Iterator[None]:
    """Turn the expected failures of a training command (missing or unreadable data or run folder,
    bad settings, a failed export check, a shipped model that fails its SHA-256 check) into one ``prog: error: ...`` line and exit status 1."""
    try:
        yield
    except (OSError, ValueError, RuntimeError, KeyError, MienError) as exc:
        sys.exit(f"{prog}: error: {exc}")
