"""The canonical expression labels and the aliases accepted for them.

mien measures facial *expressions* (configurations of the face), not felt emotions.
"""
from __future__ import annotations

EXPRESSIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

#: Expressions counted as "negative" when auditing group differences (Rhue, 2018).
NEGATIVE_EXPRESSIONS: tuple[str, ...] = ("anger", "contempt", "disgust", "fear")

_ALIASES: dict[str, str] = {
    "neutral": "neutral",
    "neu": "neutral",
    "calm": "neutral",
    "happiness": "happiness",
    "happy": "happiness",
    "hap": "happiness",
    "joy": "happiness",
    "smile": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "sur": "surprise",
    "sadness": "sadness",
    "sad": "sadness",
    "anger": "anger",
    "angry": "anger",
    "ang": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "dis": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fea": "fear",
    "contempt": "contempt",
    "contemptuous": "contempt",
    "con": "contempt",
}


def canonical_label(name: str) -> str:
    """Map a label or a common alias (``happy``, ``Angry``, ``surprised`` ...) to mien's name.

    Raises ``ValueError`` naming the accepted labels when ``name`` is unknown.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(
        f"unknown expression label {name!r}; use one of {', '.join(EXPRESSIONS)} "
        "(aliases such as happy, angry, sad, surprised, disgusted, fearful are accepted)"
    )
