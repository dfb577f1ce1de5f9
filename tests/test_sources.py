"""Frame sources: PTS timing (variable frame rate), odd sizes, subsampling, rotation, images."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import shared_video

from mien.errors import InputError
from mien.sources import (
    BgrConverter,
    FrameSelector,
    ImageSource,
    StreamSource,
    VideoFileSource,
    expand_inputs,
    open_source,
    rotate_upright,
)


def _write_video(path: Path, times_ms: list[int], size=(320, 240), codec="libx264", pix_fmt="yuv420p"):
    with av.open(str(path), mode="w") as c:
        s = c.add_stream(codec, rate=30)
        s.width, s.height = size
        s.pix_fmt = pix_fmt
        s.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            img = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_variable_frame_rate_times_come_from_pts(tmp_path):
    times = [0, 33, 66, 200, 233, 500, 533, 1000]  # irregular gaps, as in phone video
    path = tmp_path / "vfr.mp4"
    _write_video(path, times)
    got = [f.time_s * 1000 for f in VideoFileSource(str(path))]
    # within the container's timestamp rounding; index/fps would give 0, 33, 67, 100, ...
    np.testing.assert_allclose(got, times, atol=1.5)


def test_odd_frame_size_decodes(tmp_path):
    path = tmp_path / "odd.mkv"
    _write_video(path, list(range(0, 300, 33)), size=(321, 239), pix_fmt="yuv444p")
    frames = list(VideoFileSource(str(path)))
    assert frames and frames[0].image.shape == (239, 321, 3)


@pytest.mark.parametrize("name", ["WolfgangLanger_Pexels.mp4", "noface_face.mov"])
def test_reused_converter_gives_the_frames_to_ndarray_gives(name):
    to_bgr = BgrConverter()
    with av.open(str(shared_video(name))) as c:
        for i, vf in enumerate(c.decode(video=0)):
            np.testing.assert_array_equal(to_bgr(vf), vf.to_ndarray(format="bgr24"))
            if i == 30:
                break


def test_reused_converter_follows_a_size_change_mid_stream(tmp_path):
    to_bgr = BgrConverter()
    for size in ((320, 240), (322, 180), (320, 240)):
        path = tmp_path / f"{size[0]}x{size[1]}.mkv"
        _write_video(path, [0, 33], size=size, pix_fmt="yuv444p")
        with av.open(str(path)) as c:
            for vf in c.decode(video=0):
                out = to_bgr(vf)
                assert out.shape == (size[1], size[0], 3)
                np.testing.assert_array_equal(out, vf.to_ndarray(format="bgr24"))


def test_stride_and_fps_selection():
    sel = FrameSelector(stride=3)
    assert [i for i in range(10) if sel.take(i, i / 30)] == [0, 3, 6, 9]
    sel = FrameSelector(fps=10)
    taken = [i for i in range(30) if sel.take(i, i / 30)]
    assert taken == list(range(0, 30, 3))
    with pytest.raises(InputError):
        FrameSelector(stride=0)


def test_stride_on_real_video():
    path = shared_video("single_face.mp4")
    frames = list(VideoFileSource(str(path), FrameSelector(stride=4)))
    assert [f.index for f in frames] == list(range(0, 72, 4))


@pytest.mark.parametrize("rotation,expected", [
    (0, [[0, 1, 2], [3, 4, 5]]),
    (-90, [[3, 0], [4, 1], [5, 2]]),  # display matrix -90 (phone held upright) = rotate clockwise
    (270, [[3, 0], [4, 1], [5, 2]]),
    (90, [[2, 5], [1, 4], [0, 3]]),  # +90 = rotate counter-clockwise
    (180, [[5, 4, 3], [2, 1, 0]]),
])
def test_rotation_metadata_is_applied(rotation, expected):
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(rotate_upright(img, rotation), np.array(expected, np.uint8))


def test_rotated_phone_video_is_decoded_upright(tmp_path):
    """A real MP4 whose track header carries a 90° display matrix (as phones write portrait video)."""
    import struct

    path = tmp_path / "plain.mp4"
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        for i in range(5):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:, :32] = 255  # left half white
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd") - 4
    assert data[box + 8] == 0  # version 0 track header: the matrix sits 48 bytes in
    data[box + 48 : box + 84] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    rotated = tmp_path / "rotated.mp4"
    rotated.write_bytes(bytes(data))
    frame = next(iter(VideoFileSource(str(rotated))))
    assert frame.image.shape == (64, 32, 3)  # portrait, as a player shows it
    # turned 90° clockwise, the white left half is now on top
    assert frame.image[:32].mean() > 200 and frame.image[32:].mean() < 50


@pytest.mark.slow
def test_hevc_mov_decodes():
    frames = list(VideoFileSource(str(shared_video("noface_face.mov")), FrameSelector(stride=20)))
    assert len(frames) == 9 and frames[0].image.shape == (540, 960, 3)


def test_images_and_folders(tmp_path):
    img = np.zeros((40, 50, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (tmp_path / "notes.txt").write_text("not media")
    assert expand_inputs(tmp_path) == [str(tmp_path / "a.png")]
    frames = list(ImageSource(str(tmp_path / "a.png")))
    assert len(frames) == 1 and frames[0].image.shape == (40, 50, 3)
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(InputError, match="bad.jpg"):
        ImageSource(str(tmp_path / "bad.jpg"))


def _tcp_stream(seconds: int):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = subprocess.Popen([sys.executable, str(Path(__file__).parent / "stream_sender.py"),
                               str(shared_video("single_face.mp4")), str(port), str(seconds)])
    time.sleep(1.0)
    return f"tcp://127.0.0.1:{port}", sender


@pytest.mark.slow
def test_a_live_stream_prepares_its_frames_in_the_reader_thread():
    """The engine's scheduled detection runs ahead in a live stream's reader thread, as for files
    (it overlaps the analysis of earlier frames: bench/live_latency.py), and an error raised there
    reaches the consumer instead of ending the stream quietly."""
    import threading

    url, sender = _tcp_stream(8)
    seen: list[tuple[int, str]] = []

    def prepare(fr):
        seen.append((fr.index, threading.current_thread().name))
        fr.detections = "prepared"

    try:
        src = open_source(url, FrameSelector(), prepare=prepare, input_kind="live", max_frames=12)
        assert isinstance(src, StreamSource)
        frames = list(src)
    finally:
        sender.kill()
        sender.wait()
    assert len(frames) == 12 and all(fr.detections == "prepared" for fr in frames)
    assert {name for _i, name in seen} == {"mien-stream-reader"}

    url, sender = _tcp_stream(8)

    def broken(fr):
        raise RuntimeError("detector failed")

    try:
        with pytest.raises(RuntimeError, match="detector failed"):
            list(open_source(url, FrameSelector(), prepare=broken, input_kind="live", max_frames=12))
    finally:
        sender.kill()
        sender.wait()
