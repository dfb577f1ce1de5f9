"""The results schema and its files, owned by the engine: columns and their types, output
suffixes, sidecar names, the table reader and the run manifest.

Everything that writes or reads a results table goes through this module (the engine, the report,
the audit), so a column is named in one place. ``docs/schema.md`` is checked against
:func:`schema_markdown` by a test.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mien._version import __version__
from mien.errors import InputError
from mien.faces import Faces
from mien.labels import EXPRESSIONS

if TYPE_CHECKING:  # pragma: no cover - pandas is imported where a table is built (start-up)
    import pandas as pd

SCHEMA_VERSION = 2  # 2: face geometry columns (pose_*, mesh_score, geo_*, geo_*_delta)
#: Layout of the ``.manifest.json`` sidecar (2: one entry per source under ``sources``).
MANIFEST_VERSION = 2

TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".jsonl")
VIDEO_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf", ".y4m",
})
#: Still images mien reads (with OpenCV), as a source and in labelled datasets.
IMAGE_SUFFIXES: frozenset[str] = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm",
})

SidecarKind = Literal["manifest", "tracks", "checkpoint", "report", "landmarks"]
_SIDECAR_ENDINGS: dict[str, str] = {"manifest": ".manifest.json", "tracks": ".tracks.csv",
                                    "checkpoint": ".checkpoint", "report": ".report.html",
                                    "landmarks": ".landmarks.parquet"}

PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_{label}" for label in EXPRESSIONS)
SMOOTH_COLUMNS: tuple[str, ...] = tuple(f"smooth_{label}" for label in EXPRESSIONS)
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y"))
POSE_COLUMNS: tuple[str, ...] = ("pose_yaw_deg", "pose_pitch_deg", "pose_roll_deg")
#: The geo_* measures, in mien.geometry.measures.MEASURES order (sided ones: mean, _left, _right).
_GEO_SIDED = ("brow_raise", "brow_lower", "eye_open", "nose_wrinkle", "upper_lip_raise", "lip_corner_pull",
              "lip_corner_depress")
_GEO_MIDLINE = ("lip_stretch", "lip_press", "mouth_open", "jaw_drop")
GEO_COLUMNS: tuple[str, ...] = tuple(
    c for m in _GEO_SIDED for c in (f"geo_{m}", f"geo_{m}_left", f"geo_{m}_right")
) + tuple(f"geo_{m}" for m in _GEO_MIDLINE)
GEO_DELTA_COLUMNS: tuple[str, ...] = tuple(f"{c}_delta" for c in GEO_COLUMNS)
_PANDAS_DTYPE = {"str": "object", "int": "int64", "float": "float64", "bool": "bool"}


@dataclass(frozen=True)
class ColumnGroup:
    """One row of the schema's documentation: one column, or a family of them (same type)."""

    title: str
    columns: tuple[str, ...]
    type: Literal["str", "int", "float", "bool"]
    meaning: str
    dtype: str = ""  # the pandas dtype, when not the type's usual one
    optional: bool = False  # present only when the stage that fills it ran (e.g. geometry)

    @property
    def pandas_dtype(self) -> str:
        return self.dtype or _PANDAS_DTYPE[self.type]


