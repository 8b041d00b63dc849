"""One wiring: dvc.yaml is generated from the Snakefile and must be current; the tables
of models, feature sets and corpora agree with the params schema; every params key is read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ser.params.load import params_schema
from ser.workflow.wiring import stage_outputs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCHEMA = params_schema()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The project as a fresh clone has it, in a temporary folder: Snakemake writes its
    .snakemake/ (and the resolved params file) there, never under a build running in the
    repository's own checkout."""
    from support import copy_checkout

    return copy_checkout(tmp_path_factory.mktemp("checkout"))


def smk(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})


@pytest.fixture(scope="module")
def generated() -> str:
    from ser.workflow.wiring import generate

    old = Path.cwd()
    os.chdir(ROOT)
    try:
        return generate()
    finally:
        os.chdir(old)


def test_committed_dvc_yaml_is_generated_from_the_snakefile(generated):
    assert (ROOT / "dvc.yaml").read_text() == generated, (
        "dvc.yaml is out of date: run `python -m ser.workflow.wiring write` and commit it")


def test_dvc_stages_cover_the_package_and_name_their_params(generated):
    stages = yaml.safe_load(generated)["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in stages.items():
        script = stage["cmd"].split()[2]
        # The environment's Python, found by workflow/python (ser/workflow/engines.py).
        assert stage["cmd"].startswith("sh workflow/python scripts/"), name
        # Every stage that reads settings reads them from params.yaml (a shard merge reads
        # none: its shards carry their feature definition).
        assert ("--params params.yaml" in stage["cmd"]) == bool(stage.get("params")), name
        assert script in stage["deps"] and "ser" in stage["deps"], name
        for key in stage.get("params", []):
            node = params
            for part in key.split("."):
                node = node[part]  # every listed key exists in params.yaml
    from ser.features.sets import FEATURE_SETS, model_accepts

    runs = {(p, f, m) for p in params["train"]["protocols"]
            for f in params["train"]["feature_sets"] for m in params["train"]["models"]
            if model_accepts(m, f)}
    assert runs
    for p, f, m in runs:
        assert f"models/{p}/{f}/{m}" in stage_outputs(stages[f"train-{p}-{f}-{m}"], ["outs"])
        assert m in stages[f"train-{p}-{f}-{m}"]["params"]
        metrics = stage_outputs(stages[f"evaluate-{p}-{f}-{m}"], ["metrics"])
        assert f"metrics/{p}/{f}/{m}/metrics.json" in metrics  # cached: dvc pull restores it
    assert "splits" in stages["splits-speaker"]["params"]
    assert stages["features-mfcc-tess"]["params"] == ["mfcc"]
    # A speaker-normalised variant is never extracted: its runs read the base set's files.
    for f in params["train"]["feature_sets"]:
        spec = FEATURE_SETS[f]
        if spec.base is None:
            continue
        assert not any(name.endswith(f"features-{f}-tess") for name in stages)
        train = next(v for k, v in stages.items() if k.startswith("train-") and f"-{f}-" in k)
        assert f"data/features/{spec.base}/tess/summary.parquet" in train["deps"]
        assert f"--feature-set {f}" in train["cmd"]


def test_snakemake_runs_the_interpreter_it_runs_in_and_the_config_it_was_given(tmp_path, checkout):
    other = yaml.safe_load((ROOT / "params.yaml").read_text())
    other["mfcc"]["n_mfcc"] = 13
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    proc = smk(checkout, "data/features/mfcc/tess/summary.parquet", "-n", "-p", "--forceall",
               "--configfile", str(tmp_path / "other.yaml"))
    assert proc.returncode == 0, proc.stderr
    cmds = re.findall(r"^(?:Shell command: )?(python scripts/\S+.*)$", proc.stdout, re.M)
    assert cmds and all("--params .snakemake/ser/params.yaml" in c for c in cmds)
    resolved = yaml.safe_load((checkout / ".snakemake" / "ser" / "params.yaml").read_text())
    assert resolved["mfcc"]["n_mfcc"] == 13
    smk(checkout, "-n", "--forceall")  # back to params.yaml for the other tests
    assert yaml.safe_load((checkout / ".snakemake" / "ser" / "params.yaml").read_text()) == \
        yaml.safe_load((ROOT / "params.yaml").read_text())
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "sys.executable" in common and "shell.prefix" in common


def test_tables_match_the_schema_enums():
    """The schema's enums are the registries' names, in their order; the schema file itself
    spells none of them (so it cannot drift)."""
    from ser.corpora import CORPUS_SPECS
    from ser.corpora.demo import LAYOUTS
    from ser.features.sets import EXTRACTED_SETS, FEATURE_SETS
    from ser.models import MODEL_SPECS
    from ser.splits.protocols import PROTOCOL_SPECS

    props = SCHEMA["properties"]
    train = props["train"]["properties"]
    assert train["models"]["items"]["enum"] == list(MODEL_SPECS)
    assert train["feature_sets"]["items"]["enum"] == list(FEATURE_SETS)
    assert train["protocols"]["items"]["enum"] == list(PROTOCOL_SPECS)
    assert props["corpora"]["propertyNames"]["enum"] == list(CORPUS_SPECS)
    assert props["demo"]["properties"]["corpora"]["items"]["enum"] == list(LAYOUTS)
    assert set(props["shards"]["properties"]) == {"default", *CORPUS_SPECS}
    assert {s.section for s in MODEL_SPECS.values()} <= set(props)
    assert {FEATURE_SETS[n].section for n in EXTRACTED_SETS} <= set(props)
    raw = (ROOT / "ser" / "schemas" / "params.schema.yaml").read_text()
    assert "enum: [svm" not in raw and "enum: [tess" not in raw and "enum: [random" not in raw
    assert "enum: [mfcc" not in raw
    for spec in MODEL_SPECS.values():
        assert spec.section in props, spec.name
        assert callable(spec.train_function())
    for spec in FEATURE_SETS.values():
        assert spec.section in props and callable(spec.extract_function())
        if spec.base is not None:  # a variant reads its base's files: same extractor
            assert FEATURE_SETS[spec.base].extractor == spec.extractor


def _leaf_keys(schema: dict, prefix: str = "") -> list[str]:
    """Every ``section.key`` the schema documents (model grids are free-form)."""
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if "properties" in sub and name not in ("corpora",):
            keys += _leaf_keys(sub, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_every_params_key_is_read_by_something():
    """A key nothing reads is a setting that does nothing: fail on it."""
    from ser.models import MODEL_SPECS

    sources = "\n".join(p.read_text() for p in [
        *ROOT.glob("ser/**/*.py"), *ROOT.glob("scripts/*.py"),
        *ROOT.glob("workflow/rules/*.smk"), ROOT / "Snakefile"])
    read_whole = {"corpora", "demo.corpora", *(s.section for s in MODEL_SPECS.values())}
    unread = []
    for key in _leaf_keys(SCHEMA):
        section, _, leaf = key.partition(".")
        if key in read_whole or section in read_whole and section != "demo":
            continue
        patterns = [rf"\b{leaf or section}\b"] if leaf else [rf"\b{section}\b"]
        if not any(re.search(p, sources) for p in patterns):
            unread.append(key)
    assert not unread, f"params keys nothing reads: {unread}"


def test_mfcc_workers_sets_the_feature_jobs_threads(checkout):
    proc = smk(checkout, "-n", "--forceall", "data/features/mfcc/tess/summary.parquet")
    assert proc.returncode == 0, proc.stderr
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    block = proc.stdout[proc.stdout.index("rule features:"):].split("\n\n")[0]
    assert f"threads: {params['mfcc']['workers']}" in block


def test_snakemake_lint_is_clean(checkout):
    proc = smk(checkout, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_profile_is_picked_up(checkout):
    assert (ROOT / "profiles" / "default" / "config.yaml").is_file()
    assert "profiles/default" in smk(checkout, "-n").stdout + smk(checkout, "-n").stderr


def test_every_corpus_spec_has_acquisition_facts_and_a_demo_layout():
    """Acquisition facts and demo layouts are optional per corpus (a new corpus needs
    neither), but each belongs to a registered corpus, and the published corpora have both."""
    from ser.corpora import CORPUS_SPECS
    from ser.corpora.acquire import CORPORA
    from ser.corpora.demo import LAYOUTS

    assert set(CORPORA) <= set(CORPUS_SPECS) and set(LAYOUTS) <= set(CORPUS_SPECS)
    for name, spec in CORPUS_SPECS.items():
        assert "```" in spec.parse.__doc__ or "/" in spec.parse.__doc__  # layout documented
        assert spec.display and (spec.codes or name == "custom")
        if name == "custom":   # the user's own recordings: nothing to download or synthesise
            assert spec.acquisition is None and spec.demo_layout is None
            continue
        assert spec.acquisition.name == name and spec.demo_layout is not None
        assert spec.licence == spec.acquisition.licence
