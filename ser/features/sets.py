"""The table of feature sets: name -> extractor and the tables it writes.

A feature set's settings are the ``params.yaml`` section of the same name (``mfcc:``);
its outputs are ``data/features/<name>/<corpus>/{summary,sequences}.parquet`` plus
``skipped.csv``. Adding one is an entry here, its extractor module, its schema section
and its name in the ``train.feature_sets`` enum (a test checks they agree).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ser.errors import ConfigError


@dataclass(frozen=True)
class FeatureSetSpec:
    """One feature set.

    Attributes
    ----------
    name
        Name in ``train.feature_sets``, in paths, and of its params section.
    extractor
        ``module:function`` with the signature of
        :func:`ser.features.extract.extract_features` (manifest, out_dir, params=section, ...).
    kind
        ``summary+sequences`` (both tables), ``summary`` or ``sequences``.
    """

    name: str
    extractor: str
    kind: str

    def extract_function(self) -> Callable:
        """The extractor, imported on first use."""
        module, _, func = self.extractor.partition(":")
        return getattr(importlib.import_module(module), func)


FEATURE_SETS: dict[str, FeatureSetSpec] = {s.name: s for s in (
    FeatureSetSpec("mfcc", "ser.features.extract:extract_features", "summary+sequences"),
)}


def feature_set_spec(name: str) -> FeatureSetSpec:
    """The spec of ``name``, or a :class:`ConfigError` listing the known ones."""
    if name not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {name!r}; known: {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[name]
