"""Sharded feature extraction and per-rule resources (issue 11, jobs shaped for a cluster).

The shards of a corpus merge into exactly the bytes one job writes; the shard slices
cover every manifest row once; bad settings are one readable line; the Snakefile's DAG
with shards has the expected jobs, each with the resources params.yaml gives its kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, run_stage

from ser.errors import ConfigError, SerError
from ser.features.shards import extract_shard, merge_shards, shard_bounds
from ser.params.load import validate_params

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("n_rows", [0, 1, 5, 34, 1025])
@pytest.mark.parametrize("shards", [1, 2, 3, 7, 40])
def test_shard_slices_cover_every_row_exactly_once(n_rows, shards):
    bounds = shard_bounds(n_rows, shards)
    assert len(bounds) == shards and bounds == shard_bounds(n_rows, shards)
    rows = [r for start, stop in bounds for r in range(start, stop)]
    assert rows == list(range(n_rows))  # contiguous, in order, each row once
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1  # balanced; more shards than rows: empty ones


def test_shard_bounds_refuse_no_shards():
    with pytest.raises(SerError, match="shards must be >= 1"):
        shard_bounds(10, 0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A tiny demo corpus (32 clips) whose manifest also lists an undecodable and a
    silent file (skipped rows in two different shards)."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("shards")
    (folder / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    old = Path.cwd()
    os.chdir(folder)
    try:
        run_stage("generate_demo.py", "--corpus", "ravdess", "--preset", "tiny",
                  "--out", "demo/ravdess")
        run_stage("prepare_manifest.py", "--corpus", "ravdess", "--root", "demo/ravdess",
                  "--out", "manifest.parquet")
    finally:
        os.chdir(old)
    manifest = pd.read_parquet(folder / "manifest.parquet")
    (folder / "broken.wav").write_bytes(b"not audio")
    sf.write(folder / "silent.wav", np.zeros(16000, np.float32), 16000)
    rows = manifest.to_dict("records")
    for name, at in (("broken.wav", 3), ("silent.wav", 20)):
        rows.insert(at, {**rows[at], "path": str(folder / name)})
    for row in rows:
        if not os.path.isabs(row["path"]):
            row["path"] = str(folder / row["path"])
    pd.DataFrame(rows).astype(manifest.dtypes.to_dict()).to_parquet(folder / "all.parquet")
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("feature_set", ["mfcc", "mfcc_stats", "logmel"])
def test_merged_shards_equal_one_extraction_byte_for_byte(corpus, tmp_path, monkeypatch,
                                                          feature_set):
    from ser.features import corpus_sets, extract, shards
    from ser.features.sets import feature_set_params, feature_set_spec

    # Row groups of 5 rows: the merge must re-cut them across shard boundaries.
    for module in (extract, shards, corpus_sets):
        monkeypatch.setattr(module, "ROW_GROUP_ROWS", 5)
    params = feature_set_params(feature_set, PARAMS)
    manifest = corpus / "all.parquet"
    n_rows = pq.ParquetFile(manifest).metadata.num_rows
    feature_set_spec(feature_set).extract_function()(manifest, tmp_path / "one", params=params,
                                                     progress=False)
    expected = _files(tmp_path / "one")
    assert set(expected) == {"summary.parquet", "skipped.csv", ".ser-output"} | (
        {"sequences.parquet"} if feature_set != "mfcc_stats" else set())
    assert len(pd.read_csv(tmp_path / "one" / "skipped.csv")) >= 1
    counts = [1, 3] + ([n_rows + 6] if feature_set == "mfcc" else [])
    for n in counts:  # n_rows + 6: more shards than rows, some empty
        folders = [tmp_path / f"s{n}" / f"{k}-of-{n}" for k in range(1, n + 1)]
        for k, folder in enumerate(folders, start=1):
            extract_shard(feature_set, manifest, folder, params=params, shard=k, shards=n,
                          progress=False)
        result = merge_shards(folders, tmp_path / f"merged{n}", progress=False)
        assert _files(tmp_path / f"merged{n}") == expected, f"{n} shards"
        assert result.n_files == n_rows
    # Several row groups, as the unsharded writer cut them.
    if feature_set != "mfcc_stats":
        assert pq.ParquetFile(tmp_path / "merged3" / "sequences.parquet").num_row_groups > 3


def test_merge_refuses_incomplete_or_mixed_shards(corpus, tmp_path):
    from ser.features.sets import feature_set_params

    params = feature_set_params("mfcc_stats", PARAMS)
    manifest = corpus / "all.parquet"
    folders = [tmp_path / f"{k}-of-3" for k in (1, 2, 3)]
    for k, folder in enumerate(folders, start=1):
        extract_shard("mfcc_stats", manifest, folder, params=params, shard=k, shards=3,
                      progress=False)
    with pytest.raises(SerError, match="expected 2 of 3; give the shard folders in order"):
        merge_shards([folders[0], folders[2], folders[1]], tmp_path / "out", progress=False)
    with pytest.raises(SerError, match="is shard 1 of 3, expected 1 of 2"):
        merge_shards(folders[:2], tmp_path / "out", progress=False)
    (folders[1] / "shard.json").unlink()
    with pytest.raises(SerError, match="not a finished shard"):
        merge_shards(folders, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing that looks finished


def test_merge_stage_says_what_is_wrong_in_one_line(tmp_path, capsys):
    import runpy

    from ser.cli import run_cli

    main = runpy.run_path(str(ROOT / "scripts" / "merge_features.py"))["main"]
    assert run_cli(main, ["--out", str(tmp_path / "out"), str(tmp_path / "1-of-2"),
                          str(tmp_path / "2-of-2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / '1-of-2'}: not a finished shard (no shard.json); " \
        "rerun its extraction"


_STREAM_SCRIPT = """
import json, sys, numpy as np, pyarrow as pa
from pathlib import Path
from ser.features.extract import sequences_writer, summary_writer
from ser.features.shards import merge_shards
tmp, n = Path(sys.argv[1]), int(sys.argv[2])
rows, width = 1500, 2000  # 8 kB of float32 per clip: 12 MB per shard
folders = [tmp / f"{k + 1}-of-{n}" for k in range(n)]
for k, d in enumerate(folders if sys.argv[3] == "make" else []):
    d.mkdir(parents=True)
    paths = pa.array([f"c{k}_{i}.wav" for i in range(rows)])
    values = np.random.default_rng(k).standard_normal(rows * width).astype(np.float32)
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * width)
    seqs = pa.table({"path": paths, "n_frames": pa.array(np.full(rows, 50, np.int32)),
                     "n_coeffs": pa.array(np.full(rows, 40, np.int32)),
                     "mfcc": pa.ListArray.from_arrays(offsets, values)})
    with sequences_writer(d / "sequences.parquet", seqs.schema) as w:
        w.write_table(seqs, row_group_size=1024)
    summary = pa.table({"path": paths, "feat_a": pa.array(values[:rows])})
    with summary_writer(d / "summary.parquet", summary.schema) as w:
        w.write_table(summary, row_group_size=1024)
    (d / "skipped.csv").write_text("path,reason\\n")
    (d / "shard.json").write_text(json.dumps({"shard": k + 1, "shards": n,
        "rows": [k * rows, (k + 1) * rows], "manifest_rows": n * rows}))
