"""argparse types for numeric flags: every number a user types is checked (finite, in range), so
``--smoothing nan`` or ``--stride -1`` is a usage error naming the flag, never a crash."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def number(lo: float | None = None, hi: float | None = None, *, integer: bool = False,
           lo_open: bool = False) -> Callable[[str], float]:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); ``integer`` for whole numbers."""

    def parse(text: str) -> float:
        value = _number(text, int if integer else float)
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if lo_open else '≥'} {lo:g}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} must be ≤ {hi:g}")
        return value

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in its message
    return parse


positive_int = number(1, integer=True)
non_negative_int = number(0, integer=True)
any_int = number(integer=True)
positive_float = number(0, lo_open=True)
non_negative_float = number(0)
probability = number(0, 1)