COLUMN_GROUPS: tuple[ColumnGroup, ...] = (
    ColumnGroup("`source`", ("source",), "str", "the input (file path or stream URL) the frame came from"),
    ColumnGroup("`frame_index`", ("frame_index",), "int",
                "0-based index of the decoded frame in the source (before `--stride`/`--fps` subsampling)"),
    ColumnGroup("`time_s`", ("time_s",), "float",
                "presentation time of the frame in seconds, from the container's PTS (never index/fps)"),
    ColumnGroup("`track_id`", ("track_id",), "int",
                "anonymous per-source track number, stable while the face is followed; not an identity"),
    ColumnGroup("`x1`,`y1`,`x2`,`y2`", ("x1", "y1", "x2", "y2"), "float",
                "face box in pixels of the (rotation-corrected) frame; on a frame between full detections "
                "where the mesh follows the face (mesh tracking, the default with geometry, for faces of 96 px "
                "and more), its last full detection's box moved and scaled with the mesh (docs/geometry.md, "
                '"Mesh tracking between full detections")', "float32"),
    ColumnGroup("`det_score`", ("det_score",), "float",
                "detector confidence, 0..1 (a followed face: its last full detection's)"),
    ColumnGroup("`lm0_x` … `lm4_y`", LANDMARK_COLUMNS, "float",
                "5 landmarks in pixels: 0 left eye, 1 right eye (as seen in the image), 2 nose tip, "
                "3 left mouth corner, 4 right mouth corner (a followed face: each point's mesh stand-in "
                "plus its offset at the last full detection)", "float32"),
    ColumnGroup("`face_px`", ("face_px",), "float", "face size: the shorter side of the box in pixels"),
    ColumnGroup("`sharpness`", ("sharpness",), "float",
                "variance of the Laplacian of the aligned grayscale crop divided by the crop's variance "
                "(contrast-invariant; low = blurred; sharp video faces score about 0.2–0.9, FER+ crops "
                "0.7 (median); default threshold 0.08)"),
    ColumnGroup("`yaw_deg`", ("yaw_deg",), "float", "head-yaw proxy from the landmarks (0 = frontal; ±90 = profile)"),
    ColumnGroup("`roll_deg`", ("roll_deg",), "float", "in-plane head roll from the eye line"),
    ColumnGroup("`pose_yaw_deg`, `pose_pitch_deg`, `pose_roll_deg`", POSE_COLUMNS, "float",
                "3-D head pose from the face mesh fitted to MediaPipe's canonical face, degrees: yaw > 0 the "
                "face turns towards the image's right, pitch > 0 chin up, roll > 0 clockwise in the image "
                "(docs/geometry.md); `pose_yaw_deg` is the yaw the `profile` gate uses. Absent with "
                "`--no-geometry`", optional=True),
    ColumnGroup("`mesh_score`", ("mesh_score",), "float",
                "the face mesh network's face-presence probability, 0..1 (absent with `--no-geometry`)", optional=True),
    ColumnGroup("`geo_<measure>`, `geo_<measure>_left`, `geo_<measure>_right`", GEO_COLUMNS, "float",
                "scale-free face geometry in the head's own frame, divided by the inter-ocular distance; "
                "larger = more of the movement; each approximates a FACS action unit but is geometry, not "
                "FACS coding (docs/geometry.md lists mesh points and AUs). Measures: " + ", ".join(
                    _GEO_SIDED + _GEO_MIDLINE) + "; `_left`/`_right` (the person's own) for the first seven. "
                "Absent with `--no-geometry`", optional=True),
    ColumnGroup("`geo_<measure>_delta`", GEO_DELTA_COLUMNS, "float",
                "the measure minus its track's baseline: the median over the track's more neutral-looking "
                "half of frames (by `prob_neutral`), computed once the run is complete", optional=True),
    ColumnGroup("`geo_blink`", ("geo_blink",), "int",
                "1 when the row falls inside a blink: `geo_eye_open` below 0.75 of its track's median for at most "
                "0.5 s (`mien.geometry.stage.blink_table` lists the events); absent with `--no-geometry`",
                optional=True),
    ColumnGroup("`abstain`", ("abstain",), "bool",
                "True when the face is below a quality threshold: no expression is given for it"),
    ColumnGroup("`abstain_reason`", ("abstain_reason",), "str",
                "`\"\"`, or `;`-joined reasons: `small_face`, `low_score`, `blurred`, `profile`"),
    ColumnGroup("`prob_<label>`", PROB_COLUMNS, "float",
                "raw per-frame probability for each of the 8 labels (NaN when `abstain`)"),
    ColumnGroup("`smooth_<label>`", SMOOTH_COLUMNS, "float",
                "causal temporally smoothed probability per track (NaN when `abstain`)"),
    ColumnGroup("`top_label`", ("top_label",), "str",
                "label with the highest smoothed probability (`\"\"` when `abstain`)"),
    ColumnGroup("`top_prob`", ("top_prob",), "float", "its smoothed probability (NaN when `abstain`)"),
)

