"""Saving and loading trained models with their model card.

A model folder holds the model file (``model.skops`` for scikit-learn, never a
bare pickle; ``model.keras`` for the LSTM), ``card.json`` (the label list, the
feature set and its exact parameters, the protocol and corpora it was trained
on) and ``SHA256SUMS``, the checksum of every other file in the folder, written
at save time.

Loading a folder (:func:`load_model`) refuses, with one line naming the file
and the reason:

* a file whose checksum differs from ``SHA256SUMS`` (an edited card: reordered
  labels, another sample rate or trim level; a corrupt model file) or a folder
  without ``SHA256SUMS``;
* a ``card.json`` that is not JSON or breaks ``ser/schemas/card.schema.yaml``;
* a skops file referencing any type outside skops' own safe set plus the exact
  names in :data:`TRUSTED_TYPES` (never a module prefix), so no function such
  as ``builtins.exec`` or ``numpy.full_like`` can be smuggled in;
* a ``.keras`` file that safe mode refuses (a ``Lambda`` layer) or that does
  not load;
* a model whose own label order disagrees with the card (scikit-learn
  ``classes_`` must equal ``labels``; the Keras output size must equal
  ``len(labels)``).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ser.errors import SerError
from ser.io import atomic_path

CARD = "card.json"
#: Checksum manifest of a model folder (``sha256  relative/path`` lines, like ``sha256sum``).
CHECKSUMS = "SHA256SUMS"
CARD_SCHEMA_PATH = Path(str(resources.files("ser") / "schemas" / "card.schema.yaml"))

#: Exact type names a skops file may reference beyond skops' built-in safe set
#: (scikit-learn estimators, numpy arrays and dtypes). These are the types our
#: saved pipelines contain - SVC, KNN (KD tree), random forest, decision tree,
#: HistGradientBoosting and a soft-voting ensemble of them; the list is
#: regenerated and checked by ``tests/test_reliability.py`` (saves every kind).
#: Nothing is trusted by module prefix.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
})


def save_model(out_dir: str | Path, model: Any, card: dict[str, Any],
               extra_files: dict[str, Any] | None = None) -> None:
    """Write ``model``, its ``card`` and the checksum manifest to ``out_dir`` atomically.

    ``extra_files`` maps a file name to a callable ``write(path)`` for side
    outputs (CV results, history) that belong in the same folder; they are
    covered by the checksum manifest too.
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
        write_checksums(tmp)


def folder_checksums(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every regular file under ``folder`` but the manifest."""
    sums = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel != CHECKSUMS and path.is_file() and not path.is_symlink():
            sums[rel] = _sha256(path)
    return sums


def write_checksums(folder: Path) -> None:
    """Write ``SHA256SUMS`` for every file in ``folder`` (``sha256sum -c`` can check it)."""
    lines = [f"{digest}  {rel}\n" for rel, digest in folder_checksums(folder).items()]
    (folder / CHECKSUMS).write_text("".join(lines))


def verify_checksums(model_dir: Path) -> None:
    """Raise :class:`SerError` naming the first file that differs from ``SHA256SUMS``."""
    manifest = model_dir / CHECKSUMS
    if not manifest.is_file():
        raise SerError(f"{manifest}: missing; the folder was saved by an older version or "
                       "copied incompletely - retrain the model (dvc repro / snakemake)")
    expected: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text(errors="replace").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise SerError(f"{manifest}: line {n} is not '<sha256>  <file>'; the checksum "
                           "manifest is damaged - retrain the model")
        expected[rel] = digest
    for required in (CARD,):
        if required not in expected:
            raise SerError(f"{manifest}: does not list {required}; retrain the model")
    for rel, digest in expected.items():
        path = model_dir / rel
        if not path.resolve().is_relative_to(model_dir.resolve()) or not path.is_file():
            raise SerError(f"{path}: listed in {CHECKSUMS} but missing; the folder is "
                           "incomplete - retrain or copy it again")
        if _sha256(path) != digest:
            raise SerError(f"{path}: checksum differs from {CHECKSUMS}; the file was edited "
                           "or is corrupt - restore it or retrain the model")


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """Read a model folder's card after checking checksums and the card schema.

    Raises
    ------
    SerError
        One line naming the file and the reason: no folder, no card, a file
        that differs from ``SHA256SUMS``, a card that is not JSON or breaks
        the schema.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise SerError(f"{model_dir}: model folder not found; train one first "
                       "(make demo) or pass --model with an existing folder")
    card_path = model_dir / CARD
    if not card_path.is_file():
        raise SerError(f"{model_dir}: not a trained model folder (no {CARD}); "
                       "it may be unfinished - rerun the train stage")
    verify_checksums(model_dir)
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SerError(f"{card_path}: not valid JSON ({exc}); retrain the model") from None
    validate_card(card, source=str(card_path))
    return card


def validate_card(card: Any, *, source: str = CARD) -> None:
    """Validate a card mapping against ``card.schema.yaml``; one-line :class:`SerError`."""
    import jsonschema

    schema = yaml.safe_load(CARD_SCHEMA_PATH.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(card), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(top level)"
        raise SerError(f"{source}: invalid model card at {where}: {err.message}; "
                       "retrain the model")


def load_model(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model safely with its card (see the module docstring for what is refused)."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card["format"] == "skops":
        path = model_dir / "model.skops"
        _require(path)
        model = _load_skops(path)
        classes = getattr(model, "classes_", None)
        if classes is None or [str(c) for c in classes] != list(card["labels"]):
            raise SerError(f"{model_dir / CARD}: labels {card['labels']} do not match the "
                           f"model's classes {None if classes is None else list(classes)}; "
                           "the folder mixes two trainings - retrain it")
        return model, card
    path = model_dir / "model.keras"
    _require(path)
    model = _load_keras(path)
    n_out = int(model.output_shape[-1])
    if n_out != len(card["labels"]):
        raise SerError(f"{model_dir / CARD}: lists {len(card['labels'])} labels but the model "
                       f"has {n_out} outputs; the folder mixes two trainings - retrain it")
    return model, card


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is one line
        raise SerError(f"{path}: not a readable skops model ({_reason(exc)}); "
                       "retrain the model") from None
    refused = sorted(t for t in untrusted if t not in TRUSTED_TYPES)
    if refused:
        raise SerError(f"{path}: refuses to load untrusted types {refused}; only the "
                       "scikit-learn types our pipelines contain are accepted "
                       "(a model file must never run code)")
    try:
        return sio.load(path, trusted=sorted(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise SerError(f"{path}: cannot load the model ({_reason(exc)}); retrain it") from None


def _load_keras(path: Path) -> Any:
    import keras

    import ser.models.crnn  # noqa: F401 - registers the crnn's layers (no code in the file)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "Lambda" in text or "safe_mode" in text:
            raise SerError(f"{path}: contains a Lambda layer (arbitrary code), refused in safe "
                           "mode; only models trained by this project are loaded") from None
        raise SerError(f"{path}: not a loadable Keras model ({_reason(exc)}); "
                       "retrain the model") from None


def _reason(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _require(path: Path) -> None:
    if not path.is_file():
        raise SerError(f"{path}: model file missing; rerun the train stage")
