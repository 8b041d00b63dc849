"""The sequence benchmark's bookkeeping: per-speaker summary, merged result files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "sequence_real_bench", ROOT / "benchmarks" / "sequence_real_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarise_pools_and_averages_per_speaker(bench):
    pred = pd.DataFrame({"speaker": ["a"] * 4 + ["b"] * 4,
                         "y": [0, 0, 1, 1, 0, 0, 1, 1],
                         "pred": [0, 0, 1, 1, 1, 1, 1, 1]})
    summary, per = bench.summarise(pred)
    assert [p["uar"] for p in per] == [1.0, 0.5]
    assert summary["mean_speaker_uar"] == pytest.approx(0.75)
    assert summary["sd_speaker_uar"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert summary["pooled_uar"] == pytest.approx(0.75)
    assert summary["n_clips"] == 8 and summary["n_speakers"] == 2


def test_write_results_merges_other_runs_only(bench, tmp_path):
    out = tmp_path / "r.csv"
    row = {"feature_set": "f", "speaker_norm": "none", "speaker": "ALL", "pooled_uar": 0.1,
           "date": "2026-01-01"}
    bench.write_results([{**row, "model": "crnn"}, {**row, "model": "lstm_seed"}], out,
                        merge=False, meta={})
    bench.write_results([{**row, "model": "crnn", "pooled_uar": 0.5}], out, merge=True,
                        meta={"n_folds": 12})
    table = pd.read_csv(out)
    assert sorted(zip(table["model"], table["pooled_uar"], strict=True)) == [
        ("crnn", 0.5), ("lstm_seed", 0.1)]
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["n_folds"] == 12 and len(doc["rows"]) == 2
    assert set(bench.COLUMNS) <= set(table.columns)