#: Every column of the schema that every table has, in order.
COLUMNS: tuple[str, ...] = tuple(c for g in COLUMN_GROUPS if not g.optional for c in g.columns)
#: Columns present only when their stage ran (face geometry), in order.
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for g in COLUMN_GROUPS if g.optional for c in g.columns)
#: The pandas dtype of every column.
DTYPES: dict[str, str] = {c: g.pandas_dtype for g in COLUMN_GROUPS if not g.optional for c in g.columns}
#: The pandas dtype of every optional column.
OPTIONAL_DTYPES: dict[str, str] = {c: g.pandas_dtype for g in COLUMN_GROUPS if g.optional for c in g.columns}
#: Every column, optional ones included, in order (a run with geometry on has all of them).
ALL_COLUMNS: tuple[str, ...] = tuple(c for g in COLUMN_GROUPS for c in g.columns)
STRING_COLUMNS: tuple[str, ...] = tuple(c for c, t in DTYPES.items() if t == "object")


# ------------------------------------------------------------------------------------ file names
def sidecar_path(output: str | os.PathLike[str], kind: SidecarKind) -> Path:
    """A file beside a results table, named after the table's *whole* name, so ``talk.parquet``
    and ``talk.csv`` never share one: ``talk.parquet`` → ``talk.parquet.manifest.json``,
    ``talk.parquet.tracks.csv``, ``talk.parquet.checkpoint/`` (a run in progress, see
    :mod:`mien.checkpoint`) and ``talk.parquet.report.html`` (``mien report``'s default)."""
    path = Path(output)
    try:
        return path.with_name(path.name + _SIDECAR_ENDINGS[kind])
    except KeyError:
        raise ValueError(f"unknown sidecar kind {kind!r}; one of {', '.join(_SIDECAR_ENDINGS)}") from None


def legacy_sidecar_path(output: str | os.PathLike[str], kind: SidecarKind) -> Path:
    """The name mien used before sidecars carried the whole table name (``talk.manifest.json``);
    readers fall back to it, writers never use it."""
    path = Path(output)
    base = path.with_suffix("") if path.suffix.lower() in TABLE_SUFFIXES else path
    return base.with_name(base.name + _SIDECAR_ENDINGS[kind])


def mirrored_output(root: str | os.PathLike[str], path: str | os.PathLike[str],
                    out_dir: str | os.PathLike[str], suffix: str) -> Path:
    """The table of one input of a folder run: ``ROOT/sub/clip.mp4`` → ``OUT/sub/clip.mp4<suffix>``
    (the input's path relative to ``root``, its own suffix kept, plus ``suffix``), so ``clip.mp4``,
    ``clip.mov`` and ``clip.jpg`` get three tables. A ``path`` outside ``root`` keeps its name."""
    p, r = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        rel = p.relative_to(r)
    except ValueError:
        rel = Path(p.name)
    return Path(out_dir) / rel.parent / (rel.name + suffix)


def default_output(spec: str, suffix: str = ".parquet") -> Path:
    """The table of a single input without ``-o``: ``clip.mp4`` → ``./clip.mp4.parquet`` (the
    same rule as :func:`mirrored_output`); ``stream.parquet`` for webcams and URLs."""
    if spec.isdigit() or "://" in spec:
        return Path("stream" + suffix)
    return Path(Path(spec).name + suffix)


def check_table_suffix(path: str | os.PathLike[str]) -> Path:
    """``path`` if it names a table format mien writes; else an :class:`InputError` saying which do."""
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"{p}: output must end in {', '.join(TABLE_SUFFIXES)}")
    return p


