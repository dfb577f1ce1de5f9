"""The live view's API: a real MJPEG stream over HTTP on loopback, analysed by `mien serve`.

The events carry each analysed frame's faces (box, track, expression) and the latency; the
session ends at its frame limit and its rows are kept as a job with a table and a report.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import warnings

import pytest
from conftest import REPO, shared_video

pytest.importorskip("fastapi", reason="mien serve needs the [serve] extra: pip install '.[serve]'")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from mien.serve.app import ServeConfig, create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:port (a subprocess starting under load is slow)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow  # a few seconds of real-time stream
def test_live_stream_events_then_a_job(tmp_path):
    video = shared_video("WolfgangLanger_Pexels.mp4")
    port = _free_port()
    sender = subprocess.Popen([sys.executable, str(REPO / "tests" / "mjpeg_server.py"), str(video), str(port), "30"])
    try:
        wait_for_port(port)
        with TestClient(create_app(ServeConfig(data_dir=tmp_path / "data")), base_url="http://127.0.0.1:8765") as c:
            r = c.post("/api/streams", json={"source": f"http://127.0.0.1:{port}/cam.mjpg", "max_frames": 15})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            # one session at a time: a second one is refused while the first runs
            second = c.post("/api/streams", json={"source": f"http://127.0.0.1:{port}/cam.mjpg"})
            assert second.status_code == 409, second.text
            frames, end = [], None
            with c.stream("GET", f"/api/streams/{job_id}/events") as resp:
                event = "message"
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:])
                        if event == "end":
                            end = data
                            break
                        frames.append(data)
            assert end is not None and end["status"] == "done", end
            assert end["kind"] == "stream" and end["inputs"][0]["name"] == f"http://127.0.0.1:{port}/cam.mjpg"
            seen = [f for f in frames if f["seq"] > 0]
            assert seen and seen[-1]["width"] == 640 and seen[-1]["height"] == 360
            assert all(f["latency_ms"] is not None and 0 < f["latency_ms"] < 5000 for f in seen)
            faces = [face for f in seen for face in f["faces"]]
            assert faces and all(len(face["box"]) == 4 for face in faces)
            assert any(face["top_label"] in seen[-1]["labels"] and 0 < face["top_prob"] <= 1 for face in faces)
            job = c.get(f"/api/jobs/{job_id}").json()
            assert job["frames_analysed"] == 15 and "results.parquet" in job["outputs"] and "report" in job["outputs"]
    finally:
        sender.kill()
        sender.wait()
