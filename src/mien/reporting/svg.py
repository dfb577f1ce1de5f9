"""Inline SVG charts drawn in Python, so a report is one file that works offline.

No plotting library and no CDN: a report must open on an air-gapped machine years from now and
show exactly what was measured. Long series are reduced to at most ``max_points`` points per
line by keeping each time bin's minimum and maximum (a brief peak stays visible, unlike plain
decimation), which keeps a 10-minute video's report to a few hundred kilobytes per track.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

from mien.htmlkit import svg_open
from mien.labels import EXPRESSIONS

#: One colour per expression (Okabe-Ito based, distinguishable with common colour-vision deficits).
COLOURS: dict[str, str] = {
    "neutral": "#7f7f7f",
    "happiness": "#e69f00",
    "surprise": "#56b4e9",
    "sadness": "#0072b2",
    "anger": "#d55e00",
    "disgust": "#009e73",
    "fear": "#cc79a7",
    "contempt": "#8c7a00",
}
ABSTAIN_FILL = "#9aa0a6"
EVENT_COLOUR = "#444"

MARGIN_LEFT = 44.0
MARGIN_RIGHT = 10.0
MARGIN_TOP = 16.0
MARGIN_BOTTOM = 22.0


@dataclass
class Series:
    """One line: ``values`` at ``times`` (NaN = no value there; the line breaks)."""

    name: str
    times: np.ndarray
    values: np.ndarray
    colour: str
    css_class: str = ""


@dataclass
class Marker:
    """An event: a dashed vertical line at ``time_s`` (and a band to ``end_s`` when given)."""

    time_s: float
    label: str
    end_s: float | None = None


@dataclass
class Chart:
    """Geometry shared by the charts: pixel box of the plot and the data ranges it shows."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: float = 960.0
    height: float = 170.0
    y_ticks: Sequence[float] = field(default_factory=lambda: (0.0, 0.5, 1.0))

    @property
    def plot_w(self) -> float:
        return self.width - MARGIN_LEFT - MARGIN_RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - MARGIN_TOP - MARGIN_BOTTOM

    def x(self, t: np.ndarray | float) -> np.ndarray | float:
        x0, x1 = self.x_range
        span = (x1 - x0) or 1.0
        return MARGIN_LEFT + (np.asarray(t, dtype=float) - x0) / span * self.plot_w

    def y(self, v: np.ndarray | float) -> np.ndarray | float:
        y0, y1 = self.y_range
        span = (y1 - y0) or 1.0
        clipped = np.clip(np.asarray(v, dtype=float), y0, y1)
        return MARGIN_TOP + (1.0 - (clipped - y0) / span) * self.plot_h


def _segments_raw(times: np.ndarray, values: np.ndarray, break_gap: float) -> list[np.ndarray]:
    """Index runs with finite values and no time gap wider than ``break_gap``."""
    ok = np.isfinite(values) & np.isfinite(times)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    cut = np.flatnonzero((np.diff(idx) > 1) | (np.diff(times[idx]) > break_gap)) + 1
    return np.split(idx, cut)


