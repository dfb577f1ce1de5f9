"""The report's head-pose and face-geometry timelines, and the annotated video's mesh.

The real-clip tests run ``mien analyze`` and ``mien report`` as a user would and read the values
back out of the SVG paths (through the chart's own tick labels), so they fail when the section is
missing, when it draws another column, or when it draws the right column in the wrong place.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_video

from mien.reporting import write_report
from mien.reporting.synthetic import make_track

CLIP = "WolfgangLanger_Pexels.mp4"  # one frontal face throughout: the mesh finds it on every frame


def mien(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "mien", *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def charts(html: str, kind: str) -> list[str]:
    return re.findall(rf'<svg class="{kind}".*?</svg>', html, flags=re.DOTALL)


def series_points(svg: str, name: str) -> np.ndarray:
    """(x, y) pixel points of the line named ``name`` in one chart."""
    (d,) = re.findall(rf'data-series="{re.escape(name)}" d="([^"]*)"', svg)
    return np.array([[float(a), float(b)] for a, b in re.findall(r"(-?[\d.]+) (-?[\d.]+)", d)])


def to_data(svg: str, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel points back to (time, value), reading both axes off the chart's own tick labels."""
    y_ticks = [(float(y) - 3.5, float(v)) for y, v in  # a y label sits 3.5 px below its grid line
               re.findall(r'y="(-?[\d.]+)" text-anchor="end" class="tick">([-+\d.e]+)</text>', svg)]
    x_ticks = [(float(x), float(t)) for x, t in
               re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" class="tick">([\d.]+)s</text>', svg)]
    (y_a, v_a), (y_b, v_b) = y_ticks[0], y_ticks[-1]
    (x_a, t_a), (x_b, t_b) = x_ticks[0], x_ticks[-1]
    return (t_a + (pts[:, 0] - x_a) * (t_b - t_a) / (x_b - x_a),
            v_a + (pts[:, 1] - y_a) * (v_b - v_a) / (y_b - y_a))


@pytest.fixture(scope="module")
def clip_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clip analysed twice (geometry with the mesh drawn; --no-geometry), each reported."""
    video = shared_video(CLIP)
    out = tmp_path_factory.mktemp("geometry_report")
    paths: dict[str, Path] = {}
    for key, extra in (("geometry", ["--annotate-mesh"]), ("plain", ["--no-geometry"])):
        table, ann, html = out / f"{key}.parquet", out / f"{key}.mp4", out / f"{key}.html"
        mien("analyze", str(video), "--fps", "6", "-o", str(table), "--annotate", str(ann), "--quiet", *extra)
        mien("report", str(table), "-o", str(html))
        paths.update({f"{key}_table": table, f"{key}_video": ann, f"{key}_html": html})
    return paths


@pytest.mark.slow
def test_report_draws_the_real_pose_and_geometry_values(clip_runs: dict[str, Path]) -> None:
    table = pd.read_parquet(clip_runs["geometry_table"])
    html = clip_runs["geometry_html"].read_text(encoding="utf-8")
    assert (table["mesh_score"] >= 0.5).all()  # so every row is drawn
    (pose,) = charts(html, "pose")
    for column, name in (("pose_yaw_deg", "yaw"), ("pose_pitch_deg", "pitch"), ("pose_roll_deg", "roll")):
        t, v = to_data(pose, series_points(pose, name))
        assert len(v) == len(table)  # 118 points: below max_points, so none is binned away
        np.testing.assert_allclose(t, table["time_s"], atol=0.02)
        np.testing.assert_allclose(v, table[column], atol=0.2, err_msg=column)  # 0.1 px of a ±50° axis
    geometry = charts(html, "geometry")
    assert len(geometry) == 6  # three regions: changes from the baseline, then absolute values
    drawn = {}
    for svg in geometry:
        for name in re.findall(r'data-series="([\w]+)"', svg):
            drawn[name] = to_data(svg, series_points(svg, name))[1]
    measures = ["brow_raise", "brow_lower", "eye_open", "nose_wrinkle", "upper_lip_raise", "lip_corner_pull",
                "lip_corner_depress", "lip_stretch", "lip_press", "mouth_open", "jaw_drop"]
    assert sorted(drawn) == sorted([f"geo_{m}" for m in measures] + [f"geo_{m}_delta" for m in measures])
    for name, values in drawn.items():
        span = float(np.ptp(table[name]))
        np.testing.assert_allclose(values, table[name], atol=max(0.01 * span, 2e-3), err_msg=name)
    assert "Head pose and face geometry" in html and "not FACS coding" in html


@pytest.mark.slow
def test_no_geometry_table_reports_without_geometry_section(clip_runs: dict[str, Path]) -> None:
    table = pd.read_parquet(clip_runs["plain_table"])
    assert not any(c.startswith(("geo_", "pose_", "mesh_")) for c in table.columns)
    html = clip_runs["plain_html"].read_text(encoding="utf-8")
    assert charts(html, "timeline") and charts(html, "quality")  # the rest of the report is there
    assert not charts(html, "pose") and not charts(html, "geometry")
    assert "geometry-panel" not in html and "Head pose" not in html and "lacks column" not in html


@pytest.mark.slow
def test_annotated_video_draws_the_mesh_with_annotate_mesh(clip_runs: dict[str, Path]) -> None:
    import av

    table = pd.read_parquet(clip_runs["geometry_table"])

    def frames(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]

    meshed, plain = frames(clip_runs["geometry_video"]), frames(clip_runs["plain_video"])
    assert len(meshed) == len(plain) == len(table)
    inside, outside = [], []
    for k in range(0, len(table), 20):  # the two videos differ by the mesh only: inside the face box
        x1, y1, x2, y2 = (int(v) for v in table.loc[k, ["x1", "y1", "x2", "y2"]])
        diff = np.abs(meshed[k].astype(int) - plain[k].astype(int)).max(axis=-1) > 40
        box = np.zeros(diff.shape, bool)
        box[y1 + 6:y2 - 6, x1 + 6:x2 - 6] = True
        inside.append(diff[box].mean())
        far = np.ones(diff.shape, bool)
        far[max(y1 - 60, 0):y2 + 60, max(x1 - 60, 0):x2 + 60] = False
        outside.append(diff[far].mean())
    assert min(inside) > 0.05, inside  # mesh triangles cover the face
    assert max(outside) < 0.002, outside  # and nothing else changed


def _synthetic_geometry(frame: pd.DataFrame, *, score: float = 0.9) -> pd.DataFrame:
    t = frame["time_s"].to_numpy()
    return frame.assign(pose_yaw_deg=30 * np.sin(t), pose_pitch_deg=-5.0, pose_roll_deg=2.0,
                        mesh_score=np.where(t < 5, score, 0.1), geo_mouth_open=0.1 + 0.05 * np.cos(t))


def test_geometry_panel_draws_trusted_rows_only_and_is_absent_without_columns(tmp_path: Path) -> None:
    times = np.round(np.arange(0, 10, 0.1), 6)
    base = make_track("v.mp4", 1, times, {"happiness": 0.6}, fps=10)
    html = write_report(_synthetic_geometry(base), tmp_path / "g.html").read_text(encoding="utf-8")
    (pose,) = charts(html, "pose")
    t, yaw = to_data(pose, series_points(pose, "yaw"))
    assert len(t) == 50 and t.max() < 5.0  # rows with mesh_score < 0.5 are not drawn
    np.testing.assert_allclose(yaw, 30 * np.sin(times[:50]), atol=0.1)
    (geo,) = charts(html, "geometry")  # no _delta columns: one chart of absolute values, one region
    np.testing.assert_allclose(to_data(geo, series_points(geo, "geo_mouth_open"))[1],
                               0.1 + 0.05 * np.cos(times[:50]), atol=1e-3)
    assert "50% of this track's frames" in html
    plain = write_report(base, tmp_path / "p.html").read_text(encoding="utf-8")
    assert "geometry-panel" not in plain and not charts(plain, "pose")
    lost = write_report(_synthetic_geometry(base, score=0.2), tmp_path / "l.html").read_text(encoding="utf-8")
    assert "found this face on none" in lost and not charts(lost, "pose")


def test_long_video_geometry_lines_are_binned_and_small(tmp_path: Path) -> None:
    from mien.reporting.geometry import REGIONS
    from mien.reporting.synthetic import demo_results

    frame = demo_results(duration_s=600.0, fps=30.0, n_tracks=1)
    rng = np.random.default_rng(0)
    geo = {f"geo_{m}": rng.normal(0.3, 0.05, len(frame)) for r in REGIONS for m in r.measures}
    geo.update({f"{k}_delta": v - 0.3 for k, v in list(geo.items())})
    frame = _synthetic_geometry(frame, score=0.9).assign(mesh_score=0.9, **geo)
    text = write_report(frame, tmp_path / "long.html").read_text(encoding="utf-8")
    lines = [d for kind in ("pose", "geometry") for svg in charts(text, kind)
             for d in re.findall(r'data-series="[\w]+" d="([^"]*)"', svg)]
    assert len(lines) == 3 + 2 * 11
    assert all(0 < len(re.findall(r"(-?[\d.]+) (-?[\d.]+)", d)) <= 500 for d in lines)
    assert len(text.encode()) < 2_000_000
