"""Reports on mien results: expression episodes, alignment to events, and a self-contained HTML file.

Entry points: :func:`write_report` (used by ``mien report`` and ``mien analyze --report``),
:func:`find_episodes`, :func:`align_events`, :func:`load_results`, and :func:`register` which
adds the ``report`` and ``episodes`` subcommands to mien's CLI.
"""
from __future__ import annotations

from mien.reporting.cli import register
from mien.reporting.episodes import EpisodeParams, find_episodes
from mien.reporting.events import EventStats, align_events, load_events
from mien.reporting.html import build_report, write_report
from mien.reporting.load import Results, load_results

__all__ = [
    "EpisodeParams",
    "EventStats",
    "Results",
    "align_events",
    "build_report",
    "find_episodes",
    "load_events",
    "load_results",
    "register",
    "write_report",
]
