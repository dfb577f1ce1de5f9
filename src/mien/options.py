"""The parameters of an analysis run, as plain dataclasses (no heavy imports), so that the CLI
takes its defaults from them and the manifest records them."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypedDict

#: ``--input-kind``: how an http(s) URL is read ("auto" probes file vs live stream)
INPUT_KINDS = ("auto", "file", "live")


@dataclass(frozen=True)
class QualityThresholds:
    """A face abstains when any measure falls past its threshold."""

    min_face_px: float = 20.0  # shorter box side; FER training crops are 48 px
    min_det_score: float = 0.6
    min_sharpness: float = 0.08  # contrast-normalised; sharp video faces score 0.2-0.9
    max_abs_yaw_deg: float = 70.0


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = 0.6  # detections that may start tracks and are matched first
    match_iou: float = 0.2  # minimum IoU with a track's predicted box to match
    max_gap_s: float = 1.0  # a track survives this long without a detection
    centre_gate: float = 0.6  # second chance: centre distance below this share of the face size


@dataclass
class AnalysisOptions:
    """Every parameter of a run (recorded in the manifest). The CLI's defaults come from here."""

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
    # detection + tracking, and geometry, each in a thread a few frames ahead of alignment,
    # quality and expression (the same results); None: overlap them when geometry is on
    overlap_stages: bool | None = None
    geometry: bool = True  # face mesh, 3-D head pose and geo_* measures (mien.geometry)
    # with geometry: between full detections the mesh follows large, trusted faces in place of the
    # window re-detection, framed as the last full detection (mien.geometry.follow)
    mesh_tracking: bool = True
    annotate_mesh: bool = False  # draw each face's mesh in the annotated video
    landmarks: bool = False  # keep all 468 mesh points per face (AnalysisResult.landmarks, --landmarks)
    device: str = "cpu"  # "cuda": both networks on an NVIDIA GPU (onnxruntime-gpu, mien[gpu])
    # expression network: "int8" (its shipped quantisation, with its own audited card) or "float";
    # "auto": int8 on the CPU where it ships, float on a GPU. Ignored with model_card.
    precision: str = "auto"
    # live sources
    max_frames: int | None = None
    max_seconds: float | None = None
    open_timeout_s: float = 10.0
    input_kind: str = "auto"  # http(s) URLs: "auto" probes file vs live stream; "file" / "live" force it
    # safety (issue #16)
    max_pixels: int = 50_000_000  # refuse images/frames above this many pixels before decoding (8K is 33 MP)
    checkpoint_s: float = 30.0  # with a checkpoint path: flush finished rows at most this often (0 = off)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AnalysisFields(TypedDict, total=False):
    """The fields of :class:`AnalysisOptions` as keywords, so ``mien.analyze(path, stride=2)`` is typed."""

    stride: int
    fps: float | None
    score_threshold: float
    min_detect_px: float
    detector_max_side: int
    detect_every: int
    coarse_scan: bool
    fallback_detect: bool
    quality: QualityThresholds
    tracker: TrackerConfig
    smoothing_tau_s: float
    model_card: str | None
    prior_strength: float | None
    threads: int
    overlap_stages: bool | None
    geometry: bool
    mesh_tracking: bool
    annotate_mesh: bool
    landmarks: bool
    device: str
    precision: str
    max_frames: int | None
    max_seconds: float | None
    open_timeout_s: float
    input_kind: str
    max_pixels: int
    checkpoint_s: float
