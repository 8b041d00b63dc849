"""train.grid_jobs: grid candidates as separate jobs give the model the in-process
GridSearchCV gives (same choice, same CV scores, same fitted model)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ser.errors import ConfigError, SerError

ROOT = Path(__file__).resolve().parents[3]
EMOTIONS = ["angry", "happy", "neutral", "sad"]
#: Grids with ties and a None among the values (GridSearchCV's rank/argmin must be matched).
GRIDS = {"svm": {"C": [0.5, 2.0, 8.0], "gamma": ["scale", 0.05]},
         "random_forest": {"n_estimators": [15], "max_depth": [None, 3],
                           "min_samples_leaf": [1, 4]},
         "knn": {"n_neighbors": [3, 5], "weights": ["uniform", "distance"]}}


def protocol_data(tmp_path: Path, *, protocol: str = "speaker", seed: int = 0,
                  n_speakers: int = 8, per: int = 12):
    """Synthetic summary features with a class signal and per-speaker offsets."""
    from ser.splits.protocol_data import ProtocolData

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        offset = rng.normal(0, 1.5, 6)
        for i in range(per):
            label = i % len(EMOTIONS)
            x = offset + rng.normal(0, 1, 6) + 1.2 * np.eye(6)[label]
            rows.append({"path": f"/x/{s}_{i}.wav", "corpus": "toy", "speaker": f"{s:02d}",
                         "emotion": EMOTIONS[label], "split": "train",
                         **{f"feat_{j}": float(v) for j, v in enumerate(x)}})
    table = pd.DataFrame(rows)
    if protocol == "speaker_cv":
        table.insert(4, "fold", table["speaker"].astype(int) % 4)
    elif protocol == "random":
        table["split"] = np.where(rng.random(len(table)) < 0.25, "test", "train")
    else:  # speaker-disjoint: the last two speakers are tested
        table["split"] = np.where(table["speaker"].astype(int) >= n_speakers - 2, "test",
                                  "train")
    return ProtocolData(table, {"feature_set": "egemaps"}, tmp_path, "egemaps", ["toy"])


def settings():
    from ser.params.settings import TrainSettings

    return TrainSettings(scoring="f1_macro", cv_folds=3, seed=0)


def run_both(tmp_path: Path, model: str, protocol: str):
    """Train in-process and through per-candidate score files; both model folders."""
    from ser.models import model_spec
    from ser.models.grid import n_candidates, read_scores, write_scores
    from ser.models.training import train, tune_candidate

    spec, section = model_spec(model), {"grid": GRIDS[model]}
    data = protocol_data(tmp_path, protocol=protocol)
    train(spec, protocol, data, out_dir=tmp_path / "inproc", settings=settings(),
          section=section, verbose=0)
    files = []
    for k in range(n_candidates(GRIDS[model])):
        files.append(tmp_path / "grid" / f"{k}.json")
        write_scores(files[-1], tune_candidate(spec, protocol, data, index=k,
                                               settings=settings(), section=section,
                                               verbose=0))
    docs = read_scores(files[::-1], model=model, protocol=protocol, scoring="f1_macro",
                       grid=GRIDS[model])
    train(spec, protocol, data, out_dir=tmp_path / "jobs", settings=settings(),
          section=section, verbose=0, grid_scores=docs)
    return tmp_path / "inproc", tmp_path / "jobs", data, files


def same_model(a: Path, b: Path, data) -> None:
    from ser.predict.inference import Predictor

    ca, cb = (json.loads((d / "card.json").read_text()) for d in (a, b))
    assert ca["best_params"] == cb["best_params"]
    assert ca["cv_best_score"] == cb["cv_best_score"]  # exactly: same splits, same fits
    assert (ca["cv"], ca["cv_folds"]) == (cb["cv"], cb["cv_folds"])
    assert "grid_jobs" in cb and "grid_jobs" not in ca
    ra, rb = (pd.read_csv(d / "cv_results.csv").drop(columns="mean_fit_time") for d in (a, b))
    pd.testing.assert_frame_equal(ra, rb)
    pa, pb = Predictor.load(a), Predictor.load(b)
    assert pa.model.get_params(deep=True).keys() == pb.model.get_params(deep=True).keys()
    assert repr(pa.model) == repr(pb.model)
    np.testing.assert_array_equal(pa.proba_from_summaries(data.table),
                                  pb.proba_from_summaries(data.table))
    assert skops_content(a / "model.skops") == skops_content(b / "model.skops")


def skops_content(path: Path) -> tuple[list[str], str]:
    """A skops file's arrays and schema, without the object ids skops names arrays by."""
    import hashlib
    import re
    import zipfile

    with zipfile.ZipFile(path) as z:
        arrays = sorted(hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()
                        if n.endswith(".npy"))
        return arrays, re.sub(r"\d{9,}", "ID", z.read("schema.json").decode())


