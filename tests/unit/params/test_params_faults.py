"""Params: unknown keys and bad ranges are one line naming the key.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import MODEL_KINDS, card_for, fitted, one_line, small_ravdess, tone, toy_xy  # noqa: F401

from ser.errors import SerError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("edit, expect", [
    (lambda p: p["splits"].update(test_sise=0.2), "unknown parameter splits.test_sise"),
    (lambda p: p.update(spilts={}), "unknown parameter spilts"),
    (lambda p: p["mfcc"].update(nfft=512), "unknown parameter mfcc.nfft"),
    (lambda p: p["lstm_seed"].update(unit=3), "unknown parameter lstm_seed.unit"),
    (lambda p: p["svm"].update(grids={}), "unknown parameter svm.grids"),
    (lambda p: p["svm"]["grid"].update(C=[-1]), "bad parameter svm.grid.C: value -1"),
    (lambda p: p["svm"]["grid"].update(gama=[1]), "SVC has no parameter 'gama'"),
    (lambda p: p["knn"]["grid"].update(n_neighbors=[0]), "bad parameter knn.grid.n_neighbors"),
    (lambda p: p["random_forest"]["grid"].update(n_estimators=[0]),
     "bad parameter random_forest.grid.n_estimators"),
    (lambda p: p["splits"].update(test_size=0.99), "splits.test_size: 0.99 is greater"),
    (lambda p: p["mfcc"].update(min_rms_db=3), "mfcc.min_rms_db"),
    (lambda p: p["crnn"].update(chanels=8), "unknown parameter crnn.chanels"),
    (lambda p: p["logmel"].update(deltas=3), "logmel.deltas"),
    (lambda p: p["splits"].update(speaker_cv_folds=-1), "splits.speaker_cv_folds"),
    (lambda p: p["hist_gb"]["grid"].update(learning_rat=[0.1]),
     "HistGradientBoostingClassifier has no parameter 'learning_rat'"),
    (lambda p: p["train"].update(models=["crnn"], feature_sets=["egemaps"]),
     "no model of train.models can read a feature set"),
])
def test_params_faults_are_one_line_naming_the_key(edit, expect):
    import copy

    from ser.params.load import ConfigError, load_params, validate_params

    params = copy.deepcopy(load_params(Path(__file__).parents[3] / "params.yaml"))
    edit(params)
    with pytest.raises(ConfigError) as exc:
        validate_params(params, source="params.yaml")
    assert expect in one_line(exc)


def test_knn_neighbors_above_the_smallest_fold_is_caught_before_fitting():
    from ser.errors import ConfigError
    from ser.models.classical import check_neighbors

    check_neighbors({"n_neighbors": [3, 7]}, 40)
    with pytest.raises(ConfigError) as exc:
        check_neighbors({"n_neighbors": [3, 5000]}, 40)
    assert "knn.grid.n_neighbors: [5000] exceed the 40 clips" in one_line(exc)


def test_tune_refuses_too_many_neighbours_before_any_fit(monkeypatch):
    from sklearn.model_selection import GridSearchCV

    from ser.models.classical import tune
    from ser.params.load import ConfigError

    def never(*args, **kwargs):
        raise AssertionError("GridSearchCV.fit must not run")

    monkeypatch.setattr(GridSearchCV, "fit", never)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat(["a", "b", "c"], 20)
    groups = np.tile([f"s{i}" for i in range(6)], 10)
    with pytest.raises(ConfigError) as exc:
        tune("knn", X, y, groups=groups, protocol="speaker", grid={"n_neighbors": [3, 500]},
             scoring="f1_macro", cv_folds=3, seed=0)
    assert "knn.grid.n_neighbors: [500] exceed the 40 clips" in one_line(exc)


def test_validate_or_exit_prints_the_scripts_line_for_snakemake(capsys):
    import copy

    from ser.params.load import load_params, validate_or_exit

    params = copy.deepcopy(load_params(Path(__file__).parents[3] / "params.yaml"))
    validate_or_exit(params)
    params["splits"]["test_sise"] = 1
    with pytest.raises(SystemExit) as exc:
        validate_or_exit(params, "params.yaml")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: params.yaml: unknown parameter splits.test_sise")


def test_atomic_path_never_replaces_the_working_tree(tmp_path, monkeypatch):
    from ser.outputs import atomic_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep")
    for target in (".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(SerError) as exc, atomic_path(target) as tmp:
            tmp.mkdir()
        assert "current folder or one above it" in one_line(exc)
    assert (tmp_path / "mine.txt").read_text() == "keep"