if sys.argv[3] == "merge":  # a fresh process: its high-water mark is the merge's
    merge_shards(folders, tmp / "out", progress=False)
    print(json.dumps({"peak": pa.default_memory_pool().max_memory(),
                      "data": n * rows * width * 4}))
"""


def _merge_peak(folder: Path, shards: int) -> dict:
    for mode in ("make", "merge"):
        out = subprocess.run([sys.executable, "-c", _STREAM_SCRIPT, str(folder), str(shards),
                              mode], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr
    assert pq.ParquetFile(folder / "out" / "sequences.parquet").metadata.num_rows == \
        shards * 1500
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_merge_memory_stays_flat_as_the_shards_grow(tmp_path):
    """Arrow's peak memory in the merging process is about the same for 3 and 12 shards of
    12 MB of sequences each: the merge holds row groups, never a whole table."""
    small, large = _merge_peak(tmp_path / "s3", 3), _merge_peak(tmp_path / "s12", 12)
    assert large["data"] == 4 * small["data"] == 144_000_000
    assert large["peak"] < 1.25 * small["peak"] + 4_000_000, (small, large)
    # Decoding one 8 MB row group alone peaks near 30 MB in Arrow (growing buffers); a
    # merge that concatenated the shards would need at least the 144 MB of data.
    assert large["peak"] < 0.75 * large["data"], large


def test_bad_shard_and_resource_settings_are_one_readable_line():
    def bad(**sections):
        params = json.loads(json.dumps(PARAMS)) | sections
        with pytest.raises(ConfigError) as info:
            validate_params(params, source="params.yaml")
        return str(info.value)

    assert bad(shards={"default": 0}) == (
        "params.yaml: bad parameter shards.default: 0 is less than the minimum of 1")
    assert "unknown parameter shards.tes (a typo?)" in bad(shards={"tes": 3})
    assert "bad parameter shards.custom: 2.5 is not of type 'integer'" in \
        bad(shards={"custom": 2.5})
    assert "bad parameter resources.train_sequence.mem_mb" in \
        bad(resources={"train_sequence": {"mem_mb": 0}})
    assert "unknown parameter resources.train (a typo?)" in bad(resources={"train": {}})
    assert "resources.features.threads: a feature job's threads are its feature set's " \
        "workers" in bad(resources={"features": {"threads": 4}})


def test_stage_refuses_a_shard_out_of_range(capsys):
    import runpy

    main = runpy.run_path(str(ROOT / "scripts" / "extract_features.py"))["main"]
    with pytest.raises(SystemExit) as info:
        main(["--feature-set", "mfcc", "--corpus", "x", "--manifest", "m.parquet",
              "--out", "o", "--shard", "4", "--shards", "3", "--params", "params.yaml"])
    assert info.value.code == 2
    assert "--shard 4: must be between 1 and --shards 3" in capsys.readouterr().err


def test_resources_fall_back_to_the_built_in_values():
    from ser.workflow.resources import DEFAULT_RESOURCES, RULE_KINDS, feature_shards, rule_resources

    # params.yaml documents exactly the built-in values.
    assert PARAMS["resources"] == DEFAULT_RESOURCES
    assert rule_resources({}) == rule_resources(PARAMS)
    custom = rule_resources({"resources": {"train_sequence": {"threads": 4}}})
    assert custom["train_sequence"] == {"threads": 4, "mem_mb": 4000, "runtime": 240}
    assert set(custom) == set(RULE_KINDS) and "threads" not in custom["features"]
    assert feature_shards({}, "tess") == 1
    assert feature_shards({"shards": {"default": 3, "tess": 1}}, "tess") == 1
    assert feature_shards({"shards": {"default": 3}}, "cremad") == 3


def _sharded_jobs(tmp_path: Path, params: dict):
    """The Snakefile's jobs under ``params`` (a temporary project linking the wiring)."""
    from ser.workflow.wiring import snakemake_jobs

    for name in ("Snakefile", "workflow", "scripts", "benchmarks", "profiles"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        return snakemake_jobs(cores=64)
    finally:
        os.chdir(old)


def test_dag_with_three_shards_has_the_expected_jobs_and_resources(tmp_path):
    from collections import Counter

    from ser.features.sets import FEATURE_SETS
    from ser.models import MODEL_SPECS
    from ser.workflow.wiring import dvc_document

    params = json.loads(json.dumps(PARAMS))
    params["shards"] = {"default": 3, "tess": 1}
    params["resources"]["train_sequence"] = {"threads": 2, "mem_mb": 6000, "runtime": 300}
    jobs = _sharded_jobs(tmp_path, params)
    counts = Counter(j.rule for j in jobs)
    corpora = list(params["corpora"])
    sharded = [c for c in corpora if c != "tess"]
    extracted = sorted({FEATURE_SETS[f].extracted for f in params["train"]["feature_sets"]})
    with_seqs = [f for f in extracted if "sequences" in FEATURE_SETS[f].tables]
    assert counts["feature_shard"] == 3 * len(sharded) * len(extracted)
    assert counts["merge_features"] == len(sharded) * len(with_seqs)
    assert counts["merge_summary_features"] == len(sharded) * (len(extracted) - len(with_seqs))
    assert counts["features"] + counts["summary_features"] == len(extracted)  # tess alone
    merge = next(j for j in jobs if j.name == "merge_features-mfcc-cremad")
    assert merge.inputs[:3] == [f"data/shards/mfcc/cremad/{k}-of-3" for k in (1, 2, 3)]
    shard = next(j for j in jobs if j.name == "feature_shard-mfcc-cremad-2-3")
    assert "--shard 2 --shards 3" in shard.command
    # Resources: the kind's values from params.yaml; feature jobs' threads are workers.
    res = params["resources"]
    assert shard.threads == params["mfcc"]["workers"]
    assert shard.resources == {"mem_mb": res["features"]["mem_mb"],
                               "runtime": res["features"]["runtime"]}
    assert (merge.threads, merge.resources) == (1, {"mem_mb": res["merge"]["mem_mb"],
                                                    "runtime": res["merge"]["runtime"]})
    for job in jobs:
        if job.rule == "train":
            kind = MODEL_SPECS[job.wildcards["model"]].kind
            want = res[f"train_{kind}"]
            assert (job.threads, job.resources) == (want["threads"], {
                "mem_mb": want["mem_mb"], "runtime": want["runtime"]}), job.name
            # Longest jobs first: sequence models' training before the classical grids.
            assert job.priority == (1 if kind == "sequence" else 0), job.name
        assert job.resources and job.resources["mem_mb"] > 0, job.name
        assert job.threads <= max(2, res["train_sequence"]["threads"]), job.name
    # DVC follows: one stage per shard (a folder output) and per merge.
    stages = dvc_document(jobs)["stages"]
    assert stages["feature_shard-mfcc-cremad-2-3"]["outs"] == [
        {"data/shards/mfcc/cremad/2-of-3": {"persist": True}}]
    assert "data/shards/mfcc/cremad/3-of-3" in stages["merge_features-mfcc-cremad"]["deps"]
