"""The analysis engine: frames in, per-face expression rows out.

For each analysed frame: find faces (full-frame detection every ``detect_every`` frames; on the
frames between, re-detect each tracked face in a small window around where its track predicts it,
which is several times cheaper and keeps fresh landmarks), give each face its anonymous track id,
align it to the expression model's crop framing, measure its quality, classify its expression
(batched across the frame's faces) unless it abstains, and smooth per track.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mien.alignment import align_faces
from mien.checkpoint import Checkpointer
from mien.detection import DETECTOR_NAME, DETECTOR_SHA256, Detections, FaceDetector
from mien.errors import InputError, MienError
from mien.expression import ExpressionModel
from mien.labels import EXPRESSIONS
from mien.manifest import build_manifest, now_iso
from mien.outputs import display
from mien.quality import QualityThresholds, assess
from mien.results import AnalysisResult, RowBuffer, concat, empty_frame
from mien.smoothing import ExpressionSmoother
from mien.sources import DEFAULT_MAX_PIXELS, Frame, FrameSelector, expand_inputs, is_stream, open_source
from mien.tracking import FaceTracker, TrackerConfig

_ROI_SIDE = 128  # input side of the local re-detection window
_ROI_SCORE = 0.3  # a face where a track predicts one needs less evidence (ByteTrack's insight)


@dataclass
class AnalysisOptions:
    """Every parameter of a run (recorded in the manifest)."""

    stride: int = 1
    fps: float | None = None
    score_threshold: float = 0.5
    min_detect_px: float = 8.0
    detector_max_side: int = 960
    detect_every: int = 3
    coarse_scan: bool = True
    fallback_detect: bool = True  # full-frame detection as soon as a tracked face is not re-found
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoothing_tau_s: float = 0.3
    model_card: str | None = None
    prior_strength: float | None = None  # class-prior strength; None: the model card's
    threads: int = 1
    # live sources
    max_frames: int | None = None
    max_seconds: float | None = None
    open_timeout_s: float = 10.0
    input_kind: str = "auto"  # http(s) URLs: "auto" probes file vs live stream; "file" / "live" force it
    # safety
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse frames/images larger than this before decoding
    checkpoint_s: float = 30.0  # CLI runs: flush finished rows to X.checkpoint/ at most this often

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ImageClassification:
    """Expression of the largest face in a still image (for audits)."""

    face_found: bool
    probs: np.ndarray | None
    logits: np.ndarray | None
    box: tuple[float, float, float, float] | None
    n_faces: int


class Analyzer:
    """Holds the models (loaded once) and analyses sources one after another."""

    def __init__(self, options: AnalysisOptions | None = None, model: ExpressionModel | None = None,
                 detector: FaceDetector | None = None) -> None:
        self.options = options or AnalysisOptions()
        o = self.options
        self.model = model or ExpressionModel.load(o.model_card, threads=o.threads)
        if o.prior_strength is not None:
            self.model = self.model.with_prior_strength(o.prior_strength)
        self.detector = detector or FaceDetector(
            score_threshold=o.score_threshold, min_face_px=o.min_detect_px,
            max_side=o.detector_max_side, threads=o.threads,
        )

    # ---------------------------------------------------------------- per frame
    def _redetect_tracked(self, img: np.ndarray, tracker: FaceTracker, time_s: float) -> Detections:
        """Detect each tracked face inside a window around its predicted box, in one batch."""
        pred = tracker.predicted_boxes(time_s)
        if len(pred) == 0:
            return Detections.empty()
        h, w = img.shape[:2]
        blobs, maps = [], []
        for x1, y1, x2, y2 in pred:
            side = 2.0 * max(x2 - x1, y2 - y1)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            s = _ROI_SIDE / side
            # affine: window (side x side centred on the face) -> ROI_SIDE square
            m = np.array([[s, 0, _ROI_SIDE / 2 - s * cx], [0, s, _ROI_SIDE / 2 - s * cy]], np.float32)
            roi = cv2.warpAffine(img, m, (_ROI_SIDE, _ROI_SIDE), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(104, 117, 127))
            blobs.append(roi)
            maps.append((s, cx, cy))
        batch = np.stack(blobs).astype(np.float32) - np.array([104.0, 117.0, 127.0], np.float32)
        loc, conf, landm = self.detector.session.run(None, {"input": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})
        boxes, scores, lms = [], [], []
        for i, (s, cx, cy) in enumerate(maps):
            det = self.detector._decode(loc[i], conf[i], landm[i], _ROI_SIDE, _ROI_SIDE, 1.0,
                                        score_threshold=min(_ROI_SCORE, self.detector.score_threshold))
            if len(det) == 0:
                continue
            # the face nearest the window centre is the tracked one
            centres = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2
            j = int(np.argmin(np.linalg.norm(centres - _ROI_SIDE / 2, axis=1) - det.scores * 10))
            off = np.array([cx - _ROI_SIDE / (2 * s), cy - _ROI_SIDE / (2 * s)], np.float32)
            boxes.append(det.xyxy[j].reshape(2, 2) / s + off)
            lms.append(det.landmarks[j] / s + off)
            scores.append(det.scores[j])
        if not boxes:
            return Detections.empty()
        xyxy = np.stack(boxes).reshape(-1, 4).astype(np.float32)
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        det = Detections(xyxy, np.asarray(scores, np.float32), np.stack(lms).astype(np.float32))
        if self.detector.min_face_px > 0:
            det = det[det.sizes >= self.detector.min_face_px]
        return det

    def analyze_frames(
        self,
        frames: Iterable[Frame],
        source: str,
        on_frame: Callable[[Frame, dict[str, Any]], None] | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Analyse a frame stream; returns (DataFrame, stats). Stops cleanly on Ctrl-C (or SIGTERM
        under :func:`mien.signals.graceful_stop`), keeping rows; with ``checkpoint``, finished rows
        are also flushed to disk as the run goes."""
        o = self.options
        tracker = FaceTracker(o.tracker)
        smoother = ExpressionSmoother(o.smoothing_tau_s)
        rows = RowBuffer()
        flushed: list[Any] = []  # row chunks already checkpointed
        last_index = -1
        S = self.model.input_size
        n_frames = n_faces = n_abstained = n_full_detect = 0
        latencies: list[float] = []
        interrupted = False
        since_detect = o.detect_every
        last_time = 0.0
        timing = dict.fromkeys(("detect", "track_align_quality", "expression", "smooth_rows"), 0.0)
        try:
            for fr in frames:
                img, t = fr.image, fr.time_s
                last_time = t
                t0 = time.perf_counter()
                if fr.detections is not None:  # detected ahead, in the decode thread
                    det = fr.detections
                    since_detect = 1
                    n_full_detect += 1
                elif since_detect >= o.detect_every or not tracker.active_tracks():
                    det = self.detector.detect(img)
                    since_detect = 1
                    n_full_detect += 1
                else:
                    det = self._redetect_tracked(img, tracker, t)
                    since_detect += 1
                    if o.fallback_detect and len(det) < len(tracker.active_tracks()):
                        # a face slipped out of its window: look at the whole frame at once
                        det = self.detector.detect(img)
                        since_detect = 1
                        n_full_detect += 1
                t1 = time.perf_counter()
                timing["detect"] += t1 - t0
                ids = tracker.update(det.xyxy, det.scores, t)
                keep = ids >= 0
                det, ids = det[keep], ids[keep]
                n = len(det)
                n_frames += 1
                cols: dict[str, Any] | None = None
                if n:
                    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
                    crops = align_faces(gray, det.landmarks, S, self.model.template)
                    q = assess(det.xyxy, det.scores, det.landmarks, crops, o.quality)
                    t2 = time.perf_counter()
                    timing["track_align_quality"] += t2 - t1
                    probs = np.full((n, len(EXPRESSIONS)), np.nan)
                    ok = ~q.abstain
                    if ok.any():
                        probs[ok] = self.model.predict_proba(crops[ok])
                    t1 = time.perf_counter()
                    timing["expression"] += t1 - t2
                    smooth = np.full_like(probs, np.nan)
                    for i in np.flatnonzero(ok):
                        smooth[i] = smoother.update(int(ids[i]), t, probs[i])
                    top = np.where(ok, np.nanargmax(np.where(ok[:, None], smooth, 0.0), axis=1), -1)
                    cols = {
                        "source": source,
                        "frame_index": fr.index,
                        "time_s": t,
                        "track_id": ids,
                        "x1": det.xyxy[:, 0], "y1": det.xyxy[:, 1], "x2": det.xyxy[:, 2], "y2": det.xyxy[:, 3],
                        "det_score": det.scores.astype(np.float64),
                    }
                    for k in range(5):
                        cols[f"lm{k}_x"] = det.landmarks[:, k, 0]
                        cols[f"lm{k}_y"] = det.landmarks[:, k, 1]
                    cols.update(face_px=q.face_px, sharpness=q.sharpness, yaw_deg=q.yaw_deg,
                                roll_deg=q.roll_deg, abstain=q.abstain, abstain_reason=q.reasons)
                    for j, lab in enumerate(EXPRESSIONS):
                        cols[f"prob_{lab}"] = probs[:, j]
                    for j, lab in enumerate(EXPRESSIONS):
                        cols[f"smooth_{lab}"] = smooth[:, j]
                    cols["top_label"] = [EXPRESSIONS[k] if k >= 0 else "" for k in top]
                    cols["top_prob"] = np.where(ok, smooth[np.arange(n), np.maximum(top, 0)], np.nan)
                    rows.add(cols)
                    timing["smooth_rows"] += time.perf_counter() - t1
                    n_faces += n
                    n_abstained += int(q.abstain.sum())
                latencies.append(time.perf_counter() - fr.arrival)
                last_index = fr.index
                if on_frame is not None:
                    on_frame(fr, cols or {})
                if checkpoint is not None and checkpoint.due():
                    chunk = rows.to_frame()
                    flushed.append(chunk)  # kept in memory first: an interrupted flush loses nothing
                    rows = RowBuffer()
                    checkpoint.flush(chunk, frames_analysed=n_frames, last_frame_index=last_index,
                                     last_time_s=last_time)
        except KeyboardInterrupt:
            interrupted = True
        lat = np.asarray(latencies) * 1000
        stats = {
            "analysed": n_frames,
            "duration_s": last_time,
            "last_frame_index": last_index,
            "faces": n_faces,
            "abstained": n_abstained,
            "full_frame_detections": n_full_detect,
            "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else None,
            "interrupted": interrupted,
            # main-thread time per analysed frame, by stage ("detect" excludes detections run
            # ahead in the decode thread)
            "stage_ms_per_frame": {k: round(v * 1000 / max(n_frames, 1), 3) for k, v in timing.items()},
        }
        return concat([*flushed, rows.to_frame()]), stats

    def classify_image(self, image_bgr: np.ndarray) -> ImageClassification:
        """Expression of the largest face in ``image_bgr`` (None when no face is found)."""
        det = self.detector.detect(image_bgr)
        if len(det) == 0:
            return ImageClassification(False, None, None, None, 0)
        areas = (det.xyxy[:, 2:] - det.xyxy[:, :2]).prod(1)
        j = int(areas.argmax())
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        crop = align_faces(gray, det.landmarks[j : j + 1], self.model.input_size, self.model.template)
        logits = self.model.predict_logits(crop)[0]
        from mien.expression import softmax

        return ImageClassification(True, softmax(logits, self.model.temperature), logits,
                                   tuple(float(v) for v in det.xyxy[j]), len(det))

    def _scheduled_detection(self) -> Callable[[Frame], None]:
        """Full-frame detection on every ``detect_every``-th analysed frame, run in the decode
        thread so that it overlaps the analysis of earlier frames (ONNX Runtime releases the GIL:
        decode + detection use one core while tracking + expression use the other)."""
        every = self.options.detect_every
        state = {"count": 0, "last_fine": -1e9, "min_face": 0.0}

        def prepare(fr: Frame) -> None:
            if state["count"] % every == 0:
                # Coarse scan: when every face seen at the last scan was large, a half-size frame
                # finds them as well at a quarter of the cost. A full-size scan still runs at least
                # once a second, so small faces entering the scene are found.
                h, w = fr.image.shape[:2]
                side = min(max(h, w), self.detector.max_side or max(h, w))
                coarse = (
                    self.options.coarse_scan
                    and state["min_face"] >= 96
                    and fr.time_s - state["last_fine"] < 1.0
                )
                det = self.detector.detect(fr.image, max_side=side // 2 if coarse else None)
                if not coarse:
                    state["last_fine"] = fr.time_s
                state["min_face"] = float(det.sizes.min()) if len(det) else 0.0
                fr.detections = det
            state["count"] += 1

        return prepare

    # ---------------------------------------------------------------- per source
    def model_records(self) -> list[dict[str, Any]]:
        return [
            {"role": "face_detector", "name": DETECTOR_NAME, "sha256": DETECTOR_SHA256},
            {"role": "expression", "name": self.model.name, "sha256": self.model.sha256,
             "temperature": self.model.temperature, "prior_strength": self.model.prior_strength},
        ]

    def analyze_source(
        self,
        spec: str | int,
        progress: bool = False,
        annotate: str | Path | None = None,
        blur_faces: bool = False,
        checkpoint: str | Path | None = None,
    ) -> AnalysisResult:
        """Analyse one source. ``checkpoint``: the output path whose ``.checkpoint/`` folder gets
        the finished rows every ``checkpoint_s`` seconds (see :mod:`mien.checkpoint`)."""
        o = self.options
        started = now_iso()
        selector = FrameSelector(o.stride, o.fps)
        if is_stream(spec):
            # build both ONNX sessions before the stream starts, so the first frames do not queue
            self.detector.session, self.model.session  # noqa: B018
        src = open_source(spec, selector, prepare=self._scheduled_detection(), max_pixels=o.max_pixels,
                          input_kind=o.input_kind, open_timeout=o.open_timeout_s, max_frames=o.max_frames,
                          max_seconds=o.max_seconds)
        live = not hasattr(src, "_packets_decoded") and is_stream(spec)
        source = display(str(spec))
        bar = None
        writer = None
        on_frame = None
        if progress:
            from tqdm import tqdm

            total = src.stats.expected_frames
            if total and (o.stride > 1 or o.fps):
                total = None
            bar = tqdm(total=total, unit="frame", desc=Path(source).name[:30], file=sys.stderr,
                       dynamic_ncols=True, leave=False)
        if annotate is not None:
            from mien.annotate import AnnotatedVideoWriter, draw

            writer = AnnotatedVideoWriter(annotate, (src.stats.fps or 30.0) / max(o.stride, 1))

        def on_frame(fr: Frame, cols: dict[str, Any]) -> None:  # noqa: F811
            if bar is not None:
                bar.update(1)
            if writer is not None:
                if cols:
                    boxes = np.stack([cols["x1"], cols["y1"], cols["x2"], cols["y2"]], 1)
                    img = draw(fr.image, boxes, cols["track_id"], cols["top_label"], np.nan_to_num(cols["top_prob"]), blur_faces)
                else:
                    img = fr.image
                writer.write(img, fr.time_s)

        ckpt = Checkpointer(checkpoint, source, o.checkpoint_s) if checkpoint is not None and o.checkpoint_s > 0 else None
        ok = False
        try:
            df, stats = self.analyze_frames(iter(src), source, on_frame, checkpoint=ckpt)
            ok = True
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                if ok:
                    writer.close()
                else:
                    writer.abort()
        s = src.stats
        stats = {
            "decoded": s.decoded, "analysed": stats.pop("analysed"), **stats,
            "dropped": s.dropped, "lost": s.lost, "damaged_packets": s.damaged_packets,
            "expected": s.expected_frames, "fps": s.fps,
            "width": s.width, "height": s.height, "rotation": s.rotation, "codec": s.codec,
            "read_as": "live" if live else "file",
        }
        if ckpt is not None:
            stats["checkpoint"] = {"interval_s": ckpt.interval_s, "parts": ckpt.parts}
        if s.decoded == 0 and not stats["interrupted"]:
            if ckpt is not None:
                ckpt.finish()
            what = "no frame arrived" if live else "the video stream holds no decodable frame"
            extra = f" ({'; '.join(s.warnings)})" if s.warnings else ""
            raise InputError(f"{source}: {what}{extra}; nothing to analyse")
        warnings = list(s.warnings)
        if s.dropped:
            warnings.append(f"{source}: {s.dropped} of {s.decoded} decoded frames dropped to keep up with the "
                            "live stream (use --input-kind file for a file served over HTTP)")
        if stats["interrupted"]:
            warnings.append(f"{source}: interrupted; results cover the frames analysed before the stop")
        incomplete = bool(warnings) or s.lost > 0 or s.dropped > 0
        manifest = build_manifest(
            source=str(spec), parameters=o.to_dict(), models=self.model_records(), stats=stats,
            started=started, warnings=warnings,
            status="interrupted" if stats["interrupted"] else ("partial" if incomplete else "complete"),
        )
        result = AnalysisResult(df, manifest)
        result.checkpoint = ckpt
        return result


def analyze(
    source: str | Path | int,
    *,
    progress: bool = False,
    annotate: str | Path | None = None,
    blur_faces: bool = False,
    **options: Any,
) -> AnalysisResult:
    """Analyse a video file, an image, a folder of them, a webcam index or a stream URL.

    Keyword options are the fields of :class:`AnalysisOptions` (``stride``, ``fps``,
    ``score_threshold``, ``detect_every``, ``smoothing_tau_s``, ``model_card``, ...), plus
    ``quality=QualityThresholds(...)``. A folder is analysed file by file; a file that fails is
    recorded in ``result.failures`` and the others go on.
    """
    try:
        opts = AnalysisOptions(**options)
    except TypeError as exc:
        raise InputError(f"unknown analysis option: {exc}") from None
    analyzer = Analyzer(opts)
    specs = expand_inputs(source)
    if len(specs) == 1:
        return analyzer.analyze_source(specs[0], progress=progress, annotate=annotate, blur_faces=blur_faces)
    results, failures, manifests = [], [], []
    for spec in specs:
        try:
            r = analyzer.analyze_source(spec, progress=progress)
            results.append(r.frames)
            manifests.append(r.manifest)
        except MienError as exc:
            failures.append({"source": str(spec), "error": str(exc)})
    df = concat(results) if results else empty_frame()
    return AnalysisResult(df, {"sources": manifests}, failures)
