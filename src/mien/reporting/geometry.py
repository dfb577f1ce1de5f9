"""A track's head-pose and face-geometry timelines for the HTML report.

Drawn only where the results table has the columns the geometry stage writes (``pose_*``,
``mesh_score``, ``geo_*``; docs/geometry.md): a table made with ``--no-geometry`` gets no such
block, not an empty one. Values are drawn only on rows where the mesh found a face
(``mesh_score`` >= :data:`mien.quality.MIN_MESH_SCORE`, the threshold the ``profile`` gate uses
too): below it the mesh's pose and points are not trusted, so the line breaks there instead of
showing numbers nobody should read. Abstained frames are shaded grey as in the expression chart.

The measures are grouped by face region, three charts of a few lines each, so every line stays
readable; with ``geo_*_delta`` in the table (a finished run), they show the change from the
track's own baseline (faces differ at rest), and the absolute values follow in a folded part.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from mien.quality import MIN_MESH_SCORE
from mien.reporting.svg import Chart, Series, line_chart, nice_top

POSE_LINES: tuple[tuple[str, str, str], ...] = (
    ("pose_yaw_deg", "yaw", "#0072b2"),
    ("pose_pitch_deg", "pitch", "#d55e00"),
    ("pose_roll_deg", "roll", "#009e73"),
)

#: Measure lines (colour-vision friendly) reused in every region chart.
_LINE_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")


@dataclass(frozen=True)
class Region:
    title: str
    slug: str
    measures: tuple[str, ...]  # geo_<measure> names, without the geo_ prefix


REGIONS: tuple[Region, ...] = (
    Region("brows and eyes", "brows-eyes", ("brow_raise", "brow_lower", "eye_open")),
    Region("nose and upper lip", "nose", ("nose_wrinkle", "upper_lip_raise")),
    Region("mouth and jaw", "mouth", ("lip_corner_pull", "lip_corner_depress", "lip_stretch", "lip_press",
                                      "mouth_open", "jaw_drop")),
)


def has_geometry(frame: pd.DataFrame) -> bool:
    """Whether a results table carries the geometry stage's columns (it ran: not ``--no-geometry``)."""
    return "mesh_score" in frame.columns and (
        any(c in frame.columns for c, _, _ in POSE_LINES)
        or any(f"geo_{m}" in frame.columns for r in REGIONS for m in r.measures))


def value_range(values: Sequence[np.ndarray], *, symmetric: bool = False) -> tuple[float, float, tuple[float, ...]]:
    """A y range with round ends covering every finite value, and its ticks (low, middle, high).

    ``symmetric``: centred on 0 (angles, changes from a baseline), so the zero line is the middle tick.
    """
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if v.size]
    if not finite:
        return 0.0, 1.0, (0.0, 0.5, 1.0)
    lo = float(min(v.min() for v in finite))
    hi = float(max(v.max() for v in finite))
    if symmetric:
        top = nice_top(max(abs(lo), abs(hi)))
        return -top, top, (-top, 0.0, top)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    step = nice_top((hi - lo) / 2)
    lo, hi = round(math.floor(lo / step + 1e-9) * step, 9), round(math.ceil(hi / step - 1e-9) * step, 9)
    return lo, hi, (lo, (lo + hi) / 2, hi)


def _legend(names: Sequence[tuple[str, str]]) -> str:
    items = "".join(f'<span class="item"><span class="swatch" style="background:{colour}"></span>'
                    f"{escape(name)}</span>" for name, colour in names)
    return f'<div class="legend static" aria-hidden="true">{items}</div>'


def _chart(track_id: int, kind: str, title: str, series: list[Series], times: np.ndarray,
           x_range: tuple[float, float], spans: list[tuple[float, float]], break_gap: float,
           max_points: int, *, symmetric: bool, y_format: str, height: float = 120.0) -> str:
    """Title, legend and chart for the series that have a finite value; "" when none has."""
    series = [s for s in series if np.isfinite(s.values).any()]
    if not series:
        return ""
    lo, hi, ticks = value_range([s.values for s in series], symmetric=symmetric)
    svg = line_chart(Chart(x_range, (lo, hi), height=height, y_ticks=ticks), series, spans=spans,
                     max_points=max_points, break_gap=break_gap, css_class=kind,
                     aria_label=f"track {track_id}: {title} over time", y_format=y_format)
    return (f'<p class="chart-title">{escape(title)}</p>'
            + _legend([(s.name, s.colour) for s in series]) + svg)


