"""Saving and loading trained models with their model card.

A model folder holds the model file (``model.skops`` for scikit-learn, never a
bare pickle; ``model.keras`` for the LSTM) and ``card.json``: the label list,
the feature set and its exact parameters, the protocol and corpora it was
trained on. The card is checked at load so a model is never fed features it
was not trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.io import atomic_path

CARD = "card.json"
#: Module prefixes a skops file may reference; anything else is refused at load.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def save_model(out_dir: str | Path, model: Any, card: dict[str, Any],
               extra_files: dict[str, Any] | None = None) -> None:
    """Write ``model`` and its ``card`` to ``out_dir`` atomically.

    ``extra_files`` maps a file name to a callable ``write(path)`` for side
    outputs (CV results, history) that belong in the same folder.
    """
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        if card["format"] == "skops":
            import skops.io as sio

            sio.dump(model, tmp / "model.skops")
        else:
            model.save(tmp / "model.keras")
        (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
        for name, write in (extra_files or {}).items():
            write(tmp / name)


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """Read a model folder's card, with a clear error if the folder is not a model."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise SerError(f"{model_dir}: model folder not found; train one first "
                       "(make demo) or pass --model with an existing folder")
    card_path = model_dir / CARD
    if not card_path.is_file():
        raise SerError(f"{model_dir}: not a trained model folder (no {CARD}); "
                       "it may be unfinished - rerun the train stage")
    return json.loads(card_path.read_text())


def load_model(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model safely with its card.

    skops files are loaded only if every type they reference is from a
    trusted module; ``.keras`` files load in safe mode (no arbitrary lambdas).
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card["format"] == "skops":
        import skops.io as sio

        path = model_dir / "model.skops"
        _require(path)
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise SerError(f"{path}: refuses to load untrusted types {refused}; "
                           "only scikit-learn/numpy objects are accepted")
        return sio.load(path, trusted=untrusted), card
    import keras

    path = model_dir / "model.keras"
    _require(path)
    return keras.saving.load_model(path, safe_mode=True, compile=False), card


def _require(path: Path) -> None:
    if not path.is_file():
        raise SerError(f"{path}: model file missing; rerun the train stage")