# ------------------------------------------------------------------------------- Faces -> table
def table_columns(faces: Faces, *, source: str, frame_index: int, time_s: float) -> dict[str, Any]:
    """The table columns of one frame's faces: the schema's, then each ``faces.data`` column
    (a column with more than one value per face becomes ``name_0``, ``name_1``, ...)."""
    n = len(faces)
    cols: dict[str, Any] = {
        "source": source, "frame_index": frame_index, "time_s": time_s, "track_id": faces.track_id,
        "x1": faces.xyxy[:, 0], "y1": faces.xyxy[:, 1], "x2": faces.xyxy[:, 2], "y2": faces.xyxy[:, 3],
        "det_score": faces.score.astype(np.float64),
    }
    for k in range(faces.landmarks.shape[1]):
        cols[f"lm{k}_x"] = faces.landmarks[:, k, 0]
        cols[f"lm{k}_y"] = faces.landmarks[:, k, 1]
    cols.update(face_px=faces.face_px, sharpness=faces.sharpness, yaw_deg=faces.yaw_deg,
                roll_deg=faces.roll_deg, abstain=faces.abstain, abstain_reason=faces.abstain_reason)
    for j, label in enumerate(EXPRESSIONS):
        cols[f"prob_{label}"] = faces.probs[:, j]
    for j, label in enumerate(EXPRESSIONS):
        cols[f"smooth_{label}"] = faces.smoothed[:, j]
    cols["top_label"] = np.asarray(faces.top_label, dtype=object).reshape(n)
    cols["top_prob"] = faces.top_prob
    for key, value in faces.data.items():
        if key in cols:
            raise ValueError(f"Faces.data column {key!r} clashes with a schema column")
        if value.ndim == 1:
            cols[key] = value
        else:
            flat = value.reshape(n, -1)
            for j in range(flat.shape[1]):
                cols[f"{key}_{j}"] = flat[:, j]
    return cols


def empty_table() -> pd.DataFrame:
    """A table with the schema's columns and dtypes and no rows."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=DTYPES[c]) for c in COLUMNS})


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The schema's columns first, in order, then any extra ones as they come."""
    extra = [c for c in df.columns if c not in ALL_COLUMNS]
    known = [c for c in ALL_COLUMNS if c in df.columns]
    return df[known + extra]


def _to_bool(series: pd.Series) -> pd.Series:
    """Parse an ``abstain`` column that may be bool, 0/1 or the text True/False (CSV, JSONL)."""
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False,
               "": False, "nan": False, "none": False}
    text = series.astype("string").str.strip().str.lower().fillna("")
    bad = sorted(set(text.unique()) - set(mapping))
    if bad:
        raise ValueError(f"abstain holds values that are not booleans: {bad[:5]}")
    return text.map(mapping).astype(bool)