def geometry_panel(track_id: int, trk: pd.DataFrame, x_range: tuple[float, float],
                   spans: list[tuple[float, float]], break_gap: float, max_points: int = 1000) -> str:
    """HTML for one track: a head-pose chart and per-region measure charts; "" without geometry
    columns; a one-line note when the mesh found the face on none of the track's rows.

    Each line keeps at most half of ``max_points`` (the expression timeline's budget): a track has
    up to 25 such lines, and a long video's report must stay a few megabytes."""
    if not has_geometry(trk):
        return ""
    max_points = max(max_points // 2, 50)
    times = trk["time_s"].to_numpy(float)
    trusted = trk["mesh_score"].to_numpy(float) >= MIN_MESH_SCORE
    heading = "<h5>Head pose and face geometry</h5>"
    if not trusted.any():
        return (f'<div class="geometry-panel">{heading}<p class="muted small">The face mesh found this face on '
                f"none of its frames (mesh_score below {MIN_MESH_SCORE:g}: small, dark, blurred or turned away), "
                "so no pose or geometry is drawn.</p></div>")
    intro = (f'{heading}<p class="small muted">From the face mesh '
             f"(docs/geometry.md), drawn where the mesh found the face (mesh_score ≥ {MIN_MESH_SCORE:g}: "
             f"{trusted.mean():.0%} of this track's frames); grey = expression abstained. The geo_* lines are "
             "distances between mesh points in inter-ocular distances, larger = more of the movement; they are "
             "geometry, not FACS coding, and say nothing about what anyone feels.</p>")

    def column(name: str) -> np.ndarray:
        return np.where(trusted, trk[name].to_numpy(float), np.nan)

    parts = [f'<div class="geometry-panel" id="geometry-track-{track_id}">', intro]
    pose = [Series(label, times, column(c), colour, f"s-{label}") for c, label, colour in POSE_LINES
            if c in trk.columns]
    parts.append(_chart(track_id, "pose", "Head pose, degrees (yaw > 0: turned towards the image's right; "
                        "pitch > 0: chin up; roll > 0: tilted clockwise)", pose, times, x_range, spans,
                        break_gap, max_points, symmetric=True, y_format="{:.0f}"))
    deltas = any(f"geo_{m}_delta" in trk.columns for r in REGIONS for m in r.measures)
    absolute: list[str] = []
    for region in REGIONS:
        present = [m for m in region.measures if f"geo_{m}" in trk.columns]
        colours = dict(zip(region.measures, _LINE_COLOURS, strict=False))
        raw = [Series(f"geo_{m}", times, column(f"geo_{m}"), colours[m], f"s-geo_{m}") for m in present]
        title = f"Face geometry, {region.title} (inter-ocular distances)"
        chart = _chart(track_id, "geometry", title, raw, times, x_range, spans, break_gap, max_points,
                       symmetric=False, y_format="{:g}")
        if not deltas:
            parts.append(chart)
            continue
        absolute.append(chart)
        change = [Series(f"geo_{m}_delta", times, column(f"geo_{m}_delta"), colours[m], f"s-geo_{m}_delta")
                  for m in present if f"geo_{m}_delta" in trk.columns]
        parts.append(_chart(track_id, "geometry", f"Face geometry, {region.title}: change from the track's "
                            "baseline (geo_*_delta, inter-ocular distances)", change, times, x_range, spans,
                            break_gap, max_points, symmetric=True, y_format="{:g}"))
    if any(absolute):
        parts.append("<details class=\"geometry-absolute\"><summary>absolute values (geo_*)</summary>"
                     + "".join(absolute) + "</details>")
    parts.append('<p class="small muted">Left and right measures (geo_*_left, geo_*_right) are in the results '
                 "table.</p></div>")
    return "".join(parts)
