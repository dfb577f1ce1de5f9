"""The parameters of reports, episodes and event statistics, and their command-line parsing: plain
dataclasses with no numerical imports, so that registering the ``report`` and ``episodes``
commands (``mien --help``) does not load pandas."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mien.errors import InputError

Window = tuple[float, float] | Literal["span"]

DEFAULT_WINDOW: tuple[float, float] = (0.0, 2.0)

@dataclass(frozen=True)
class EpisodeParams:
    """Thresholds for :func:`find_episodes` (see the module docstring for their meaning)."""

    threshold: float = 0.5
    min_duration_s: float = 0.5
    max_gap_s: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"episode threshold must be within 0..1, got {self.threshold}")
        if self.min_duration_s < 0 or self.max_gap_s < 0:
            raise ValueError("episode min_duration_s and max_gap_s must be >= 0")


@dataclass(frozen=True)
class EventStats:
    """Bootstrap settings: ``n_boot`` resamples, ``ci`` coverage (0.95), ``seed`` for repeatability."""

    n_boot: int = 2000
    ci: float = 0.95
    seed: int = 0


def parse_window(text: str) -> Window:
    """Parse ``--window``: ``START,END`` seconds relative to each onset, or ``span`` (onset..end_s)."""
    text = text.strip()
    if text.lower() == "span":
        return "span"
    parts = text.replace(";", ",").split(",")
    try:
        start, end = (float(p) for p in parts)
    except ValueError as exc:
        raise InputError(f"--window {text!r} is not START,END in seconds (e.g. 0,2) or 'span'") from exc
    if not end > start:
        raise InputError(f"--window {text!r}: END must be greater than START")
    return (start, end)


@dataclass
class ReportOptions:
    """Everything that shapes a report besides its inputs (all recorded in the report itself)."""

    episodes: EpisodeParams = field(default_factory=EpisodeParams)
    window: Window = DEFAULT_WINDOW
    stats: EventStats = field(default_factory=EventStats)
    show_faces: bool = False
    thumbs_per_track: int = 3
    max_points: int = 1000
    max_tracks: int = 24
    min_track_s: float = 1.0
    title: str | None = None
