"""A run on the wrong data or with a bad parameter stops before any job touches an output.

Snakemake checks at parse time (the Snakefile's ``validate_or_exit``); DVC deletes a
stage's outputs before running its command, so ``python -m ser.workflow.wiring repro`` (``make
repro``) checks first, and a stage that fails under ``dvc repro`` names the recovery.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ser.errors import ConfigError
from ser.params.load import check_corpus_roots, load_params

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
ENV.pop("DVC_STAGE", None)


def _project(tmp_path: Path, corpora: dict[str, str]) -> Path:
    """A project folder that runs the repository's Snakefile with ``corpora``."""
    for name in ("Snakefile", "workflow", "scripts", "profiles"):
        (tmp_path / name).symlink_to(ROOT / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = corpora
    params["train"]["protocols"] = ["random", "speaker"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_missing_corpus_root_stops_both_engines_before_any_job(tmp_path):
    project = _project(tmp_path, {"custom": "/path/that/does/not/exist"})
    (project / "dvc.yaml").write_text("previous\n")
    for cmd in ([str(BIN / "snakemake"), "--cores", "1"],
                [sys.executable, "-m", "ser.workflow.wiring", "write"],
                [sys.executable, "-m", "ser.workflow.wiring", "repro"]):
        proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=ENV)
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        errors = _errors(proc.stderr)
        assert len(errors) == 1 and "corpora.custom" in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
    # No job ran, and the generated dvc.yaml did not silently lose the manifest stage.
    assert not (project / "data").exists() and not (project / "logs").exists()
    assert (project / "dvc.yaml").read_text() == "previous\n"


@pytest.mark.parametrize("root", ["empty", "empty.csv"])
def test_empty_corpus_root_is_refused(tmp_path, root):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match=r"^params.yaml: corpora.custom: .*(no audio|empty)"):
        check_corpus_roots({"corpora": {"custom": str(tmp_path / root)}}, source="params.yaml")


def test_demo_roots_may_be_missing_until_generated_but_not_empty(tmp_path):
    params = load_params(ROOT / "params.yaml")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        check_corpus_roots(params)  # data/demo/<corpus>: the workflow generates them
        (tmp_path / "data" / "demo" / "tess").mkdir(parents=True)
        with pytest.raises(ConfigError, match="corpora.tess: .*no audio files"):
            check_corpus_roots(params)
    finally:
        os.chdir(old)


CHECK_SCRIPT = """\
import sys
from pathlib import Path
from ser.cli import run_cli
from ser.params.load import load_params

def main(argv):
    load_params("params.yaml")
    Path(sys.argv[1] if len(sys.argv) > 1 else "out.txt").write_text("built\\n")

sys.exit(run_cli(main))
"""


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, text=True,
                          capture_output=True, env=ENV)


def test_dvc_keeps_persisting_outputs_of_a_failed_stage_and_the_wrapper_checks_first(
        tmp_path):
    """What DVC does (measured here, DVC 3): a stage whose params changed loses its
    outputs before its command runs, even when the command then refuses the params -
    unless they are ``persist: true``, as every output of the generated dvc.yaml is.
    ``python -m ser.workflow.wiring repro`` refuses the same params before DVC starts."""
    from ser.workflow.wiring import PERSIST

    project = tmp_path
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "check.py").write_text(CHECK_SCRIPT)
    stage = {"cmd": "python check.py", "deps": ["check.py"], "params": ["splits"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "plain": {**stage, "cmd": "python check.py plain.txt", "outs": ["plain.txt"]},
        "check": {**stage, "outs": [{"out.txt": dict(PERSIST)}]}}}))
    assert _dvc(project, "init", "--no-scm", "-q").returncode == 0
    first = _dvc(project, "repro")
    assert first.returncode == 0, first.stderr
    assert (project / "out.txt").read_text() == "built\n"
    assert (project / "plain.txt").read_text() == "built\n"

    params["splits"]["test_sise"] = 0.2  # a typo'd nested key
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc_yaml = (project / "dvc.yaml").read_text()
    wrapped = subprocess.run([sys.executable, "-m", "ser.workflow.wiring", "repro"], cwd=project,
                             capture_output=True, text=True, env=ENV)
    assert wrapped.returncode == 2
    assert _errors(wrapped.stderr) == [
        "error: params.yaml: unknown parameter splits.test_sise (a typo?); known keys: "
        "cross_corpus_test, seed, speaker_cv_folds, test_size"]
    assert (project / "out.txt").read_text() == "built\n"  # untouched
    assert (project / "dvc.yaml").read_text() == dvc_yaml

    plain = _dvc(project, "repro", "plain")
    assert plain.returncode != 0 and "splits.test_sise" in plain.stderr
    assert not (project / "plain.txt").exists()  # DVC deleted it before the stage ran
    bare = _dvc(project, "repro", "check")
    assert bare.returncode != 0
    line = next(iter(_errors(bare.stderr)), "")
    assert "splits.test_sise" in line and "stage check stopped" in line \
        and "outputs from the last run are kept" in line, bare.stderr
    assert (project / "out.txt").read_text() == "built\n"  # persisting: kept


def test_dvc_recovery_hint_only_under_dvc(monkeypatch, capsys):
    from ser.cli import run_cli

    def fail(_argv):
        raise ConfigError("params.yaml: bad parameter x")

    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert run_cli(fail) == 2
    assert capsys.readouterr().err == "error: params.yaml: bad parameter x\n"
    monkeypatch.setenv("DVC_STAGE", "splits-random")
    assert run_cli(fail) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stage splits-random stopped" in err \
        and "outputs from the last run are kept" in err and "dvc checkout" in err



def test_yaml_syntax_error_is_one_line_with_its_line_number(tmp_path):
    project = _project(tmp_path, {"tess": "data/demo/tess"})
    text = (project / "params.yaml").read_text().replace("  seed: 13", "  seed: [13")
    (project / "params.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "seed: [13" in t)
    want = (f"error: params.yaml: not valid YAML at line {line}, column 9: expected ',' or "
            "']', but got ':' (while parsing a flow sequence)")
    with pytest.raises(ConfigError) as info:
        load_params(project / "params.yaml")
    assert f"error: {info.value}".replace(str(project / "params.yaml"), "params.yaml") == want
    proc = subprocess.run([str(BIN / "snakemake"), "-n"], cwd=project, capture_output=True,
                          text=True, env=ENV)
    assert proc.returncode == 2 and _errors(proc.stderr) == [want], proc.stderr
    assert "Traceback" not in proc.stderr
