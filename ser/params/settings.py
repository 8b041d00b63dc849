"""Typed settings built from one ``params.yaml`` section each.

Library functions receive these (and paths), never the whole parameters mapping, so
only the stage scripts know the layout of ``params.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class _Section:
    """Build the dataclass from the keys of a params section it declares."""

    @classmethod
    def from_section(cls, section: Mapping[str, Any]):
        """Build the settings from one validated ``params.yaml`` section.

        Parameters
        ----------
        section : Mapping
            The section (e.g. ``params["train"]``); keys the dataclass does not declare
            are ignored, declared keys left out take the field's default.
        """
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


@dataclass(frozen=True)
class SplitSettings(_Section):
    """``splits:`` — seed, test share, the cross-corpus test corpus, speaker_cv folds."""

    seed: int
    test_size: float
    cross_corpus_test: str
    speaker_cv_folds: int | None = 4


@dataclass(frozen=True)
class TrainSettings(_Section):
    """``train:`` — GridSearchCV scoring, CV folds and the training seed."""

    scoring: str
    cv_folds: int
    seed: int


@dataclass(frozen=True)
class EvaluateSettings(_Section):
    """``evaluate:`` — bootstrap resamples and their seed."""

    bootstrap: int
    seed: int


@dataclass(frozen=True)
class ManifestSettings(_Section):
    """``manifest:`` — corpus parser options."""

    ravdess_song: bool = False

    def parser_options(self, corpus: str) -> dict[str, Any]:
        """The options of ``corpus``' parser these settings map onto."""
        return {"include_song": self.ravdess_song} if corpus == "ravdess" else {}
