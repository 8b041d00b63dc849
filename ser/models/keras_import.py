"""Importing Keras for inference without the optional integrations it never uses there."""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

#: Optional integrations Keras imports when they are installed (its scikit-learn wrappers,
#: plotting and image utilities, downloads) and that loading a model for inference never
#: uses; keeping them out of a process that has not imported them yet saves about 90 MB
#: (measured: benchmarks/bench_long_audio.py, predict with lstm_seed and crnn).
KERAS_UNUSED_INTEGRATIONS = ("sklearn", "matplotlib", "PIL", "requests")


class _HideModules(importlib.abc.MetaPathFinder):
    """Makes ``import <name>`` fail with ImportError for the top-level names given, as if
    the package were not installed; Keras guards each of these imports for that case."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 - finder protocol
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is not used when loading a model",
                                      name=fullname)
        return None


def import_keras_for_inference() -> Any:
    """Import Keras without the optional integrations of :data:`KERAS_UNUSED_INTEGRATIONS`
    that this process has not imported yet (they stay importable afterwards)."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    hidden = frozenset(n for n in KERAS_UNUSED_INTEGRATIONS if n not in sys.modules)
    finder = _HideModules(hidden)
    sys.meta_path.insert(0, finder)
    try:
        import keras
    finally:
        sys.meta_path.remove(finder)
    return keras
