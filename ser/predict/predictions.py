"""Per-clip prediction tables, shared by training (out-of-fold predictions) and evaluation.

:func:`predict_rows` asks a loaded model for the class probabilities of manifest rows;
:func:`predictions_frame` turns them into the ``predictions.csv`` table both stages write.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def predictions_frame(rows: pd.DataFrame, proba: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Per-clip predictions: id columns, actual, predicted and one probability per class."""
    keep = [c for c in ("path", "corpus", "speaker") if c in rows]
    out = rows[keep].reset_index(drop=True).copy()
    out["actual"] = rows["emotion"].to_numpy()
    out["predicted"] = np.asarray(labels)[proba.argmax(axis=1)]
    for i, lab in enumerate(labels):
        out[f"p_{lab}"] = proba[:, i]
    return out


def predict_rows(predictor, data, rows: pd.DataFrame) -> np.ndarray:
    """Class probabilities of ``rows`` of ``data``
    (:class:`ser.splits.protocol_data.ProtocolData`) by a
    loaded :class:`ser.predict.inference.Predictor`, from the representation it was trained on."""
    if predictor.is_sequence_model:
        return predictor.proba_from_sequences(data.sequences(rows["path"]))
    return predictor.proba_from_summaries(rows)
