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

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ser.errors import SerError
from ser.models.keras_import import import_keras_for_inference
from ser.outputs import ENGINE_FILES, atomic_path, sha256_file

CARD = "card.json"
#: Human-readable summary of ``card.json``, written beside it (and checksummed) at save time.
CARD_MD = "card.md"
#: Checksum manifest of a model folder (``sha256  relative/path`` lines, like ``sha256sum``).
CHECKSUMS = "SHA256SUMS"
CARD_SCHEMA_PATH = Path(str(resources.files("ser") / "schemas" / "card.schema.yaml"))

#: Exact type names a skops file may reference beyond skops' built-in safe set
#: (numpy arrays and dtypes, builtins). Our saved pipelines (SVC, KNN, random forest,
#: decision tree, HistGradientBoosting and a soft-voting ensemble of them, each behind
#: a scaler in a Pipeline) hold no type skops itself leaves untrusted: their native tree
#: structures (``Tree``, ``TreePredictor``, ``KDTree``), which index memory without
#: bounds checks, are saved as plain arrays and rebuilt only after every node is checked
#: (:mod:`ser.models.plain_trees`). The list is regenerated and checked by
#: ``tests/unit/models/test_model_files.py`` (saves every kind). Nothing is trusted by
#: module prefix.
TRUSTED_TYPES: frozenset[str] = frozenset()
#: The scikit-learn estimators among them: every classical model's
#: :attr:`~ser.models.ModelSpec.saved_types` (:func:`trusted_estimators`). skops trusts every
#: scikit-learn estimator by default, but only after importing all of scikit-learn to list
#: them (about a second of predict.py's start-up); :func:`skops_io` skips that scan, so
#: these are named too.


def trusted_estimators() -> frozenset[str]:
    """The exact type names the registered classical models' saved files may hold
    (read from :data:`ser.models.MODEL_SPECS` now, so a model registered later counts)."""
    from ser.models import MODEL_SPECS

    return frozenset(t for spec in MODEL_SPECS.values() for t in spec.saved_types)


#: The model file of each card ``format``.
MODEL_FILES: dict[str, str] = {"skops": "model.skops", "keras": "model.keras"}
#: Card fields that decide what a model answers (its inputs, their order, its labels):
#: a copy is stored inside the model file (:data:`EMBEDDED_CARD`) and must equal the card.
MODEL_BOUND_FIELDS: tuple[str, ...] = ("format", "labels", "feature_set", "feature_params",
                                       "feature_columns", "sample_rate", "scaler",
                                       "n_frames", "transductive")
#: Member of the model file's zip archive (skops and Keras files are zip archives, and
#: both loaders ignore other members) holding :data:`MODEL_BOUND_FIELDS` as JSON.
EMBEDDED_CARD = "ser_card.json"
#: Largest SHA256SUMS / embedded card read (a model folder's are a few kB).
_MAX_SMALL_FILE = 1 << 20


def bound_fields(card: dict[str, Any]) -> dict[str, Any]:
    """The :data:`MODEL_BOUND_FIELDS` of ``card`` as JSON would give them back."""
    subset = {k: card[k] for k in MODEL_BOUND_FIELDS if k in card}
    return json.loads(json.dumps(subset, sort_keys=True, default=str))


