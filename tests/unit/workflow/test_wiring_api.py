"""The Snakemake and DVC internals that ``ser/workflow/wiring.py`` relies on still exist.

``wiring.py`` builds Snakemake's job graph through private names (``_workflow``,
``_prepare_dag``, ``_build_dag``) and commits stages through DVC's internal classes; the
versions are capped in pyproject.toml. When an upgrade changes any of them, these tests
fail naming every name that changed, instead of a dvc.yaml that silently goes wrong.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
WIRING = ROOT / "ser" / "workflow" / "wiring.py"

#: (module, class or None, attribute, keyword parameters it must accept) for every
#: Snakemake/DVC name wiring.py uses beyond the documented command line.
USED: list[tuple[str, str | None, str, tuple[str, ...]]] = [
    ("snakemake.api", None, "SnakemakeApi", ()),
    ("snakemake.api", "SnakemakeApi", "workflow", ("resource_settings", "snakefile",
                                                  "config_settings")),
    ("snakemake.api", "WorkflowApi", "dag", ("dag_settings",)),
    ("snakemake.api", "WorkflowApi", "_workflow", ()),
    ("snakemake.settings.types", None, "ConfigSettings", ("configfiles",)),
    ("snakemake.settings.types", None, "DAGSettings", ("forceall",)),
    ("snakemake.settings.types", None, "OutputSettings", ("quiet",)),
    ("snakemake.settings.types", None, "ResourceSettings", ("cores",)),
    ("snakemake.workflow", "Workflow", "_prepare_dag", ("forceall", "ignore_incomplete",
                                                       "lock_warn_only", "nolock")),
    ("snakemake.workflow", "Workflow", "_build_dag", ()),
    ("snakemake.workflow", "Workflow", "rules", ()),
    ("snakemake.workflow", "Workflow", "dag", ()),
    ("snakemake.dag", "DAG", "needrun_jobs", ()),
    ("snakemake.dag", "DAG", "jobs", ()),
    ("snakemake.jobs", "Job", "is_shell", ()),
    ("snakemake.jobs", "Job", "format_wildcards", ()),
    ("snakemake.jobs", "Job", "wildcards_dict", ()),
    ("snakemake.jobs", "Job", "attempt", ()),
    ("snakemake.jobs", "Job", "rule", ()),
    ("snakemake.rules", "Rule", "expand_priority", ("wildcards", "input", "attempt")),
    ("dvc.repo", None, "Repo", ()),
    ("dvc.lock", None, "LockNoop", ()),
    ("dvc.stage", "Stage", "save", ("run_cache",)),
    ("dvc.stage", "Stage", "commit", ()),
    ("dvc.stage", "Stage", "dvcfile", ()),
    ("dvc.dvcfile", "ProjectFile", "dump_stages", ("stages", "update_pipeline")),
]

#: The private attributes (one leading underscore) wiring.py reads on library objects.
PRIVATE_NAMES = {"_workflow", "_prepare_dag", "_build_dag"}


def _problem(module: str, cls: str | None, attr: str, keywords: tuple[str, ...]) -> str | None:
    where = f"{module}.{cls + '.' if cls else ''}{attr}"
    try:
        if module.startswith("snakemake."):  # its modules import cleanly only after its API
            importlib.import_module("snakemake.api")
        owner = importlib.import_module(module)
    except ImportError as exc:
        return f"{where}: module {module} cannot be imported ({exc})"
    if cls is not None:
        owner = getattr(owner, cls, None)
        if owner is None:
            return f"{where}: class {cls} is gone from {module}"
    try:
        obj = inspect.getattr_static(owner, attr)
    except AttributeError:
        return f"{where}: gone"
    if keywords:
        target = obj.__init__ if inspect.isclass(obj) else getattr(obj, "__func__", obj)
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return f"{where}: no longer a function"
        missing = [k for k in keywords if k not in params]
        if missing:
            return f"{where}: no longer accepts {', '.join(missing)}"
    return None


def test_snakemake_and_dvc_internals_used_by_wiring_exist():
    problems = [p for entry in USED if (p := _problem(*entry))]
    assert not problems, (
        "Snakemake/DVC changed internals ser/workflow/wiring.py uses (installed: snakemake "
        f"{importlib.metadata.version('snakemake')}, dvc {importlib.metadata.version('dvc')}):"
        "\n  " + "\n  ".join(problems)
        + "\nadapt wiring.py (and this list), or keep the versions pyproject.toml caps")


def test_the_list_names_every_private_attribute_wiring_reads():
    tree = ast.parse(WIRING.read_text())
    private = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and node.attr.startswith("_") and not node.attr.startswith("__")}
    assert private == PRIVATE_NAMES, (
        f"wiring.py reads private attributes {sorted(private)}; this test checks "
        f"{sorted(PRIVATE_NAMES)}: add the new ones to USED and PRIVATE_NAMES")
    checked = {attr for _, _, attr, _ in USED}
    assert PRIVATE_NAMES <= checked


def test_the_job_graph_of_a_tiny_snakefile(tmp_path, monkeypatch):
    """The instance attributes (a job's rule, shell command, wildcards, priority) through
    wiring's own graph builder."""
    from ser.workflow import wiring

    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "out/a.txt"\n\n'
        'rule make:\n    output: "out/{name}.txt"\n    threads: 1\n'
        '    shell: "python make.py {wildcards.name} > {output}"\n')
    (tmp_path / "config.yaml").write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)
    try:
        jobs, rules = wiring._graph_jobs(tmp_path / "Snakefile", [tmp_path / "config.yaml"],
                                         1, False, False)
    except (AttributeError, TypeError) as exc:
        pytest.fail(f"Snakemake's job graph API changed under ser/workflow/wiring.py: {exc}")
    assert set(rules) == {"all", "make"}
    (job,) = jobs
    assert job.rule == "make" and job.wildcards == {"name": "a"}
    assert job.outputs == {"out/a.txt": "out/a.txt"}


@pytest.mark.parametrize("name", ["snakemake", "dvc"])
def test_versions_are_capped_where_the_internals_were_checked(name):
    """pyproject.toml and environment.yml cap both libraries at the same version, and the
    installed one is inside the cap (the version these tests checked)."""
    import tomllib

    import yaml
    from packaging.requirements import Requirement

    def spec(requirements) -> str:
        (found,) = [Requirement(r) for r in requirements
                    if isinstance(r, str) and re.match(rf"{name}\b(?!-)", r)]
        return str(found.specifier)

    project = spec(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                   ["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_pip = next(d["pip"] for d in env if isinstance(d, dict))
    assert "<" in project, f"pyproject.toml: {name}{project} has no upper bound"
    assert spec(conda_pip) == project, f"environment.yml: {name} differs from pyproject.toml"
    installed = importlib.metadata.version(name)
    assert Requirement(f"{name}{project}").specifier.contains(installed), (
        f"{name} {installed} is installed, outside pyproject.toml's {project}")
