"""Install files and configuration stay in step: pyproject vs environment.yml, params vs schema."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from ser.errors import ConfigError
from ser.params.load import load_params, validate_params

ROOT = Path(__file__).resolve().parents[2]
CONDA_NAMES = {"pysoundfile": "soundfile"}


def names(specs) -> set[str]:
    return {re.split(r"[<>=!\s]", s, maxsplit=1)[0].lower() for s in specs}


def test_environment_yml_has_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"]) | names(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = [d for d in env if isinstance(d, str)]
    pip = next(d["pip"] for d in env if isinstance(d, dict))
    have = {CONDA_NAMES.get(n, n) for n in names(conda) | names(pip)}
    assert wanted <= have, f"missing from environment.yml: {sorted(wanted - have)}"


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert {"svm", "knn", "lstm_seed"} <= set(params["train"]["models"])
    assert {"hist_gb", "logreg", "ensemble", "crnn"} <= set(params)  # one switch away
    assert "speaker_cv" in params["train"]["protocols"]
    assert {"mfcc", "egemaps", "egemaps_spk"} <= set(params["train"]["feature_sets"])
    assert max(params["svm"]["grid"]["C"]) >= 100


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("mfcc", "n_mfcc", "forty", "mfcc.n_mfcc"),
    ("splits", "test_size", 1.5, "splits.test_size"),
    ("train", "protocols", ["random", "leaky"], "train.protocols"),
    ("splits", "cross_corpus_test", "emodb", "cross_corpus_test"),
])
def test_bad_parameters_name_the_key(section, key, value, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params[section][key] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_params(params)


def test_a_stage_with_a_bad_parameter_fails_with_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["splits"]["test_size"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_splits.py"),
                           "--protocol", "speaker", "--out", "s.parquet", "--params",
                           "params.yaml", "m.parquet"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "splits.test_size" in proc.stderr
    assert "Traceback" not in proc.stderr
