"""Where results go: the checks every output path passes before any frame is decoded (the names
themselves are :mod:`mien.schema`'s).

Rules (docs/schema.md, "Files"):

* A table ``X`` (``talk.parquet``) has its sidecars named after its *whole* name:
  ``talk.parquet.manifest.json``, ``talk.parquet.tracks.csv`` and, while the run is going, the
  checkpoint folder ``talk.parquet.checkpoint/``. ``-o talk.parquet`` and ``-o talk.csv`` so never
  share a manifest.
* A folder input's output for ``ROOT/sub/clip.mp4`` is ``OUT/sub/clip.mp4.<suffix>``: the input's
  relative path with its own suffix kept, so ``clip.mp4``, ``clip.mov`` and ``clip.jpg`` get three
  different tables (:func:`mirrored_output`). A single input's default output follows the same
  rule in the current folder (``clip.mp4`` → ``./clip.mp4.parquet``).
* No output may be an input or another output of the same run (real paths are compared, so
  links and ``./`` spellings are caught), every output's folder must be creatable and writable,
  and its suffix must be one the writer knows. :func:`check_outputs` raises before any work.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mien.errors import InputError
from mien.schema import TABLE_SUFFIXES, default_output, legacy_sidecar_path, mirrored_output, sidecar_path

__all__ = ["TABLE_SUFFIXES", "ANNOTATE_SUFFIXES", "REPORT_SUFFIXES", "CSV_SUFFIXES", "Output", "check_outputs",
           "check_writable", "default_output", "display", "keep_mode", "legacy_sidecar_path",
           "mirrored_output", "sidecar_path"]

ANNOTATE_SUFFIXES: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".jpg", ".jpeg", ".png")  # stills: a still input
REPORT_SUFFIXES: tuple[str, ...] = (".html", ".htm")
CSV_SUFFIXES: tuple[str, ...] = (".csv",)

def display(text: str | os.PathLike[str]) -> str:
    """A path as printable text: bytes that are not UTF-8 (kept by Python as lone surrogates)
    become ``\\xNN`` escapes, so names can be printed, written to Parquet and JSON, never crash."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(path))


@dataclass(frozen=True)
class Output:
    """One file a run will write, with what it is (for messages) and the suffixes it may take."""

    path: Path
    role: str  # "-o", "--annotate", "--report" ...
    suffixes: tuple[str, ...]
    sidecars: bool = False  # a results table: its manifest/tracks/checkpoint are outputs too


def check_writable(path: Path, role: str) -> None:
    """Raise unless ``path`` can be created: it is not a folder, and its nearest existing parent
    is a folder we may write in (checked by creating a probe file there, which also works as root
    and on read-only mounts)."""
    shown = display(path)
    if path.is_dir():
        raise InputError(f"{role} {shown}: is a folder; name a file")
    parent = path.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{role} {shown}: {display(parent)} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".mien-probe-", dir=parent)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise InputError(f"{role} {shown}: cannot write in {display(parent)} ({why}); choose a writable folder") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(inputs: Iterable[str | os.PathLike[str]], outputs: Sequence[Output]) -> None:
    """Refuse, before any work, outputs that are inputs, outputs that collide, unknown suffixes and
    paths that cannot be written."""
    taken: dict[str, str] = {}
    for inp in inputs:
        s = os.fspath(inp)
        if "://" in s or s.isdigit():
            continue
        taken[_real(s)] = f"input {display(s)}"
    for out in outputs:
        paths = [out.path]
        if out.sidecars:
            paths += [sidecar_path(out.path, k) for k in ("manifest", "tracks", "checkpoint")]
        for p in paths:
            real = _real(p)
            if real in taken:
                what = taken[real]
                if what.startswith("input"):
                    raise InputError(f"{out.role} {display(p)} is also the {what}; writing it would destroy "
                                     "the input. Choose another output path")
                raise InputError(f"{out.role} {display(p)} is also written as {what}; give each output its own path")
            taken[real] = f"{out.role} {display(out.path)}"
    for out in outputs:
        if out.path.is_dir():
            raise InputError(f"{out.role} {display(out.path)}: is a folder; name a file")
        suffix = out.path.suffix.lower()
        if out.suffixes and suffix not in out.suffixes:
            raise InputError(f"{out.role} {display(out.path)}: must end in {', '.join(out.suffixes)}")
        check_writable(out.path, out.role)


def keep_mode(path: Path) -> int | None:
    """The permission bits of an existing file (so a rewrite keeps them), else ``None``."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return None