def coerce_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The schema's dtypes for the columns present (CSV turns booleans into text and empty strings
    into NaN; an empty JSONL has no columns at all). Other columns become numbers where they can.

    Raises ``ValueError`` or ``TypeError`` when a column cannot be parsed as its type.
    """
    import pandas as pd

    frame = frame.copy()
    if frame.shape[1] == 0:
        return empty_table()
    for col in frame.columns:
        kind = DTYPES.get(col)
        if kind == "object":
            frame[col] = frame[col].astype("string").fillna("").astype(object)
        elif kind == "int64":
            frame[col] = pd.to_numeric(frame[col]).astype("int64")
        elif kind == "bool":
            frame[col] = _to_bool(frame[col])
        elif kind in ("float64", "float32"):
            frame[col] = pd.to_numeric(frame[col]).astype(kind)
        else:
            try:
                frame[col] = pd.to_numeric(frame[col])
            except (ValueError, TypeError):
                pass
    return frame


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results table (.parquet/.csv/.jsonl) with the schema's dtypes.

    Raises :class:`InputError` naming the file when it is missing, of an unknown kind or unreadable.
    Columns are not checked: what a reader needs, it checks.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        hint = " (it is a folder)" if p.is_dir() else ""
        raise InputError(f"results file {p} not found{hint}; pass a {', '.join(TABLE_SUFFIXES)} "
                         "file written by `mien analyze -o`")
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"cannot read results file {p}: unknown suffix {p.suffix!r}; pass one of "
                         f"{', '.join(TABLE_SUFFIXES)} written by `mien analyze`")
    try:
        if suffix == ".parquet":
            with p.open("rb") as f:  # a file object: pyarrow cannot take non-UTF-8 path names
                raw = pd.read_parquet(f)
        elif p.stat().st_size == 0 or (suffix == ".jsonl" and not p.read_text(encoding="utf-8").strip()):
            raw = pd.DataFrame()
        elif suffix == ".csv":
            raw = pd.read_csv(p, keep_default_na=True, na_values=["nan", "NaN"])
        else:
            raw = pd.read_json(p, lines=True, dtype=False)
        return coerce_table(raw)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is not a results table
        why = " ".join(str(exc).split())  # one line, whatever the parser's message holds
        raise InputError(f"cannot read results file {p}: {why}; is it a complete file written by "
                         "`mien analyze`?") from None


# ------------------------------------------------------------------------------------ manifest
@dataclass
class SourceRun:
    """What happened to one source of a run: its fingerprint, frame counts and warnings."""

    input: dict[str, Any]  # path (+ size_bytes, sha256_first_mib for files; kind "stream")
    frames: dict[str, Any] = field(default_factory=dict)  # decoded, analysed, faces, abstained, fps, ...
    status: str = "complete"  # complete | partial | interrupted
    warnings: list[str] = field(default_factory=list)
    output: str | None = None  # the table it was written to, when written

    @property
    def path(self) -> str | None:
        value = self.input.get("path")
        return str(value) if value is not None else None

    @property
    def duration_s(self) -> float | None:
        """The source's duration: decoded frames / frame rate, or the last analysed time."""
        decoded, fps = self.frames.get("decoded"), self.frames.get("fps")
        if isinstance(decoded, (int, float)) and isinstance(fps, (int, float)) and decoded > 0 and fps > 0:
            return float(decoded) / float(fps)
        value = self.input.get("duration_s", self.frames.get("duration_s"))
        return float(value) if isinstance(value, (int, float)) and value > 0 else None


#: the numerical libraries whose kernels a result depends on: (key, module)
_NUMERIC_MODULES = (("onnxruntime", "onnxruntime"), ("opencv", "cv2"), ("av", "av"), ("numpy", "numpy"))
#: the CPU features ONNX Runtime and OpenCV pick their kernels by; results can differ slightly
#: between them (tests/test_outputs_unchanged.py: AVX2 against AVX-512 machines)
_CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "asimd", "sve")


def run_environment() -> dict[str, str]:
    """What a run's numbers depend on beyond mien and its models: Python, the platform, the
    versions of the numerical libraries this process has loaded (their ``__version__``: nothing
    is imported or looked up for it) and the CPU with the instruction-set features that select
    ONNX Runtime's kernels."""
    python, system, cpu = _machine()
    env = {"python": python, "platform": system}
    for key, module in _NUMERIC_MODULES:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(getattr(loaded, "__version__", None), str):
            env[key] = loaded.__version__
    env["cpu"] = cpu
    return env


@lru_cache(maxsize=1)
def _machine() -> tuple[str, str, str]:
    """(Python version, platform, CPU), once per process: ``platform.platform()`` alone takes
    ~8 ms (it reads the interpreter's binary for the C library's version), so the engine calls
    this in the background with its session builds, not when a run's manifest is made."""
    return sys.version.split()[0], platform.platform(), _cpu_description()


def _cpu_description() -> str:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware") and name in ("", platform.machine(), platform.processor()):
                    name = value.strip() or name
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the name alone
        pass
    found = [f for f in _CPU_FEATURES if f in flags]
    return f"{name}; {' '.join(found)}" if found else name


