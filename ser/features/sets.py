"""The table of feature sets: name -> extractor, the tables it writes, and its variants.

A feature set's settings are the ``params.yaml`` section of the same name (``mfcc:``,
``egemaps:``, ...); every set but ``mfcc`` also decodes with the ``mfcc:`` section
(sample rate, trimming and ``max_seconds`` are shared: :func:`feature_set_params`). Its
outputs are ``data/features/<name>/<corpus>/`` with ``summary.parquet`` (manifest
columns + ``feat_*``), ``sequences.parquet`` (sets with frame sequences) and
``skipped.csv``; each is extracted once per corpus.

A *variant* (``base=...``) extracts nothing: it reads its base set's tables and applies
a transformation at data-assembly time (:func:`ser.splits.protocol_data.load_protocol_data`). The
``_spk`` variants z-score every speaker's features with that speaker's own statistics
(:mod:`ser.features.speaker_norm`); for test speakers that uses their unlabeled test clips, so their
runs are **transductive** (said in metrics.json and the model card). Outside the pipeline
such a model needs one speaker's statistics (:mod:`ser.predict.speaker_profile`: clips, a profile,
or a long
recording itself); ``ser evaluate`` normalises each speaker of a corpus folder with their own
clips, as the pipeline does.

Adding a set is an entry here and its extractor: the ``train.feature_sets`` enum and its
params section's schema (``workers`` plus the entry's :attr:`FeatureSetSpec.settings`) are
made from the entry (:func:`ser.params.load.params_schema`; CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ser.errors import ConfigError


@dataclass(frozen=True)
class FeatureSetSpec:
    """One feature set.

    Attributes
    ----------
    name
        Name in ``train.feature_sets`` and in paths.
    extractor
        ``module:function`` with the signature of
        :func:`ser.features.extract.extract_features` (manifest, out_dir, params=..., ...).
    kind
        ``summary+sequences`` (both tables usable by models), ``summary`` or ``sequences``
        (``summary.parquet`` then holds only the manifest columns).
    sequences
        What its sequence table holds (``mfcc``, ``logmel`` or ``byols``: the BYOL-S
        front end's log-mel), for the sequence models
        that read it (:attr:`ser.models.ModelSpec.sequences`); ``None`` without one.
    base
        A variant's base set, whose extracted tables it reads (``None``: extracted).
    speaker_norm
        Standardise every speaker's features with that speaker's own statistics.
    signal
        ``module:function`` computing one recording's features for ``predict.py`` and
        ``ser evaluate`` (see :mod:`ser.features.signal`); ``None``: models on this set
        classify only clips of a feature table.
    settings
        JSON schema of each key of its params section besides ``workers`` (name ->
        schema), all required; the section's schema is made from it
        (:func:`ser.params.load.params_schema`) unless
        ``ser/schemas/params.schema.yaml`` describes the section itself.
    """

    name: str
    extractor: str
    kind: str
    sequences: str | None = None
    base: str | None = None
    speaker_norm: bool = False
    signal: str | None = None
    settings: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def extracted(self) -> str:
        """The set whose files hold this one's features (itself, or its base)."""
        return self.base or self.name

    @property
    def section(self) -> str:
        """The params section of its extraction settings (the base's for a variant)."""
        return self.extracted

    @property
    def tables(self) -> tuple[str, ...]:
        """The Parquet tables its extractor writes (``summary`` always: the clip index)."""
        return ("summary", "sequences") if "sequences" in self.kind else ("summary",)

    @property
    def has_summary(self) -> bool:
        """Whether classical models can use it (``feat_*`` columns in the summary)."""
        return "summary" in self.kind

    def extract_function(self) -> Callable:
        """The extractor, imported on first use."""
        module, _, func = self.extractor.partition(":")
        return getattr(importlib.import_module(module), func)

    def signal_function(self) -> Callable | None:
        """The per-recording function (:attr:`signal`), imported on first use."""
        if self.signal is None:
            return None
        module, _, func = self.signal.partition(":")
        return getattr(importlib.import_module(module), func)


def _variants(spec: FeatureSetSpec) -> tuple[FeatureSetSpec, FeatureSetSpec]:
    return spec, FeatureSetSpec(f"{spec.name}_spk", spec.extractor, spec.kind, spec.sequences,
                                base=spec.name, speaker_norm=True, signal=spec.signal)


_SETS = "ser.features.corpus_sets"
_SIG = "ser.features.signal"
FEATURE_SETS: dict[str, FeatureSetSpec] = {s.name: s for pair in (
    _variants(FeatureSetSpec("mfcc", "ser.features.extract:extract_features",
                             "summary+sequences", "mfcc", signal=f"{_SIG}:mfcc")),
    _variants(FeatureSetSpec("mfcc_stats", f"{_SETS}:extract_mfcc_stats", "summary",
                             signal=f"{_SIG}:summary_vector")),
    _variants(FeatureSetSpec("egemaps", f"{_SETS}:extract_egemaps", "summary",
                             signal=f"{_SIG}:summary_vector")),
    _variants(FeatureSetSpec("egemaps_mfcc", f"{_SETS}:extract_egemaps_mfcc", "summary",
                             signal=f"{_SIG}:summary_vector")),
    _variants(FeatureSetSpec("logmel", f"{_SETS}:extract_logmel", "sequences", "logmel",
                             signal=f"{_SIG}:logmel", settings={
                                 "n_mels": {"description": "Mel bands.", "type": "integer",
                                            "minimum": 1, "maximum": 256},
                                 "deltas": {"description": "0: bands only, 1: + deltas, "
                                                           "2: + delta-deltas.",
                                            "enum": [0, 1, 2]}})),
    _variants(FeatureSetSpec("byols", "ser.features.byols:extract_byols", "summary",
                             signal=f"{_SIG}:byols")),
    # The BYOL-S front end's frames for the fine-tuned encoder (byols_ft); no _spk variant:
    # the pretrained encoder expects the original input distribution.
    (FeatureSetSpec("byols_mel", "ser.features.byols_mel:extract_byols_mel", "sequences",
                    "byols", signal=f"{_SIG}:byols_mel"),),
) for s in pair}

#: The sets that are extracted (have their own files and params section).
EXTRACTED_SETS: tuple[str, ...] = tuple(n for n, s in FEATURE_SETS.items() if s.base is None)


def feature_set_spec(name: str) -> FeatureSetSpec:
    """The spec of ``name``, or a :class:`ConfigError` listing the known ones.

    Parameters
    ----------
    name : str
        A feature set of :data:`FEATURE_SETS` (variants included).
    """
    if name not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {name!r}; known: {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[name]


def feature_set_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The extraction settings of set ``name`` from the whole params mapping.

    ``mfcc``: its section. The other sets: the ``mfcc:`` section (decoding), with the
    set's own ``workers`` and its whole section under ``options`` (e.g. logmel's
    ``n_mels``, which is not the MFCC filterbank's).

    Parameters
    ----------
    name : str
        The feature set (a variant reads its base set's section).
    params : Mapping
        The whole validated params mapping.

    Returns
    -------
    dict
        What the set's extractor takes as ``params``.
    """
    spec = feature_set_spec(name)
    own = dict(params.get(spec.section) or {})
    if spec.section == "mfcc":
        return own
    mfcc = dict(params["mfcc"])
    return mfcc | {"workers": own.get("workers", mfcc.get("workers", 1)), "options": own}


def model_accepts(model: str, feature_set: str) -> bool:
    """Whether ``model`` can be trained on ``feature_set`` (classical models need summary
    features, a sequence model the kind of sequences it reads).

    Parameters
    ----------
    model, feature_set : str
        Registry names (:data:`ser.models.MODEL_SPECS`, :data:`FEATURE_SETS`).
    """
    from ser.models import model_spec

    m, f = model_spec(model), feature_set_spec(feature_set)
    if m.kind == "classical":
        return f.has_summary
    return f.sequences is not None and f.sequences == m.sequences


def check_same_features(stored: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse features made with another definition than the model's.

    Parameters
    ----------
    stored : Mapping
        The model card's feature fingerprint.
    current : Mapping
        The feature files' fingerprint.
    """
    if stored.get("feature_set", "mfcc") == "mfcc" and current.get("feature_set") == "mfcc":
        from ser.features.mfcc import check_feature_params

        check_feature_params(stored, current)
        return
    if dict(stored) != dict(current):
        keys = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise ConfigError(f"feature definition differs from the one the model was trained "
                          f"with (keys: {', '.join(keys)}); re-extract features and retrain")
