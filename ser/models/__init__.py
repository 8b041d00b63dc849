"""Models: the one table of model kinds (:data:`MODEL_SPECS`) and their modules.

Adding a model is one :class:`ModelSpec` entry here plus its module (and its name in
the ``train.models`` enum of ``ser/schemas/params.schema.yaml``, checked by a test).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelSpec:
    """What the workflow needs to know about one model.

    Attributes
    ----------
    name
        Name in ``params.yaml`` (``train.models``) and in output paths.
    display
        Name shown in the report.
    kind
        ``classical`` (scikit-learn Pipeline tuned with GridSearchCV, saved with skops)
        or ``sequence`` (Keras network on frame sequences, saved as ``.keras``).
    trainer
        ``module:function`` that trains it (see :mod:`ser.models.training`).
    features
        Which table of a feature set it reads: ``summary`` or ``sequences``.
    section
        Its ``params.yaml`` section (a GridSearchCV grid or the network settings).
    sequences
        Sequence models: the kind of frame sequences it reads (``mfcc``, ``logmel`` or
        ``byols``,
        see :attr:`ser.features.sets.FeatureSetSpec.sequences`); a protocol x feature
        set x model run exists only where the feature set provides its input.
    """

    name: str
    display: str
    kind: Literal["classical", "sequence"]
    trainer: str
    features: Literal["summary", "sequences"]
    section: str
    sequences: str | None = None

    def train_function(self) -> Callable:
        """The trainer, imported on first use (keeps Keras out of light imports)."""
        module, _, func = self.trainer.partition(":")
        return getattr(importlib.import_module(module), func)


def _classical(name: str, display: str) -> ModelSpec:
    return ModelSpec(name, display, "classical",
                     "ser.models.training:train_classical", "summary", name)


#: Every model the workflow can train, by name.
MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    _classical("svm", "SVM"),
    _classical("logreg", "Logistic regression"),
    _classical("knn", "KNN"),
    _classical("random_forest", "Random forest"),
    _classical("decision_tree", "Decision tree"),
    _classical("hist_gb", "Gradient boosting"),
    _classical("ensemble", "Ensemble (soft vote)"),
    ModelSpec("crnn", "CNN (stats pooling)", "sequence", "ser.models.training:train_crnn",
              "sequences", "crnn", sequences="logmel"),
    # The seed's plain LSTM on MFCC frames: the named baseline the CNN is compared with.
    ModelSpec("lstm_seed", "LSTM (seed)", "sequence", "ser.models.training:train_lstm", "sequences",
              "lstm_seed", sequences="mfcc"),
    # The pretrained BYOL-S encoder fine-tuned on the byols_mel frames (ser/models/byols_ft.py).
    ModelSpec("byols_ft", "BYOL-S fine-tuned", "sequence", "ser.models.training:train_byols_ft",
              "sequences", "byols_ft", sequences="byols"),
)}

CLASSICAL_MODELS: tuple[str, ...] = tuple(n for n, s in MODEL_SPECS.items()
                                          if s.kind == "classical")
SEQUENCE_MODELS: tuple[str, ...] = tuple(n for n, s in MODEL_SPECS.items()
                                         if s.kind == "sequence")
MODELS: tuple[str, ...] = tuple(MODEL_SPECS)


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``, or a :class:`~ser.errors.ConfigError` listing the known ones.

    Parameters
    ----------
    name : str
        A model name of :data:`MODEL_SPECS` (``train.models``).
    """
    from ser.errors import ConfigError

    if name not in MODEL_SPECS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODEL_SPECS)}")
    return MODEL_SPECS[name]
