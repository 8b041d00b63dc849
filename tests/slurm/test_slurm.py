"""The tiny demo pipeline on a real (single-node) SLURM cluster equals a local run (slurm).

``scripts/slurm_local.sh start`` installs Debian's slurm-wlm and munge when they are
missing and starts munged, slurmctld and slurmd; a cluster it already started is reused.
One clean copy of the project runs ``snakemake --cores 2``, another
``snakemake --profile profiles/slurm`` (every job an sbatch job); every file under
``metrics/`` and ``data/splits/`` must be byte-identical between the two. The test stops
only the daemons it started. Run with ``pytest -m slurm`` (``make test-slurm``).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import clean_copy, run_ok

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
COMPARED = ("metrics", "data/splits")


def slurm_local(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """SLURM_CONF of a running single-node cluster (started here unless one already runs)."""
    conf = slurm_local("env").stdout.strip().removeprefix("export SLURM_CONF=")
    started = slurm_local("status").returncode != 0
    if started:
        proc = slurm_local("start")
        if proc.returncode != 0:
            slurm_local("stop")
            pytest.fail(f"scripts/slurm_local.sh start failed:\n{proc.stdout}\n{proc.stderr}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        if started:
            slurm_local("stop")


def outputs(project: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under the compared folders."""
    return {str(f.relative_to(project)): f.read_bytes()
            for folder in COMPARED for f in sorted((project / folder).rglob("*"))
            if f.is_file()}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    cwd = clean_copy(tmp_path_factory.mktemp("local"))
    run_ok(["snakemake", "--cores", "2"], cwd)
    return cwd


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> tuple[Path, str]:
    cwd = clean_copy(tmp_path_factory.mktemp("slurm"))
    # --cores: the Snakefile still sizes the features rule by workflow.cores (the
    # submitting machine's cores); the first status check after 5 s, not 40 s.
    log = run_ok(["snakemake", "--profile", "profiles/slurm", "--cores", str(os.cpu_count()),
                  "--slurm-init-seconds-before-status-checks", "5"], cwd)
    return cwd, log


def test_every_job_ran_as_a_slurm_job(slurm_run):
    _, log = slurm_run
    # "Job 9 has been submitted with SLURM jobid 6 (log: .../slurm_logs/rule_train/...)"
    submitted = set(re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/",
                               log))
    assert {"features", "splits", "train", "evaluate"} <= submitted, log[-3000:]


def test_metrics_and_splits_equal_a_local_run_byte_for_byte(local_run, slurm_run):
    local, remote = outputs(local_run), outputs(slurm_run[0])
    assert any(name.endswith("metrics.json") for name in local), sorted(local)
    assert any(name.startswith("data/splits/") for name in local), sorted(local)
    assert sorted(remote) == sorted(local)
    differ = [name for name in local if local[name] != remote[name]]
    assert not differ, f"differ between the local and the SLURM run: {differ}"
