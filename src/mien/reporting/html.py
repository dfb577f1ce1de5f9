"""``mien report``: one self-contained, offline HTML report from one or several results files.

The report is meant as evidence: someone who was not at the analysis must be able to see what
was run (the manifest), what was measured per face track and when, where the model abstained,
and how strong the claims are (episodes with explicit thresholds, event means with bootstrap
CIs). Everything is inlined -- SVG charts drawn in Python, a few lines of our own JavaScript for
toggling lines, JPEG thumbnails as data URIs -- so the file opens offline and never phones home.

It describes facial *expressions* only, with a caveat on what they do not reveal.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mien._version import __version__
from mien.htmlkit import facts, fmt, page, table
from mien.labels import EXPRESSIONS
from mien.reporting.episodes import dominant_labels, find_episodes, frame_interval
from mien.reporting.events import (
    DEFAULT_WINDOW,
    EventStats,
    Window,
    event_responses,
    events_for_source,
    load_events,
    summarise_events,
    unmatched_event_sources,
)
from mien.reporting.geometry import geometry_panel
from mien.reporting.load import Results, load_many
from mien.reporting.params import EpisodeParams, ReportOptions
from mien.reporting.svg import (
    COLOURS,
    Chart,
    Marker,
    Series,
    format_time,
    line_chart,
    nice_top,
    share_bar,
)
from mien.reporting.thumbs import SourceThumbs, source_thumbnails
from mien.schema import RunManifest

CAVEAT = (
    "mien measures facial <em>expressions</em>: configurations of the face (a smile, raised brows) "
    "as a model trained on FER+ annotations labels them. Facial configurations do not reliably "
    "reveal what a person feels: the same feeling shows in many configurations and the same "
    "configuration goes with many feelings, varying across people, cultures and situations "
    "(Barrett, Adolphs, Marsella, Martinez &amp; Pollak, 2019, <cite>Psychological Science in the "
    "Public Interest</cite> 20(1), 1–68). Read these numbers as a description of faces on screen, not of "
    "anyone's inner state, intent, honesty or character. Track numbers are anonymous and are not "
    "identities; the model's accuracy varies with image quality, pose and the people filmed."
)


# --------------------------------------------------------------------------------------------- helpers


def _fmt(value: Any) -> str:
    return fmt(value, 2)


def _table(frame: pd.DataFrame, css_class: str = "data", formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            form = formats.get(col)
            if form and isinstance(value, (int, float)) and math.isfinite(float(value)):
                cells.append(escape(form.format(value)))
            else:
                cells.append(_fmt(value))
        rows.append(cells)
    return table([str(c) for c in frame.columns], rows, css_class=css_class)


def _legend() -> str:
    items = "".join(
        f'<button type="button" class="key" data-label="{label}" aria-pressed="true">'
        f'<span class="swatch" style="background:{COLOURS[label]}"></span>{label}</button>'
        for label in EXPRESSIONS)
    return (f'<div class="legend" role="group" aria-label="legend: click to hide or show a line">{items}'
            '<span class="key-note"><span class="swatch abst"></span>abstained</span></div>')


def _flatten(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    if isinstance(obj, dict) and depth < 2:
        out: list[tuple[str, str]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        return out
    if isinstance(obj, (dict, list)):
        text = json.dumps(obj, ensure_ascii=False, default=str)
    else:
        text = str(obj)
    if len(text) > 300:
        text = text[:297] + "…"
    return [(prefix, text)]


def _manifest_summary(manifest: RunManifest) -> list[tuple[str, str]]:
    """The fields a reader checks first: version, input fingerprint, models, parameters, counts."""
    out: list[tuple[str, str]] = [("mien", f"{manifest.mien_version} · run {manifest.status}")]
    many = len(manifest.sources) > 1
    for run in manifest.sources:
        inp = run.input
        text = str(inp.get("path", ""))
        if inp.get("size_bytes") is not None:
            text += f" · {inp['size_bytes']:,} bytes"
        if inp.get("sha256_first_mib"):
            text += f" · SHA-256 of first MiB {str(inp['sha256_first_mib'])[:16]}…"
        out.append(("input", text + (f" · {run.status}" if many else "")))
    if manifest.models:
        descr = []
        for m in manifest.models:
            sha = str(m.get("sha256", ""))[:12]
            descr.append(f"{m.get('role', 'model')}: {m.get('name', '?')}" + (f" (sha256 {sha}…)" if sha else ""))
        out.append(("models", "; ".join(descr)))
    if manifest.parameters:
        flat = [f"{k}={v}" for k, v in _flatten(manifest.parameters) if v not in ("None", "")]
        out.append(("parameters", ", ".join(flat)))
    if manifest.started or manifest.finished:
        out.append(("run", f"{manifest.started or '?'} → {manifest.finished or '?'}"))
    for run in manifest.sources:
        frames = run.frames
        counts = [f"{frames[k]} {k}" for k in ("decoded", "analysed", "faces", "abstained") if k in frames]
        if counts:
            out.append(("frames", ", ".join(counts)))
        video = []
        if frames.get("width") and frames.get("height"):
            video.append(f"{frames['width']}×{frames['height']}")
        if isinstance(frames.get("fps"), (int, float)):
            video.append(f"{frames['fps']:.3f} fps")
        if frames.get("codec"):
            video.append(str(frames["codec"]))
        if frames.get("rotation"):
            video.append(f"rotated {frames['rotation']}°")
        if video:
            out.append(("video", " · ".join(video)))
    for failure in manifest.failures:
        out.append(("failed", f"{failure.get('source', '?')}: {failure.get('error', '')}"))
    return out


def _spans_of(mask: np.ndarray, times: np.ndarray, dt: float) -> list[tuple[float, float]]:
    """Time spans covered by runs of True in ``mask`` (each frame lasting ``dt``)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1) + 1
    return [(float(times[run[0]]), float(times[run[-1]] + max(dt, 1e-3))) for run in np.split(idx, cuts)]


