"""The real-data benchmark's results file: merging runs, sequence rows, per-speaker rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("real_data_bench",
                                                  ROOT / "benchmarks" / "real_data_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(fs: str, norm: str, model: str, uar: float) -> dict:
    return {"corpus": "ravdess", "protocol": "speaker_cv", "feature_set": fs,
            "speaker_norm": norm, "transductive": norm == "speaker", "model": model,
            "pooled_uar": uar, "mean_speaker_uar": uar, "sd_speaker_uar": 0.05,
            "min_speaker_uar": uar - 0.1, "max_speaker_uar": uar + 0.1,
            "pooled_accuracy": uar, "n_clips": 4, "n_speakers": 2, "n_folds": 2,
            "seconds": 1.0, "date": "2030-01-01",
            "per_speaker": [{"speaker": "01", "n_clips": 2, "uar": uar - 0.1},
                            {"speaker": "02", "n_clips": 2, "uar": uar + 0.1}]}


def test_rerun_replaces_its_rows_and_keeps_the_others(bench, tmp_path):
    csv, js = tmp_path / "r.csv", tmp_path / "r.json"
    bench.save_results(csv, js, {"egemaps/none/svm": _run("egemaps", "none", "svm", 0.4),
                                 "seed/none/svm": _run("seed", "none", "svm", 0.3)},
                       {"run": "a"})
    bench.save_results(csv, js, {"egemaps/none/svm": _run("egemaps", "none", "svm", 0.45)},
                       {"run": "b"})
    table = pd.read_csv(csv, dtype={"speaker": str})
    summary = table[table["speaker"] == "ALL"]
    assert summary[["feature_set", "pooled_uar"]].values.tolist() == [["egemaps", 0.45],
                                                                       ["seed", 0.3]]
    per = table[(table["speaker"] != "ALL") & (table["feature_set"] == "egemaps")]
    assert per["speaker"].tolist() == ["01", "02"]
    assert per["pooled_uar"].round(2).tolist() == [0.35, 0.55]
    assert set(json.loads(js.read_text())["settings"]) == {"a", "b"}


def test_sequence_rows_are_merged_and_marked(bench, tmp_path):
    rows = [{"feature_set": "logmel64_seq", "speaker_norm": n, "model": "crnn", "speaker": s,
             "pooled_uar": u, "mean_speaker_uar": u, "sd_speaker_uar": 0.1, "n_clips": c,
             "n_speakers": 2 if s == "ALL" else 1, "epochs": 3, "fit_seconds": 9.0,
             "date": "2030-01-02"}
            for n in ("none", "speaker")
            for s, u, c in (("ALL", 0.33, 4), ("01", 0.25, 2), ("02", 0.41, 2))]
    seq = tmp_path / "seq.json"
    seq.write_text(json.dumps({"n_folds": 2, "seed": 0, "rows": rows}))
    runs = bench.sequence_runs(seq, corpus="ravdess", protocol="speaker_cv")
    assert set(runs) == {"logmel64_seq/none/crnn", "logmel64_seq/speaker/crnn"}
    run = runs["logmel64_seq/speaker/crnn"]
    assert run["transductive"] is True and run["source"].endswith("seq.json")
    assert [p["speaker"] for p in run["per_speaker"]] == ["01", "02"]
    assert (run["min_speaker_uar"], run["max_speaker_uar"]) == (0.25, 0.41)
    table, details = bench.save_results(tmp_path / "r.csv", tmp_path / "r.json",
                                        {**runs, "seed/none/svm": _run("seed", "none", "svm",
                                                                       0.3)}, None)
    text = bench.markdown_table(table, details["runs"])
    assert "| logmel64_seq | none | crnn | 0.330 |" in text
    assert "merged from `seq.json`" in text
    assert "| seed | none | svm | 0.300 |" in text and "measured here" in text
    assert "per speaker (transductive)" in text


def test_table_only_prints_without_running(bench, tmp_path, capsys):
    bench.save_results(tmp_path / "real_ravdess_speaker_cv.csv",
                       tmp_path / "real_ravdess_speaker_cv.json",
                       {"seed/none/svm": _run("seed", "none", "svm", 0.3)}, {"run": "a"})
    code = bench.main(["--table-only", "--sequence", "skip", "--out-dir", str(tmp_path),
                       "--root", str(tmp_path / "absent")])
    assert code == 0
    assert "| seed | none | svm | 0.300 |" in capsys.readouterr().out
