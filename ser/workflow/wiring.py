"""The workflow's wiring seen from DVC: ``dvc.yaml`` generated from the Snakefile.

The Snakefile (with ``workflow/rules/*.smk``) is the one hand-written wiring. This module
builds its job graph through Snakemake's API and writes one DVC stage per job, with

* the job's command (``sh workflow/python`` - the environment's Python, found by that
  script, see :mod:`ser.workflow.engines` - instead of ``python``, without the log redirect),
* its inputs, its script and the whole ``ser`` package as deps (any code change is seen),
* the exact params keys its rule lists in ``params: settings=settings(...)``,
* its outputs (metrics and plots where DVC shows them; every output cached and
  ``persist: true``, see :data:`PERSIST`).

Commands::

    python -m ser.workflow.wiring dvc       # print dvc.yaml (the committed file must equal it)
    python -m ser.workflow.wiring write     # rewrite dvc.yaml if it is out of date
    python -m ser.workflow.wiring record    # write, then `dvc commit` every stage whose files exist
    python -m ser.workflow.wiring adopt  # after `dvc repro`: `snakemake --touch` records DVC's work
    python -m ser.workflow.wiring repro  # check params.yaml and the corpus roots, update dvc.yaml,
                                   # then `dvc repro` (what `make repro` runs)

``record`` runs after every successful Snakemake build (``onsuccess`` in the Snakefile), so
``dvc repro``/``dvc status`` see Snakemake's work as up to date, and ``dvc push``,
``dvc metrics diff`` and ``dvc exp`` work on it. The other way, ``adopt`` (run by
``make dvc-demo`` after ``dvc repro``) lets Snakemake record the jobs DVC ran, with their
current params and code, so ``snakemake -n`` has nothing to do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Output names (as named in the rules) that DVC shows as metrics / plots. Every output is
#: cached (none is tracked by git), so `dvc push` / `dvc pull` carry all of them and a
#: fresh clone after `dvc pull` has nothing to recompute.
METRIC_OUTPUTS = frozenset({"metrics"})
CONFUSION_OUTPUTS = frozenset({"predictions"})
#: Every output is marked ``persist: true``: ``dvc repro`` deletes a stage's outputs
#: before running its command unless they persist, so a stage that then fails (a typo
#: in params.yaml, an emptied corpus folder) would cost the last good outputs. Every
#: stage writes its outputs atomically and replaces only files it wrote itself
#: (:mod:`ser.outputs`), so kept outputs are either the previous run's, intact, or the
#: new ones - never a mix. DVC keeps no run-cache entry for such stages (nothing here
#: uses it: `dvc push`/`dvc pull` carry every output through the cache).
PERSIST = {"persist": True}
#: The params file DVC stages read.
DVC_PARAMS = "params.yaml"
#: DVC of this environment (works without an activated venv).
DVC = (sys.executable, "-m", "dvc")
#: The package every stage runs (a dependency of every stage).
PACKAGE = "ser"
#: How a DVC stage starts Python: ``workflow/python`` finds the environment that has
#: ``ser`` (``$SER_PYTHON``, the checkout's ``.venv``, then ``PATH``) and refuses while a
#: Snakemake run holds the checkout (:mod:`ser.workflow.engines`); a relative path, so dvc.yaml
#: works in any clone.
STAGE_PYTHON = "sh workflow/python"

HEADER = """\
# GENERATED from the Snakefile by `python -m ser.workflow.wiring dvc` - do not edit by hand;
# edit the Snakefile / workflow/rules/*.smk (or params.yaml lists), then run
# `python -m ser.workflow.wiring write` (a Snakemake build also does it).
#   dvc repro            rebuild what changed (e.g. after editing params.yaml)
#   dvc metrics show     every protocol x feature set x model
#   dvc plots show       confusion matrices and sequence-model training curves
"""


@dataclass(frozen=True)
class Job:
    """One job of the Snakemake DAG, as DVC needs it."""

    name: str
    rule: str
    wildcards: dict[str, str]
    command: str
    inputs: list[str]
    outputs: dict[str, str]
    params: list[str]
    threads: int = 1
    resources: dict[str, int] | None = None  # mem_mb, runtime (minutes): not in dvc.yaml
    priority: int = 0  # Snakemake's scheduling priority (DVC runs stages one by one)


def snakemake_jobs(snakefile: str | Path = "Snakefile", *, pending_only: bool = False,
                   configfiles: Sequence[str | Path] = (), cores: int = 1) -> list[Job]:
    """Every job of the workflow for the current ``params.yaml``, in a stable order.

    Parameters
    ----------
    snakefile : str or Path
        The workflow.
    pending_only : bool
        Just the jobs Snakemake would run now.
    configfiles : sequence of str or Path
        Settings that replace params.yaml's, as ``snakemake --configfile`` does.
    cores : int
        As ``--cores``, which caps every job's threads.
    """
    import os

    from ser.workflow.engines import WIRING_ENV

    force = not pending_only
    before = os.environ.get(WIRING_ENV)
    os.environ[WIRING_ENV] = "1"  # parsing the Snakefile here must not take DVC's lock
    with contextlib.ExitStack() as stack:
        stack.callback(_restore_env, WIRING_ENV, before)
        jobs, rules = _graph_jobs(snakefile, configfiles, cores, force, pending_only)
    return sorted(jobs, key=lambda j: (rules.index(j.rule), j.name))


def _restore_env(name: str, value: str | None) -> None:
    import os

    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _graph_jobs(snakefile, configfiles, cores, force, pending_only):
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    with contextlib.redirect_stdout(io.StringIO()), \
            SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=cores), snakefile=Path(snakefile),
            config_settings=ConfigSettings(configfiles=[Path(f) for f in configfiles]))
        workflow = workflow_api.dag(dag_settings=DAGSettings(forceall=force)) \
            .workflow_api._workflow
        workflow._prepare_dag(forceall=force, ignore_incomplete=True, lock_warn_only=True,
                              nolock=True)
        workflow._build_dag()
        rules = [r.name for r in workflow.rules]
        dag_jobs = workflow.dag.needrun_jobs() if pending_only else workflow.dag.jobs
        jobs = [_job(j) for j in dag_jobs if j.is_shell]
    return jobs, rules


def _job(job) -> Job:
    wildcards = {k: str(v) for k, v in job.wildcards.items()}
    name = "-".join([job.rule.name, *wildcards.values()])
    command = job.format_wildcards(job.rule.shellcmd)
    if job.log:
        command = command.replace(f" > {job.log[0]} 2>&1", "")
    config = job.params.get("config") if hasattr(job.params, "get") else None
    if config:  # Snakemake's resolved copy of the config; DVC reads params.yaml itself
        command = command.replace(f"--params {config}", f"--params {DVC_PARAMS}")
    if command.startswith("python "):  # the environment's Python, wherever DVC runs from
        command = STAGE_PYTHON + command.removeprefix("python")
    outputs = {name: str(path) for name, path in job.output.items()}
    named = set(outputs.values())
    outputs.update({str(o): str(o) for o in job.output if str(o) not in named})
    settings = job.params.get("settings", {}) if hasattr(job.params, "get") else {}
    resources = {k: job.resources.get(k) for k in ("mem_mb", "runtime")
                 if job.resources.get(k) is not None}
    return Job(name, job.rule.name, wildcards, " ".join(command.split()),
               list(dict.fromkeys(str(i) for i in job.input)), outputs, [str(k) for k in settings],
               threads=job.threads, resources=resources,
               priority=int(job.rule.expand_priority(job.wildcards_dict, job.input,
                                                     job.attempt)))


def dvc_document(jobs: Sequence[Job]) -> dict[str, Any]:
    """The ``dvc.yaml`` mapping of ``jobs``."""
    from ser.models import MODEL_SPECS

    stages: dict[str, Any] = {}
    curves: dict[str, str] = {}
    for job in jobs:
        stage: dict[str, Any] = {"cmd": job.command, "deps": [*job.inputs, PACKAGE]}
        if job.params:
            stage["params"] = job.params
        for name, path in job.outputs.items():
            if name in METRIC_OUTPUTS:
                stage.setdefault("metrics", []).append({path: dict(PERSIST)})
            elif name in CONFUSION_OUTPUTS:
                stage.setdefault("plots", []).append({path: {
                    "template": "confusion", "x": "actual", "y": "predicted", **PERSIST}})
            else:
                stage.setdefault("outs", []).append({path: dict(PERSIST)})
        stages[job.name] = stage
        spec = MODEL_SPECS.get(job.wildcards.get("model", ""))
        if job.rule == "train" and spec is not None and spec.kind == "sequence":
            live = f"{job.outputs['model']}/live/plots/metrics"
            curves[f"{live}/loss.tsv"] = "loss"
            curves[f"{live}/val_loss.tsv"] = "val_loss"
    doc: dict[str, Any] = {"stages": stages}
    if curves:
        doc["plots"] = [{"Sequence-model training loss": {
            "template": "linear", "x": "step", "y": curves}}]
    return doc


def render(doc: dict[str, Any]) -> str:
    """``dvc.yaml`` text: the header, then the document (stable, byte-identical reruns)."""
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000)


def generate(snakefile: str | Path = "Snakefile") -> str:
    """The text ``dvc.yaml`` should have.

    Parameters
    ----------
    snakefile : str or Path
        The workflow it is generated from.
    """
    return render(dvc_document(snakemake_jobs(snakefile)))


def write(path: Path = Path("dvc.yaml")) -> bool:
    """Rewrite ``path`` if it is out of date; return whether it changed.

    Parameters
    ----------
    path : Path
        The ``dvc.yaml`` to bring up to date (``python -m ser.workflow.wiring write``).
    """
    text = generate()
    if path.is_file() and path.read_text() == text:
        return False
    from ser.outputs import atomic_path, text_starts_with

    with atomic_path(path, owned=text_starts_with("# GENERATED from the Snakefile")) as tmp:
        Path(tmp).write_text(text)
    print(f"note: {path} regenerated from the Snakefile; commit it")
    return True


def record(path: Path = Path("dvc.yaml")) -> list[str]:
    """Write ``dvc.yaml``, then ``dvc commit`` every stage Snakemake sees as up to date
    (its files all exist and it would not rerun it); return the committed stages.

    Parameters
    ----------
    path : Path
        The ``dvc.yaml`` to write first.
    """
    write(path)
    if not Path(".dvc").is_dir():
        print("note: not a DVC repository; nothing recorded")
        return []
    doc = yaml.safe_load(path.read_text())
    pending = {job.name for job in snakemake_jobs(pending_only=True)}
    ready = []
    for name, stage in doc["stages"].items():
        if name not in pending and \
                all(Path(p).exists() for p in [*stage["deps"], *stage_outputs(stage)]):
            ready.append(name)
    if ready:
        # `dvc commit` may re-link files into the workspace; keep their times, or
        # Snakemake would see inputs newer than outputs and rerun.
        with _kept_mtimes([o for name in ready for o in stage_outputs(doc["stages"][name])]):
            dvc_commit(ready)
        print(f"recorded {len(ready)} stage(s) in dvc.lock")
    return ready


def dvc_commit(names: Sequence[str]) -> None:
    """``dvc commit --force NAME...``, with dvc.lock written once and no run-cache entries.

    The CLI commits its targets one at a time, re-reading and rewriting dvc.lock for each
    (quadratic in the number of stages: minutes for the demo's 125), and records a
    run-cache entry per stage, which nothing here uses (Snakemake, not `dvc repro`, ran
    the commands). The steps are DVC's own (``dvc.repo.commit.commit``).
    """
    import os

    from dvc.repo import Repo

    from ser.workflow.engines import LOCK_HELD_ENV

    # Run from the Snakefile's onsuccess, the Snakemake run holds the lock for us.
    held = os.environ.get(LOCK_HELD_ENV) == "1"
    with Repo() as repo:
        if held:  # DVC's own no-op lock: its checks see a held lock, nothing is taken
            from dvc.lock import LockNoop

            repo.lock = LockNoop()
        with repo.lock:
            by_name = {stage.name: stage for stage in repo.index.stages}  # dvc.yaml read once
            stages = [by_name[name] for name in names]
            for stage in stages:
                stage.save(run_cache=False)
                stage.commit(relink=True)
            files: dict[str, tuple[Any, list[Any]]] = {}
            for stage in stages:
                files.setdefault(stage.dvcfile.path, (stage.dvcfile, []))[1].append(stage)
            for dvcfile, group in files.values():
                dvcfile.dump_stages(group, update_pipeline=False)


def stage_outputs(stage: dict[str, Any],
                  kinds: Sequence[str] = ("outs", "metrics", "plots")) -> list[str]:
    """The paths a ``dvc.yaml`` stage lists under ``kinds`` (entries are ``{path: {...}}``).

    Parameters
    ----------
    stage : dict
        One stage of the ``dvc.yaml`` mapping.
    kinds : sequence of str
        Which lists to read.
    """
    return [o if isinstance(o, str) else next(iter(o))
            for kind in kinds for o in stage.get(kind, [])]


@contextlib.contextmanager
def _kept_mtimes(paths: Sequence[str]):
    """Restore the access/modification times of ``paths`` (and files under them) on exit."""
    import os

    times: dict[Path, tuple[int, int]] = {}
    for path in map(Path, paths):
        for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
            st = p.stat()
            times[p] = (st.st_atime_ns, st.st_mtime_ns)
    try:
        yield
    finally:
        for p, ns in times.items():
            if p.exists():
                os.utime(p, ns=ns, follow_symlinks=False)


def adopt() -> None:
    """After ``dvc repro``: let Snakemake record DVC's work (``snakemake --touch``).

    Refuses unless ``dvc status`` is clean, so Snakemake never adopts stale outputs.
    """
    import json

    from ser.errors import SerError

    status = subprocess.run([*DVC, "status", "--json"], capture_output=True, text=True,
                            check=True).stdout
    changed = json.loads(status or "{}")
    if changed:
        raise SerError(f"dvc status shows {len(changed)} changed stage(s) (e.g. "
                       f"{next(iter(changed))}); run `dvc repro` first")
    subprocess.run([sys.executable, "-m", "snakemake", "--touch", "--cores", "1", "--quiet"],
                   check=True)


def repro(dvc_args: Sequence[str] = ()) -> int:
    """Check ``params.yaml`` and every corpus root, bring ``dvc.yaml`` up to date, then run
    ``dvc repro DVC_ARGS`` with this environment's ``python`` first on ``PATH``.

    Checked here, a bad parameter or a missing corpus stops the run before any stage
    (bare ``dvc repro`` finds it in the first stage that reads it, whose outputs persist);
    a ``dvc.yaml`` left behind by a changed ``params.yaml`` (new corpora, models, shard
    counts) is regenerated first. Returns DVC's exit code (after a failure, prints what
    the failed stage left and how to go on).

    Parameters
    ----------
    dvc_args : sequence of str
        Arguments for ``dvc repro`` (stage names, ``--dry``, ...).
    """
    import os

    from ser.cli import DVC_RECOVERY
    from ser.params.load import check_corpus_roots, load_params

    params = load_params(DVC_PARAMS)  # ConfigError: one line, nothing touched
    check_corpus_roots(params, source=DVC_PARAMS)
    write()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    rc = subprocess.run([*DVC, "repro", *dvc_args], env=env).returncode
    if rc:
        print(f"error: dvc repro failed (exit {rc}); for the stage that failed, "
              f"{DVC_RECOVERY}", file=sys.stderr)
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ser.workflow.wiring {dvc,write,record,adopt,repro}``."""
    parser = argparse.ArgumentParser(prog="python -m ser.workflow.wiring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["dvc", "write", "record", "adopt", "repro"],
                        help="dvc: print dvc.yaml; write: update it; record: update it and "
                             "`dvc commit` what Snakemake built; adopt: after `dvc repro`, "
                             "make Snakemake record what DVC built; repro: check params.yaml "
                             "and the corpus roots, update dvc.yaml, then `dvc repro`")
    parser.add_argument("dvc_args", nargs=argparse.REMAINDER,
                        help="repro: options passed on to `dvc repro` (e.g. -f, a stage name)")
    args = parser.parse_args(argv)
    if args.dvc_args and args.command != "repro":
        parser.error(f"extra arguments are only taken by 'repro': {' '.join(args.dvc_args)}")
    if args.command == "repro":
        return repro(args.dvc_args)
    if args.command == "dvc":
        sys.stdout.write(generate())
    elif args.command == "write":
        write()
    elif args.command == "record":
        record()
    else:
        adopt()
    return 0


if __name__ == "__main__":
    from ser.cli import run_cli

    sys.exit(run_cli(main))
