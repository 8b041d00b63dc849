"""Protocol data for training and evaluation: a split joined with a feature set.

Both the train and the evaluate stage call :func:`load_protocol_data` with the paths
their rules declare, so they see exactly the same clips and features.

Speaker-normalised feature sets (``*_spk``, :mod:`ser.features.sets`) are applied here:
every speaker's features are z-scored with the statistics of that speaker's own clips of
the protocol (train and test alike; never a label, never another speaker's clip). For
test speakers this uses their unlabeled test clips: such runs are *transductive*.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import SerError
from ser.layout import SEQUENCES_FILE, SUMMARY_FILE
from ser.parquet_tables import load_features, read_table


@dataclass
class ProtocolData:
    """Clips of one protocol with their summary features, split into train and test."""

    table: pd.DataFrame          # split + summary features, one row per clip
    feature_params: dict[str, Any]
    features_dir: Path
    feature_set: str
    corpora: list[str]
    speaker_norm: bool = False
    #: Training speakers' statistics (:func:`ser.features.speaker_norm.speaker_prior`) of a
    #: speaker-normalised set's summary features, before normalisation.
    speaker_prior: dict[str, Any] | None = None
    _sequences: dict[str, np.ndarray] | None = None

    @property
    def transductive(self) -> bool:
        """Whether test clips' own (unlabeled) features shaped their inputs."""
        return self.speaker_norm

    @property
    def train(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "train"].reset_index(drop=True)

    @property
    def test(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "test"].reset_index(drop=True)

    def sequences(self, paths: pd.Series, *, dtype: np.typing.DTypeLike = np.float32,
                  ) -> list[np.ndarray]:
        """Frame sequences of ``paths`` (in that order) from the per-corpus sequence files.

        Only the clips asked for are read (training reads the training side, evaluation
        the test side), and kept for later calls; speaker normalisation reads every clip
        of the table (a speaker's statistics need all of its clips). ``dtype``: of the
        arrays returned (``float16`` halves their memory); clips kept from an earlier
        call are converted where they are kept.

        Parameters
        ----------
        paths : pandas.Series
            The clips' ``path`` values.
        dtype : numpy dtype
            See above.
        """
        paths = list(paths)
        if self._sequences is None:
            self._sequences = {}
        missing = {p for p in paths if p not in self._sequences}
        if missing:
            self._sequences.update(self._load_sequences(keep=missing, dtype=dtype))
        by_path = self._sequences
        try:
            for p in paths:  # converted where they are kept: never two copies of a clip
                by_path[p] = by_path[p].astype(dtype, copy=False)
        except KeyError as exc:
            raise SerError(f"no feature sequence for {exc.args[0]} in {self.features_dir}; "
                           "rerun the feature stage") from None
        return [by_path[p] for p in paths]

    def _load_sequences(self, *, keep: set[str], dtype: np.typing.DTypeLike,
                        ) -> dict[str, np.ndarray]:
        from ser.features import load_sequences

        if self.speaker_norm:  # the speakers' statistics from the file's float32 values
            keep, dtype = set(self.table["path"]), np.float32
        by_path: dict[str, np.ndarray] = {}
        for corpus in self.corpora:
            seq_paths, seqs = load_sequences(self.features_dir / corpus / SEQUENCES_FILE,
                                             keep=keep, dtype=dtype)
            by_path.update(zip(seq_paths, seqs, strict=True))
        if self.speaker_norm:
            from ser.features.logmel import speaker_standardise
            from ser.splits.protocols import speaker_groups

            # Every speaker's frames standardised with that speaker's own clips of the table.
            rows = self.table[self.table["path"].isin(by_path)]
            normed = speaker_standardise([by_path[p] for p in rows["path"]],
                                         speaker_groups(rows).tolist())
            by_path = dict(zip(rows["path"], normed, strict=True))
        return by_path


def load_protocol_data(*, split_path: str | Path, features_dir: str | Path,
                       corpora: Sequence[str], feature_set: str | None = None) -> ProtocolData:
    """Join a split table with the summary features of ``corpora``.

    Parameters
    ----------
    split_path
        ``<protocol>.parquet`` from the splits stage.
    features_dir
        One feature set's folder (``<corpus>/summary.parquet`` inside).
    corpora
        The enabled corpora.
    feature_set
        The feature set's name (default: the folder's name); a ``*_spk`` variant reads
        its base set's folder and is speaker-normalised here.

    Clips whose audio could not be decoded (no feature row) are dropped, with a
    note; clips marked ``unused`` by the split are left out.
    """
    from ser.features import feature_columns, read_feature_params
    from ser.features.sets import feature_set_spec
    from ser.features.speaker_norm import normalize_frame_by_speaker

    split_path, features_dir = Path(split_path), Path(features_dir)
    spec = feature_set_spec(feature_set or features_dir.name)
    corpora = list(corpora)
    split = read_table(split_path, what="split",
                       hint="run the splits stage first (snakemake / dvc repro)")
    feats = load_features(features_dir, corpora)
    # Manifest columns live in the split already; keep only features from the other side.
    feats = feats.drop(columns=[c for c in split.columns if c != "path" and c in feats.columns])
    table = split[split["split"] != "unused"].merge(feats, on="path", how="inner",
                                                    validate="one_to_one")
    missing = (split["split"] != "unused").sum() - len(table)
    if missing:
        print(f"note: {missing} clip(s) of the split have no features (undecodable audio); "
              "left out")
    if table.empty or (table["split"] == "train").sum() == 0:
        raise SerError(f"{split_path}: no training clips with features in {features_dir}; "
                       "check the feature stage output and the split")
    params_seen = {json.dumps(read_feature_params(features_dir / c / SUMMARY_FILE),
                              sort_keys=True) for c in corpora}
    if len(params_seen) != 1:
        raise SerError(f"{features_dir}: corpora were extracted with different feature "
                       "parameters; rerun the feature stage for all corpora")
    columns = feature_columns(table)
    prior = None
    if spec.speaker_norm and columns:
        from ser.features.speaker_norm import speaker_prior
        from ser.splits.protocols import speaker_groups

        train = table[table["split"] == "train"]
        prior = speaker_prior(train[columns].to_numpy(), speaker_groups(train).to_numpy())
        table = normalize_frame_by_speaker(table, columns)
    return ProtocolData(table, json.loads(params_seen.pop()), features_dir, spec.name, corpora,
                        speaker_norm=spec.speaker_norm, speaker_prior=prior)