def embed_card(model_file: Path, card: dict[str, Any]) -> None:
    """Store the card's :func:`bound_fields` inside ``model_file`` (a zip archive)."""
    import zipfile

    with zipfile.ZipFile(model_file, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(EMBEDDED_CARD, json.dumps(bound_fields(card), sort_keys=True))


def check_embedded_card(model_dir: Path, card: dict[str, Any]) -> None:
    """Refuse a card whose model-deciding fields differ from the copy inside the model file.

    Reads only that small zip member (no model is loaded), so ``predict.py`` can run it
    before it starts extracting features with the card's parameters.
    """
    import zipfile

    path = model_dir / MODEL_FILES.get(card.get("format"), "model.skops")
    _require(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(EMBEDDED_CARD)
            if info.file_size > _MAX_SMALL_FILE:
                raise ValueError("embedded card too large")
            embedded = json.loads(zf.read(info))
    except KeyError:
        raise SerError(f"{path}: holds no copy of its card ({EMBEDDED_CARD}); it was saved "
                       "by an older version of this project - retrain the model") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is one line
        raise SerError(f"{path}: not a readable model archive ({_reason(exc)}); "
                       "retrain the model") from None
    ours = bound_fields(card)
    differ = [k for k in MODEL_BOUND_FIELDS if ours.get(k) != embedded.get(k)]
    if differ:
        raise SerError(f"{model_dir / CARD}: {', '.join(differ)} differ from what the model "
                       f"was trained on (the copy inside {path.name}); the card was edited - "
                       "restore the folder or retrain the model")


def skops_io() -> Any:
    """``skops.io``, imported without its scan of every scikit-learn estimator.

    At import, skops lists all of scikit-learn's estimators (``all_estimators``, which
    imports every scikit-learn module) to trust them by default. The models here need
    only :func:`trusted_estimators`, which :func:`load_model` names explicitly, so the
    scan is replaced by an empty list. If skops was imported already (or imports the
    function some other way) the scan simply happens: slower, equally safe.
    """
    import sys

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    scan = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: []
    try:
        import skops.io
    finally:
        sklearn.utils.all_estimators = scan
    return skops.io


def save_model(out_dir: str | Path, model: Any, card: dict[str, Any],
               extra_files: dict[str, Any] | None = None) -> None:
    """Write ``model``, its ``card`` and the checksum manifest to ``out_dir`` atomically.

    Parameters
    ----------
    out_dir : str or Path
        The model folder (a run folder of :mod:`ser.layout`); replaced only
        under the rule of :mod:`ser.outputs`.
    model : Any
        A fitted scikit-learn estimator (saved as ``model.skops``) or Keras model
        (``model.keras``).
    card : dict
        The model card, validated against ``ser/schemas/card.schema.yaml``.
    extra_files : dict, optional
        File name -> callable ``write(path)`` for side outputs (CV results, history)
        that belong in the same folder; the checksum manifest covers them too.
    """
    from ser.models.plain_trees import to_plain

    # The folder lists its files in SHA256SUMS, which also marks it as the tool's own.
    with atomic_path(out_dir, marker=False) as tmp:
        tmp.mkdir(parents=True)
        path = tmp / MODEL_FILES[card["format"]]
        if card["format"] == "skops":
            skops_io().dump(to_plain(model), path)
        else:
            model.save(path)
        embed_card(path, card)
        (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
        (tmp / CARD_MD).write_text(render_card_markdown(card))
        for name, write in (extra_files or {}).items():
            write(tmp / name)
        write_checksums(tmp)


#: Distributions whose versions a card records (``library_versions``) and predict compares.
TRACKED_LIBRARIES = ("numpy", "scikit-learn", "keras", "jax", "librosa", "soundfile")
#: Of those, the ones whose major.minor must match for a model to behave as trained.
VERSION_CRITICAL = ("scikit-learn", "keras", "numpy")

def library_versions() -> dict[str, str | None]:
    """Installed versions of Python, :data:`TRACKED_LIBRARIES` (``None``: not installed) and ser.

    Read from package metadata, so nothing heavy (keras, jax) is imported.
    """
    import platform
    from importlib import metadata

    from ser import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "ser": __version__}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _major_minor(version: str | None) -> tuple[str, ...] | None:
    return None if not version else tuple(version.split(".")[:2])


def version_mismatches(card: dict[str, Any],
                       installed: dict[str, str | None] | None = None) -> list[str]:
    """``"name trained x.y.z, installed a.b.c"`` for each :data:`VERSION_CRITICAL` library
    whose major.minor differs from the card's ``library_versions`` (none recorded: nothing)."""
    recorded = card.get("library_versions") or {}
    installed = library_versions() if installed is None else installed
    out = []
    for name in VERSION_CRITICAL:
        was, now = recorded.get(name), installed.get(name)
        if was and now and _major_minor(was) != _major_minor(now):
            out.append(f"{name} trained {was}, installed {now}")
    return out


def synthetic_only(card: dict[str, Any]) -> bool:
    """True when every training corpus of the card is marked synthetic (the demo corpus)."""
    corpora = card.get("training_corpora") or []
    return bool(corpora) and all(c.get("synthetic") for c in corpora)


def display_name(card: dict[str, Any]) -> str:
    """``"svm, speaker-independent, mfcc features"`` - how the model is named to users."""
    return (f"{card.get('model', '?')}, {_protocol_phrase(card.get('protocol', '?'))}, "
            f"{card.get('feature_set', '?')} features")


def _protocol_phrase(protocol: Any) -> Any:
    """The protocol as running text (:attr:`ser.splits.protocols.ProtocolSpec.phrase`)."""
    from ser.splits.protocols import PROTOCOL_SPECS

    spec = PROTOCOL_SPECS.get(protocol) if isinstance(protocol, str) else None
    return spec.phrase if spec else protocol


def render_card_markdown(card: dict[str, Any], *, test_metrics: dict[str, Any] | None = None,
                         model_link: str | None = None) -> str:
    """A short Markdown model card from ``card.json`` (and test metrics, when known).

    Written as ``card.md`` in the model folder at save time (validation scores
    only) and as ``model_card.md`` next to ``metrics.json`` by the evaluate
    stage (with the test metrics and their confidence intervals).
    """
    fp = card.get("feature_params") or {}
    lines = [f"# Model card: {display_name(card)}", ""]
    if model_link:
        lines += [f"Model folder: [{model_link}]({model_link}) "
                  f"(its own card: `{model_link}/{CARD}`, `{CARD_MD}`)", ""]
    if synthetic_only(card):
        lines += ["> **Trained on synthetic demo data only.** Its answers on real recordings "
                  "say nothing about real emotions; retrain on real corpora.", ""]
    lines += [f"- **Labels (output order):** {', '.join(card['labels'])}",
              f"- **Protocol:** {_protocol_phrase(card.get('protocol'))}"
              f" (`{card.get('protocol')}`)",
              f"- **Feature set:** {card.get('feature_set', '?')}",
              f"- **Sample rate:** {card.get('sample_rate', fp.get('sample_rate', '?'))} Hz",
              "- **Feature settings:** "
              + ", ".join(f"{k}={v}" for k, v in sorted(fp.items()) if k != "fingerprint"),
              f"- **Training clips:** {card.get('n_train', '?')}"
              f" from {len(card.get('train_speakers', []))} speakers"]
    corpora = card.get("training_corpora")
    if corpora:
        lines.append("- **Training corpora:** " + ", ".join(
            f"{c['name']} ({'synthetic demo' if c.get('synthetic') else 'real'}, "
            f"{c.get('n_train', '?')} clips)" for c in corpora))
    else:
        lines.append(f"- **Training corpora:** {', '.join(card.get('corpora', []))}")
    if card.get("best_params"):
        lines.append("- **Chosen settings:** "
                     + ", ".join(f"{k}={v}" for k, v in sorted(card["best_params"].items())))
    lines += ["", "## Validation (training side only)", ""]
    if "cv_best_score" in card:
        lines.append(f"- best cross-validated {card.get('scoring', 'score')}: "
                     f"{card['cv_best_score']:.3f} ({card.get('cv', 'CV')}, "
                     f"{card.get('cv_folds', '?')} folds)")
    if "best_val_loss" in card:
        lines.append(f"- best validation loss: {card['best_val_loss']:.4f} "
                     f"({card.get('n_validation', '?')} held-out training clips, "
                     f"{card.get('epochs_run', '?')} epochs)")
    if test_metrics:
        lines += ["", "## Test metrics (95% bootstrap CIs)", ""]
        ci = test_metrics.get("ci95") or {}
        for key in ("uar", "accuracy", "f1_macro", "precision_macro", "recall_macro"):
            if key in test_metrics:
                bounds = ci.get(key)
                shown = (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]"
                         if isinstance(bounds, list | tuple) and len(bounds) == 2 else "")
                lines.append(f"- {key}: {test_metrics[key]:.3f}{shown}")
        if "n_test" in test_metrics:
            lines.append(f"- test clips: {test_metrics['n_test']}")
    else:
        lines += ["", "Test metrics with confidence intervals: see `model_card.md` beside "
                  "this model's `metrics.json` (written by the evaluate stage)."]
    data = card.get("data_versions") or {}
    if data:
        lines += ["", "## Data versions", ""]
        for key, value in sorted(data.items()):
            if isinstance(value, dict):
                for sub, digest in sorted(value.items()):
                    lines.append(f"- {key} `{sub}`: `{digest}`")
            else:
                lines.append(f"- {key}: `{value}`")
    libs = card.get("library_versions") or {}
    if libs:
        lines += ["", "## Library versions", "",
                  ", ".join(f"{k} {v}" for k, v in libs.items() if v)]
    return "\n".join(lines) + "\n"


def folder_checksums(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every regular file under ``folder`` but the manifest."""
    sums = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel != CHECKSUMS and path.is_file() and not path.is_symlink():
            sums[rel] = sha256_file(path)
    return sums


def write_checksums(folder: Path) -> None:
    """Write ``SHA256SUMS`` for every file in ``folder`` (``sha256sum -c`` can check it)."""
    lines = [f"{digest}  {rel}\n" for rel, digest in folder_checksums(folder).items()]
    (folder / CHECKSUMS).write_text("".join(lines))


def verify_checksums(model_dir: Path) -> None:
    """Raise :class:`SerError` naming the first file that differs from ``SHA256SUMS``.

    Every file in the folder must be listed (an unlisted file, a folder link or anything
    that is not a regular file is refused) and every listed file must be present with its
    checksum, so nothing in the folder is read before it is verified.
    """
    manifest = model_dir / CHECKSUMS
    if not manifest.is_file() or manifest.is_symlink():
        raise SerError(f"{manifest}: missing; the folder was saved by an older version or "
                       "copied incompletely - retrain the model (dvc repro / snakemake)")
    if manifest.stat().st_size > _MAX_SMALL_FILE:
        raise SerError(f"{manifest}: too large for a checksum manifest; retrain the model")
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
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir).as_posix()
        if rel == CHECKSUMS or (path.is_dir() and not path.is_symlink()):
            continue
        # Snakemake stamps folder outputs; the stamp is never read, so it needs no checksum.
        if rel in ENGINE_FILES and path.is_file() and not path.is_symlink():
            continue
        # A link to a regular file is hashed like one (DVC's cache.type symlink); a link to
        # a folder, a FIFO or a device never is (it could block or walk out of the folder).
        if not path.is_file() or (path.is_symlink() and path.is_dir()):
            raise SerError(f"{path}: a folder link or special file in a model folder; only "
                           "the files the train stage wrote belong there - remove it or "
                           "retrain")
        if rel not in expected:
            raise SerError(f"{path}: not listed in {CHECKSUMS}; a model folder holds only "
                           "files written (and checksummed) at training - remove it or "
                           "retrain the model")
    for rel, digest in expected.items():
        path = model_dir / rel
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not path.is_file():
            raise SerError(f"{path}: listed in {CHECKSUMS} but missing; the folder is "
                           "incomplete - retrain or copy it again")
        if sha256_file(path) != digest:
            raise SerError(f"{path}: checksum differs from {CHECKSUMS}; the file was edited "
                           "or is corrupt - restore it or retrain the model")


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """Read a model folder's card after checking checksums and the card schema.

    Parameters
    ----------
    model_dir : str or Path
        The model folder.

    Returns
    -------
    dict
        The card.

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
    """Load a model safely with its card (see the module docstring for what is refused).

    Parameters
    ----------
    model_dir : str or Path
        The model folder (:func:`save_model`).

    Returns
    -------
    tuple
        ``(model, card)``.

    Raises
    ------
    SerError
        One line naming the file and the reason the folder is refused.
    """
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
        check_embedded_card(model_dir, card)
        return model, card
    path = model_dir / "model.keras"
    _require(path)
    model = _load_keras(path)
    n_out = int(model.output_shape[-1])
    if n_out != len(card["labels"]):
        raise SerError(f"{model_dir / CARD}: lists {len(card['labels'])} labels but the model "
                       f"has {n_out} outputs; the folder mixes two trainings - retrain it")
    check_embedded_card(model_dir, card)
    return model, card


def _load_skops(path: Path) -> Any:
    sio = skops_io()
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is one line
        raise SerError(f"{path}: not a readable skops model ({_reason(exc)}); "
                       "retrain the model") from None
    trusted = TRUSTED_TYPES | trusted_estimators()
    refused = sorted(t for t in untrusted if t not in trusted)
    if refused:
        raise SerError(f"{path}: refuses to load untrusted types {refused}; only the "
                       "scikit-learn types our pipelines contain are accepted "
                       "(a model file must never run code)")
    try:
        model = sio.load(path, trusted=sorted(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise SerError(f"{path}: cannot load the model ({_reason(exc)}); retrain it") from None
    from ser.models.plain_trees import TreeCheckError, from_plain

    try:
        return from_plain(model)
    except TreeCheckError as exc:
        raise SerError(f"{path}: inconsistent tree structure ({exc}); the file was crafted "
                       "or is corrupt - retrain the model") from None


def _load_keras(path: Path) -> Any:
    keras = import_keras_for_inference()

    import ser.models.byols_ft  # noqa: F401 - registers byols_ft's and the encoder's layers
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


def _require(path: Path) -> None:
    if not path.is_file():
        raise SerError(f"{path}: model file missing; rerun the train stage")
