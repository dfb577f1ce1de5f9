"""Every ``mien`` command in README.md's bash blocks, and its Python example, run as written.

The inputs the examples name (``talk.mp4``, ``clips/``, ``stimuli.csv``, ``labelled_faces.csv``,
``faces_voc/``, a live TCP stream) are made in a scratch folder from the shared clips and FER+
crops; the quick start's ``../shared/...`` path resolves to the shared data itself. Lines of the
training recipe (``python -m mien.training...``, over an hour of training) are not ``mien``
commands and are left to ``tests/test_training.py``.
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FERPLUS, REPO, SHARED, shared_video

pytestmark = pytest.mark.slow

README = REPO / "README.md"


def readme_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(), flags=re.S)


def readme_mien_commands() -> list[str]:
    """The ``mien`` commands of the bash blocks: whole lines, and the ``mien`` step of a
    ``... && mien ...`` chain (the quick start), without trailing comments."""
    commands = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            for step in line.split("&&"):
                step = step.split("  #")[0].strip()
                if step.startswith("mien ") and not line.lstrip().startswith("python -m mien.training"):
                    commands.append(step)
    return commands


def test_the_readme_has_the_examples_this_test_knows_how_to_feed():
    commands = readme_mien_commands()
    assert len(commands) >= 10, commands
    assert commands[0].startswith("mien analyze ../shared/data/videos/")  # the quick start


def _scratch(tmp_path: Path) -> Path:
    """A work folder with every input the README names; ``../shared`` beside it is the shared data."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED.parent, target_is_directory=True)
    (work / "talk.mp4").symlink_to(shared_video("single_face.mp4"))
    (work / "clips").mkdir()
    for name in ("single_face.mp4", "no_face.mp4"):
        (work / "clips" / name).symlink_to(shared_video(name))
    (work / "stimuli.csv").write_text("time_s,label\n0.5,joke\n1.5,question\n")
    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    data = np.load(FERPLUS)
    votes, pixels = data["ferplus_votes"], data["pixels"]
    rows = ["path,label,session"]
    (work / "faces").mkdir()
    for k, i in enumerate(np.flatnonzero(data["usage"] == "PrivateTest")[:12]):
        label = int(votes[i].argmax())
        if label >= 8:
            continue
        face = cv2.resize(pixels[i].reshape(48, 48).astype(np.uint8), (192, 192), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(work / "faces" / f"{k}.png"), cv2.copyMakeBorder(face, 64, 64, 64, 64, cv2.BORDER_REPLICATE))
        rows.append(f"faces/{k}.png,{['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt'][label]},{'AB'[k % 2]}")
    (work / "labelled_faces.csv").write_text("\n".join(rows) + "\n")
    voc = work / "faces_voc"
    (voc / "annotations").mkdir(parents=True)
    (voc / "images").mkdir()
    import av

    with av.open(str(shared_video("single_face.mp4"))) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
    cv2.imwrite(str(voc / "images" / "f0.png"), frame)
    (voc / "annotations" / "f0.xml").write_text(
        "<annotation><filename>f0.png</filename><object><name>face</name><bndbox><xmin>250</xmin>"
        "<ymin>60</ymin><xmax>390</xmax><ymax>240</ymax></bndbox></object></annotation>")
    return work


def test_every_readme_example_runs_as_written(tmp_path):
    work = _scratch(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONUNBUFFERED": "1"}
    for command in readme_mien_commands():
        # as the shell runs it: a glob (clips/*.mp4) becomes the files it matches
        argv = [m for a in shlex.split(command)
                for m in (sorted(glob.glob(a, root_dir=work)) if "*" in a else [a]) or [a]]
        sender = None
        url = next((a for a in argv if a.startswith("tcp://")), None)
        if url:  # the live example: a camera-like sender on that port
            port = url.rsplit(":", 1)[1]
            sender = subprocess.Popen([sys.executable, str(REPO / "tests" / "stream_sender.py"),
                                       str(work / "talk.mp4"), port, "30"])
            time.sleep(1.0)
        try:
            proc = subprocess.run([sys.executable, "-m", "mien", *argv[1:]], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)
        finally:
            if sender is not None:
                sender.kill()
                sender.wait()
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, f"{command}\n{proc.stderr}"
    for written in ("talk.parquet", "talk.csv", "results/single_face.mp4.parquet", "results/index.parquet", "events.csv", "tracks_10hz.csv", "live.parquet", "report.html",
                    "audit.json", "audit.html", "detector.json", "talk_annotated.mp4"):
        assert (work / written).is_file(), written
    assert (work / "out" / "results.parquet").is_file() and (work / "out" / "report.html").is_file()


def test_the_readme_python_example_runs_as_written(tmp_path):
    work = _scratch(tmp_path)
    (block,) = [b for b in readme_blocks("python") if "mien.analyze(" in b]
    proc = subprocess.run([sys.executable, "-c", block], cwd=work, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr
