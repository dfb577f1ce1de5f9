"""The one kit for mien's self-contained HTML pages: the report (:mod:`mien.reporting.html`) and
the audit pages (:mod:`mien.audit.html`).

Pages are shared as files and opened offline, so nothing is fetched: CSS, script and SVG are
inline, and a Content-Security-Policy forbids the page any other source. Every string that comes
from data is escaped here or by the caller; the functions say which of their arguments are
pre-escaped HTML.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"


def page(title: str, body: str, *, css: str, script: str = "") -> str:
    """A whole HTML document; ``body``, ``css`` and ``script`` are trusted, ``title`` is escaped."""
    policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'" + (
        "; script-src 'unsafe-inline'" if script else "")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f"<title>{escape(title)}</title><style>{css}</style></head><body>\n{body}\n"
            + (f"<script>{script}</script>" if script else "") + "</body></html>\n")


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, ``–`` for a missing or non-finite one, other values escaped."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def table(head: Sequence[str], rows: Iterable[Sequence[str] | str], *, css_class: str = "") -> str:
    """A table with header ``head`` (plain text, escaped here). Each row is a sequence of
    pre-escaped cell contents (each put in a ``<td>``), or a pre-built string of ``<td>`` cells."""
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + (r if isinstance(r, str) else "".join(f"<td>{c}</td>" for c in r)) + "</tr>"
                   for r in rows)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def facts(rows: Iterable[Sequence[str]], *, css_class: str = "facts", table_id: str = "") -> str:
    """A two-column key/value table without a header: keys are plain text, values pre-escaped."""
    body = "".join(f'<tr><th scope="row">{escape(k)}</th><td class="v">{v}</td></tr>' for k, v in rows)  # (key, value)
    tid = f' id="{escape(table_id)}"' if table_id else ""
    return f'<table class="{css_class}"{tid}><tbody>{body}</tbody></table>'


def svg_open(label: str, *, width: float | None = None, height: float | None = None,
             viewbox: tuple[float, float] | None = None, css_class: str = "", attrs: str = "") -> str:
    """The opening ``<svg>`` tag of an inline chart: fixed ``width``/``height`` or a scalable
    ``viewbox`` (width, height); ``label`` is its accessible name; ``attrs`` is pre-escaped."""
    parts = [f'<svg class="{escape(css_class)}"' if css_class else "<svg"]
    if viewbox is not None:
        parts.append(f' viewBox="0 0 {viewbox[0]:g} {viewbox[1]:g}"')
    if width is not None and height is not None:
        parts.append(f' width="{width:g}" height="{height:g}"')
    parts.append(f' role="img" aria-label="{escape(label)}"')
    if attrs:
        parts.append(" " + attrs)
    parts.append(f' xmlns="{SVG_NS}">')
    return "".join(parts)
