"""The analysis engine: frames in, one :class:`~mien.faces.Faces` record per frame out.

source → detect → track → align → quality → classify → smooth → results. For each analysed frame:
find faces (full-frame detection every ``detect_every`` frames; on the frames between, re-detect
each tracked face in a small window around where its track predicts it, which is several times
cheaper and keeps fresh landmarks, or, with geometry on, let the face mesh follow a large face,
framed as its last full detection: :mod:`mien.geometry.follow`), give each face its anonymous track id, align it to the
expression model's crop framing, measure its quality, classify its expression (batched across the
frame's faces) unless it abstains, and smooth per track. Every stage takes and returns ``Faces``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack, cast

import numpy as np

from mien.ahead import run_ahead
from mien.alignment import align_faces
from mien.checkpoint import Checkpointer
from mien.detection import FaceDetector
from mien.detector_weights import DETECTOR_NAME, DETECTOR_SHA256
from mien.errors import InputError, MienError
from mien.expression import ExpressionModel
from mien.faces import Faces
from mien.geometry.follow import MIN_FOLLOW_PX, Carried, FollowState, MeshFollower
from mien.geometry.mesh import FaceMesh
from mien.geometry.stage import CropFraming, LandmarkRows, add_track_deltas, measure_faces, run_meshes
from mien.geometry.stage import warm_up as warm_geometry
from mien.manifest import input_fingerprint, now_iso
from mien.memory import release_large_frames
from mien.options import AnalysisFields, AnalysisOptions
from mien.outputs import display
from mien.quality import MIN_MESH_SCORE, assess
from mien.results import AnalysisResult, RowBuffer, concat_columns, empty_columns
from mien.runtime import one_blas_thread, providers_for
from mien.schema import RunManifest, SourceRun, run_environment, table_columns
from mien.signals import protected_save
from mien.smoothing import ExpressionSmoother
from mien.sources import Frame, FrameSelector, expand_inputs, is_stream, open_source
from mien.stats import softmax
from mien.table import ColumnTable
from mien.tracking import FaceTracker

_AHEAD_FRAMES = 2  # frames the face-finding stage may run ahead of the expression stage
_STAGES = ("detect", "geometry", "track_align_quality", "expression", "smooth_rows")


@dataclass
class FrameResult:
    """One analysed frame: where it is in the source, its upright image and its faces, every
    column filled (tracked faces only)."""

    index: int
    time_s: float
    image: np.ndarray
    faces: Faces
    arrival: float  # time.perf_counter() when the frame left the decoder (latency = now - arrival)
    mesh_points: np.ndarray | None = None  # (n, 468, 3) frame pixels, when geometry ran


@dataclass
class ImageClassification:
    """Expression of the largest face in a still image (for audits)."""

    face_found: bool
    probs: np.ndarray | None
    logits: np.ndarray | None
    box: tuple[float, float, float, float] | None
    n_faces: int


@dataclass
class _RunCounts:
    """What the frame loop counts for a source's manifest."""

    frames: int = 0
    faces: int = 0
    abstained: int = 0
    full_detections: int = 0
    last_time: float = 0.0
    last_index: int = -1
    latencies: list[float] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_STAGES, 0.0))
    # the stages run ahead in threads of their own keep their own sums (no two threads add to one)
    ahead_timing: list[dict[str, float]] = field(default_factory=list)

    def stage_timing(self) -> dict[str, float]:
        """A new timing record for a stage that runs in a thread of its own."""
        self.ahead_timing.append(dict.fromkeys(_STAGES, 0.0))
        return self.ahead_timing[-1]

    def stats(self, interrupted: bool) -> dict[str, Any]:
        lat = np.asarray(self.latencies) * 1000
        return {
            "analysed": self.frames,
            "duration_s": self.last_time,
            "last_frame_index": self.last_index,
            "faces": self.faces,
            "abstained": self.abstained,
            "full_frame_detections": self.full_detections,
            "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else None,
            "interrupted": interrupted,
            # time per analysed frame, by stage, in the engine's two stage threads ("detect"
            # excludes detections run ahead in the decode thread; "track_align_quality" sums the
            # tracker's share of the first stage and alignment + quality in the second)
            "stage_ms_per_frame": {k: round((v + sum(t[k] for t in self.ahead_timing)) * 1000 / max(self.frames, 1), 3)
                                   for k, v in self.timing.items()},
        }


