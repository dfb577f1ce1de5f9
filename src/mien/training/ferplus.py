"""FER2013 + FER+ loading: splits, soft targets, majority labels and cross-split de-duplication."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.labels import EXPRESSIONS
from mien.stats import ferplus_majority

N_EXPR = len(EXPRESSIONS)


@dataclass(frozen=True)
class Split:
    """One FER+ split: images, vote distributions over the 8 expressions and majority labels."""

    name: str
    pixels: np.ndarray  # uint8 (n, 48, 48) grayscale
    soft: np.ndarray  # float32 (n, 8), rows sum to 1
    majority: np.ndarray  # int64 (n,), index into EXPRESSIONS
    index: np.ndarray  # int64 (n,), row in the npz

    def __len__(self) -> int:
        return len(self.majority)


@dataclass(frozen=True)
class FerPlus:
    train: Split
    public_test: Split
    private_test: Split
    removed_duplicates: int  # training images pixel-identical to a PublicTest/PrivateTest image
    dropped_unlabelled: dict[str, int]  # per split: majority unknown / NF, or no expression votes


def _digest(img: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).digest()


def load_ferplus(path: str | Path, dedupe: bool = True) -> FerPlus:
    """Load the FER+ npz (see ``../shared/data/README.md``) into train / PublicTest / PrivateTest."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER+ data not found: {path} (see ../shared/data/README.md; pass --data)")
    data = np.load(path)
    pixels = data["pixels"]
    usage = data["usage"]
    votes = data["ferplus_votes"].astype(np.float32)
    names = [str(n) for n in data["ferplus_vote_names"][:N_EXPR]]
    if tuple(names) != EXPRESSIONS:
        raise ValueError(f"unexpected FER+ vote columns {names}")

    majority = ferplus_majority(votes)
    expr_votes = votes[:, :N_EXPR]
    totals = expr_votes.sum(axis=1, keepdims=True)
    soft = np.divide(expr_votes, totals, out=np.zeros_like(expr_votes), where=totals > 0)
    usable = (majority >= 0) & (totals[:, 0] > 0)

    test_hashes = {_digest(pixels[i]) for i in np.flatnonzero(usage != "Training")}
    train_idx = np.flatnonzero(usage == "Training")
    if dedupe:
        dup = np.array([_digest(pixels[i]) in test_hashes for i in train_idx], dtype=bool)
    else:
        dup = np.zeros(len(train_idx), dtype=bool)
    removed = int(dup.sum())

    def split(name: str, idx: np.ndarray) -> Split:
        idx = idx[usable[idx]]
        return Split(name, pixels[idx], soft[idx].astype(np.float32), majority[idx], idx.astype(np.int64))

    dropped = {
        u: int(((usage == u) & ~usable).sum()) for u in ("Training", "PublicTest", "PrivateTest")
    }
    return FerPlus(
        train=split("Training", train_idx[~dup]),
        public_test=split("PublicTest", np.flatnonzero(usage == "PublicTest")),
        private_test=split("PrivateTest", np.flatnonzero(usage == "PrivateTest")),
        removed_duplicates=removed,
        dropped_unlabelled=dropped,
    )
