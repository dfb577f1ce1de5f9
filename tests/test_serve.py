"""`mien serve`'s REST API through FastAPI's test client, on a short shared clip.

Uploads give the CLI's rows; bad uploads are refused with a clear 4xx before anything is queued;
a restart keeps finished jobs and never leaves one "running"; the token, Host and path checks.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import shared_video

pytest.importorskip("fastapi", reason="mien serve needs the [serve] extra: pip install '.[serve]'")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx2
    from fastapi.testclient import TestClient

from mien.checkpoint import read_partial
from mien.cli import main as mien_main
from mien.errors import MienError
from mien.serve.app import ServeConfig, create_app
from mien.serve.store import INTERRUPTED_REASON, RUNNING, Job, JobInput, JobOptions, JobStore, new_job_id

CLIP = "talking_d1.mp4"  # 16 frames, 0.5 s, one face
BASE = "http://127.0.0.1:8765"


def make_client(data: Path, **config: Any) -> TestClient:
    return TestClient(create_app(ServeConfig(data_dir=data, **config)), base_url=BASE)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path / "data", max_upload_bytes=2_000_000) as c:
        yield c


def upload(client: TestClient, path: Path, name: str | None = None, **form: str) -> Any:
    return client.post("/api/jobs", files=[("files", (name or path.name, path.read_bytes(), "video/mp4"))],
                       data=form)


def wait_done(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Follow the job's server-sent events until it ends; return its last state."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    with client.stream("GET", f"/api/jobs/{job_id}/events") as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
            assert time.monotonic() < deadline, last
    assert last.get("status") in ("done", "failed", "cancelled"), last
    return last


def test_upload_gives_the_cli_rows_and_every_output(client: TestClient, tmp_path: Path) -> None:
    clip = shared_video(CLIP)
    r = upload(client, clip, name="my clip; rm -rf ~.mp4", stride="2")
    assert r.status_code == 201, r.text
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"] == 1.0 and job["frames_analysed"] == 8 and job["runs"] == 1
    assert job["inputs"][0]["name"] == "my clip; rm -rf ~.mp4" and job["inputs"][0]["kind"] == "video"
    assert set(job["outputs"]) >= {"results.parquet", "results.csv", "manifest.json", "report", "thumbnail.jpg"}

    served = tmp_path / "served.parquet"
    served.write_bytes(client.get(job["outputs"]["results.parquet"]).content)
    assert mien_main(["analyze", str(clip), "-o", str(tmp_path / "cli.parquet"), "--stride", "2", "--quiet"]) == 0
    ours, cli = pd.read_parquet(served), pd.read_parquet(tmp_path / "cli.parquet")
    assert len(ours) == len(cli) == 8
    pd.testing.assert_frame_equal(ours.drop(columns="source"), cli.drop(columns="source"))

    csv = client.get(job["outputs"]["results.csv"])
    assert csv.headers["content-disposition"].startswith("attachment") and "rm -rf" not in csv.headers["content-disposition"]
    assert len(pd.read_csv(pd.io.common.BytesIO(csv.content))) == 8
    manifest = client.get(job["outputs"]["manifest.json"]).json()
    assert manifest["parameters"]["stride"] == 2 and manifest["sources"][0]["frames"]["analysed"] == 8
    report = client.get(job["outputs"]["report"])
    assert report.headers["content-type"].startswith("text/html") and 'class="timeline' in report.text
    assert report.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert "<title>mien expression report: my clip; rm -rf ~.mp4</title>" in report.text
    thumb = client.get(job["outputs"]["thumbnail.jpg"])
    assert thumb.content[:2] == b"\xff\xd8"
    # nothing outside the job's folder, and the stored input does not carry the user's name
    stored = [p for p in (tmp_path / "data" / "jobs" / job["id"] / "inputs").rglob("*") if p.is_file()]
    assert [p.relative_to(p.parents[1]).as_posix() for p in stored] == ["00/my_clip_rm_-rf.mp4"]
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job["id"]]


@pytest.mark.slow  # two jobs with reports and an annotated video: ~10-16 s under load
def test_annotated_video_events_and_several_inputs(client: TestClient, tmp_path: Path) -> None:
    import av
    import cv2

    clip = shared_video("single_face.mp4")
    events = b"time_s,end_s,label\n0.5,1.0,question\n1.5,,answer\n"
    r = client.post("/api/jobs", files=[("files", (clip.name, clip.read_bytes(), "video/mp4")),
                                        ("events", ("stimuli.csv", events, "text/csv"))],
                    data={"stride": "3", "annotate": "true", "blur_faces": "true"})
    assert r.status_code == 201, r.text
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done" and job["events"] and "annotated.mp4" in job["outputs"], job
    video = tmp_path / "annotated.mp4"
    video.write_bytes(client.get(job["outputs"]["annotated.mp4"]).content)
    with av.open(str(video)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 24  # 72 frames at stride 3
    assert client.get(job["outputs"]["report"]).text.count('<g class="event">') >= 2

    # a video and a still image in one job: one table, two sources, a manifest for each
    with av.open(str(clip)) as c:
        still = next(c.decode(video=0)).to_ndarray(format="bgr24")
    ok, jpg = cv2.imencode(".jpg", still)
    r = client.post("/api/jobs", files=[("files", (clip.name, clip.read_bytes(), "video/mp4")),
                                        ("files", ("still.jpg", jpg.tobytes(), "image/jpeg"))], data={"stride": "3"})
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done" and [i["kind"] for i in job["inputs"]] == ["video", "image"]
    table = pd.read_parquet(pd.io.common.BytesIO(client.get(job["outputs"]["results.parquet"]).content))
    assert table["source"].nunique() == 2 and len(table) == 24 + 1
    assert len(client.get(job["outputs"]["manifest.json"]).json()["sources"]) == 2

    # refused before queueing: annotate with two inputs, and an events file that is not one
    two = [("files", (clip.name, clip.read_bytes(), "video/mp4"))] * 2
    assert client.post("/api/jobs", files=two, data={"annotate": "true"}).status_code == 400
    bad = client.post("/api/jobs", files=[("files", (clip.name, clip.read_bytes(), "video/mp4")),
                                          ("events", ("e.csv", b"when,what\nsoon,thing\n", "text/csv"))])
    assert bad.status_code == 400 and bad.json()["detail"].startswith("events:"), bad.text
    assert len(client.get("/api/jobs").json()["jobs"]) == 2


@pytest.mark.parametrize("name", ["../../etc/passwd.mp4", "a/b\\c.mp4", "..mp4", "ça été filmé.mp4", "-rf.mp4",
                                  "x\x00y.mp4", "$(reboot).mp4", ".mp4"])
def test_stored_names_are_plain(name: str) -> None:
    import re

    from mien.serve.app import _safe_name

    safe = _safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", safe) and ".." not in safe, safe


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i : i + 65536]


def _undecodable_copy(clip: Path, dest: Path) -> Path:
    """The clip with its media data zeroed: the container opens and announces a video stream, but
    no frame decodes (what a download cut to the right length but never filled looks like)."""
    import struct

    data = bytearray(clip.read_bytes())
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if kind == b"mdat":
            data[i + 8 : i + size] = bytes(size - 8)
        i += max(size, 8)
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("case", ["empty", "text", "text_named_mp4", "no_frame_decodes", "audio_only", "oversized",
                                  "oversized_chunked", "no_files", "bad_option", "not_a_number"])
def test_bad_uploads_are_refused_and_nothing_is_queued(client: TestClient, tmp_path: Path, case: str) -> None:
    import av
    import numpy as np

    if case == "empty":
        r = client.post("/api/jobs", files=[("files", ("clip.mp4", b"", "video/mp4"))])
        expect, words = 400, "empty"
    elif case == "text":
        r = client.post("/api/jobs", files=[("files", ("notes.txt", b"hello\n" * 50, "text/plain"))])
        expect, words = 415, "not a video or image"
    elif case == "text_named_mp4":
        r = client.post("/api/jobs", files=[("files", ("clip.mp4", b"hello\n" * 50, "video/mp4"))])
        expect, words = 415, "FFmpeg can decode"
    elif case == "no_frame_decodes":
        r = upload(client, _undecodable_copy(shared_video(CLIP), tmp_path / "zeroed.mp4"))
        expect, words = 415, "FFmpeg can decode"
    elif case == "audio_only":
        wav = tmp_path / "tone.mp4"
        with av.open(str(wav), "w") as out:
            stream = out.add_stream("aac", rate=16000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        r = client.post("/api/jobs", files=[("files", ("tone.mp4", wav.read_bytes(), "video/mp4"))])
        expect, words = 415, "no video stream"
    elif case == "oversized":
        r = client.post("/api/jobs", files=[("files", ("big.mp4", b"\0" * 2_500_000, "video/mp4"))])
        expect, words = 413, "larger than this server takes"
    elif case == "oversized_chunked":  # no Content-Length: the limit is enforced as the body arrives
        boundary = "mienboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + b"\0" * 2_500_000 + f"\r\n--{boundary}--\r\n".encode()
        r = client.post("/api/jobs", content=_chunks(body),
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        expect, words = 413, "larger than this server takes"
    elif case == "no_files":
        r = client.post("/api/jobs", data={"stride": "2"})
        expect, words = 400, "no files"
    elif case == "bad_option":
        r = upload(client, shared_video(CLIP), stride="0")
        expect, words = 400, "stride"
    else:
        r = upload(client, shared_video(CLIP), stride="every other")
        expect, words = 422, "stride: Input should be a valid integer"
    assert r.status_code == expect, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


@pytest.mark.slow  # two server starts and two analyses
def test_restart_keeps_finished_jobs_and_fails_the_running_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clip = shared_video(CLIP)
    with make_client(data) as c:
        done = wait_done(c, upload(c, clip, stride="4").json()["id"])
        assert done["status"] == "done"
    # A job that was running when the process died, and one still waiting in the queue.
    store = JobStore(data)
    crashed = Job(id=new_job_id(), kind="files", status=RUNNING, created=time.time(), started=time.time(),
                  inputs=[JobInput(name="cut.mp4", path=str(clip), kind="video", duration_s=0.53)],
                  options=JobOptions(stride=4))
    waiting = Job(id=new_job_id(), kind="files", status="queued", created=time.time(),
                  inputs=[JobInput(name="later.mp4", path=str(clip), kind="video", duration_s=0.53)],
                  options=JobOptions(stride=4))
    store.add(crashed)
    store.add(waiting)
    store.close()
    with make_client(data) as c:
        kept = c.get(f"/api/jobs/{done['id']}").json()
        assert kept["status"] == "done" and c.get(kept["outputs"]["results.parquet"]).status_code == 200
        failed = c.get(f"/api/jobs/{crashed.id}").json()
        assert failed["status"] == "failed" and failed["error"] == INTERRUPTED_REASON
        assert wait_done(c, waiting.id)["status"] == "done"
        assert {j["status"] for j in c.get("/api/jobs").json()["jobs"]} == {"done", "failed"}
    with sqlite3.connect(data / "jobs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running'").fetchone()[0] == 0


@pytest.mark.slow  # three analyses of a 2.4 s clip (cut, resumed, reference): ~6-10 s
def test_a_job_killed_mid_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """What a SIGKILL leaves: the job marked running, and the engine's checkpoint of its first
    frames. The next start resumes it there; the table covers every frame exactly once."""
    from mien.pipeline import AnalysisOptions
    from mien.serve import resume
    from mien.serve.jobs import ObservedAnalyzer

    clip = shared_video("single_face.mp4")  # 72 frames: 36 analysed at stride 2
    data = tmp_path / "data"
    store = JobStore(data)
    job = Job(id=new_job_id(), kind="files", status=RUNNING, created=time.time(), started=time.time(),
              inputs=[JobInput(name="single_face.mp4", path=str(clip), kind="video", duration_s=2.4)],
              options=JobOptions(stride=2))
    store.add(job)
    out_dir = store.outputs_dir(job.id)
    out_dir.mkdir(parents=True)
    cut = ObservedAnalyzer(AnalysisOptions(stride=2, checkpoint_s=1e-9))  # a part after every frame
    seen: list[int] = []
    cut.observer = lambda res: seen.append(res.index)
    cut.should_stop = lambda: len(seen) >= 10
    cut.analyze_source(str(clip), checkpoint=resume.table_path(out_dir, 0))  # "killed" after 10 frames
    assert read_partial(resume.table_path(out_dir, 0)).last_frame_index == 18
    store.close()

    with make_client(data) as c:
        done = wait_done(c, job.id)
        assert done["status"] == "done", done["error"]
        table = pd.read_parquet(pd.io.common.BytesIO(c.get(done["outputs"]["results.parquet"]).content))
        manifest = c.get(done["outputs"]["manifest.json"]).json()
    frames = manifest["sources"][0]["frames"]
    assert frames["resumed_from_frame_index"] == 19 and frames["resumed_segments"] == 1
    assert sorted(table["frame_index"]) == list(range(0, 72, 2))  # every analysed frame, once
    cut.observer = cut.should_stop = None
    full = pd.read_parquet(cut.analyze_source(str(clip)).save(tmp_path / "full.parquet"))  # same options, uncut
    before = table[table["frame_index"] <= 18].reset_index(drop=True)
    # per-track end-of-run columns (geo_*_delta, geo_blink) follow the restarted tracks: compare the rest
    cols = [c for c in full.columns if c != "source" and not c.endswith("_delta") and c != "geo_blink"]
    pd.testing.assert_frame_equal(before[cols],
                                  full[full["frame_index"] <= 18].reset_index(drop=True)[cols])
    # tracks restart at the resume point, under new ids
    assert set(table[table["frame_index"] > 18]["track_id"]).isdisjoint(set(before["track_id"]))
    assert not list(out_dir.glob("input*"))  # per-input leftovers are cleared once the job is done


@pytest.mark.slow  # two server starts and a 4-second analysis
def test_a_server_stopped_mid_job_saves_its_rows_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clip = shared_video("WolfgangLanger_Pexels.mp4")  # 472 frames: 118 analysed at stride 4
    with make_client(data) as c:
        job_id = upload(c, clip, stride="4").json()["id"]
        deadline = time.monotonic() + 60
        while c.get(f"/api/jobs/{job_id}").json()["frames_analysed"] < 20:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    # the server has stopped: the job waits in the queue with the rows it had
    with sqlite3.connect(data / "jobs.sqlite") as db:
        assert db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == "queued"
    with make_client(data) as c:
        done = wait_done(c, job_id)
        assert done["status"] == "done", done["error"]
        table = pd.read_parquet(pd.io.common.BytesIO(c.get(done["outputs"]["results.parquet"]).content))
        manifest = c.get(done["outputs"]["manifest.json"]).json()
    assert manifest["sources"][0]["frames"]["resumed_from_frame_index"] >= 80  # the 20 frames seen were kept
    assert not table.duplicated(["frame_index", "x1", "y1"]).any()  # no face-frame twice
    frames = set(table["frame_index"])
    assert frames <= set(range(0, 472, 4)) and len(frames) >= 110


@pytest.mark.slow  # an analysis
def test_delete_removes_the_job_and_its_files(client: TestClient, tmp_path: Path) -> None:
    job = wait_done(client, upload(client, shared_video(CLIP), stride="4").json()["id"])
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert folder.is_dir()
    assert client.delete(f"/api/jobs/{job['id']}").json() == {"deleted": job["id"]}
    assert not folder.exists()
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/report").status_code == 404
    assert client.get("/api/jobs/..%2F..%2Fetc/report").status_code == 404


@pytest.mark.slow  # two servers and an analysis
def test_server_side_paths_only_inside_allowed_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "videos"
    allowed.mkdir()
    shutil.copy(shared_video(CLIP), allowed / "clip.mp4")
    (tmp_path / "secret.mp4").write_bytes((allowed / "clip.mp4").read_bytes())
    with make_client(tmp_path / "plain") as c:
        r = c.post("/api/jobs", data={"path": str(allowed / "clip.mp4")})
        assert r.status_code == 403 and "--allow-path" in r.json()["detail"]
    with make_client(tmp_path / "data", allow_paths=[allowed]) as c:
        for outside in (tmp_path / "secret.mp4", allowed / ".." / "secret.mp4"):
            r = c.post("/api/jobs", data={"path": str(outside)})
            assert r.status_code == 403, r.text
        r = c.post("/api/jobs", data={"path": str(allowed / "clip.mp4"), "stride": "4"})
        assert r.status_code == 201, r.text
        job = wait_done(c, r.json()["id"])
        assert job["status"] == "done" and job["inputs"][0]["name"] == "clip.mp4"
        c.delete(f"/api/jobs/{job['id']}")
    assert (allowed / "clip.mp4").is_file()  # a server-side input is never deleted


def test_token_host_and_loopback_rules(tmp_path: Path) -> None:
    with pytest.raises(MienError, match="--token"):
        create_app(ServeConfig(data_dir=tmp_path / "a", host="0.0.0.0"))
    with pytest.raises(MienError, match="at least 16"):
        create_app(ServeConfig(data_dir=tmp_path / "a", host="0.0.0.0", token="short"))
    token = "s3cret-token-for-tests-0123456789"
    app = create_app(ServeConfig(data_dir=tmp_path / "b", host="0.0.0.0", token=token))
    with TestClient(app, base_url="http://192.0.2.7:8765") as c:
        assert c.get("/api/jobs").status_code == 401
        assert c.get("/", follow_redirects=False).status_code == 401
        assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert c.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        r = c.get(f"/?token={token}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        assert c.get("/api/jobs").status_code == 200  # the cookie now carries the token
    with make_client(tmp_path / "c") as c:  # loopback: no token, but only loopback Host names
        assert c.get("/api/jobs").status_code == 200
        assert c.get("/api/jobs", headers={"host": "attacker.example:8765"}).status_code == 421


def test_page_is_offline_and_the_api_is_documented(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/app.js", "/static/app.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "https://" not in r.text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/results.parquet",
              "/api/jobs/{job_id}/results.csv", "/api/jobs/{job_id}/manifest.json", "/api/jobs/{job_id}/report",
              "/api/jobs/{job_id}/annotated.mp4", "/api/streams", "/api/streams/{job_id}/events"):
        assert p in paths, p


def test_stream_sources_other_than_cameras_and_stream_urls_are_refused(client: TestClient) -> None:
    for source in ("file:///etc/passwd", "/etc/passwd", "concat:a.mp4|b.mp4", "999", "rtsp://a b"):
        r = client.post("/api/streams", json={"source": source})
        assert r.status_code == 400 and "source" in r.json()["detail"], (source, r.text)
    assert client.get("/api/jobs").json()["jobs"] == []


def test_serve_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    monkeypatch.delitem(sys.modules, "mien.serve.app", raising=False)
    assert mien_main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mien[serve]'" in err[0]


def test_serve_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert mien_main(["serve", "--port", str(port), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0] and "--port" in err[0]


def test_serve_refuses_an_open_host_without_a_token(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert mien_main(["serve", "--host", "0.0.0.0", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--token" in err[0]


@pytest.mark.slow  # a real `mien serve` process: start, one upload over HTTP, stop
def test_the_readme_serve_command_runs(tmp_path: Path) -> None:
    """README's one-command serve line, as a process: it serves the page and takes an upload;
    Ctrl-C stops it with exit 0."""
    import re
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from conftest import REPO

    blocks = re.findall(r"```console\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    line = next(b.strip() for b in blocks if "mien serve" in b)
    assert line.endswith("pip install '.[serve]' && mien serve"), line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mien", "serve", "--port", str(port), "--data", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=2) as r:
                    assert "Analyse videos or images" in r.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        clip = shared_video(CLIP).read_bytes()
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"clip.mp4\"\r\n\r\n" + clip
                + b"\r\n--b\r\nContent-Disposition: form-data; name=\"stride\"\r\n\r\n4\r\n--b--\r\n")
        req = urllib.request.Request(base + "/api/jobs", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
        with urllib.request.urlopen(req, timeout=30) as r:
            job_id = json.loads(r.read())["id"]
        while True:
            with urllib.request.urlopen(f"{base}/api/jobs/{job_id}", timeout=10) as r:
                job = json.loads(r.read())
            if job["status"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline + 60, job
            time.sleep(0.2)
        assert job["status"] == "done" and "report" in job["outputs"], job
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err