class Analyzer:
    """Holds the models (loaded once) and analyses sources one after another."""

    def __init__(self, options: AnalysisOptions | None = None, model: ExpressionModel | None = None,
                 detector: FaceDetector | None = None) -> None:
        self.options = options or AnalysisOptions()
        o = self.options
        release_large_frames()  # 4K frames: memory flat in video length (see mien.memory)
        providers_for(o.device)  # an unusable --device fails here, before any input is opened
        precision = o.precision if o.precision != "auto" else ("int8" if o.device == "cpu" else "float")
        self.model = model or ExpressionModel.load(o.model_card, threads=o.threads, precision=precision,
                                                   device=o.device)
        if o.prior_strength is not None:
            self.model = self.model.with_prior_strength(o.prior_strength)
        self.detector = detector or FaceDetector(
            score_threshold=o.score_threshold, min_face_px=o.min_detect_px,
            max_side=o.detector_max_side, threads=o.threads, device=o.device,
        )
        self.mesh = FaceMesh.load(threads=o.threads) if o.geometry else None
        self.last_landmarks: LandmarkRows | None = None  # the last source's mesh points (options.landmarks)
        # Build both ONNX sessions in the background: ONNX Runtime releases the GIL while it
        # loads and optimises a graph, so this overlaps what the caller does next (the CLI
        # imports pandas meanwhile, a video is opened); a first use waits on the model's lock.
        # Not a daemon: the interpreter waits for it at exit (at most the build's ~0.2 s), since
        # ONNX Runtime aborts the process ("terminate called without an active exception",
        # exit 134) when it is torn down mid-build, e.g. after a bad input's one-line error.
        threading.Thread(target=self._build_sessions, name="mien-sessions").start()

    def _build_sessions(self) -> None:
        nets: list[Any] = [self.detector, self.model] + ([self.mesh] if self.mesh is not None else [])
        for net in nets:
            try:
                net.session  # noqa: B018
            except Exception:  # noqa: BLE001 - the first real use raises it where it belongs
                pass
        run_environment()  # the manifest's, read once per process (~8 ms)
        if self.mesh is not None:
            try:
                warm_geometry()
            except Exception:  # noqa: BLE001 - as above
                pass

    # ---------------------------------------------------------------- per frame
    def process_frames(self, frames: Iterable[Frame], counts: _RunCounts | None = None) -> Iterator[FrameResult]:
        """Analyse a frame stream in time order, one :class:`FrameResult` per frame.

        Stages: :meth:`_find_faces` (detection, tracking), :meth:`_measure` (geometry, when on)
        and, here, alignment, quality, expression and smoothing. With ``options.overlap_stages``
        each stage before the last runs in its own thread a few frames ahead
        (:func:`mien.ahead.run_ahead`); the results are the same. Its default (None) overlaps
        them when geometry is on: bench/stages.py measured 1.1-1.3x then, and 0.8-0.95x for one
        face without geometry, whose stages are too short to gain from a thread each.
        numpy's BLAS runs on one thread until the stream ends (:func:`mien.runtime.one_blas_thread`)."""
        with one_blas_thread():
            yield from self._process_frames(frames, counts)

    def _process_frames(self, frames: Iterable[Frame], counts: _RunCounts | None) -> Iterator[FrameResult]:
        o = self.options
        counts = counts if counts is not None else _RunCounts()
        timing = counts.timing
        smoother = ExpressionSmoother(o.smoothing_tau_s)
        overlap = o.overlap_stages if o.overlap_stages is not None else self.mesh is not None
        follow = (FollowState(CropFraming(), MeshFollower())
                  if self.mesh is not None and o.mesh_tracking else None)
        found = self._find_faces(frames, counts.stage_timing(), follow)
        if overlap:
            found = run_ahead(found, maxsize=_AHEAD_FRAMES, name="mien-faces")
        measured: Iterator[tuple[Frame, Faces, np.ndarray | None, int]]
        if self.mesh is not None:
            measured = self._measure(found, counts.stage_timing())
            if overlap:
                measured = run_ahead(measured, maxsize=_AHEAD_FRAMES, name="mien-geometry")
        else:  # no mesh, nothing followed: the third item is None
            measured = cast("Iterator[tuple[Frame, Faces, np.ndarray | None, int]]", found)
        for fr, faces, points, full_detection in measured:
            img, t = fr.image, fr.time_s
            counts.last_time = t
            counts.frames += 1
            counts.full_detections += full_detection
            if len(faces):
                t1 = time.perf_counter()
                # from the BGR frame: only the pixels each crop samples are converted to gray
                crops = align_faces(img, faces.landmarks, self.model.input_size, self.model.template)
                faces = assess(faces, crops, o.quality)
                t2 = time.perf_counter()
                timing["track_align_quality"] += t2 - t1
                faces = self.model.classify(faces, crops)
                t3 = time.perf_counter()
                timing["expression"] += t3 - t2
                faces = smoother.smooth(faces, t)
                timing["smooth_rows"] += time.perf_counter() - t3
                counts.faces += len(faces)
                counts.abstained += int(faces.abstain.sum())
            counts.latencies.append(time.perf_counter() - fr.arrival)
            counts.last_index = fr.index
            yield FrameResult(fr.index, t, img, faces, fr.arrival, points)

    def _find_faces(self, frames: Iterable[Frame], timing: dict[str, float],
                    follow: FollowState | None = None) -> Iterator[tuple[Frame, Faces, Carried | None, int]]:
        """The first stage, per frame: (frame, its tracked faces with landmarks, the meshes this
        stage ran (with ``follow``, else None), how many full-frame detections ran for it (0 or 1)).

        With ``follow`` (mesh tracking), this stage runs the large faces' meshes itself, every
        frame: on a frame between full detections a large track whose previous mesh was trusted is
        found by its mesh instead of a window re-detection (:mod:`mien.geometry.follow`), and on a
        full detection's frame the large faces' meshes become the anchors the next frames follow."""
        o = self.options
        tracker = FaceTracker(o.tracker)
        since_detect, interval = 1 << 30, o.detect_every
        for fr in frames:
            img, t = fr.image, fr.time_s
            full = 1
            t0 = time.perf_counter()
            mesh_s = 0.0
            carried: Carried | None = None
            if fr.detections is not None:  # detected ahead, in the decode thread
                faces = fr.detections
                since_detect = 1
            elif since_detect >= interval or not tracker.active_tracks():
                faces = self.detector.detect(img)
                since_detect = 1
            else:
                boxes = tracker.predicted_boxes(t)
                windowed = np.ones(len(boxes), bool)
                followed = Faces.empty()
                if follow is not None:
                    tm = time.perf_counter()
                    followed, carried = self._follow(img, tracker, boxes, windowed, follow)
                    mesh_s = time.perf_counter() - tm
                found = self.detector.detect_windows(img, boxes[windowed]) if windowed.any() else Faces.empty()
                since_detect += 1
                full = 0
                if o.fallback_detect and len(found) < int(windowed.sum()):
                    # a face slipped out of its window: look at the whole frame at once
                    faces = self.detector.detect(img)
                    carried = None
                    since_detect = 1
                    full = 1
                else:
                    faces = Faces.merge([followed, found]) if len(followed) else found
            if full:  # the schedule the decode thread keeps, from the same detections
                interval = self._detect_interval(float(faces.sizes.min()) if len(faces) else 0.0)
            t1 = time.perf_counter()
            timing["detect"] += t1 - t0 - mesh_s
            faces = tracker.update(faces, t)
            tracked = faces.track_id >= 0
            if not tracked.all():  # weak detections that match no track
                faces = faces[tracked]
            t2 = time.perf_counter()
            timing["track_align_quality"] += t2 - t1
            if follow is not None:
                carried = self._large_meshes(img, faces, carried, follow, bool(full))
                timing["geometry"] += mesh_s + time.perf_counter() - t2
            yield fr, faces, carried, full

    def _follow(self, img: np.ndarray, tracker: FaceTracker, boxes: np.ndarray, windowed: np.ndarray,
                follow: FollowState) -> tuple[Faces, Carried | None]:
        """The faces the mesh finds at their tracks' predicted ``boxes`` (the active tracks', in
        order), for those it may follow; ``windowed`` is cleared for each face it found."""
        assert self.mesh is not None
        ids = np.array([tr.track_id for tr in tracker.active_tracks()], np.int64)
        can = follow.follower.followable(ids, follow.framing.tracks())
        if not can.any():
            return Faces.empty(), None
        sides, angles = follow.framing.sides_and_angles(ids[can])
        res = self.mesh.run(img, boxes[can], np.zeros((int(can.sum()), 5, 2)), sides=sides, angles=angles)
        ok = res.score >= MIN_MESH_SCORE
        windowed[np.flatnonzero(can)[ok]] = False  # the others (lost) are looked for in their windows
        carried = Carried(ids[can][ok], res.points[ok], res.score[ok])
        h, w = img.shape[:2]
        return follow.follower.faces_from(carried.track_ids, carried.points).clipped(w, h), carried

    def _large_meshes(self, img: np.ndarray, faces: Faces, carried: Carried | None, follow: FollowState,
                      full: bool) -> Carried | None:
        """The meshes of this frame's large faces (those followed already, the others run here),
        the framing of their next crops, and on a full detection's frame the anchors. Between full
        detections a large face whose previous mesh was not trusted (a profile) is left to the
        geometry stage, as a small one is: it cannot be followed before its next full detection."""
        assert self.mesh is not None
        large = faces.sizes >= follow.follower.min_face_px
        if not full and large.any():
            trusted = follow.framing.tracks()
            large &= np.array([int(t) in trusted for t in faces.track_id], bool)
        if not large.any():
            follow.framing.clear()
            follow.follower.clear()
            return None
        big = faces[large]
        points, score = run_meshes(self.mesh, img, big, follow.framing, carried)
        if full:
            follow.follower.anchor(big, points, score)
        return Carried(big.track_id.copy(), points, score)

    def _measure(self, found: Iterator[tuple[Frame, Faces, Carried | None, int]],
                 timing: dict[str, float]) -> Iterator[tuple[Frame, Faces, np.ndarray | None, int]]:
        """The geometry stage: each frame's faces with their mesh measures, and their mesh points
        (the meshes the face-finding stage carried are used as they are)."""
        assert self.mesh is not None
        framing = CropFraming()
        for fr, faces, carried, full in found:
            points = None
            t0 = time.perf_counter()
            if len(faces):
                faces, points = measure_faces(self.mesh, fr.image, faces, framing, carried)
            else:
                framing.clear()
            timing["geometry"] += time.perf_counter() - t0
            yield fr, faces, points, full

    def analyze_frames(
        self,
        frames: Iterable[Frame],
        source: str,
        on_frame: Callable[[FrameResult], None] | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Analyse a frame stream; returns (table as a DataFrame, stats). See :meth:`analyze_rows`."""
        table, stats = self.analyze_rows(frames, source, on_frame, checkpoint)
        return (table.to_pandas() if isinstance(table, ColumnTable) else table), stats

    def analyze_rows(
        self,
        frames: Iterable[Frame],
        source: str,
        on_frame: Callable[[FrameResult], None] | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Analyse a frame stream; returns (table, stats), the table as columns
        (:class:`~mien.table.ColumnTable`, no pandas needed). Stops cleanly on Ctrl-C (or SIGTERM
        under :func:`mien.signals.graceful_stop`), keeping rows; with ``checkpoint``, finished rows
        are also flushed to disk as the run goes."""
        counts = _RunCounts()
        rows = RowBuffer()
        self.last_landmarks = LandmarkRows() if self.options.landmarks and self.mesh is not None else None
        flushed: list[Any] = []  # row chunks already checkpointed
        interrupted = False
        try:
            for res in self.process_frames(frames, counts):
                if len(res.faces):
                    t0 = time.perf_counter()
                    rows.add(table_columns(res.faces, source=source, frame_index=res.index, time_s=res.time_s))
                    if self.last_landmarks is not None and res.mesh_points is not None:
                        self.last_landmarks.add(source, res.index, res.time_s, res.faces.track_id, res.mesh_points)
                    counts.timing["smooth_rows"] += time.perf_counter() - t0
                if on_frame is not None:
                    on_frame(res)
                if checkpoint is not None and checkpoint.due():
                    chunk = rows.to_table()
                    flushed.append(chunk)  # kept in memory first: an interrupted flush loses nothing
                    rows = RowBuffer()
                    checkpoint.flush(chunk, frames_analysed=counts.frames, last_frame_index=counts.last_index,
                                     last_time_s=counts.last_time)
        except KeyboardInterrupt:
            interrupted = True
        table = concat_columns([*flushed, rows.to_table()])
        if self.mesh is not None:
            table = add_track_deltas(table) if len(table) else empty_columns(geometry=True)
        return table, counts.stats(interrupted)

    def classify_image(self, image_bgr: np.ndarray) -> ImageClassification:
        """Expression of the largest face in ``image_bgr`` (None when no face is found)."""
        faces = self.detector.detect(image_bgr)
        if len(faces) == 0:
            return ImageClassification(False, None, None, None, 0)
        areas = (faces.xyxy[:, 2:] - faces.xyxy[:, :2]).prod(1)
        j = int(areas.argmax())
        crop = align_faces(image_bgr, faces.landmarks[j : j + 1], self.model.input_size, self.model.template)
        logits = self.model.predict_logits(crop)[0]
        x1, y1, x2, y2 = (float(v) for v in faces.xyxy[j])
        return ImageClassification(True, softmax(logits, self.model.temperature), logits,
                                   (x1, y1, x2, y2), len(faces))

    def _scheduled_detection(self) -> Callable[[Frame], None]:
        """Full-frame detection every :meth:`_detect_interval` analysed frames, run in the decode
        thread so that it overlaps the analysis of earlier frames (ONNX Runtime releases the GIL:
        decode + detection use one core while tracking + expression use the other)."""
        since, last_fine, min_face = 1 << 30, -1e9, 0.0

        def prepare(fr: Frame) -> None:
            nonlocal since, last_fine, min_face
            if since >= self._detect_interval(min_face):
                # Coarse scan: when every face seen at the last scan was large, a half-size frame
                # finds them as well at a quarter of the cost. A full-size scan still runs at least
                # once a second, so small faces entering the scene are found.
                h, w = fr.image.shape[:2]
                side = min(max(h, w), self.detector.max_side or max(h, w))
                coarse = self.options.coarse_scan and min_face >= 96 and fr.time_s - last_fine < 1.0
                faces = self.detector.detect(fr.image, max_side=side // 2 if coarse else None)
                if not coarse:
                    last_fine = fr.time_s
                min_face = float(faces.sizes.min()) if len(faces) else 0.0
                fr.detections = faces
                since = 0
            since += 1

        return prepare

    def _detect_interval(self, min_face: float) -> int:
        """Frames from one full-frame detection to the next, given the smallest face the last one
        found (0 for none): ``detect_every``, or twice that while the mesh follows faces between
        detections (geometry and ``mesh_tracking`` on) and every face found was large enough to be
        followed (:data:`mien.geometry.follow.MIN_FOLLOW_PX`). Then the scan's jobs are finding new
        faces and re-anchoring the followed ones, neither of which needs every 3rd frame (MediaPipe
        scans only when it loses a face); the coarse scan's full-size rescan every second stays.
        A function of the detections alone, so the decode thread and the face-finding stage, which
        both keep the schedule, agree without talking to each other."""
        o = self.options
        relaxed = self.mesh is not None and o.mesh_tracking and min_face >= MIN_FOLLOW_PX
        return o.detect_every * 2 if relaxed else o.detect_every

    # ---------------------------------------------------------------- per source
    def model_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = [
            {"role": "face_detector", "name": DETECTOR_NAME, "sha256": DETECTOR_SHA256},
            {"role": "expression", "name": self.model.name, "sha256": self.model.sha256,
             "temperature": self.model.temperature, "prior_strength": self.model.prior_strength},
        ]
        if self.mesh is not None:
            records.append({"role": "face_mesh", "name": self.mesh.card["name"], "sha256": self.mesh.card["sha256"]})
        return records

    def open_source(self, spec: str | int) -> Any:
        """The frame source this analyser reads ``spec`` from (:func:`mien.sources.open_source`),
        with its options' frame selection and limits, and full-frame detection scheduled ahead in
        the source's decode thread."""
        o = self.options
        selector = FrameSelector(o.stride, o.fps)
        if is_stream(spec):
            # build the ONNX sessions before the stream starts, so the first frames do not queue
            self.detector.session, self.model.session  # noqa: B018
            if self.mesh is not None:
                self.mesh.session  # noqa: B018
        # full-frame detection runs ahead in the decode thread: a file's, or a live stream's reader,
        # where it overlaps the analysis of the frames before it (bench/RESULTS.md, "Live stream latency")
        return open_source(spec, selector, prepare=self._scheduled_detection(), max_pixels=o.max_pixels,
                           input_kind=o.input_kind, open_timeout=o.open_timeout_s, max_frames=o.max_frames,
                           max_seconds=o.max_seconds)

    def stream(self, spec: str | int) -> Iterator[FrameResult]:
        """Analyse one source frame by frame, yielding each frame's result as soon as it is ready
        (for live use; :meth:`analyze_source` collects the same results into a table)."""
        src = self.open_source(spec)
        try:
            yield from self.process_frames(iter(src))
        finally:
            src.close()

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
        src = self.open_source(spec)
        live = not hasattr(src, "_packets_decoded") and is_stream(spec)
        source = display(str(spec))
        bar: Any = None
        writer: Any = None
        if progress:
            from tqdm import tqdm

            total = src.stats.expected_frames
            if total and (o.stride > 1 or o.fps):
                total = None
            bar = tqdm(total=total, unit="frame", desc=Path(source).name[:30], file=sys.stderr,
                       dynamic_ncols=True, leave=False)
        if annotate is not None:
            from mien.annotate import annotation_writer, draw

            writer = annotation_writer(annotate, spec, (src.stats.fps or 30.0) / max(o.stride, 1))

        def on_frame(res: FrameResult) -> None:
            if bar is not None:
                bar.update(1)
            if writer is not None:
                mesh = res.mesh_points if o.annotate_mesh else None
                writer.write(draw(res.image, res.faces, blur_faces, mesh), res.time_s)

        ckpt = (Checkpointer(checkpoint, source, o.checkpoint_s)
                if checkpoint is not None and o.checkpoint_s > 0 else None)
        ok = False
        try:
            df, stats = self.analyze_rows(iter(src), source,
                                            on_frame if bar is not None or writer is not None else None,
                                            checkpoint=ckpt)
            ok = True
        finally:
            # from here on a signal is only recorded: the finished work is being put in place
            with protected_save():
                if bar is not None:
                    bar.close()
                if writer is not None:
                    if ok:
                        writer.close()
                    else:
                        writer.abort()
        with protected_save():
            return self._finish(spec, source, src, df, stats, ckpt, started, live)

    def _finish(self, spec: str | int, source: str, src: Any, df: Any, stats: dict[str, Any],
                ckpt: Checkpointer | None, started: str, live: bool) -> AnalysisResult:
        """Counts, warnings, status and manifest of one analysed source."""
        o = self.options
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
            # each warning opens with the source's name (the error names it once, at its start) and
            # may end by saying what the results cover: here there are none
            own = [w.removeprefix(f"{source}: ").split(" — results cover")[0] for w in s.warnings]
            extra = f" ({'; '.join(own)})" if own else ""
            raise InputError(f"{source}: {what}{extra}; nothing to analyse")
        warnings = list(s.warnings)
        if s.dropped:
            hint = (" (if it is a file served over HTTP, --input-kind file reads every frame)"
                    if source.lower().startswith(("http://", "https://")) else "")
            warnings.append(f"{source}: {s.dropped} of {s.decoded} decoded frames dropped to keep up with the "
                            f"live stream{hint}")
        if stats["interrupted"]:
            warnings.append(f"{source}: interrupted; results cover the frames analysed before the stop")
        incomplete = bool(warnings) or s.lost > 0 or s.dropped > 0
        status = "interrupted" if stats["interrupted"] else ("partial" if incomplete else "complete")
        run = SourceRun(input=input_fingerprint(str(spec)), frames=stats, status=status, warnings=warnings)
        manifest = RunManifest(parameters=o.to_dict(), models=self.model_records(), sources=[run],
                               started=started, finished=now_iso(), status=status)
        result = AnalysisResult(df, manifest)
        result.checkpoint = ckpt
        if self.last_landmarks is not None:
            result.landmarks = self.last_landmarks.to_frame()
        return result


def analyze_each(
    analyzer: Analyzer,
    specs: Sequence[str | int],
    *,
    progress: bool = False,
    annotate: str | Path | None = None,
    blur_faces: bool = False,
    checkpoints: Sequence[str | Path | None] | None = None,
) -> Iterator[tuple[str | int, AnalysisResult | MienError]]:
    """The folder loop: each source in turn, as (source, its result or the error that stopped it).
    A source that fails with a :class:`MienError` does not stop the others; an interrupted one does.
    ``checkpoints``: per source, the output path to checkpoint beside (see :meth:`Analyzer.analyze_source`)."""
    for i, spec in enumerate(specs):
        try:
            result = analyzer.analyze_source(spec, progress=progress, annotate=annotate, blur_faces=blur_faces,
                                             checkpoint=checkpoints[i] if checkpoints is not None else None)
        except MienError as exc:
            yield spec, exc
            continue
        yield spec, result
        if result.manifest.status == "interrupted":
            return


def analyze(
    source: str | Path | int | Sequence[str | Path],
    *,
    options: AnalysisOptions | None = None,
    progress: bool = False,
    annotate: str | Path | None = None,
    blur_faces: bool = False,
    **option_fields: Unpack[AnalysisFields],
) -> AnalysisResult:
    """Analyse a video file, an image, a folder of them, a list of files, a webcam index or a
    stream URL.

    Pass ``options=AnalysisOptions(...)``, or its fields as keywords (``stride``, ``fps``,
    ``score_threshold``, ``detect_every``, ``smoothing_tau_s``, ``model_card``, ...,
    ``quality=QualityThresholds(...)``). A folder or a list is analysed file by file into one
    result (told apart by ``source``); a file that fails is recorded in
    ``result.manifest.failures`` and the others go on.
    """
    if options is not None and option_fields:
        raise InputError("pass either options=AnalysisOptions(...) or its fields as keywords, not both")
    try:
        opts = options or AnalysisOptions(**option_fields)
    except TypeError as exc:
        raise InputError(f"unknown analysis option: {exc}") from None
    if isinstance(source, (str, os.PathLike, int)):
        specs, several = expand_inputs(source), Path(str(source)).is_dir()
    else:
        if not source:
            raise InputError("analyze() was given an empty list of inputs")
        # a file named twice (also as ./a.mp4 and a.mp4) runs once, as on the command line
        unique: dict[str, str | int] = {}
        for item in source:
            for spec in expand_inputs(item):
                key = spec if isinstance(spec, int) or is_stream(spec) else os.path.abspath(spec)
                unique.setdefault(str(key), spec)
        specs, several = list(unique.values()), True
    analyzer = Analyzer(opts)
    if len(specs) == 1 and not several:
        return analyzer.analyze_source(specs[0], progress=progress, annotate=annotate, blur_faces=blur_faces)
    if annotate is not None:
        raise InputError("annotate takes one input; analyse the videos one by one to annotate them")
    results: list[AnalysisResult] = []
    failures: list[dict[str, str]] = []
    for spec, outcome in analyze_each(analyzer, specs, progress=progress):
        if isinstance(outcome, MienError):
            failures.append({"source": str(spec), "error": str(outcome)})
        else:
            results.append(outcome)
    return AnalysisResult.combine(results, failures)
