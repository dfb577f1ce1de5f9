"""Fingerprints for the run manifest (:class:`mien.schema.RunManifest`): file hashes and times."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: Path) -> str:
    """SHA-256 of a whole file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_fingerprint(spec: str) -> dict[str, Any]:
    """Path, size and SHA-256 of the first MiB (cheap, and enough to tell files apart)."""
    from mien.outputs import display

    p = Path(spec)
    if not p.is_file():
        return {"path": display(spec), "kind": "stream"}
    h = hashlib.sha256()
    with p.open("rb") as f:
        h.update(f.read(1 << 20))
    return {"path": display(p.resolve()), "size_bytes": p.stat().st_size, "sha256_first_mib": h.hexdigest()}
