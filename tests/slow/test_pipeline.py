"""Whole pipeline on the tiny demo corpus, through Snakemake and through DVC (slow).

Checks the issue-level promises: both engines build manifests -> features ->
splits -> models -> metrics -> report from a clean copy, their split files are
byte-identical, a parameter edit reruns exactly the stages downstream of it, each engine
sees the other's work as up to date, and `--configfile` is honoured end to end.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from support import clean_copy, run_ok

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def edit_params(cwd: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((cwd / "params.yaml").read_text())
    params[section][key] = value
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def snakemake_jobs(cwd: Path) -> dict[str, int]:
    """Rule -> job count of what a dry run would execute."""
    out = run_ok(["snakemake", "--dry-run", "--cores", "2"], cwd)
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


def dvc_repro_stages(cwd: Path) -> set[str]:
    out = run_ok(["dvc", "repro"], cwd)
    return set(re.findall(r"Running stage '([^']+)'", out))


@pytest.fixture(scope="module")
def smk(tmp_path_factory) -> Path:
    cwd = clean_copy(tmp_path_factory.mktemp("smk"))
    run_ok(["snakemake", "--cores", "2"], cwd)
    return cwd


@pytest.fixture(scope="module")
def dvc(tmp_path_factory) -> Path:
    cwd = clean_copy(tmp_path_factory.mktemp("dvc"))
    run_ok(["dvc", "repro"], cwd)
    return cwd


def test_snakemake_builds_everything(smk):
    params = yaml.safe_load((smk / "params.yaml").read_text())
    for protocol in params["train"]["protocols"]:
        for model in params["train"]["models"]:
            assert (smk / "metrics" / protocol / "mfcc" / model / "metrics.json").is_file()
            assert (smk / "logs" / "benchmarks" / "train" / protocol / "mfcc" /
                    f"{model}.tsv").is_file()
    assert (smk / "reports" / "report.html").stat().st_size > 10_000
    assert snakemake_jobs(smk) == {}


def test_after_snakemake_dvc_is_up_to_date(smk):
    """Snakemake's onsuccess hook recorded its build in dvc.lock: nothing to recompute."""
    assert "up to date" in run_ok(["dvc", "status"], smk).lower()
    assert dvc_repro_stages(smk) == set()
    assert snakemake_jobs(smk) == {}  # and recording it did not disturb Snakemake
    out = run_ok(["dvc", "metrics", "show"], smk)
    assert "metrics/speaker/mfcc/svm/metrics.json" in out


def test_dvc_builds_everything_and_shows_metrics(dvc):
    out = run_ok(["dvc", "metrics", "show"], dvc)
    for model in yaml.safe_load((dvc / "params.yaml").read_text())["train"]["models"]:
        assert f"metrics/speaker/mfcc/{model}/metrics.json" in out
    assert "up to date" in run_ok(["dvc", "status"], dvc).lower()


def test_dvc_push_then_a_fresh_clone_pulls_everything_up_to_date(dvc, tmp_path):
    """A team shares one build: push to a (local folder) remote; a fresh clone pulls it
    and `dvc repro` recomputes nothing, with the same metrics."""
    storage = tmp_path / "remote"
    run_ok(["dvc", "remote", "add", "--local", "-f", "-d", "team", str(storage)], dvc)
    run_ok(["git", "add", "dvc.lock"], dvc)
    run_ok(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "build"], dvc)
    run_ok(["dvc", "push"], dvc)
    clone = tmp_path / "clone"
    run_ok(["git", "clone", "-q", str(dvc), str(clone)], tmp_path)
    run_ok(["dvc", "remote", "add", "--local", "-f", "-d", "team", str(storage)], clone)
    run_ok(["dvc", "pull"], clone)
    assert "up to date" in run_ok(["dvc", "status"], clone).lower()
    assert dvc_repro_stages(clone) == set()
    for metrics in (dvc / "metrics").rglob("metrics.json"):
        assert (clone / metrics.relative_to(dvc)).read_bytes() == metrics.read_bytes()
    assert (clone / "reports" / "report.html").is_file()


def test_after_dvc_repro_snakemake_has_nothing_to_do(dvc):
    run_ok([sys.executable, "-m", "ser.workflow.wiring", "adopt"], dvc)
    assert snakemake_jobs(dvc) == {}
    assert "up to date" in run_ok(["dvc", "status"], dvc).lower()


def test_editing_splits_code_shows_in_dvc_status(dvc):
    splits = dvc / "ser" / "splits" / "protocols.py"
    original = splits.read_text()
    splits.write_text(original + "\n# an edit\n")
    try:
        status = run_ok(["dvc", "status"], dvc)
        changed = set(re.findall(r"^(\S+):\s*$", status, re.M))
        assert {"splits-speaker", "train-speaker-mfcc-svm", "evaluate-speaker-mfcc-svm"} \
            <= changed
    finally:
        splits.write_text(original)


def test_split_files_are_byte_identical_across_engines(smk, dvc):
    for split in sorted((smk / "data" / "splits").glob("*.parquet")):
        assert split.read_bytes() == (dvc / "data" / "splits" / split.name).read_bytes()


def test_snakemake_mfcc_edit_reruns_downstream_only(smk):
    edit_params(smk, "mfcc", "n_mfcc", 20)
    jobs = snakemake_jobs(smk)
    assert {"features", "train", "evaluate", "report"} <= set(jobs)
    assert not {"generate_demo", "manifest", "splits"} & set(jobs)


def test_snakemake_split_edit_does_not_touch_features(smk):
    edit_params(smk, "mfcc", "n_mfcc", 40)  # back to what was built
    edit_params(smk, "splits", "test_size", 0.3)
    jobs = snakemake_jobs(smk)
    assert "splits" in jobs and "features" not in jobs and "manifest" not in jobs


def test_dvc_mfcc_edit_marks_features_and_downstream(dvc):
    edit_params(dvc, "mfcc", "n_mfcc", 20)
    status = run_ok(["dvc", "status"], dvc)
    changed = set(re.findall(r"^(\S+):\s*$", status, re.M))
    assert any(s.startswith("features-") for s in changed)
    assert not any(s.startswith(("manifest-", "generate_demo-", "splits-")) for s in changed)
    edit_params(dvc, "mfcc", "n_mfcc", 40)


def test_dvc_knn_grid_edit_reruns_only_knn_and_report(dvc):
    params = yaml.safe_load((dvc / "params.yaml").read_text())
    params["knn"]["grid"] = {"n_neighbors": [2], "weights": ["uniform"]}
    (dvc / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = dvc_repro_stages(dvc)
    allowed = {f"{s}-{p}-mfcc-knn" for s in ("train", "evaluate")
               for p in params["train"]["protocols"]} | {"report"}
    assert ran and ran <= allowed, ran
    assert {f"train-{p}-mfcc-knn" for p in params["train"]["protocols"]} <= ran


def test_snakemake_configfile_is_honoured_end_to_end(smk):
    """`snakemake --configfile other.yaml` builds with other.yaml's values (last: it
    rebuilds one corpus' features with them)."""
    other = yaml.safe_load((smk / "params.yaml").read_text())
    other["mfcc"]["n_mfcc"] = 13
    (smk / "other.yaml").write_text(yaml.safe_dump(other, sort_keys=False))
    target = "data/features/mfcc/tess/summary.parquet"
    run_ok(["snakemake", target, "--cores", "2", "--configfile", "other.yaml"], smk)
    import pandas as pd

    summary = pd.read_parquet(smk / target)
    assert sum(c.endswith("_mean") and c.startswith("feat_mfcc") for c in summary.columns) \
        == 13, list(summary.columns)
