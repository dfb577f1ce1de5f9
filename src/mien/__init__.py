"""mien: measure facial expressions in video, offline, on a CPU.

mien detects faces, follows each as an anonymous track, and classifies its facial *expression*
frame by frame. It identifies no one and infers no emotion, intent, deception, risk or
demographic trait: facial configurations do not reliably reveal what someone feels.

The public names below are imported on first use, so ``import mien`` stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mien._lazy import lazy_names
from mien._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from mien.errors import InputError, MienError, ModelError
    from mien.expression import ExpressionModel
    from mien.faces import Faces
    from mien.labels import EXPRESSIONS
    from mien.options import AnalysisOptions, QualityThresholds, TrackerConfig
    from mien.pipeline import Analyzer, FrameResult, analyze
    from mien.results import AnalysisResult
    from mien.schema import RunManifest, SourceRun, read_table

_LAZY = {
    "analyze": "mien.pipeline",
    "Analyzer": "mien.pipeline",
    "AnalysisOptions": "mien.options",
    "FrameResult": "mien.pipeline",
    "AnalysisResult": "mien.results",
    "Faces": "mien.faces",
    "ExpressionModel": "mien.expression",
    "QualityThresholds": "mien.options",
    "TrackerConfig": "mien.options",
    "RunManifest": "mien.schema",
    "SourceRun": "mien.schema",
    "read_table": "mien.schema",
    "EXPRESSIONS": "mien.labels",
    "MienError": "mien.errors",
    "InputError": "mien.errors",
    "ModelError": "mien.errors",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "EXPRESSIONS",
    "AnalysisOptions",
    "AnalysisResult",
    "Analyzer",
    "ExpressionModel",
    "Faces",
    "FrameResult",
    "InputError",
    "MienError",
    "ModelError",
    "QualityThresholds",
    "RunManifest",
    "SourceRun",
    "TrackerConfig",
    "__version__",
    "analyze",
    "read_table",
]