def downsample(times: np.ndarray, values: np.ndarray, x_range: tuple[float, float],
               max_points: int = 1000, break_gap: float = math.inf) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a series into drawable segments of at most ``max_points`` points in total.

    Segments break at NaN (abstained frames) and at time gaps wider than ``break_gap`` (the
    face was not detected), so a line never pretends to know values that were never measured.
    Above ``max_points`` the series is binned in time and each bin keeps its min and max.
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    segments = _segments_raw(times, values, break_gap)
    if sum(s.size for s in segments) <= max_points:
        return [(times[s], values[s]) for s in segments]
    n_bins = max(1, max_points // 2)
    x0, x1 = x_range
    span = (x1 - x0) or 1.0
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for seg in segments:
        t, v = times[seg], values[seg]
        bins = np.clip(((t - x0) / span * n_bins).astype(int), 0, n_bins - 1)
        starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
        ends = np.r_[starts[1:], t.size]
        pts_t: list[float] = []
        pts_v: list[float] = []
        for a, b in zip(starts, ends, strict=True):
            lo = a + int(np.argmin(v[a:b]))
            hi = a + int(np.argmax(v[a:b]))
            for k in sorted({lo, hi}):
                pts_t.append(float(t[k]))
                pts_v.append(float(v[k]))
        out.append((np.asarray(pts_t), np.asarray(pts_v)))
    return out


def path_d(chart: Chart, segments: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """SVG path data for the segments (one ``M`` per segment; one decimal keeps files small)."""
    parts: list[str] = []
    for t, v in segments:
        xs = np.round(np.asarray(chart.x(t)), 1)
        ys = np.round(np.asarray(chart.y(v)), 1)
        if xs.size == 1:  # a lone point: draw a short tick so it is visible
            parts.append(f"M{xs[0]:g} {ys[0]:g}h1.5")
            continue
        rest = " ".join(f"{x:g} {y:g}" for x, y in zip(xs[1:], ys[1:], strict=True))
        parts.append(f"M{xs[0]:g} {ys[0]:g}L{rest}")
    return "".join(parts)


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``: a y-axis top with a round half."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * base >= value - 1e-12:
            return m * base
    return 10.0 * base


def nice_step(span: float, target: int = 8) -> float:
    """A round tick step (1, 2, 5 x 10^k, or whole minutes) giving about ``target`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / target
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if step >= raw:
            return float(step)
    return float(3600 * math.ceil(raw / 3600))


def format_time(t: float) -> str:
    """``12.5s`` (to 0.01 s) below a minute, ``m:ss`` above: what a reader looks up in a player."""
    if abs(t) < 60:
        return f"{round(t, 2):g}s"
    minutes, seconds = divmod(round(t), 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


def _axes(chart: Chart, y_format: str = "{:g}") -> list[str]:
    out: list[str] = []
    x0, x1 = chart.x_range
    left, right = MARGIN_LEFT, chart.width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, chart.height - MARGIN_BOTTOM
    out.append(f'<rect class="frame" x="{left}" y="{top}" width="{chart.plot_w:.1f}" '
               f'height="{chart.plot_h:.1f}" fill="none" stroke="#ccc"/>')
    for yv in chart.y_ticks:
        y = float(chart.y(yv))
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{y + 3.5:.1f}" text-anchor="end" class="tick">'
                   f"{escape(y_format.format(yv))}</text>")
    step = nice_step(x1 - x0)
    t = math.ceil(x0 / step) * step
    while t <= x1 + 1e-9:
        x = float(chart.x(t))
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#999"/>'
                   f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle" class="tick">'
                   f"{format_time(round(t, 6))}</text>")
        t += step
    return out


def _spans(chart: Chart, spans: Sequence[tuple[float, float]], css_class: str, fill: str,
           opacity: float, title: str) -> list[str]:
    out: list[str] = []
    top = MARGIN_TOP
    for a, b in spans:
        xa, xb = float(chart.x(a)), float(chart.x(b))
        xa, xb = max(xa, MARGIN_LEFT), min(xb, chart.width - MARGIN_RIGHT)
        if xb <= xa:
            continue
        out.append(f'<rect class="{css_class}" x="{xa:.1f}" y="{top}" width="{max(xb - xa, 0.8):.1f}" '
                   f'height="{chart.plot_h:.1f}" fill="{fill}" fill-opacity="{opacity}">'
                   f"<title>{escape(title)} {format_time(a)}–{format_time(b)}</title></rect>")
    return out


def _markers(chart: Chart, markers: Sequence[Marker]) -> list[str]:
    out: list[str] = []
    top, bottom = MARGIN_TOP, chart.height - MARGIN_BOTTOM
    x_lo, x_hi = chart.x_range
    for m in markers:
        if m.time_s > x_hi or (m.end_s if m.end_s is not None else m.time_s) < x_lo:
            continue
        x = float(chart.x(m.time_s))
        tip = f"event {m.label} at {format_time(m.time_s)}"
        if m.end_s is not None and m.end_s > m.time_s:
            xe = float(chart.x(min(m.end_s, x_hi)))
            out.append(f'<rect class="event-span" x="{x:.1f}" y="{top}" width="{max(xe - x, 0.8):.1f}" '
                       f'height="{chart.plot_h:.1f}" fill="#f2d45c" fill-opacity="0.18"/>')
            tip += f" to {format_time(m.end_s)}"
        out.append(f'<g class="event"><title>{escape(tip)}</title>'
                   f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="{EVENT_COLOUR}" '
                   f'stroke-dasharray="3 3" stroke-width="1"/>'
                   f'<text x="{x + 2:.1f}" y="{top - 4}" class="event-label">{escape(m.label[:24])}</text></g>')
    return out


def line_chart(chart: Chart, series: Sequence[Series], *, spans: Sequence[tuple[float, float]] = (),
               markers: Sequence[Marker] = (), max_points: int = 1000, break_gap: float = math.inf,
               css_class: str = "chart", aria_label: str = "chart", y_format: str = "{:g}",
               span_title: str = "abstained", attrs: str = "") -> str:
    """An SVG line chart: shaded ``spans`` (abstention), lines, and event ``markers`` on top.

    ``attrs`` is extra, already escaped attribute text for the ``<svg>`` element.
    """
    parts = [svg_open(aria_label, viewbox=(chart.width, chart.height), css_class=css_class, attrs=attrs)]
    parts += _spans(chart, spans, "abstain", ABSTAIN_FILL, 0.35, span_title)
    parts += _axes(chart, y_format)
    for s in series:
        segments = downsample(s.times, s.values, chart.x_range, max_points, break_gap)
        d = path_d(chart, segments)
        if not d:
            continue
        parts.append(f'<path class="series {escape(s.css_class)}" data-series="{escape(s.name)}" d="{d}" '
                     f'fill="none" stroke="{s.colour}" stroke-width="1.4" stroke-linejoin="round">'
                     f"<title>{escape(s.name)}</title></path>")
    parts += _markers(chart, markers)
    parts.append("</svg>")
    return "".join(parts)


def share_bar(shares: dict[str, float], *, width: float = 960.0, height: float = 18.0,
              abstained: float = 0.0) -> str:
    """A 100 % stacked bar: share of the track's analysed frames per top expression (+ abstained)."""
    parts = [svg_open("share of time per expression", viewbox=(width, height), css_class="share")]
    x = 0.0
    items = [(label, shares.get(label, 0.0), COLOURS[label]) for label in EXPRESSIONS]
    items.append(("abstained", abstained, ABSTAIN_FILL))
    for label, share, colour in items:
        if share <= 0:
            continue
        w = share * width
        parts.append(f'<rect class="share-{label}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height:g}" '
                     f'fill="{colour}"><title>{label} {share:.0%}</title></rect>')
        x += w
    if x == 0:
        parts.append(f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#eee"/>')
    parts.append("</svg>")
    return "".join(parts)