@pytest.mark.parametrize("model", ["svm", "random_forest"])
@pytest.mark.parametrize("protocol", ["speaker", "random"])
def test_candidate_jobs_give_the_in_process_search_model(tmp_path, model, protocol):
    a, b, data, _ = run_both(tmp_path, model, protocol)
    same_model(a, b, data)
    results = pd.read_csv(b / "cv_results.csv")
    assert len(results) == len(list(__import__("sklearn.model_selection").model_selection
                                    .ParameterGrid(GRIDS[model])))


def test_speaker_cv_candidates_cover_every_fold_and_give_the_same_oof(tmp_path):
    a, b, data, files = run_both(tmp_path, "svm", "speaker_cv")
    doc = json.loads(files[0].read_text())
    assert set(doc["fits"]) == {"fold0", "fold1", "fold2", "fold3", "final"}
    # each fold's inner CV ran on that fold's training speakers only
    assert doc["fits"]["fold0"]["n_train"] == int((data.table["fold"] != 0).sum())
    assert doc["fits"]["final"]["n_train"] == len(data.table)
    same_model(a, b, data)
    oof_a, oof_b = (pd.read_csv(d / "oof_predictions.csv") for d in (a, b))
    pd.testing.assert_frame_equal(oof_a, oof_b)


def test_ranks_and_ties_follow_gridsearchcv(tmp_path):
    """Given GridSearchCV's own split scores, cv_results ranks, averages and picks as it
    does: candidates 0 and 1 grow the same unrestricted tree (a tie, won by index 0)."""
    from sklearn.model_selection import GridSearchCV

    from ser.models.classical import make_pipeline, param_grid
    from ser.models.grid import cv_results, grid_candidates
    from ser.models.training import fit_arrays
    from ser.splits.protocols import cv_splitter

    grid = {"max_depth": [50, 100, 2]}
    _, X, y, g = fit_arrays(protocol_data(tmp_path).train)
    search = GridSearchCV(make_pipeline("decision_tree", seed=0),
                          param_grid("decision_tree", grid), scoring="f1_macro",
                          cv=cv_splitter("speaker", n_splits=3, seed=0, groups=g))
    search.fit(X, y, groups=g)
    ref = search.cv_results_
    assert ref["mean_test_score"][0] == ref["mean_test_score"][1]  # the tie is real
    scores = [{"test_scores": [ref[f"split{i}_test_score"][k] for i in range(3)],
               "fit_times": [0.1] * 3, "score_times": [0.0] * 3} for k in range(3)]
    res = cv_results(grid_candidates("decision_tree", grid), scores)
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(res[key], ref[key])
    assert int(res["rank_test_score"].argmin()) == search.best_index_ == 0
    ties = cv_results([{"clf__C": c} for c in (1.0, 2.0, 3.0)],
                      [{"test_scores": t, "fit_times": [0.0] * 2, "score_times": [0.0] * 2}
                       for t in ([0.2, 0.2], [0.5, 0.7], [0.7, 0.5])])
    assert ties["rank_test_score"].tolist() == [3, 1, 1]


def test_candidate_order_is_parametergrid_and_indices_are_checked():
    from sklearn.model_selection import ParameterGrid

    from ser.models.grid import check_candidate, grid_candidates, split_grids

    grid = GRIDS["random_forest"]
    assert grid_candidates("random_forest", grid) == [
        {f"clf__{k}": v for k, v in c.items()} for c in ParameterGrid(grid)]
    with pytest.raises(ConfigError, match="has 4 candidate"):
        check_candidate("random_forest", grid, 4)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert split_grids(params) == {}  # off by default
    params["train"]["grid_jobs"] = 5
    assert split_grids(params) == {"svm": 6, "decision_tree": 6}  # >= 5 candidates only


