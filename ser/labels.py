"""The unified emotion label set shared by every corpus."""

from __future__ import annotations

#: Unified labels in a fixed order (used for confusion matrices and reports).
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
)

#: Each corpus' own emotion code -> unified label.
CORPUS_CODES: dict[str, dict[str, str]] = {
    "tess": {
        "neutral": "neutral",
        "happy": "happy",
        "sad": "sad",
        "angry": "angry",
        "fear": "fearful",
        "disgust": "disgust",
        "ps": "surprised",
    },
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fearful",
        "07": "disgust",
        "08": "surprised",
    },
    "cremad": {
        "NEU": "neutral",
        "HAP": "happy",
        "SAD": "sad",
        "ANG": "angry",
        "FEA": "fearful",
        "DIS": "disgust",
    },
    "savee": {
        "n": "neutral",
        "h": "happy",
        "sa": "sad",
        "a": "angry",
        "f": "fearful",
        "d": "disgust",
        "su": "surprised",
    },
    "emodb": {
        "N": "neutral",
        "F": "happy",
        "T": "sad",
        "W": "angry",
        "A": "fearful",
        "E": "disgust",
        "L": "boredom",
    },
}


def sort_labels(labels) -> list[str]:
    """Return ``labels`` in the canonical :data:`EMOTIONS` order.

    Labels not in :data:`EMOTIONS` (a user's own corpus) follow, sorted.
    """
    known = [e for e in EMOTIONS if e in set(labels)]
    extra = sorted(set(labels) - set(EMOTIONS))
    return known + extra
