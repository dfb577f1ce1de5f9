"""mien: measure facial expressions in video, offline, on a CPU.

mien detects faces, follows each as an anonymous track, and classifies its facial *expression*
frame by frame. It identifies no one and infers no emotion, intent, deception, risk or
demographic trait: facial configurations do not reliably reveal what someone feels.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from mien.results import AnalysisResult


def analyze(source: Any, **options: Any) -> AnalysisResult:
    """Analyse a video file, image, folder or stream; see :func:`mien.pipeline.analyze`."""
    from mien.pipeline import analyze as _analyze

    return _analyze(source, **options)


__all__ = ["__version__", "analyze"]