def _merge_spans(spans: list[tuple[float, float]], min_gap: float, limit: int = 400) -> list[tuple[float, float]]:
    """Merge spans closer than ``min_gap`` when there are too many to draw (keeps files small)."""
    if len(spans) <= limit:
        return spans
    merged = [spans[0]]
    for a, b in spans[1:]:
        if a - merged[-1][1] <= min_gap:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _share(track: pd.DataFrame) -> tuple[dict[str, float], float]:
    """Share of the track's analysed frames per top expression, and the abstained share."""
    n = len(track)
    if n == 0:
        return {}, 0.0
    smooth = track[[f"smooth_{label}" for label in EXPRESSIONS]].to_numpy(float)
    abstain = track["abstain"].to_numpy(bool)
    dom = dominant_labels(smooth, abstain, 0.0)
    shares = {label: float((dom == i).sum()) / n for i, label in enumerate(EXPRESSIONS)}
    return shares, float(abstain.sum()) / n


# --------------------------------------------------------------------------------------------- sections


def _manifest_section(results: Sequence[Results]) -> str:
    parts = ['<section id="manifest"><h2>Run manifest</h2>']
    for i, res in enumerate(results):
        parts.append(f"<h3>{escape(res.name)}</h3>")
        if res.origin is not None:
            parts.append(f'<p class="muted">results file: <code>{escape(str(res.origin))}</code></p>')
        for w in res.warnings:
            parts.append(f'<p class="warn">⚠ {escape(w)}</p>')
        if not res.manifest:
            if res.origin is None:
                parts.append('<p class="warn">⚠ no run manifest came with these in-memory results; the '
                             "run's parameters and model are unknown.</p>")
            continue
        warnings = res.manifest.warnings
        if warnings:
            items = "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
            parts.append(f'<div class="warn"><b>Warnings recorded during the run</b><ul>{items}</ul></div>')
        summary = [(k, escape(v)) for k, v in _manifest_summary(res.manifest)]
        parts.append(facts(summary, css_class="kv", table_id=f"manifest-{i}"))
        fields = [(k, escape(v)) for k, v in _flatten(res.manifest.to_dict()) if not k.endswith("warnings")]
        full = escape(json.dumps(res.manifest.to_dict(), indent=2, ensure_ascii=False, default=str))
        parts.append(f"<details><summary>every manifest field</summary>{facts(fields, css_class='kv')}"
                     f"<pre>{full}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def _events_section(summary: pd.DataFrame | None, events: pd.DataFrame | None, options: ReportOptions,
                    notes: list[str]) -> str:
    if events is None:
        return ""
    window = ("each event's own span (time_s to end_s)" if options.window == "span"
              else f"[{options.window[0]:g}, {options.window[1]:g}) s after each event's onset")
    parts = ['<section id="events"><h2>Expressions after events</h2>',
             (f"<p>Mean smoothed probability of each expression over {escape(window)}, abstained frames "
             f"left out. Pooled: each event in each video first averages the tracks visible then; "
             f"95% bootstrap CIs resample events ({options.stats.n_boot} resamples, seed "
             f"{options.stats.seed}); n events counts each event once per video it applies to. No CI "
             "with fewer than 2 events, and with fewer than about 10 the CIs are too narrow: read them "
             "as rough.</p>")]
    parts += [f'<p class="warn">⚠ {escape(n)}</p>' for n in notes]
    if summary is None or not len(summary):
        parts.append("<p>No event window contained a measured (non-abstained) face.</p></section>")
        return "".join(parts)

    def pivot(rows: pd.DataFrame, keys: list[str]) -> str:
        head = "".join(f"<th>{escape(k)}</th>" for k in keys) + "<th>n events</th>" + "".join(
            f'<th><span class="swatch" style="background:{COLOURS[e]}"></span>{e}</th>' for e in EXPRESSIONS)
        body = []
        for key, grp in rows.groupby(keys, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            by_expr = grp.set_index("expression")
            best = by_expr["mean"].astype(float).idxmax() if by_expr["mean"].notna().any() else None
            cells = "".join(f'<td class="key">{_fmt(k)}</td>' for k in key)
            cells += f"<td>{int(grp['n_events'].iloc[0])}</td>"
            for e in EXPRESSIONS:
                r = by_expr.loc[e]
                ci = (f'<br><span class="ci">[{r["ci_low"]:.2f}, {r["ci_high"]:.2f}]</span>'
                      if math.isfinite(r["ci_low"]) else "")
                alpha = min(max(float(r["mean"]), 0.0), 1.0) if math.isfinite(r["mean"]) else 0.0
                style = f"background:rgba(230,159,0,{alpha * 0.55:.2f})"
                cls = ' class="best"' if e == best else ""
                cells += f'<td style="{style}"{cls}>{_fmt(float(r["mean"]))}{ci}</td>'
            body.append(f"<tr>{cells}</tr>")
        return f'<table class="data events"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'

    pooled = summary[summary["scope"] == "pooled"]
    parts.append("<h3>Event label × expression, pooled over tracks and videos</h3>")
    parts.append(pivot(pooled, ["event_label"]))
    per_track = summary[summary["scope"] == "track"]
    if len(per_track):
        parts.append("<details><summary>per track</summary>")
        parts.append(pivot(per_track, ["event_label", "source", "track_id"]))
        parts.append("</details>")
    parts.append("</section>")
    return "".join(parts)


def _track_card(src_id: str, track_id: int, trk: pd.DataFrame, x_range: tuple[float, float], dt: float,
                markers: list[Marker], thumbs: SourceThumbs, options: ReportOptions) -> str:
    times = trk["time_s"].to_numpy(float)
    abstain = trk["abstain"].to_numpy(bool)
    n = len(trk)
    first, last = float(times.min()), float(times.max()) + dt
    span_gap = (x_range[1] - x_range[0]) / 800
    spans = _merge_spans(_spans_of(abstain, times, dt), span_gap)
    break_gap = max(2.5 * dt, 1e-6) if dt > 0 else math.inf
    series = [Series(label, times, trk[f"smooth_{label}"].to_numpy(float), COLOURS[label], f"s-{label}")
              for label in EXPRESSIONS]
    timeline = line_chart(Chart(x_range, (0.0, 1.0)), series, spans=spans, markers=markers,
                          max_points=options.max_points, break_gap=break_gap, css_class="timeline",
                          aria_label=f"track {track_id}: smoothed expression probabilities over time")
    shares, abst_share = _share(trk)
    items = [f'<span class="swatch" style="background:{COLOURS[k]}"></span>{k} {v:.0%}'
             for k, v in sorted(shares.items(), key=lambda kv: -kv[1]) if v > 0]
    if abst_share > 0:
        items.append(f'<span class="swatch abst"></span>abstained {abst_share:.0%}')
    share_items = " · ".join(items)
    parts = [f'<div class="track" id="{src_id}-track-{track_id}">',
             (f"<h4>Track {track_id} <span class=\"muted\">{format_time(first)}–{format_time(last)} · "
             f"{n} analysed frames · {abst_share:.0%} abstained</span></h4>")]
    pics = thumbs.by_track.get(track_id, [])
    if pics:
        blurred = "" if options.show_faces else " blurred"
        figs = "".join(
            f'<figure><img src="{t.data_uri}" alt="face crop of track {track_id} at {format_time(t.time_s)}'
            f'{blurred}" width="96"><figcaption>{format_time(round(t.time_s, 2))}'
            f'{(" · " + escape(t.top_label)) if t.top_label else ""}</figcaption></figure>' for t in pics)
        note = ("" if options.show_faces else
                '<p class="muted small">Face crops are blurred on purpose; <code>--show-faces</code> '
                "shows them sharp.</p>")
        parts.append(f'<div class="thumbs">{figs}</div>{note}')
    if abstain.all():
        # Nothing was measured: an empty chart would only look like a rendering failure.
        parts.append('<p class="warn">⚠ mien abstained on every frame of this track (see the quality '
                     "panel for why): no expression was measured for it.</p>")
    else:
        parts.append('<p class="chart-title">Smoothed probability per expression</p>')
        parts.append(_legend())
        parts.append(timeline)
        parts.append('<p class="chart-title">Share of the track\'s analysed frames in which each expression '
                     "had the highest smoothed probability (abstained frames in grey)</p>")
        parts.append(share_bar(shares, abstained=abst_share))
        parts.append(f'<p class="shares small">{share_items}</p>')
    if "face_px" in trk.columns and np.isfinite(trk["face_px"].to_numpy(float)).any():
        px = trk["face_px"].to_numpy(float)
        top = nice_top(max(float(np.nanmax(px)), 10.0))
        quality = line_chart(Chart(x_range, (0.0, top), height=90.0, y_ticks=(0.0, top / 2, top)),
                             [Series("face size (px)", times, px, "#333", "s-face")], spans=spans,
                             max_points=options.max_points, break_gap=break_gap, css_class="quality",
                             aria_label=f"track {track_id}: face size and abstention over time",
                             y_format="{:.0f}")
        reasons = trk.loc[abstain, "abstain_reason"] if "abstain_reason" in trk.columns else pd.Series([])
        counts: dict[str, int] = {}
        for text in reasons:
            for r in str(text).split(";"):
                if r:
                    counts[r] = counts.get(r, 0) + 1
        why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        parts.append('<p class="chart-title">Quality: face size (shorter box side, px); '
                     "grey = abstained</p>")
        parts.append(quality)
        if why:
            parts.append(f'<p class="small muted">abstention reasons (frames): {escape(why)}</p>')
    parts.append(geometry_panel(track_id, trk, x_range, spans, break_gap, options.max_points))
    parts.append("</div>")
    return "".join(parts)


def _source_section(index: int, res: Results, source: str, events: pd.DataFrame | None,
                    episodes: pd.DataFrame, options: ReportOptions) -> str:
    src_id = f"src{index}"
    rows = res.frame[res.frame["source"] == source] if len(res.frame) else res.frame
    dt = frame_interval(rows["time_s"].to_numpy(float)) if len(rows) else 0.0
    duration = res.duration_s if len(res.sources()) == 1 else None
    end = max(duration or 0.0, (float(rows["time_s"].max()) + dt) if len(rows) else 0.0) or 1.0
    x_range = (0.0, end)
    parts = [f'<section class="source" id="{src_id}"><h2>Video: {escape(Path(source).name or source)}</h2>',
             f'<p class="muted">source <code>{escape(source)}</code> · results {escape(res.name)}</p>']
    if not len(rows):
        runs = res.manifest.sources if res.manifest else []
        runs = runs if len(runs) == 1 else [r for r in runs if r.path == source]
        analysed = runs[0].frames.get("analysed") if len(runs) == 1 else None
        counted = f"mien analysed {analysed} frames and " if analysed is not None else ""
        parts.append(f'<p class="empty">{counted}found no face in this video, so there is no expression to '
                     "report. (A negative control such as an animation should look like this.)</p></section>")
        return "".join(parts)
    markers: list[Marker] = []
    if events is not None:
        for ev in events_for_source(events, source).itertuples(index=False):
            end_s = float(ev.end_s) if isinstance(ev.end_s, float) and math.isfinite(ev.end_s) else None
            markers.append(Marker(float(ev.time_s), str(ev.label), end_s))
    sizes = rows.groupby("track_id").size().sort_values(ascending=False, kind="stable")
    spans = rows.groupby("track_id")["time_s"].agg(lambda t: float(t.max() - t.min()) + dt)
    eligible = [t for t in sizes.index if spans[t] >= options.min_track_s] or list(sizes.index)
    shown = sorted(eligible[: options.max_tracks])
    n_abst = int(rows["abstain"].sum())
    parts.append(f"<p>{len(sizes)} track(s), {len(rows)} face-frames analysed, {n_abst / len(rows):.0%} "
                 f"abstained; one analysed frame every {dt:.3g} s.</p>")
    # Track summary table.
    summary_rows = []
    for track_id, trk in rows.groupby("track_id", sort=True):
        shares, abst = _share(trk)
        top = max(shares, key=lambda k: shares[k]) if shares and max(shares.values()) > 0 else ""
        summary_rows.append({"track": int(track_id), "first_s": float(trk["time_s"].min()),
                             "last_s": float(trk["time_s"].max()), "frames": len(trk),
                             "abstained": f"{abst:.0%}",
                             "most frequent top expression": top or "– (all abstained)",
                             "share": f"{shares.get(top, 0.0):.0%}" if top else "–",
                             "timeline": "below" if int(track_id) in shown else "–"})
    parts.append(_table(pd.DataFrame(summary_rows), formats={"first_s": "{:.2f}", "last_s": "{:.2f}"}))
    if len(sizes) > len(shown):
        parts.append(f'<p class="muted">Timelines are drawn for the {len(shown)} longest tracks lasting at '
                     f"least {options.min_track_s:g} s (at most {options.max_tracks}); the other "
                     f"{len(sizes) - len(shown)} appear in the tables only.</p>")
    thumbs = source_thumbnails(rows, source, origin=res.origin, manifest=res.manifest,
                               per_track=options.thumbs_per_track, blur=not options.show_faces,
                               tracks=shown)
    if thumbs.error:
        parts.append(f'<p class="warn">⚠ {escape(thumbs.error)}.</p>')
    for track_id in shown:
        trk = rows[rows["track_id"] == track_id]
        parts.append(_track_card(src_id, int(track_id), trk, x_range, dt, markers, thumbs, options))
    eps = episodes[episodes["source"] == source].drop(columns=["source"]) if len(episodes) else episodes
    p = options.episodes
    parts.append(f'<h3 id="{src_id}-episodes">Expression episodes</h3>'
                 f'<p class="small muted">An episode: one expression has the highest smoothed probability, '
                 f"at least {p.threshold:g}, for at least {p.min_duration_s:g} s; gaps up to "
                 f"{p.max_gap_s:g} s (other expressions, abstentions, missed detections) are bridged but "
                 "never counted as evidence.</p>")
    if len(eps):
        table = _table(eps, formats={c: "{:.2f}" for c in ("onset_s", "apex_s", "apex_value", "offset_s",
                                                           "duration_s")})
        # A long video can have hundreds of episodes: fold them so the page stays navigable.
        parts.append(table if len(eps) <= 40 else
                     f"<details><summary>{len(eps)} episodes</summary>{table}</details>")
    else:
        parts.append("<p>No episode met these thresholds.</p>")
    parts.append("</section>")
    return "".join(parts)


_CSS = """
:root{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;background:#fff}
body{max-width:1040px;margin:0 auto;padding:12px 20px 60px;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h4{margin:.2em 0}.muted{color:#666}.small{font-size:.85em}code{font-size:.9em}
.caveat{background:#f6f3e8;border-left:4px solid #c9a227;padding:8px 12px;font-size:.92em}
.warn{background:#fff4f0;border-left:4px solid #d55e00;padding:4px 10px}
.empty{background:#f1f4f8;border-left:4px solid #0072b2;padding:8px 12px}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
thead th{background:#f5f5f5;position:sticky;top:0}
table.kv th{background:#fafafa;font-weight:500;white-space:nowrap}table.kv td{word-break:break-all}
table.events td{text-align:right;white-space:nowrap}table.events td.key{text-align:left}table.events td.best{font-weight:700}
.ci{color:#555;font-size:.85em}
.track{border:1px solid #e3e3e3;border-radius:6px;padding:8px 10px;margin:12px 0}
svg{width:100%;height:auto;display:block}
svg text.tick{font-size:10px;fill:#555}svg text.event-label{font-size:10px;fill:#333}
.chart-title{margin:.5em 0 .1em;font-size:.85em;color:#444}
.legend{display:flex;flex-wrap:wrap;gap:4px 10px;font-size:.8em;align-items:center}
.legend .key{border:1px solid #ddd;background:#fff;border-radius:3px;padding:1px 6px;cursor:pointer;font:inherit}
.legend .key[aria-pressed=false]{opacity:.35;text-decoration:line-through}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:3px;vertical-align:-1px}
.legend.static .item{white-space:nowrap}
h5{margin:.8em 0 .1em;font-size:.9em}
.swatch.abst{background:#9aa0a6;opacity:.6}
.thumbs{display:flex;gap:8px;flex-wrap:wrap}.thumbs figure{margin:0;font-size:.75em;color:#555;text-align:center}
.thumbs img{display:block;border-radius:4px;background:#eee}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:.8em;max-height:400px}
nav ul{columns:2;font-size:.9em}
"""
for _label in EXPRESSIONS:
    _CSS += f"body.hide-{_label} path.s-{_label}{{display:none}}\n"

_JS = """
document.addEventListener('click',function(e){
  var b=e.target.closest('button.key');if(!b)return;
  var label=b.getAttribute('data-label');var hidden=document.body.classList.toggle('hide-'+label);
  document.querySelectorAll('button.key[data-label="'+label+'"]').forEach(function(k){
    k.setAttribute('aria-pressed',hidden?'false':'true');});
});
"""


def build_report(results: Sequence[Results], events: pd.DataFrame | None = None,
                 options: ReportOptions | None = None) -> str:
    """Render the report for loaded results (and validated events) as one HTML string."""
    options = options or ReportOptions()
    notes: list[str] = []
    sources: list[tuple[int, Results, str]] = []
    for i, res in enumerate(results):
        for src in res.sources() or [res.name]:
            sources.append((i, res, src))
    names = [s for _, _, s in sources]
    if len(set(names)) < len(names):
        notes.append("the same source appears in more than one results file; their event windows are "
                     "pooled as one video")
    episodes = pd.concat([find_episodes(r.frame, options.episodes) for r in results], ignore_index=True)
    summary: pd.DataFrame | None = None
    if events is not None:
        unmatched = unmatched_event_sources(events, names)
        if unmatched:
            notes.append(f"events name source(s) not in this report: {', '.join(unmatched)}")
        responses = pd.concat([event_responses(r.frame, events, options.window) for r in results],
                              ignore_index=True)
        summary = summarise_events(responses, options.stats)
    title = options.title or ("mien expression report: " + ", ".join(
        Path(s).name or s for s in dict.fromkeys(names)) if names else "mien expression report")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<li><a href="#src{k}">{escape(Path(s).name or s)}</a></li>'
                  for k, (_, _, s) in enumerate(sources))
    body = [f"<h1>{escape(title)}</h1>",
            (f'<p class="muted">Generated {now} by mien {escape(__version__)} from '
            f"{len(results)} results file(s). Faces: {'shown' if options.show_faces else 'blurred'}.</p>"),
            f'<p class="caveat"><b>What this measures.</b> {CAVEAT}</p>',
            '<nav><b>Contents</b><ul><li><a href="#manifest">Run manifest</a></li>'
            + ('<li><a href="#events">Expressions after events</a></li>' if events is not None else "")
            + f"{nav}</ul></nav>"]
    if events is None:  # otherwise the notes are shown in the events section they concern
        body += [f'<p class="warn">⚠ {escape(n)}</p>' for n in notes]
    body.append(_manifest_section(results))
    body.append(_events_section(summary, events, options, notes))
    for k, (_, res, src) in enumerate(sources):
        body.append(_source_section(k, res, src, events, episodes, options))
    return page(title, "".join(body), css=_CSS, script=_JS)


