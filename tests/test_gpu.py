"""``--device cuda``: one clear error without a CUDA-capable ONNX Runtime; where a GPU exists, the
same faces and expressions as on the CPU."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import shared_video


def _cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def test_cuda_without_a_cuda_runtime_is_one_clear_error(tmp_path):
    if _cuda_available():
        pytest.skip("this ONNX Runtime has CUDA: the error path cannot be shown here")
    video = shared_video("single_face.mp4")
    proc = subprocess.run([sys.executable, "-m", "mien", "analyze", str(video), "-o", str(tmp_path / "r.parquet"),
                           "--device", "cuda", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mien: error: --device cuda needs onnxruntime-gpu"), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cuda_finds_and_classifies_as_the_cpu_does():
    if not _cuda_available():
        pytest.skip("no CUDA GPU / onnxruntime-gpu here (pip install 'mien[gpu]' on a machine with one)")
    from mien.pipeline import AnalysisOptions, Analyzer

    video = str(shared_video("WolfgangLanger_Pexels.mp4"))
    cpu = Analyzer(AnalysisOptions(precision="float")).analyze_source(video).to_pandas()
    gpu = Analyzer(AnalysisOptions(device="cuda")).analyze_source(video).to_pandas()
    assert len(gpu) == len(cpu)
    assert (gpu["top_label"].to_numpy() == cpu["top_label"].to_numpy()).mean() >= 0.98
