"""Protocol data for training and evaluation: a split joined with a feature set.

Both the train and the evaluate stage call :func:`load_protocol_data` with the paths
their rules declare, so they see exactly the same clips and features.
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
from ser.tables import load_features, read_table


@dataclass
class ProtocolData:
    """Clips of one protocol with their summary features, split into train and test."""

    table: pd.DataFrame          # split + summary features, one row per clip
    feature_params: dict[str, Any]
    features_dir: Path
    feature_set: str
    corpora: list[str]

    @property
    def train(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "train"].reset_index(drop=True)

    @property
    def test(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "test"].reset_index(drop=True)

    def sequences(self, paths: pd.Series) -> list[np.ndarray]:
        """Frame sequences of ``paths`` (in that order) from the per-corpus sequence files."""
        from ser.features import load_sequences

        by_path: dict[str, np.ndarray] = {}
        for corpus in self.corpora:
            seq_paths, seqs = load_sequences(self.features_dir / corpus / "sequences.parquet")
            by_path.update(zip(seq_paths, seqs, strict=True))
        try:
            return [by_path[p] for p in paths]
        except KeyError as exc:
            raise SerError(f"no feature sequence for {exc.args[0]} in {self.features_dir}; "
                           "rerun the feature stage") from None


def load_protocol_data(*, split_path: str | Path, features_dir: str | Path,
                       corpora: Sequence[str]) -> ProtocolData:
    """Join a split table with the summary features of ``corpora``.

    Parameters
    ----------
    split_path
        ``<protocol>.parquet`` from the splits stage.
    features_dir
        One feature set's folder (``<corpus>/summary.parquet`` inside).
    corpora
        The enabled corpora.

    Clips whose audio could not be decoded (no feature row) are dropped, with a
    note; clips marked ``unused`` by the split are left out.
    """
    from ser.features import read_feature_params

    split_path, features_dir = Path(split_path), Path(features_dir)
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
    params_seen = {json.dumps(read_feature_params(features_dir / c / "summary.parquet"),
                              sort_keys=True) for c in corpora}
    if len(params_seen) != 1:
        raise SerError(f"{features_dir}: corpora were extracted with different feature "
                       "parameters; rerun the feature stage for all corpora")
    return ProtocolData(table, json.loads(params_seen.pop()), features_dir,
                        features_dir.name, corpora)
