"""Per-clip summary feature vectors beyond the MFCC stage: MFCC statistics, eGeMAPS, ComParE.

Every set starts from the same decoded signal as the MFCC features
(:func:`ser.audio.load_audio` at the ``mfcc:`` sample rate, then
:func:`ser.features.mfcc.prepare_signal`'s trim / truncate / pad), so all
sets see identical audio:

``mfcc_stats``
    MFCCs plus their deltas (:func:`ser.features.mfcc.mfcc_sequence` with
    ``deltas=1``), summarised per coefficient by mean and standard deviation
    (``n_mfcc * 2 * 2`` values; 160 for 40 MFCCs). Measured on real RAVDESS,
    leave-one-actor-out, fixed SVC(C=1) / logistic(C=0.01): adding the deltas to
    MFCC mean+std changed plain runs by about -0.01 and speaker-normalised SVC
    by 0.00, but lifted the speaker-normalised logistic model from 0.46 to 0.51;
    delta-deltas did not help (plain SVC 0.42).
``egemaps``
    The 88 eGeMAPSv02 functionals of openSMILE (``opensmile`` package,
    offline), computed from the prepared signal.
``egemaps_mfcc``
    ``egemaps`` followed by ``mfcc_stats``.
``compare``
    The 6,373 ComParE 2016 functionals of openSMILE (large; for linear or
    regularised models).
``seed``
    The seed recipe, kept as a reference: 40 MFCC means of
    ``librosa.load(path)`` (22,050 Hz, librosa's defaults), no trimming. It
    needs the file, not a prepared signal (:func:`file_feature_vector`).

:func:`extract_feature_set` computes a set for a list of files in a process
pool with a progress bar and returns a DataFrame (one row per file, columns
``feat_<name>``); failures are reported, never silently dropped.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import ConfigError, SerError
from ser.features.mfcc import (
    FEATURE_PREFIX,
    FeatureError,
    FeatureParams,
    coefficient_names,
    mfcc_sequence,
    prepare_signal,
    read_seconds,
)

#: Version of this module's definitions (bump when a set's values change).
SETS_VERSION = 1

Vector = tuple[np.ndarray, list[str]]


# --------------------------------------------------------------------------- per-signal sets

def mfcc_stats(y: np.ndarray, sr: int, *, params: Mapping[str, Any] | FeatureParams) -> Vector:
    """MFCC + delta mean and std per coefficient of a prepared signal.

    Parameters
    ----------
    y
        Mono float32 samples at ``params.sample_rate`` (already prepared or
        not: :func:`~ser.features.mfcc.mfcc_sequence` applies the trim /
        truncate / pad steps itself).
    sr
        Sample rate of ``y``.
    params
        The ``mfcc:`` section; its ``deltas`` is overridden to 1.

    Returns
    -------
    vector : np.ndarray, float32, shape (n_mfcc * 4,)
    names : list of str
        ``feat_mfcc00_mean, feat_mfcc00_std, ..., feat_mfcc00_d1_mean, ...``.
    """
    fp = FeatureParams.from_mapping(params)
    fp = FeatureParams.from_mapping(_with(fp, deltas=1))
    seq = mfcc_sequence(y, sr, params=fp).astype(np.float64)
    coefs = coefficient_names(seq.shape[1], deltas=1)
    vec = np.stack([seq.mean(axis=0), seq.std(axis=0)], axis=1).ravel()
    names = [f"{FEATURE_PREFIX}{c}_{s}" for c in coefs for s in ("mean", "std")]
    return vec.astype(np.float32), names


@functools.cache
def _smile(which: str = "eGeMAPSv02"):
    try:
        import opensmile
    except ImportError:  # pragma: no cover - a declared dependency
        raise ConfigError("the egemaps/compare feature sets need the opensmile package: "
                          "pip install 'opensmile>=2.5'") from None
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, which),
                           feature_level=opensmile.FeatureLevel.Functionals)


def _functionals(y: np.ndarray, sr: int, fp: FeatureParams, which: str, tag: str) -> Vector:
    y = prepare_signal(np.asarray(y, dtype=np.float32), params=fp)
    if y.shape[0] == 0:
        raise FeatureError("no samples left after trimming")
    frame = _smile(which).process_signal(y, sr)
    vec = frame.to_numpy(dtype=np.float64)[0]
    if not np.all(np.isfinite(vec)):
        raise FeatureError(f"openSMILE returned non-finite {which} values")
    return vec.astype(np.float32), [f"{FEATURE_PREFIX}{tag}_{c}" for c in frame.columns]


def egemaps(y: np.ndarray, sr: int, *, params: Mapping[str, Any] | FeatureParams) -> Vector:
    """The 88 eGeMAPSv02 functionals (openSMILE) of the prepared signal.

    Parameters
    ----------
    y, sr
        Mono samples at ``params.sample_rate``.
    params
        The ``mfcc:`` section (for the trim / truncate / pad steps).

    Returns
    -------
    vector : np.ndarray, float32, shape (88,)
    names : list of str
        ``feat_egemaps_<openSMILE name>``.
    """
    return _functionals(y, sr, FeatureParams.from_mapping(params), "eGeMAPSv02", "egemaps")


def compare(y: np.ndarray, sr: int, *, params: Mapping[str, Any] | FeatureParams) -> Vector:
    """The 6,373 ComParE 2016 functionals (openSMILE) of the prepared signal.

    Names are ``feat_compare_<openSMILE name>``. Large: use linear or
    regularised models on it.
    """
    return _functionals(y, sr, FeatureParams.from_mapping(params), "ComParE_2016", "compare")


def egemaps_mfcc(y: np.ndarray, sr: int, *,
                 params: Mapping[str, Any] | FeatureParams) -> Vector:
    """:func:`egemaps` followed by :func:`mfcc_stats`."""
    v1, n1 = egemaps(y, sr, params=params)
    v2, n2 = mfcc_stats(y, sr, params=params)
    return np.concatenate([v1, v2]), n1 + n2


_SIGNAL_SETS: dict[str, Callable[..., Vector]] = {
    "mfcc_stats": mfcc_stats,
    "egemaps": egemaps,
    "egemaps_mfcc": egemaps_mfcc,
    "compare": compare,
}

#: The per-clip vectors this module computes, in the order they are documented. Not the
#: pipeline's feature sets (:data:`ser.features.sets.FEATURE_SETS`, whose summary sets use
#: some of these through :mod:`ser.features.corpus_sets`): ``compare`` and ``seed`` serve
#: the benchmarks only.
SUMMARY_VECTORS: tuple[str, ...] = (*_SIGNAL_SETS, "seed")


def seed_mfcc_means(path: str | Path) -> Vector:
    """The seed recipe: 40 MFCC means of ``librosa.load(path)`` (22,050 Hz, defaults)."""
    import librosa

    y, sr = librosa.load(str(path))
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
    return m.mean(axis=1).astype(np.float32), [f"{FEATURE_PREFIX}seed_mfcc{i:02d}_mean"
                                               for i in range(40)]


def signal_feature_vector(name: str, y: np.ndarray, sr: int, *,
                          params: Mapping[str, Any] | FeatureParams) -> Vector:
    """Feature set ``name`` of a decoded mono signal at ``params.sample_rate``."""
    check_feature_set(name)
    if name == "seed":
        raise ConfigError("feature set 'seed' is defined on the file (librosa.load); "
                          "use file_feature_vector")
    return _SIGNAL_SETS[name](y, sr, params=params)


def file_feature_vector(name: str, path: str | Path, *,
                        params: Mapping[str, Any] | FeatureParams) -> Vector:
    """Decode ``path`` like the MFCC features do (at most
    :func:`~ser.features.mfcc.read_seconds`) and compute feature set ``name``.

    Raises
    ------
    AudioError
        If the file cannot be decoded.
    FeatureError
        If it decodes but yields no features (named with the path).
    """
    from ser.audio import load_audio

    check_feature_set(name)
    if name == "seed":
        return seed_mfcc_means(path)
    fp = FeatureParams.from_mapping(params)
    # At most max_seconds + the trim margin is decoded (as for the MFCCs): memory stays
    # flat however long the file, and the features equal those of the whole file.
    y, sr = load_audio(path, sr=fp.sample_rate, max_seconds=read_seconds(fp))
    try:
        return signal_feature_vector(name, y, sr, params=fp)
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None


def check_feature_set(name: str) -> None:
    """Raise :class:`ConfigError` naming the choices if ``name`` is not a feature set."""
    if name not in SUMMARY_VECTORS:
        raise ConfigError(f"unknown feature set {name!r}; choose one of "
                          f"{', '.join(SUMMARY_VECTORS)}")


def feature_set_fingerprint(name: str, params: Mapping[str, Any] | FeatureParams,
                            ) -> dict[str, Any]:
    """JSON-serialisable description of feature set ``name`` (for caches and cards)."""
    from ser.features.mfcc import feature_params_fingerprint

    check_feature_set(name)
    out: dict[str, Any] = {"feature_set": name, "sets_version": SETS_VERSION}
    if name == "seed":
        out["definition"] = "librosa.load(sr=22050) -> librosa.feature.mfcc(n_mfcc=40) -> mean"
        return out
    out["signal"] = feature_params_fingerprint(params)
    if name in ("egemaps", "egemaps_mfcc", "compare"):
        import opensmile

        out["opensmile"] = opensmile.__version__
        out["opensmile_feature_set"] = ("ComParE_2016" if name == "compare"
                                        else "eGeMAPSv02") + "/Functionals"
    return out


def _with(fp: FeatureParams, **changes: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(fp) | changes


# --------------------------------------------------------------------------- many files

def _one(item: tuple[int, str], name: str, fp: FeatureParams,
         ) -> tuple[int, np.ndarray | None, list[str] | None, str]:
    index, path = item
    try:
        vec, names = file_feature_vector(name, path, params=fp)
    except SerError as exc:
        return index, None, None, str(exc)
    return index, vec, names, ""


def _init_worker() -> None:
    # One BLAS/OpenMP thread per worker: the pool is the parallelism.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def extract_feature_set(
    paths: Sequence[str | Path],
    name: str,
    *,
    params: Mapping[str, Any] | FeatureParams,
    workers: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Compute feature set ``name`` for many files, in parallel, with a progress bar.

    Parameters
    ----------
    paths
        Audio files.
    name
        One of :data:`SUMMARY_VECTORS`.
    params
        The ``mfcc:`` section (decoding and signal preparation).
    workers
        Processes (``1`` runs in this process; ``0`` = all cores).
    progress
        Show a tqdm bar on stderr.

    Returns
    -------
    features : pandas.DataFrame
        Column ``path`` then one float32 column per feature, one row per
        decoded file, in the order of ``paths``.
    skipped : list of (path, reason)
        Files that could not be decoded or yielded no features.
    """
    from tqdm import tqdm

    check_feature_set(name)
    fp = FeatureParams.from_mapping(params)
    items = [(i, str(p)) for i, p in enumerate(paths)]
    from ser.features.extract import resolve_workers

    # Never more processes than cores, nor than files.
    workers = min(resolve_workers(int(workers)), max(1, len(items)))
    results: list[tuple[int, np.ndarray | None, list[str] | None, str]] = []
    bar = tqdm(total=len(items), unit="file", desc=f"features {name}", disable=not progress,
               file=sys.stderr)
    with bar:
        if workers == 1 or len(items) < 2:
            for item in items:
                results.append(_one(item, name, fp))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                fn = functools.partial(_one, name=name, fp=fp)
                for res in pool.map(fn, items, chunksize=4):
                    results.append(res)
                    bar.update()
    skipped = [(items[i][1], reason) for i, vec, _, reason in results if vec is None]
    good = [(i, vec, names) for i, vec, names, _ in results if vec is not None]
    if not good:
        return pd.DataFrame({"path": pd.Series(dtype=str)}), skipped
    names = good[0][2]
    matrix = np.stack([vec for _, vec, _ in good]).astype(np.float32)
    frame = pd.DataFrame(matrix, columns=names)
    frame.insert(0, "path", [items[i][1] for i, _, _ in good])
    return frame, skipped