@dataclass
class RunManifest:
    """Everything needed to know what produced a result and to reproduce it.

    The same shape for one file and for a folder: one :class:`SourceRun` per source analysed,
    and the sources that failed in ``failures``. Written beside every table as
    ``<output name>.manifest.json``.
    """

    parameters: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    sources: list[SourceRun] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)  # {"source": ..., "error": ...}
    started: str = ""
    finished: str = ""
    status: str = "complete"  # complete | partial | interrupted | failed
    mien_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    manifest_version: int = MANIFEST_VERSION
    #: the table this manifest describes: file name, rows, SHA-256 (set when it is written;
    #: readers check it, so a manifest moved beside another table is caught)
    table: dict[str, Any] | None = None
    environment: dict[str, str] = field(default_factory=run_environment)

    @property
    def warnings(self) -> list[str]:
        """Every source's warnings, in order."""
        return [w for s in self.sources for w in s.warnings]

    @property
    def source(self) -> SourceRun:
        """The one source of a single-source run."""
        if len(self.sources) != 1:
            raise ValueError(f"the run has {len(self.sources)} sources; use .sources")
        return self.sources[0]

    @property
    def frames(self) -> dict[str, Any]:
        """Frame counts of a single-source run (``source.frames``)."""
        return self.source.frames

    @classmethod
    def combine(cls, runs: list[RunManifest], failures: list[dict[str, str]] | None = None) -> RunManifest:
        """One manifest for several single-source runs of one configuration (a folder)."""
        failures = list(failures or [])
        if not runs:
            return cls(failures=failures, status="failed" if failures else "complete")
        first = runs[0]
        sources = [s for r in runs for s in r.sources]
        statuses = {r.status for r in runs}
        status = ("interrupted" if "interrupted" in statuses else
                  "partial" if failures or statuses - {"complete"} else "complete")
        return cls(parameters=first.parameters, models=first.models, sources=sources, failures=failures,
                   started=first.started, finished=runs[-1].finished, status=status)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunManifest:
        """Read a manifest written by this or an earlier mien (version 1 had one source, at the
        top level). Raises ``ValueError`` when ``data`` is not a manifest."""
        if not isinstance(data, dict):
            raise ValueError(f"it is not a JSON object (but a {type(data).__name__})")
        if "sources" in data:
            sources = [SourceRun(**{k: v for k, v in s.items() if k in _SOURCE_FIELDS})
                       for s in data["sources"]]
        elif "input" in data:  # manifest version 1: one source, at the top level
            sources = [SourceRun(input=data["input"] if isinstance(data["input"], dict) else
                                 {"path": str(data["input"])},
                                 frames=data.get("frames") or {}, status=data.get("status", "complete"),
                                 warnings=list(data.get("warnings") or []))]
        else:
            raise ValueError("not a mien run manifest: it names no sources")
        known = {k: v for k, v in data.items() if k in _MANIFEST_FIELDS and k != "sources"}
        known.setdefault("manifest_version", 1)
        return cls(**known, sources=sources)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


_SOURCE_FIELDS = frozenset(SourceRun.__dataclass_fields__)
_MANIFEST_FIELDS = frozenset(RunManifest.__dataclass_fields__)


def read_manifest(path: str | os.PathLike[str]) -> RunManifest:
    """Read a ``.manifest.json``; :class:`InputError` naming the file when it is not one."""
    p = Path(path)
    try:
        return RunManifest.from_dict(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{p}: not a readable mien run manifest ({exc})") from None


# ---------------------------------------------------------------------------------------- docs
def schema_markdown() -> str:
    """The column table of ``docs/schema.md``, generated from :data:`COLUMN_GROUPS`."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| {g.title} | {g.type} | {g.meaning}{' (optional)' if g.optional else ''} |" for g in COLUMN_GROUPS]
    return "\n".join(lines) + "\n"
