"""Keep memory flat for large frames.

A 4K BGR frame is 25 MB. glibc's malloc serves such blocks with ``mmap`` at first, but raises its
``mmap`` threshold each time one is freed (up to 32 MB), after which 4K frames come from the
per-thread heaps instead; frames decoded in one thread and freed in another then fragment those
heaps, and the process grows with the length of the video (1.6-2.1 GB after 80 s of 4K). Fixing
the threshold (``M_MMAP_THRESHOLD``) keeps every block above it on ``mmap``, returned to the system
when freed. Blocks below it (a 640×360 frame is 0.7 MB) are served as before.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK_BYTES = 4 << 20
_done = False


def release_large_frames(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve blocks of ``threshold`` bytes and more with mmap (glibc only; elsewhere a no-op).
    Returns whether the setting was applied. Safe to call more than once."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    return _done
