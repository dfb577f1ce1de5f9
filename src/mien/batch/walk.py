"""Find a study's inputs: every video or image under a folder, subfolders included.

Symbolic links are followed (studies are often assembled from links into archives), but a folder
reached twice, through a link loop or two links to the same place, is walked once. Names that
start with ``.`` (hidden files, temp files of interrupted copies) are left out, and so is the
output folder when it lies inside the input tree.

Each input's results go to the same relative place under the output folder with the input's own
suffix kept (``ROOT/sub/clip.mp4`` → ``OUT/sub/clip.mp4.parquet``, by
:func:`mien.schema.mirrored_output`), so ``a.mp4`` and ``a.mov`` never collide.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mien.errors import InputError
from mien.outputs import display
from mien.schema import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MEDIA_SUFFIXES = frozenset(VIDEO_SUFFIXES | IMAGE_SUFFIXES)


@dataclass(frozen=True)
class BatchInput:
    """One input of a batch: where it is, and its stable name within the study."""

    path: Path  # as found under the root (links not resolved)
    relative: str  # POSIX path relative to the root: the input's name in every table

    @property
    def video_id(self) -> str:
        """A short, filesystem-safe id that depends only on the relative path."""
        return video_id(self.relative)


def video_id(relative: str) -> str:
    return hashlib.sha1(relative.encode("utf-8")).hexdigest()[:16]


def walk_inputs(root: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None) -> list[BatchInput]:
    """Every video/image file under ``root`` (sorted by relative path), following links once.

    ``exclude`` (the output folder) is never walked. Raises :class:`InputError` when the folder
    cannot be read or holds no media file.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass the folder that holds the study's videos")
    skip = _dir_key(Path(exclude)) if exclude is not None and Path(exclude).is_dir() else None
    seen: set[tuple[int, int]] = set()
    found: list[BatchInput] = []
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=errors.append):
        here = Path(dirpath)
        key = _dir_key(here)
        if key in seen or key == skip:
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in MEDIA_SUFFIXES:
                continue
            path = here / name
            # the name in tables and the index: printable even when the file name is not UTF-8
            found.append(BatchInput(path, display(path.relative_to(root).as_posix())))
    if errors and not found:
        raise InputError(f"{root}: cannot be read ({errors[0].strerror or errors[0]}); check its permissions")
    if not found:
        raise InputError(
            f"{root}: no video or image files in this folder or its subfolders "
            f"(looked for {', '.join(sorted(MEDIA_SUFFIXES))})"
        )
    return sorted(found, key=lambda b: b.relative)


def listed_inputs(files: list[str], exclude: str | os.PathLike[str] | None = None) -> tuple[Path, list[BatchInput]]:
    """(root, inputs) for files named one by one (``mien analyze a.mp4 b/c.mp4 -o OUT/``, as a
    shell glob expands): the root is their deepest common folder, so each keeps its place under
    ``OUT`` as in a folder run. A file named twice is analysed once; files inside ``exclude`` (the
    output folder) are left out, as a folder run leaves it out. Raises :class:`InputError` for a
    folder, a missing file or one that is not a video or image."""
    paths: list[Path] = []
    seen: set[str] = set()
    for f in files:
        p = Path(f)
        if p.is_dir():
            raise InputError(f"{display(p)} is a folder: pass one folder on its own, or files only")
        if not p.exists():
            raise InputError(f"{display(p)}: no such file; check the path")
        if p.suffix.lower() not in MEDIA_SUFFIXES:
            raise InputError(f"{display(p)}: not a video or image file (looked for "
                             f"{', '.join(sorted(MEDIA_SUFFIXES))}); pass media files only, or their folder")
        absolute = os.path.abspath(p)  # links kept as named, as in a folder walk
        if absolute not in seen:
            seen.add(absolute)
            paths.append(Path(absolute))
    if exclude is not None:
        out = os.path.abspath(exclude) + os.sep
        paths = [p for p in paths if not str(p).startswith(out)]
        if not paths:
            raise InputError(f"every input named lies inside the output folder {display(exclude)}")
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    found = [BatchInput(p, display(p.relative_to(root).as_posix())) for p in paths]
    return root, sorted(found, key=lambda b: b.relative)


def _dir_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino)
