"""Train/test split protocols: random, speaker-independent, cross-corpus.

A split table has one row per clip of the pooled manifests with columns
``path, corpus, speaker, emotion, split`` where ``split`` is ``train``,
``test`` or ``unused`` (cross-corpus drops classes the other side lacks).

Random splits are what older work reports; repetitions of one sentence by one
speaker land on both sides and leak, so only ``speaker`` and ``cross_corpus``
measure generalisation to new voices.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ser.errors import ConfigError


@dataclass(frozen=True)
class ProtocolSpec:
    """One train/test protocol.

    Attributes
    ----------
    name
        Name in ``train.protocols``, in paths and in split files.
    display
        Name shown in the report.
    phrase
        How model cards and ``predict.py`` name it in running text.
    speaker_disjoint
        Train and test share no speaker (``speaker_cv``: within each fold); its tuning
        folds are grouped by speaker, and its metrics may choose ``predict.py``'s default
        model.
    cross_validated
        Its split carries a ``fold`` column: every clip is tested once, by the model of
        the fold that did not train on its speaker (out-of-fold predictions).
    """

    name: str
    display: str
    phrase: str
    speaker_disjoint: bool
    cross_validated: bool = False


#: Every protocol, by name. The order is the order of preference among speaker-disjoint
#: protocols when ``predict.py`` picks a default model (one held-out split, then the
#: cross-validated one, then another corpus).
PROTOCOL_SPECS: dict[str, ProtocolSpec] = {s.name: s for s in (
    ProtocolSpec("random", "Random split", "random split", speaker_disjoint=False),
    ProtocolSpec("speaker", "Speaker-independent", "speaker-independent",
                 speaker_disjoint=True),
    # Its phrase stays its key: model cards (copied into metrics/) are byte-identical to
    # those written before this registry existed (issue 20: behaviour unchanged).
    ProtocolSpec("speaker_cv", "Speaker cross-validation", "speaker_cv",
                 speaker_disjoint=True, cross_validated=True),
    ProtocolSpec("cross_corpus", "Cross-corpus", "cross-corpus", speaker_disjoint=True),
)}

Protocol = Literal["random", "speaker", "cross_corpus", "speaker_cv"]
PROTOCOLS: tuple[str, ...] = tuple(PROTOCOL_SPECS)
SPLIT_COLUMNS = ["path", "corpus", "speaker", "emotion", "split"]
#: Protocols whose train and test sides share no speaker (``speaker_cv``: within each fold),
#: in :data:`PROTOCOL_SPECS` order.
SPEAKER_DISJOINT: tuple[str, ...] = tuple(n for n, s in PROTOCOL_SPECS.items()
                                          if s.speaker_disjoint)
#: Protocols whose split carries a ``fold`` column (out-of-fold predictions).
CROSS_VALIDATED: tuple[str, ...] = tuple(n for n, s in PROTOCOL_SPECS.items()
                                         if s.cross_validated)


def speaker_groups(df: pd.DataFrame) -> pd.Series:
    """Globally unique speaker key ``corpus:speaker`` (ids repeat across corpora).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``corpus`` and ``speaker`` columns.
    """
    return df["corpus"].astype(str) + ":" + df["speaker"].astype(str)


def make_split(
    manifest: pd.DataFrame,
    protocol: str,
    *,
    test_size: float,
    seed: int,
    test_corpus: str | None = None,
) -> pd.DataFrame:
    """Assign every clip of ``manifest`` to train, test (or unused).

    Parameters
    ----------
    manifest
        Pooled manifest rows (``path, corpus, speaker, emotion`` at least).
    protocol
        ``random`` (stratified by corpus and emotion), ``speaker`` (per corpus
        a share of speakers is held out, so no speaker is on both sides) or
        ``cross_corpus`` (train on every corpus but ``test_corpus``, test on it,
        keeping only emotions both sides have).
    test_size
        Share of clips (random) or of each corpus' speakers (speaker).
    seed
        Makes the split deterministic.
    test_corpus
        The held-out corpus for ``cross_corpus``.

    Returns
    -------
    pandas.DataFrame
        :data:`SPLIT_COLUMNS`, sorted by ``corpus, path``.
    """
    df = manifest[SPLIT_COLUMNS[:-1]].sort_values(["corpus", "path"]).reset_index(drop=True)
    if df.empty:
        raise ConfigError("cannot split an empty manifest")
    if protocol == "random":
        split = _random_split(df, test_size=test_size, seed=seed)
    elif protocol == "speaker":
        split = _speaker_split(df, test_size=test_size, seed=seed)
    elif protocol == "cross_corpus":
        split = _cross_corpus_split(df, test_corpus=test_corpus)
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    df["split"] = split
    return df


def _random_split(df: pd.DataFrame, *, test_size: float, seed: int) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    strata = df["corpus"] + "/" + df["emotion"]
    counts = strata.map(strata.value_counts())
    # Strata with a single clip cannot be stratified on their own; they share one stratum.
    stratify = strata.where(counts > 1, "__rare__")
    try:
        _, test_idx = train_test_split(
            np.arange(len(df)), test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:  # too few clips for a stratified test set
        raise ConfigError(
            f"the random protocol cannot draw a stratified test set from {len(df)} clips "
            f"(splits.test_size {test_size:g}): {str(exc).splitlines()[0]} - add clips "
            "(at least two per corpus and emotion) or leave random out of train.protocols"
        ) from None
    split = np.full(len(df), "train", dtype=object)
    split[test_idx] = "test"
    return split


def _speaker_split(df: pd.DataFrame, *, test_size: float, seed: int) -> np.ndarray:
    split = np.full(len(df), "train", dtype=object)
    for corpus, rows in df.groupby("corpus", sort=True):
        speakers = sorted(rows["speaker"].astype(str).unique())
        if speakers == ["unknown"]:
            raise ConfigError(
                f"corpus {corpus!r} names no speakers, so the speaker protocol cannot hold "
                "voices out; put clips in <emotion>/<speaker>/ folders or add a 'speaker' "
                "column to the CSV, or use train.protocols: [random]")
        if len(speakers) < 2:
            raise ConfigError(
                f"corpus {corpus!r} has one speaker ({speakers[0]}); the speaker "
                "protocol needs at least two per corpus - add speakers or drop the corpus"
            )
        n_test = min(len(speakers) - 1, max(1, round(test_size * len(speakers))))
        rng = np.random.default_rng([seed, zlib.crc32(str(corpus).encode())])
        test_speakers = set(rng.choice(speakers, size=n_test, replace=False))
        split[rows.index[rows["speaker"].astype(str).isin(test_speakers)]] = "test"
    return split


def _cross_corpus_split(df: pd.DataFrame, *, test_corpus: str | None) -> np.ndarray:
    corpora = sorted(df["corpus"].unique())
    if test_corpus not in corpora:
        raise ConfigError(
            f"cross_corpus test corpus {test_corpus!r} is not among the manifests "
            f"({', '.join(corpora)}); set splits.cross_corpus_test"
        )
    if len(corpora) < 2:
        raise ConfigError("cross_corpus needs at least two corpora")
    is_test = (df["corpus"] == test_corpus).to_numpy()
    shared = set(df.loc[is_test, "emotion"]) & set(df.loc[~is_test, "emotion"])
    if len(shared) < 2:
        raise ConfigError(
            f"cross_corpus: {test_corpus} shares fewer than two emotions with the other corpora"
        )
    split = np.where(is_test, "test", "train").astype(object)
    split[~df["emotion"].isin(shared).to_numpy()] = "unused"
    return split


def cv_splitter(protocol: str, *, n_splits: int, seed: int, groups: pd.Series | None = None):
    """Cross-validation folds for tuning on the training side of ``protocol``.

    Speaker-disjoint protocols get :class:`~sklearn.model_selection.StratifiedGroupKFold`
    over speakers, so GridSearchCV never validates on a speaker it trained on;
    ``random`` gets :class:`~sklearn.model_selection.StratifiedKFold`.

    Parameters
    ----------
    protocol : str
        The split protocol.
    n_splits : int
        Folds (``train.cv_folds``); lowered to the number of training speakers when fewer.
    seed : int
        Shuffling seed.
    groups : pandas.Series, optional
        The training clips' speaker keys (:func:`speaker_groups`), for speaker-disjoint
        protocols.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if protocol in SPEAKER_DISJOINT:
        n_groups = int(pd.Series(groups).nunique()) if groups is not None else 0
        if n_groups < 2:
            raise ConfigError(
                f"{protocol}: tuning needs at least two training speakers, found {n_groups}; "
                "a custom corpus names them with <emotion>/<speaker>/ folders or a 'speaker' "
                "column"
            )
        return StratifiedGroupKFold(n_splits=min(n_splits, n_groups), shuffle=True,
                                    random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def validation_split(
    labels: np.ndarray,
    groups: np.ndarray,
    protocol: str,
    *,
    share: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a training set, speaker-disjoint where the protocol is.

    Parameters
    ----------
    labels, groups : numpy.ndarray
        Every training clip's emotion and speaker key.
    protocol : str
        The split protocol (``random``: clips, else speakers are held out).
    share : float
        Share of clips or speakers for validation.
    seed : int
        Makes the choice deterministic.
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    idx = np.arange(len(labels))
    if protocol in SPEAKER_DISJOINT and len(set(groups)) >= 2:
        gss = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        train_idx, val_idx = next(gss.split(idx, labels, groups))
        return train_idx, val_idx
    counts = pd.Series(labels).value_counts()
    stratify = labels if counts.min() >= 2 else None
    train_idx, val_idx = train_test_split(idx, test_size=share, random_state=seed,
                                          stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


def write_split(protocol: str, *, manifests: list, settings, out, label_map=None) -> str:
    """Stage body: pool the manifests, map the labels, split, write; return a summary.

    Parameters
    ----------
    protocol : str
        One of :data:`PROTOCOLS` (``random``, ``speaker``, ``speaker_cv``, ``cross_corpus``).
    manifests : list of str or Path
        The per-corpus manifest Parquet files.
    settings : ser.params.settings.SplitSettings
        ``splits:`` (seed, test share, cross-corpus test corpus, speaker_cv folds).
    out : str or Path
        The split Parquet to write.
    label_map : ser.labels.LabelMap, optional
        The class set (params ``labels:``); default: every label as is.

    Returns
    -------
    str
        A one-line summary of the split, for the stage's output.
    """
    from ser.parquet_tables import read_manifests, write_table

    manifest = read_manifests(manifests)
    if protocol in CROSS_VALIDATED:
        if label_map is not None and not label_map.is_identity:
            labels, mask = label_map.apply(manifest["emotion"].astype(str))
            manifest = manifest[mask].copy()
            manifest["emotion"] = list(labels)
        k = settings.speaker_cv_folds or None  # 0 / null: leave one speaker out
        n_speakers = speaker_groups(manifest).nunique()
        split = speaker_cv_split(manifest, n_folds=None if k is None else min(k, n_speakers),
                                 seed=settings.seed)
        split.insert(len(SPLIT_COLUMNS) - 1, "split", "train")
        write_table(split, out)
        return (describe_split(split, protocol) +
                f"\n  {split['fold'].nunique()} speaker folds (each clip tested once)")
    split = split_with_labels(manifest, protocol, label_map=label_map,
                              test_size=settings.test_size, seed=settings.seed,
                              test_corpus=settings.cross_corpus_test)
    write_table(split, out)
    summary = describe_split(split, protocol)
    if label_map is not None and not label_map.is_identity:
        summary = f"classes: {label_map.describe()}\n{summary}"
    return summary


def split_with_labels(manifest: pd.DataFrame, protocol: str, *, label_map=None,
                      **options) -> pd.DataFrame:
    """:func:`make_split` after applying a :class:`ser.labels.LabelMap` to the emotions.

    Merged labels are renamed before splitting (the split stratifies and the
    cross-corpus protocol intersects on the new names). Clips the map leaves
    out stay in the table as ``unused``, with their original emotion; the
    ``note`` column says why a clip is unused (empty for train/test).

    Parameters
    ----------
    manifest : pandas.DataFrame
        Pooled manifest rows.
    protocol : str
        As for :func:`make_split`.
    label_map : ser.labels.LabelMap, optional
        The class set (``None``: every label as is).
    **options
        ``test_size``, ``seed``, ``test_corpus`` of :func:`make_split`.
    """
    df = manifest.sort_values(["corpus", "path"]).reset_index(drop=True)
    if label_map is None or label_map.is_identity:
        kept, dropped = df, df.iloc[:0]
    else:
        labels, mask = label_map.apply(df["emotion"].astype(str))
        kept, dropped = df[mask].copy(), df[~mask]
        kept["emotion"] = labels
        if kept.empty:
            raise ConfigError(f"labels ({label_map.describe()}) leave no clip of the "
                              f"corpora's emotions ({', '.join(sorted(set(df['emotion'])))})")
        if kept["emotion"].nunique() < 2:
            raise ConfigError(f"labels ({label_map.describe()}) leave one emotion "
                              f"({kept['emotion'].iloc[0]}); a classifier needs two")
    split = make_split(kept, protocol, **options)
    split["note"] = np.where(split["split"] == "unused", CROSS_CORPUS_NOTE, "")
    if len(dropped):
        keep = label_map.keep
        rest = dropped[SPLIT_COLUMNS[:-1]].assign(split="unused")
        merged = dict(label_map.merge)
        rest["note"] = [
            f"labels: {e} dropped" if merged.get(e, e) in label_map.drop
            else f"labels: {merged.get(e, e)} not in keep ({', '.join(keep or ())})"
            for e in rest["emotion"]]
        split = pd.concat([split, rest], ignore_index=True)
    return split.sort_values(["corpus", "path"]).reset_index(drop=True)


#: ``note`` of the clips the cross-corpus protocol leaves out.
CROSS_CORPUS_NOTE = "cross_corpus: emotion not shared by train and test corpora"


def left_out_test_emotions(split: pd.DataFrame, protocol: str) -> pd.Series:
    """Emotions of the test corpus' clips that ``cross_corpus`` left out (not shared).

    The evaluation names them with their counts beside the scored clips
    (:func:`ser.evaluation.metrics.restrict_to_shared`); empty for other protocols and for
    clips the ``labels:`` map left out (the class set is chosen, not missing).

    Parameters
    ----------
    split : pandas.DataFrame
        A split table (:func:`write_split`'s output).
    protocol : str
        Its protocol.

    Returns
    -------
    pandas.Series
        The emotion of every such clip (empty when there are none).
    """
    if protocol != "cross_corpus" or "note" not in split:
        return pd.Series([], dtype=object)
    test_corpora = set(split.loc[split["split"] == "test", "corpus"])
    rows = split[(split["split"] == "unused") & (split["note"] == CROSS_CORPUS_NOTE)
                 & split["corpus"].isin(test_corpora)]
    return rows["emotion"].reset_index(drop=True)


def describe_split(split: pd.DataFrame, protocol: str) -> str:
    """One paragraph: clips, speakers and emotions per side.

    Parameters
    ----------
    split : pandas.DataFrame
        A split table.
    protocol : str
        Its protocol (named in the text).
    """
    lines = [f"protocol {protocol}:"]
    for side in ("train", "test", "unused"):
        rows = split[split["split"] == side]
        if rows.empty:
            continue
        lines.append(
            f"  {side:6s} {len(rows):5d} clips, {speaker_groups(rows).nunique():3d} speakers, "
            f"emotions: {', '.join(sorted(rows['emotion'].unique()))}"
        )
    return "\n".join(lines)


def speaker_folds(
    groups: np.ndarray | pd.Series,
    labels: np.ndarray | pd.Series | None = None,
    *,
    n_folds: int | None = None,
    seed: int,
) -> np.ndarray:
    """Assign every clip a fold number so that no speaker is in two folds.

    Parameters
    ----------
    groups
        Speaker key per clip (use :func:`speaker_groups` when pooling corpora).
    labels
        Emotion per clip; when given, folds are stratified by it as far as
        speaker grouping allows (:class:`~sklearn.model_selection.StratifiedGroupKFold`).
    n_folds
        Number of folds; ``None`` or the number of speakers gives
        leave-one-speaker-out (fold ``i`` holds the ``i``-th speaker in sorted order).
    seed
        Makes the assignment deterministic.

    Returns
    -------
    np.ndarray of int
        Fold index ``0 .. n_folds - 1`` per clip.

    Raises
    ------
    ConfigError
        With fewer than two speakers or more folds than speakers.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    g = pd.Series(np.asarray(groups)).astype(str).to_numpy()
    speakers = np.unique(g)
    if len(speakers) < 2:
        raise ConfigError(f"speaker_cv needs at least two speakers, found {len(speakers)}")
    k = len(speakers) if n_folds is None else int(n_folds)
    if not 2 <= k <= len(speakers):
        raise ConfigError(f"speaker_cv: n_folds must be between 2 and the number of "
                          f"speakers ({len(speakers)}), got {n_folds}")
    folds = np.empty(len(g), dtype=np.int64)
    if k == len(speakers):
        folds[:] = np.searchsorted(speakers, g)
        return folds
    idx = np.arange(len(g))
    y = np.zeros(len(g)) if labels is None else np.asarray(labels)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, test_idx) in enumerate(cv.split(idx, y, g)):
        folds[test_idx] = fold
    return folds


def speaker_cv_split(manifest: pd.DataFrame, *, n_folds: int | None = None,
                     seed: int) -> pd.DataFrame:
    """The ``speaker_cv`` protocol: the manifest with a ``fold`` column.

    Speakers are keyed ``corpus:speaker`` (:func:`speaker_groups`); folds are
    stratified by emotion where the grouping allows. Rows are sorted by
    ``corpus, path`` like :func:`make_split`'s.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Pooled manifest rows.
    n_folds : int, optional
        Folds (``splits.speaker_cv_folds``); ``None``: leave one speaker out.
    seed : int
        Makes the fold assignment deterministic.
    """
    df = manifest[SPLIT_COLUMNS[:-1]].sort_values(["corpus", "path"]).reset_index(drop=True)
    if df.empty:
        raise ConfigError("cannot split an empty manifest")
    df["fold"] = speaker_folds(speaker_groups(df), df["emotion"], n_folds=n_folds, seed=seed)
    return df
