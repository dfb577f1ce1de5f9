"""Reports on mien results: expression episodes, alignment to events, and a self-contained HTML file.

Entry points: :func:`write_report` (used by ``mien report`` and ``mien analyze --report``),
:func:`find_episodes`, :func:`align_events`, :func:`load_results`, and :func:`register` which
adds the ``report`` and ``episodes`` subcommands to mien's CLI. The names load on first use
(pandas is imported then), so registering the commands stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mien._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover
    from mien.reporting.cli import register
    from mien.reporting.episodes import find_episodes
    from mien.reporting.events import align_events, load_events
    from mien.reporting.html import build_report, write_report
    from mien.reporting.load import Results, load_results
    from mien.reporting.params import EpisodeParams, EventStats

_LAZY = {
    "EpisodeParams": "mien.reporting.params",
    "EventStats": "mien.reporting.params",
    "Results": "mien.reporting.load",
    "align_events": "mien.reporting.events",
    "build_report": "mien.reporting.html",
    "find_episodes": "mien.reporting.episodes",
    "load_events": "mien.reporting.events",
    "load_results": "mien.reporting.load",
    "register": "mien.reporting.cli",
    "write_report": "mien.reporting.html",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


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
