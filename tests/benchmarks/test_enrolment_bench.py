"""The enrolment benchmark's bookkeeping on synthetic features: enrolment clips are never
scored, plain and transductive are scored on the same clips, normalisation helps where
speakers differ by an offset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("enrolment_bench",
                                                  ROOT / "benchmarks" / "enrolment_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_enrolment_rows_on_speakers_that_differ_by_an_offset(bench):
    rng = np.random.default_rng(0)
    n_spk, per = 4, 24
    groups = np.repeat([f"c:{i}" for i in range(n_spk)], per)
    y = np.tile(np.repeat(["angry", "sad", "calm", "neutral"], per // 4), n_spk)
    signal = {"angry": 1.0, "sad": -1.0, "calm": 0.3, "neutral": -0.3}
    offsets = rng.normal(0, 4, size=(n_spk, 3))
    X = np.array([[signal[e], -signal[e], 0.0] for e in y]) + rng.normal(0, 0.4, (len(y), 3))
    X += offsets[np.repeat(np.arange(n_spk), per)]
    from ser.params.load import load_params

    grid = bench.bench_grid("logreg", load_params(ROOT / "params.yaml"))  # as the bench reads it
    result = bench.run_model("logreg", X, y, groups, grid=grid, n_clips=[3, 10], draws=2,
                             calm_neutral=True, inner_folds=2, seed=0)
    both = {(r["estimator"], r["condition"]): r for r in result["rows"]}
    assert set(both) == {(e, c) for e in ("z-score", "shrunk")
                         for c in ("3", "10", "calm+neutral")} | {("z-score", "all")}
    rows = {c: r for (e, c), r in both.items() if e == "z-score"}
    for c in ("3", "10"):  # same draws, same scored clips
        assert both["shrunk", c]["n_scored"] == rows[c]["n_scored"]
        assert both["shrunk", c]["plain_uar"] == rows[c]["plain_uar"]
    assert rows["all"]["n_scored"] == len(y)
    assert rows["10"]["n_scored"] == n_spk * (per - 10) and rows["10"]["draws"] == 2
    assert rows["3"]["n_scored"] == n_spk * (per - 3)
    assert rows["calm+neutral"]["n_scored"] == n_spk * per // 2
    assert rows["all"]["transductive_uar"] == rows["all"]["uar"]
    assert rows["all"]["transductive_uar"] > rows["all"]["plain_uar"] + 0.2
    assert rows["10"]["uar"] > rows["10"]["plain_uar"]
    assert len(result["chosen"]) == n_spk
    assert "| logreg | 10 | shrunk toward training speakers |" in bench.markdown(result["rows"])
