"""Pack the FER+ npz losslessly small enough to travel to a lent GPU machine, and unpack it there.

    python scripts/ferplus_pack.py pack ../shared/data/ferplus/fer2013_ferplus.npz .devdata/ferplus.pack.npz
    python scripts/ferplus_pack.py unpack .devdata/ferplus.pack.npz /tmp/fer2013_ferplus.npz

The images are tiled into 3072x3072 mosaics stored as lossless WebP, next to the compressed labels
(57.7 MB against 78 MB); unpack checks the SHA-256 of the pixels against the original's. Never commit the packed file: the data's
terms keep it out of the repository (``.devdata/`` is git-ignored).
"""
from __future__ import annotations

import hashlib
import sys

import cv2
import numpy as np

TILE, GRID = 48, 64  # 64x64 images of 48x48 per mosaic
KEYS = ("usage", "ferplus_votes", "ferplus_vote_names", "fer_label", "fer_label_names", "fer2013_row")


def pack(src: str, dst: str) -> None:
    d = np.load(src)
    px = d["pixels"]
    n_per = GRID * GRID
    blobs, sizes = [], []
    for s in range(0, len(px), n_per):
        chunk = px[s : s + n_per]
        full = np.concatenate([chunk, np.zeros((n_per - len(chunk), TILE, TILE), np.uint8)])
        mosaic = full.reshape(GRID, GRID, TILE, TILE).transpose(0, 2, 1, 3).reshape(GRID * TILE, GRID * TILE)
        ok, buf = cv2.imencode(".webp", mosaic, [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101 = lossless
        assert ok
        blobs.append(buf.ravel())
        sizes.append(len(buf))
    np.savez_compressed(dst, webp=np.concatenate(blobs), webp_sizes=np.array(sizes), n=len(px),
             pixels_sha256=hashlib.sha256(px.tobytes()).hexdigest(), **{k: d[k] for k in KEYS})


def unpack(src: str, dst: str) -> None:
    d = np.load(src)
    n, n_per = int(d["n"]), GRID * GRID
    out, off = [], 0
    for size in d["webp_sizes"]:
        mosaic = cv2.imdecode(d["webp"][off : off + size], cv2.IMREAD_GRAYSCALE)
        off += size
        out.append(mosaic.reshape(GRID, TILE, GRID, TILE).transpose(0, 2, 1, 3).reshape(n_per, TILE, TILE))
    px = np.concatenate(out)[:n]
    if hashlib.sha256(px.tobytes()).hexdigest() != str(d["pixels_sha256"]):
        sys.exit("unpacked pixels differ from the original")
    np.savez(dst, pixels=px, **{k: d[k] for k in KEYS})


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](sys.argv[2], sys.argv[3])
