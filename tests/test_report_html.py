"""The HTML report: self-contained, charts present and bounded in size, thumbnails blurred by default."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mien.errors import InputError
from mien.reporting import thumbs, write_report
from mien.reporting.svg import Chart, downsample
from mien.reporting.synthetic import demo_results, make_track
from mien.schema import RunManifest, SourceRun

EVENTS = pd.DataFrame(
    {"time_s": [2.0, 7.0, 12.0], "end_s": [np.nan, 9.0, np.nan], "label": ["question", "joke", "question"]}
)


def report(tmp_path: Path, results: object, **kw: object) -> str:
    out = write_report(results, tmp_path / "report.html", **kw)
    return out.read_text(encoding="utf-8")


def timelines(text: str) -> list[str]:
    return re.findall(r'<svg class="timeline".*?</svg>', text, flags=re.DOTALL)


def points_in(d: str) -> int:
    return sum(len(seg.split()) // 2 for seg in re.split(r"[ML]", d) if seg.strip())


def test_self_contained_offline_and_worded(tmp_path: Path) -> None:
    text = report(tmp_path, demo_results(duration_s=20.0, n_tracks=2), events=EVENTS)
    assert text.startswith("<!DOCTYPE html>")
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # only the SVG namespace, never fetched
    assert not re.search(r"<(link|iframe)\b|<script[^>]+src=|@import|url\(", text)
    assert "emotion" not in text.lower()
    assert "Barrett" in text and "expression" in text


def test_one_timeline_per_track_with_eight_lines_and_markers(tmp_path: Path) -> None:
    text = report(tmp_path, demo_results(duration_s=20.0, n_tracks=2), events=EVENTS)
    charts = timelines(text)
    assert len(charts) == 2
    for svg in charts:
        ds = re.findall(r'<path class="series s-(\w+)"[^>]* d="([^"]*)"', svg)
        assert sorted(label for label, _ in ds) == sorted(
            ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
        )
        assert all(d.startswith("M") and points_in(d) > 10 for _, d in ds)
        assert svg.count('<g class="event">') == 3
        assert svg.count('class="event-span"') == 1  # only the joke has an end_s
        assert svg.count('class="abstain"') == 1  # demo tracks abstain once, for 1.2 s
    assert text.count('class="legend"') == 2
    assert text.count('<svg class="share"') == 2 and text.count('<svg class="quality"') == 2


def test_abstained_span_is_shaded_where_it_happened(tmp_path: Path) -> None:
    times = np.round(np.arange(0, 10, 0.1), 6)
    abstain = (times >= 4.0) & (times < 6.0)
    frame = make_track("v.mp4", 1, times, {"happiness": 0.6}, abstain, fps=10)
    svg = timelines(report(tmp_path, frame))[0]
    ((x, w),) = [
        (float(a), float(b))
        for a, b in re.findall(
            r'class="abstain" x="([\d.]+)" y="[\d.]+" '
            r'width="([\d.]+)"',
            svg,
        )
    ]
    chart = Chart((0.0, 10.0), (0.0, 1.0))
    assert x == pytest.approx(float(chart.x(4.0)), abs=0.2)
    assert x + w == pytest.approx(float(chart.x(6.0)), abs=0.2)
    # Lines break over the abstention: two segments per series.
    d = re.search(r's-happiness"[^>]* d="([^"]*)"', svg).group(1)
    assert d.count("M") == 2


def test_long_video_is_downsampled_and_small(tmp_path: Path) -> None:
    frame = demo_results(duration_s=600.0, fps=30.0, n_tracks=3)
    spike = frame.index[(frame["track_id"] == 1) & (frame["time_s"].between(100.0, 100.02))]
    frame.loc[spike, "smooth_fear"] = 1.0
    text = report(tmp_path, frame, events=EVENTS)
    assert len(text.encode()) < 5_000_000
    for svg in timelines(text):
        for d in re.findall(r' d="([^"]*)"', svg):
            assert points_in(d) <= 1000
    fear = re.search(r's-fear"[^>]* d="([^"]*)"', timelines(text)[0]).group(1)
    ys = [float(v) for v in re.findall(r"[\d.]+ ([\d.]+)", fear)]
    assert min(ys) == pytest.approx(float(Chart((0, 1), (0, 1)).y(1.0)), abs=0.1)  # the peak survived


def test_downsample_keeps_extremes_and_gaps() -> None:
    t = np.arange(0, 100, 0.01)
    v = np.sin(t)
    v[5000] = 5.0
    v[7000:7100] = np.nan
    segs = downsample(t, v, (0, 100), max_points=400, break_gap=0.05)
    assert sum(len(s[0]) for s in segs) <= 400
    assert max(s[1].max() for s in segs) == 5.0
    assert len(segs) == 2


def test_no_face_video(tmp_path: Path) -> None:
    from mien.reporting.load import from_frame

    empty = from_frame(
        demo_results(duration_s=1.0).iloc[0:0],
        manifest=RunManifest(sources=[SourceRun(input={"path": "/v/no_face.mp4"},
                                                frames={"decoded": 98, "fps": 24, "analysed": 98})]),
    )
    text = report(tmp_path, empty)
    assert "found no face" in text and "no_face.mp4" in text and "analysed 98 frames" in text
    assert timelines(text) == []


def test_several_results_pool_into_one_report(tmp_path: Path) -> None:
    a = demo_results(source="first.mp4", duration_s=5.0, n_tracks=1)
    b = demo_results(source="second.mp4", duration_s=5.0, n_tracks=2)
    evs = pd.DataFrame({"time_s": [1.0, 3.0], "label": ["joke", "question"]})
    text = report(tmp_path, [a, b], events=evs)
    assert 'href="#src0"' in text and 'href="#src1"' in text
    assert len(timelines(text)) == 3
    assert re.search(r'<td class="key">joke</td><td>2</td>', text)  # pooled: the joke event in each of 2 videos


def test_html_is_escaped(tmp_path: Path) -> None:
    frame = demo_results(source="<script>alert(1)</script>.mp4", duration_s=2.0, n_tracks=1)
    text = report(tmp_path, frame)
    assert "<script>alert" not in text and "&lt;script&gt;" in text


def test_bad_inputs_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "nope.parquet", tmp_path / "r.html")
    bad = tmp_path / "events.csv"
    bad.write_text("when,what\n1,x\n")
    with pytest.raises(InputError, match="events file"):
        write_report(demo_results(duration_s=1.0), tmp_path / "r.html", events=bad)
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------------- thumbnails


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames at 10 fps; frame i is grey level 20 + 10 i with a fine checkerboard (+-30) in the box."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    yy, xx = np.mgrid[0:120, 0:160]
    checker = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 30, -30)
    inside = (xx >= 40) & (xx < 100) & (yy >= 30) & (yy < 90)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(20):
            level = 40 + 10 * i
            img = np.full((120, 160), level, dtype=np.int32) + np.where(inside, checker, 0)
            bgr = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _tiny_results(path: Path) -> pd.DataFrame:
    times = np.round(np.arange(20) / 10.0, 6)
    return make_track(str(path), 1, times, {"happiness": 0.7}, fps=10, box=(40.0, 30.0, 100.0, 90.0))


def _decode(uri: str) -> np.ndarray:
    import cv2

    raw = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE).astype(float)


def _sharpness(img: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(img, cv2.CV_64F).var())


@pytest.mark.parametrize("sequential", [True, False])
def test_thumbnails_come_from_the_right_frames(
    tiny_video: Path, sequential: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not sequential:
        monkeypatch.setattr(thumbs, "SEQUENTIAL_MAX_FRAMES", 0)  # force seeking by time
    frame = _tiny_results(tiny_video)
    got = thumbs.source_thumbnails(frame, str(tiny_video), per_track=3, blur=True)
    assert got.error is None
    pics = got.by_track[1]
    assert len(pics) == 3
    for pic in pics:
        expected = 40 + 10 * round(pic.time_s * 10)
        assert _decode(pic.data_uri).mean() == pytest.approx(expected, abs=6)


def test_thumbnails_blurred_by_default(tiny_video: Path, tmp_path: Path) -> None:
    frame = _tiny_results(tiny_video)
    blurred = report(tmp_path, frame)
    sharp = write_report(frame, tmp_path / "sharp.html", show_faces=True).read_text()
    uris_b = re.findall(r'<img src="(data:image/jpeg;base64,[^"]+)"', blurred)
    uris_s = re.findall(r'<img src="(data:image/jpeg;base64,[^"]+)"', sharp)
    assert len(uris_b) == len(uris_s) == 3
    for b, s in zip(uris_b, uris_s, strict=True):
        assert _sharpness(_decode(b)) < 0.05 * _sharpness(_decode(s))
    assert "blurred on purpose" in blurred and "blurred on purpose" not in sharp


def test_unreadable_source_is_reported_not_fatal(tmp_path: Path) -> None:
    frame = demo_results(source=str(tmp_path / "gone.mp4"), duration_s=2.0, n_tracks=1)
    text = report(tmp_path, frame)
    assert "not readable here" in text and len(timelines(text)) == 1
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    text = report(tmp_path, demo_results(source=str(broken), duration_s=2.0, n_tracks=1))
    assert "could not be decoded" in text and len(timelines(text)) == 1
