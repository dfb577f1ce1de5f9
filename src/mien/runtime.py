"""ONNX Runtime sessions, built one way for every model mien runs (detector, expression model,
face mesh), and the threads of the other native libraries while the engine runs."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime


DEVICES = ("cpu", "cuda")


def providers_for(device: str) -> list[str]:
    """ONNX Runtime's execution providers for ``device``; an :class:`InputError` saying what to
    install when this ONNX Runtime cannot run on it."""
    from mien.errors import InputError

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        raise InputError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise InputError(
            "--device cuda needs onnxruntime-gpu and an NVIDIA GPU with CUDA; this ONNX Runtime "
            f"offers {', '.join(available)}. Install it with: pip uninstall -y onnxruntime && "
            "pip install 'mien[gpu]' (or run on the CPU: --device cpu)"
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def make_session(model: bytes | str, threads: int = 1, device: str = "cpu") -> onnxruntime.InferenceSession:
    """An ONNX Runtime session with explicit threading (never the Azure provider).

    ``model`` is a file path or the ONNX bytes. One intra-op thread by default: mien overlaps
    decoding, detection and classification across threads itself. ``device="cuda"`` runs it on
    an NVIDIA GPU through ``onnxruntime-gpu`` (``pip install 'mien[gpu]'``), any operator the
    GPU lacks on the CPU.
    """
    import onnxruntime as ort

    providers = providers_for(device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=providers)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS (OpenBLAS, MKL ...) on one thread while the engine runs, as before after.

    The engine's numpy work is small matrices per frame (the geometry measures' weights, pose
    fits), which OpenBLAS splits across its own threads once a crowd makes them large enough;
    between calls those threads spin, burning the cores the engine's stage threads and ONNX
    Runtime need. On the 16-face 720p grid (2 cores) limiting them gave 1.35-1.47x the frame rate
    at 0.61-0.66x the CPU per frame; at 1-9 faces it changed nothing measurable (bench/RESULTS.md,
    "numpy's BLAS threads"). The limit is process-wide while the block runs (BLAS has no
    per-thread setting) and covers every BLAS loaded (numpy's, and the OpenBLAS inside OpenCV's
    wheel); OpenCV's own thread pool is left alone (one OpenCV thread was slower). Through
    ``threadpoolctl``; a no-op where it finds no BLAS."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