def write_report(results_paths_or_frames: Any, out_path: str | Path, events: str | Path | pd.DataFrame | None = None,
                 show_faces: bool = False, *, window: Window = DEFAULT_WINDOW,
                 episodes: EpisodeParams | None = None, n_boot: int = 2000, seed: int = 0,
                 thumbs_per_track: int = 3, max_points: int = 1000, max_tracks: int = 24,
                 min_track_s: float = 1.0, title: str | None = None) -> Path:
    """Write one self-contained HTML report; return its path.

    ``results_paths_or_frames``: one or several results file paths, DataFrames in the results
    schema, or ``mien.analyze`` results (``to_pandas()``). ``events``: a CSV path or DataFrame with
    ``time_s[,end_s],label[,source]``. Raises :class:`mien.errors.InputError` on unusable input.
    """
    results = load_many(results_paths_or_frames)
    table = load_events(events) if events is not None else None
    options = ReportOptions(episodes=episodes or EpisodeParams(), window=window,
                            stats=EventStats(n_boot=n_boot, seed=seed), show_faces=show_faces,
                            thumbs_per_track=thumbs_per_track, max_points=max_points,
                            max_tracks=max_tracks, min_track_s=min_track_s, title=title)
    html_text = build_report(results, table, options)
    from mien.results import write_text_atomic

    return write_text_atomic(out_path, html_text)
