"""Models: the one table of model kinds (:data:`MODEL_SPECS`) and their modules.

Every fact about a model lives in its :class:`ModelSpec`; the lists elsewhere are derived
from this table: :data:`CLASSICAL_MODELS`, the pipelines of :mod:`ser.models.classical`,
the types a saved file may hold (:func:`ser.models.store.trusted_estimators`), the
``train.models`` enum and the model sections of the params schema
(:func:`ser.params.load.params_schema`). Adding a classical model is one entry here (its
estimator factory may live in :mod:`ser.models.classical` or any module) plus its test;
CONTRIBUTING.md has the recipe.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


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
    estimator
        Classical models: the untuned scikit-learn classifier, a ``module:function`` (or
        a callable) called with ``seed=``; :func:`ser.models.classical.make_pipeline`
        puts it behind the scaler. Its grid (``<section>.grid`` in params.yaml, the only
        home of grids) is checked against the estimator's own parameter constraints
        (:func:`ser.params.checks.check_grid`).
    scaled
        Classical models: standardise the features inside the pipeline (distance and
        kernel models; trees are scale-invariant).
    saved_types
        Classical models: the exact type names its saved ``model.skops`` may hold beyond
        skops' built-in safe set, i.e. the pipeline's (``Pipeline``, the scaler) and the
        classifier's; loading refuses any other (:mod:`ser.models.store`).
    fold_check
        Classical models: ``module:function(grid, n_fit, *, model)`` run before a grid
        search with the smallest cross-validation training fold (e.g. k-NN's
        ``n_neighbors`` must not exceed it); ``None``: nothing to check.
    """

    name: str
    display: str
    kind: Literal["classical", "sequence"]
    trainer: str
    features: Literal["summary", "sequences"]
    section: str
    sequences: str | None = None
    estimator: str | Callable[..., Any] | None = None
    scaled: bool = False
    saved_types: tuple[str, ...] = ()
    fold_check: str | None = None

    def train_function(self) -> Callable:
        """The trainer, imported on first use (keeps Keras out of light imports)."""
        return _resolve(self.trainer)

    def build_estimator(self, *, seed: int) -> Any:
        """A new untuned classifier of a classical model (``estimator`` called with ``seed``)."""
        if self.estimator is None:
            raise TypeError(f"model {self.name!r} is not a classical model")
        factory = _resolve(self.estimator) if isinstance(self.estimator, str) else self.estimator
        return factory(seed=seed)

    def fold_check_function(self) -> Callable | None:
        """The :attr:`fold_check`, imported on first use (``None`` without one)."""
        return _resolve(self.fold_check) if self.fold_check else None


def _resolve(reference: str) -> Callable:
    module, _, func = reference.partition(":")
    return getattr(importlib.import_module(module), func)


#: What every classical model's saved pipeline holds: the Pipeline, and its scaler when
#: :attr:`ModelSpec.scaled` (skops names types by their defining module).
PIPELINE_TYPE = "sklearn.pipeline.Pipeline"
SCALER_TYPE = "sklearn.preprocessing._data.StandardScaler"


def classical_model(name: str, display: str, estimator: str | Callable[..., Any], *,
                    scaled: bool, types: tuple[str, ...], fold_check: str | None = None,
                    section: str | None = None) -> ModelSpec:
    """The spec of a classical model (a scikit-learn classifier behind an optional scaler,
    tuned by GridSearchCV on the summary features).

    ``types``: the exact type names of the classifier's saved state (its class, and any
    estimator it holds); the pipeline's own are added here. ``section`` defaults to
    ``name``.
    """
    saved = (PIPELINE_TYPE, *((SCALER_TYPE,) if scaled else ()), *types)
    return ModelSpec(name, display, "classical", "ser.models.training:train_classical",
                     "summary", section or name, estimator=estimator, scaled=scaled,
                     saved_types=tuple(dict.fromkeys(saved)), fold_check=fold_check)


_C = "ser.models.classical"
_SVC = "sklearn.svm._classes.SVC"
_LOGREG = "sklearn.linear_model._logistic.LogisticRegression"
_HIST_GB = ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
            "HistGradientBoostingClassifier")


#: Every model the workflow can train, by name (in the order outputs list them).
MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    classical_model("svm", "SVM", f"{_C}:svm", scaled=True, types=(_SVC,)),
    classical_model("logreg", "Logistic regression", f"{_C}:logreg", scaled=True,
                    types=(_LOGREG,)),
    classical_model("knn", "KNN", f"{_C}:knn", scaled=True,
                    types=("sklearn.neighbors._classification.KNeighborsClassifier",),
                    fold_check=f"{_C}:check_neighbors"),
    # A forest holds its fitted trees (DecisionTreeClassifier objects).
    classical_model("random_forest", "Random forest", f"{_C}:random_forest", scaled=False,
                    types=("sklearn.ensemble._forest.RandomForestClassifier",
                           "sklearn.tree._classes.DecisionTreeClassifier")),
    classical_model("decision_tree", "Decision tree", f"{_C}:decision_tree", scaled=False,
                    types=("sklearn.tree._classes.DecisionTreeClassifier",)),
    # The fitted classifier keeps a LabelEncoder of the class names.
    classical_model("hist_gb", "Gradient boosting", f"{_C}:hist_gb", scaled=False,
                    types=(_HIST_GB, "sklearn.preprocessing._label.LabelEncoder")),
    # Soft vote over svm, logreg and hist_gb (ser.models.classical.ENSEMBLE_MEMBERS), each
    # its own scaled pipeline: it holds their types too.
    classical_model("ensemble", "Ensemble (soft vote)", f"{_C}:ensemble", scaled=False,
                    types=("sklearn.ensemble._voting.VotingClassifier",
                           "sklearn.preprocessing._label.LabelEncoder", SCALER_TYPE,
                           _SVC, _LOGREG, _HIST_GB)),
    ModelSpec("crnn", "CNN (stats pooling)", "sequence", "ser.models.training:train_crnn",
              "sequences", "crnn", sequences="logmel"),
    # The seed's plain LSTM on MFCC frames: the named baseline the CNN is compared with.
    ModelSpec("lstm_seed", "LSTM (seed)", "sequence", "ser.models.training:train_lstm", "sequences",
              "lstm_seed", sequences="mfcc"),
    # The pretrained BYOL-S encoder fine-tuned on the byols_mel frames (ser/models/byols_ft.py).
    ModelSpec("byols_ft", "BYOL-S fine-tuned", "sequence", "ser.models.training:train_byols_ft",
              "sequences", "byols_ft", sequences="byols"),
)}

#: Derived from :data:`MODEL_SPECS` at import; code that must see a model registered
#: later (a test's) reads :data:`MODEL_SPECS` or :func:`classical_models`.
CLASSICAL_MODELS: tuple[str, ...] = tuple(n for n, s in MODEL_SPECS.items()
                                          if s.kind == "classical")
SEQUENCE_MODELS: tuple[str, ...] = tuple(n for n, s in MODEL_SPECS.items()
                                         if s.kind == "sequence")
MODELS: tuple[str, ...] = tuple(MODEL_SPECS)


def classical_models() -> tuple[str, ...]:
    """The classical models registered now (:data:`MODEL_SPECS` order)."""
    return tuple(n for n, s in MODEL_SPECS.items() if s.kind == "classical")


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
