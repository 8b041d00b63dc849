"""Snakefile and dvc.yaml wire the same scripts to the same outputs, so they cannot drift."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def normalise(cmd: str) -> str:
    """A stage command without Snakemake's log redirect and the core count."""
    cmd = re.sub(r"\s*>\s*\S+\s+2>&1\s*$", "", cmd.strip())
    cmd = re.sub(r"\s+--workers\s+\d+", "", cmd)
    return " ".join(cmd.split())


def dvc_stages() -> dict[str, str]:
    """Output path -> command, from the resolved dvc.yaml."""
    from dvc.repo import Repo

    out: dict[str, str] = {}
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue  # a .dvc file (raw data), not a pipeline stage
            for o in stage.outs:
                out[Path(o.fs_path).relative_to(ROOT).as_posix()] = normalise(stage.cmd)
    return out


def snakemake_stages() -> dict[str, str]:
    """Output path -> shell command, from a forced dry run of the whole DAG."""
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--dry-run", "--printshellcmds", "--forceall", "--cores", "1"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    out: dict[str, str] = {}
    outputs: list[str] = []
    for line in proc.stdout.splitlines():
        if line.startswith("    output: "):
            outputs = [o.strip() for o in line.removeprefix("    output: ").split(",")]
        elif line.startswith("Shell command: "):
            out.update(dict.fromkeys(outputs, normalise(line.removeprefix("Shell command: "))))
            outputs = []
    return out


@pytest.fixture(scope="module")
def both():
    return dvc_stages(), snakemake_stages()


def test_same_outputs(both):
    dvc, smk = both
    assert set(dvc) == set(smk), (
        f"only in dvc.yaml: {sorted(set(dvc) - set(smk))}; "
        f"only in Snakefile: {sorted(set(smk) - set(dvc))}")


def test_same_commands_for_each_output(both):
    dvc, smk = both
    differ = {o: (dvc[o], smk[o]) for o in dvc.keys() & smk.keys() if dvc[o] != smk[o]}
    assert not differ


def test_every_model_and_protocol_is_a_stage(both):
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    dvc, _ = both
    for protocol in params["train"]["protocols"]:
        for model in params["train"]["models"]:
            assert f"models/{protocol}/{model}" in dvc
            assert f"metrics/{protocol}/{model}/metrics.json" in dvc
    for corpus in params["corpora"]:
        assert f"data/manifests/{corpus}.parquet" in dvc


def test_snakemake_lint_is_clean():
    proc = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
