"""Issue 17 item 11: DVC and Snakemake never run at once in one checkout, and DVC stages
run the environment's Python wherever `dvc` is started from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
WRAPPER = ROOT / "workflow" / "python"
BARE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # no venv on PATH


def test_every_dvc_stage_starts_with_the_portable_wrapper():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages and all(s["cmd"].startswith("sh workflow/python scripts/")
                          for s in stages.values())


def test_wrapper_finds_the_checkouts_venv_without_path(tmp_path):
    """`.venv/bin/dvc repro` without the venv on PATH used to run a bare `python`."""
    proc = subprocess.run(["sh", "workflow/python", "-c",
                           "import ser, sys; print(sys.prefix)"],
                          cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": BARE_PATH, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == Path(sys.prefix).resolve()


def test_wrapper_without_any_environment_is_one_line(tmp_path):
    (tmp_path / "workflow").mkdir()
    shutil.copy(WRAPPER, tmp_path / "workflow" / "python")
    proc = subprocess.run(["sh", "workflow/python", "scripts/train.py"], cwd=tmp_path,
                          capture_output=True, text=True,
                          env={"PATH": BARE_PATH, "HOME": str(tmp_path)})  # no ser there
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no Python with the ser package" in proc.stderr and "make install" in proc.stderr


def test_wrapper_refuses_while_snakemake_holds_the_checkout(tmp_path):
    (tmp_path / "workflow").mkdir()
    shutil.copy(WRAPPER, tmp_path / "workflow" / "python")
    marker = tmp_path / "ran"
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.output.lock").write_text("data/x\n")
    env = {"PATH": os.environ["PATH"], "SER_PYTHON": sys.executable}
    proc = subprocess.run(["sh", "workflow/python", "-c", f"open({str(marker)!r}, 'w')"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "a Snakemake run holds this checkout" in proc.stderr and not marker.exists()
    from ser.workflow.engines import snakemake_holds

    assert snakemake_holds(tmp_path)
    (tmp_path / ".snakemake" / "locks" / "0.output.lock").unlink()
    assert not snakemake_holds(tmp_path)
    proc = subprocess.run(["sh", "workflow/python", "-c", f"open({str(marker)!r}, 'w')"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and marker.exists()


def _dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=repo,
                   check=True)
    return repo


def test_dvc_refuses_while_snakemake_holds_its_lock(tmp_path, monkeypatch):
    """What the Snakefile does at parse time, in a separate process: `dvc` stops before
    touching the workspace."""
    monkeypatch.delenv("SER_WIRING", raising=False)
    repo = _dvc_repo(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from ser.workflow.engines import claim_for_snakemake\n"
         "h = claim_for_snakemake(object())\n"
         "print('held', h is not None, flush=True)\n"
         "time.sleep(60)\n"], cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held True"
        from ser.workflow.engines import dvc_holds

        assert dvc_holds(repo)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "Unable to acquire lock" in proc.stderr
        assert time.monotonic() - start < 60
    finally:
        holder.kill()
        holder.wait()
    from ser.workflow.engines import dvc_holds

    assert not dvc_holds(repo)  # a killed holder leaves no stale lock


def test_snakemake_refuses_to_start_while_dvc_holds_the_checkout(tmp_path, capsys,
                                                                 monkeypatch):
    import pytest

    monkeypatch.delenv("SER_WIRING", raising=False)
    from ser.workflow.engines import _try_flock, claim_for_snakemake, release

    repo = _dvc_repo(tmp_path)
    held = _try_flock(repo / ".dvc" / "tmp" / "lock")  # as `dvc repro` holds it
    try:
        with pytest.raises(SystemExit) as exc:
            claim_for_snakemake(object(), root=repo)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a DVC command (dvc repro?) is running" in err
    finally:
        release(held)
    handle = claim_for_snakemake(object(), root=repo)
    assert handle is not None
    release(handle)
    monkeypatch.setenv("SER_WIRING", "1")  # ser.workflow.wiring's own parse never takes it
    assert claim_for_snakemake(object(), root=repo) is None


def test_the_snakefile_takes_the_lock_and_gives_it_back():
    text = (ROOT / "Snakefile").read_text()
    assert "DVC_GUARD = claim_for_snakemake(workflow)" in text
    success = text.split("onsuccess:")[1]
    assert success.index("record_in_dvc()") < success.index("release(DVC_GUARD)")
    assert "release(DVC_GUARD)" in text.split("onerror:")[1]


def test_snakemake_refuses_while_a_dvc_stage_command_runs(tmp_path, capsys, monkeypatch):
    """DVC lets go of its lock while a stage's command runs and lists the stage in
    .dvc/tmp/rwlock with its pid: that counts as holding the checkout (a dead pid does not)."""
    import json

    import pytest

    from ser.workflow.engines import claim_for_snakemake, dvc_stage_running, release

    monkeypatch.delenv("SER_WIRING", raising=False)
    repo = _dvc_repo(tmp_path)
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(exist_ok=True)
    rwlock.write_text(json.dumps({"write": {str(repo / "data"): {
        "pid": os.getpid(), "cmd": "dvc repro"}}, "read": {}}))
    assert dvc_stage_running(repo)
    with pytest.raises(SystemExit):
        claim_for_snakemake(object(), root=repo)
    assert "a DVC command (dvc repro?) is running" in capsys.readouterr().err
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    rwlock.write_text(json.dumps({"write": {str(repo / "data"): {
        "pid": int(dead), "cmd": "dvc repro"}}, "read": {}}))
    assert not dvc_stage_running(repo)
    release(claim_for_snakemake(object(), root=repo))
