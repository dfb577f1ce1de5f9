"""ONNX Runtime sessions, built one way for every model mien runs (detector, expression model)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime


def make_session(model: bytes | str, threads: int = 1) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session with explicit threading (never the Azure provider).

    ``model`` is a file path or the ONNX bytes. One intra-op thread by default: mien overlaps
    decoding, detection and classification across threads itself.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
