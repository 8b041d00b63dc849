"""The synthetic demo corpus: the project's embedded default data (no downloads).

:func:`generate_corpus` writes a small (or full-size) synthetic copy of TESS,
RAVDESS, CREMA-D, SAVEE or EMO-DB in that corpus' real directory layout,
file-naming scheme, sample rate and format (16-bit PCM mono WAV), so every
parser and stage of the workflow runs on it unchanged. The audio is
speech-like, with emotion-dependent prosody and per-speaker variation
(:mod:`ser.corpora.demo.synth`); the file plans are in :mod:`ser.corpora.demo.layouts`.

Examples
--------
>>> from ser.corpora.demo import generate_corpus
>>> generate_corpus("ravdess", "data/demo/ravdess", preset="tiny", seed=1)  # doctest: +SKIP
32
"""

from ser.corpora.demo.generate import (
    SYNTHETIC_MARKER,
    generate_corpus,
    plan_corpus,
    render_clip,
)
from ser.corpora.demo.layouts import CORPORA, LAYOUTS, PRESETS, Clip, CorpusLayout, Speaker

__all__ = [
    "CORPORA",
    "LAYOUTS",
    "PRESETS",
    "SYNTHETIC_MARKER",
    "Clip",
    "CorpusLayout",
    "Speaker",
    "generate_corpus",
    "plan_corpus",
    "render_clip",
]
