"""Runs MediaPipe's own Face Mesh graph (``FaceLandmarkCpu``, plain or with attention) on mesh crops,
for ``bench/attention_mesh.py``. Run by an interpreter that has the ``mediapipe`` wheel (a throwaway
venv; mediapipe is no dependency of mien), not mien's: it imports only mediapipe and numpy.

    PYTHON crops.npz out.npz

``crops.npz``: ``crops`` (n, 192, 192, 3) uint8 RGB, the crops mien feeds its network. Each crop is
fed as a whole 192x192 image with the whole image as the region of interest (no rotation), so
MediaPipe's own crop step is the identity and the landmarks come back in crop pixels (x, y and z
times 192: MediaPipe normalises all three by the input width). MediaPipe's graph merges the attention
model's refined eye, brow and lip points into the 468 and appends the 10 iris points; it drops
the landmarks of a crop whose face-presence score is below 0.5 (NaN here, ``found`` False).

``out.npz``: ``plain`` (n, 468, 3), ``attention`` (n, 478, 3), ``found_plain``, ``found_attention`` (n,),
``seconds`` (2,): the wall time of each whole run (plain, attention; graph start to close, all crops;
MediaPipe's TFLite runtime with XNNPACK, its default threads), for a ratio in one process.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

GRAPH = """
input_stream: "image"
input_stream: "roi"
input_side_packet: "with_attention"
output_stream: "landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""


def run(crops: np.ndarray, with_attention: bool) -> tuple[np.ndarray, np.ndarray]:
    import mediapipe as mp
    from mediapipe.framework.formats import rect_pb2
    from mediapipe.python._framework_bindings import resource_util

    resource_util.set_resource_dir(str(Path(mp.__file__).parent.parent))
    n_points = 478 if with_attention else 468
    out = np.full((len(crops), n_points, 3), np.nan)
    found = np.zeros(len(crops), bool)
    graph = mp.CalculatorGraph(graph_config=GRAPH)
    got: list = []
    graph.observe_output_stream("landmarks", lambda stream, packet: got.append(
        (packet.timestamp.value, mp.packet_getter.get_proto(packet))))
    graph.start_run({"with_attention": mp.packet_creator.create_bool(with_attention)})
    size = crops.shape[1]
    for i, crop in enumerate(crops):
        roi = rect_pb2.NormalizedRect(x_center=0.5, y_center=0.5, width=1.0, height=1.0, rotation=0.0)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        graph.add_packet_to_input_stream("image", mp.packet_creator.create_image(image).at(i))
        graph.add_packet_to_input_stream("roi", mp.packet_creator.create_proto(roi).at(i))
    graph.close()
    for t, lms in got:
        out[t] = [(p.x * size, p.y * size, p.z * size) for p in lms.landmark]
        found[t] = True
    return out, found


def main() -> int:
    crops = np.load(sys.argv[1])["crops"]
    t0 = time.perf_counter()
    plain, found_plain = run(crops, False)
    t1 = time.perf_counter()
    attention, found_attention = run(crops, True)
    t2 = time.perf_counter()
    np.savez(sys.argv[2], plain=plain, attention=attention, found_plain=found_plain,
             found_attention=found_attention, seconds=np.array([t1 - t0, t2 - t1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