def test_stale_missing_or_foreign_score_files_are_refused(tmp_path):
    from ser.models import model_spec
    from ser.models.grid import read_scores, write_scores
    from ser.models.training import train, tune_candidate

    spec, grid = model_spec("svm"), {"C": [0.5, 2.0]}
    data = protocol_data(tmp_path)
    files = []
    for k in range(2):
        files.append(tmp_path / f"{k}.json")
        write_scores(files[-1], tune_candidate(spec, "speaker", data, index=k,
                                               settings=settings(), section={"grid": grid},
                                               verbose=0))
    kw = {"model": "svm", "protocol": "speaker", "scoring": "f1_macro", "grid": grid}
    with pytest.raises(SerError, match=r"no score file for candidate\(s\) \[1\]"):
        read_scores(files[:1], **kw)
    with pytest.raises(SerError, match="not in the current svm grid"):
        read_scores(files, **(kw | {"grid": {"C": [0.5, 3.0]}}))
    with pytest.raises(SerError, match="scores are for"):
        read_scores(files, **(kw | {"scoring": "accuracy"}))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SerError, match="bad.json: cannot read"):
        read_scores([tmp_path / "bad.json"], **kw)
    other = protocol_data(tmp_path, seed=1)  # other training data: stale scores
    with pytest.raises(SerError, match="other training data"):
        train(spec, "speaker", other, out_dir=tmp_path / "m", settings=settings(),
              section={"grid": grid}, verbose=0, grid_scores=read_scores(files, **kw))
    assert not (tmp_path / "m").exists()


def test_tune_candidate_script_names_a_bad_candidate_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/tune_candidate.py", "--model", "svm", "--candidate", "99",
         "--protocol", "speaker", "--features", str(tmp_path / "none"),
         "--split", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "o.json"),
         "--params", "params.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --candidate 99: the svm grid in params.yaml has 6 candidate(s), numbered 0-5"]
    assert not (tmp_path / "o.json").exists()
    help_text = subprocess.run([sys.executable, "scripts/tune_candidate.py", "--help"],
                               cwd=ROOT, capture_output=True, text=True).stdout
    assert "ParameterGrid" in help_text and "--candidate" in help_text


def test_dag_has_one_job_per_candidate_protocol_and_feature_set(tmp_path, monkeypatch):
    """Option on: sum(candidates of the listed classical models) x protocols x feature
    sets tune_candidate jobs, each train job reads its run's; off: none (dvc.yaml as is)."""
    from ser.features.sets import model_accepts
    from ser.models import MODEL_SPECS
    from ser.models.grid import n_candidates
    from ser.workflow.wiring import snakemake_jobs

    monkeypatch.chdir(ROOT)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["grid_jobs"] = 1
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(params))
    jobs = snakemake_jobs(configfiles=[tmp_path / "on.yaml"])
    train = params["train"]
    expected = sum(n_candidates(params[m]["grid"]) for m in train["models"]
                   for f in train["feature_sets"] if MODEL_SPECS[m].kind == "classical"
                   and model_accepts(m, f)) * len(train["protocols"])
    classical = [m for m in train["models"] if MODEL_SPECS[m].kind == "classical"]
    assert expected == sum(n_candidates(params[m]["grid"]) for m in classical) * \
        len(train["protocols"]) * len(train["feature_sets"])
    counts = Counter(j.rule for j in jobs)
    assert counts["tune_candidate"] == expected > 0
    for job in jobs:
        if job.rule != "train":
            continue
        w = job.wildcards
        n = n_candidates(params[w["model"]]["grid"]) if w["model"] in classical else 0
        cands = [i for i in job.inputs if i.startswith("data/grid/")]
        assert cands == [f"data/grid/{w['protocol']}/{w['feature_set']}/{w['model']}/{k}.json"
                         for k in range(n)]
        assert ("--candidates" in job.command) == bool(n)
    # dvc.yaml follows: each candidate a stage whose score file a train stage depends on.
    from ser.workflow.wiring import dvc_document, stage_outputs

    stages = dvc_document(jobs)["stages"]
    run = next(j.wildcards for j in jobs if j.rule == "train" and j.wildcards["model"] in
               classical)
    name, path = "-".join(run.values()), "/".join(run.values())
    for k in range(n_candidates(params[run["model"]]["grid"])):
        scores = f"data/grid/{path}/{k}.json"
        assert stage_outputs(stages[f"tune_candidate-{name}-{k}"]) == [scores]
        assert scores in stages[f"train-{name}"]["deps"]
    # Off (the shipped params): no candidate job, train commands as before.
    off = snakemake_jobs()
    assert not any(j.rule == "tune_candidate" for j in off)
    assert not any("--candidates" in j.command for j in off)
