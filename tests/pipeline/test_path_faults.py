"""Fault matrix (issue 17): every command-line option that takes a path, given

* ``file``   - an existing file the tool did not write,
* ``folder`` - a folder of someone else's files,
* ``link``   - a link pointing outside (at a file or folder of someone else's),

ends in exactly one ``error:`` line, a non-zero exit status, no traceback, and
nothing the user had is changed (every byte and link under the fault and its
link target is compared). Output options must refuse before any work; input
options must say what is wrong with the input.

Commands run in-process through their ``main(argv)`` (``ser.cli.run_cli`` for the
scripts, exactly as their console entry points do), so the whole matrix is fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
from support import assert_one_line, no_partials, script, snapshot, tone

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
FAULTS = ("file", "folder", "link")


@dataclass(frozen=True)
class Option:
    """One path option: ``argv(ctx, path)`` puts the faulty ``path`` there, valid paths
    everywhere else; ``suffix`` names the faulty path like a real one; ``kind`` is what
    the option expects (``file`` or ``dir``)."""

    name: str
    command: str
    argv: Callable[[dict, Path], list]
    suffix: str = ""
    kind: str = "dir"


def _ser(argv):
    from ser.cli import main

    return main([str(a) for a in argv])


def _predict(argv):
    from ser.cli.predict import main

    return main([str(a) for a in argv])


def _plots(argv):
    from ser.cli import run_cli
    from ser.plots.offline import main

    return run_cli(main, [str(a) for a in argv])


def _script(name):
    def run(argv):
        from ser.cli import run_cli

        return run_cli(script(name), [str(a) for a in argv])
    return run


COMMANDS = {name: _script(name) for name in (
    "prepare_manifest", "extract_features", "make_splits", "train", "tune_candidate",
    "evaluate", "merge_features", "report", "generate_demo")}
COMMANDS |= {"ser": _ser, "predict": _predict, "plots": _plots}


def _run_opts(c, features=None, split=None):
    return ["--protocol", "speaker", "--features", features or c["features"],
            "--split", split or c["split"]]


OUTPUTS = [
    Option("prepare_manifest --out", "prepare_manifest", lambda c, p: [
        "--corpus", "ravdess", "--root", c["rav"], "--out", p, "--params", PARAMS],
        ".parquet", "file"),
    Option("extract_features --out", "extract_features", lambda c, p: [
        "--feature-set", "mfcc", "--corpus", "ravdess", "--manifest", c["manifest"],
        "--out", p, "--params", PARAMS]),
    Option("make_splits --out", "make_splits", lambda c, p: [
        "--protocol", "speaker", "--out", p, "--params", PARAMS, c["manifest"]],
        ".parquet", "file"),
    Option("train --out", "train", lambda c, p: [
        "--model", "svm", *_run_opts(c), "--out", p, "--params", PARAMS]),
    Option("tune_candidate --out", "tune_candidate", lambda c, p: [
        "--model", "svm", "--candidate", "0", *_run_opts(c), "--out", p, "--params", PARAMS],
        ".json", "file"),
    Option("evaluate.py --out", "evaluate", lambda c, p: [
        "--model-dir", c["model"], *_run_opts(c), "--out", p, "--params", PARAMS]),
    Option("merge_features --out", "merge_features", lambda c, p: [c["shard"], "--out", p]),
    Option("report --out", "report", lambda c, p: [
        "--out", p, "--manifests", c["new"], "--metrics", c["new"], "--models", c["new"],
        "--params", PARAMS]),
    Option("generate_demo --out", "generate_demo", lambda c, p: [
        "--corpus", "emodb", "--preset", "tiny", "--seed", "0", "--out", p,
        "--params", PARAMS]),
    Option("predict --speak-to", "predict", lambda c, p: [
        "--file", c["clip"], "--model", c["model"], "--speak-to", p], ".wav", "file"),
    Option("predict --segments --out", "predict", lambda c, p: [
        "--file", c["clip"], "--model", c["model"], "--segments", "--out", p]),
    Option("ser timeline --out", "ser", lambda c, p: [
        "timeline", "--model", c["model"], "--file", c["clip"], "--out", p]),
    Option("ser evaluate --out", "ser", lambda c, p: [
        "evaluate", "--model", c["model"], "--corpus", "ravdess", "--root", c["rav"],
        "--out", p, "--bootstrap", "5"]),
    Option("ser data import --dest", "ser", lambda c, p: [
        "data", "import", "ravdess", c["rav"], "--dest", p, "--no-dvc"]),
    Option("ser data download --dest", "ser", lambda c, p: [
        "data", "download", "ravdess", "--url", "https://example.invalid/ravdess.zip",
        "--cache-dir", c["cache"], "--known-hash", c["archive_sha256"], "--dest", p,
        "--no-dvc"]),
    Option("ser data download --cache-dir", "ser", lambda c, p: [
        "data", "download", "ravdess", "--url", "https://example.invalid/ravdess.zip",
        "--cache-dir", p, "--dest", c["new"], "--no-dvc"]),
    Option("python -m ser.plots --out", "plots", lambda c, p: [
        "--out", p, "--cache", c["new"]], ".html", "file"),
]

INPUTS = [
    Option("prepare_manifest --root", "prepare_manifest", lambda c, p: [
        "--corpus", "ravdess", "--root", p, "--out", c["new"] / "m.parquet",
        "--params", PARAMS]),
    Option("stage --params", "make_splits", lambda c, p: [
        "--protocol", "speaker", "--out", c["new"] / "s.parquet", "--params", p,
        c["manifest"]], ".yaml", "file"),
    Option("generate_demo --params", "generate_demo", lambda c, p: [
        "--corpus", "emodb", "--out", c["new"] / "demo", "--params", p], ".yaml", "file"),
    Option("extract_features --manifest", "extract_features", lambda c, p: [
        "--feature-set", "mfcc", "--corpus", "ravdess", "--manifest", p,
        "--out", c["new"] / "f", "--params", PARAMS], ".parquet", "file"),
    Option("make_splits MANIFEST", "make_splits", lambda c, p: [
        "--protocol", "speaker", "--out", c["new"] / "s.parquet", "--params", PARAMS, p],
        ".parquet", "file"),
    Option("train --features", "train", lambda c, p: [
        "--model", "svm", *_run_opts(c, features=p), "--out", c["new"] / "m",
        "--params", PARAMS]),
    Option("train --split", "train", lambda c, p: [
        "--model", "svm", *_run_opts(c, split=p), "--out", c["new"] / "m",
        "--params", PARAMS], ".parquet", "file"),
    Option("train --candidates", "train", lambda c, p: [
        "--model", "svm", *_run_opts(c), "--out", c["new"] / "m", "--params", PARAMS,
        "--candidates", p], ".json", "file"),
    Option("tune_candidate --split", "tune_candidate", lambda c, p: [
        "--model", "svm", "--candidate", "0", *_run_opts(c, split=p),
        "--out", c["new"] / "c.json", "--params", PARAMS], ".parquet", "file"),
    Option("evaluate.py --model-dir", "evaluate", lambda c, p: [
        "--model-dir", p, *_run_opts(c), "--out", c["new"] / "e", "--params", PARAMS]),
    Option("merge_features SHARD", "merge_features", lambda c, p: [
        p, "--out", c["new"] / "merged"]),
    Option("report --manifests", "report", lambda c, p: [
        "--out", c["new"] / "r", "--manifests", p, "--metrics", c["new"], "--models",
        c["new"], "--params", PARAMS]),
    Option("report --real-results", "report", lambda c, p: [
        "--out", c["new"] / "r", "--manifests", c["new"], "--metrics", c["new"], "--models",
        c["new"], "--params", PARAMS, "--real-results", p], ".json", "file"),
    Option("predict --file", "predict", lambda c, p: [
        "--file", p, "--model", c["model"]], ".wav", "file"),
    Option("predict --model", "predict", lambda c, p: ["--file", c["clip"], "--model", p]),
    Option("ser timeline --file", "ser", lambda c, p: [
        "timeline", "--model", c["model"], "--file", p, "--out", c["new"] / "t"],
        ".wav", "file"),
    Option("ser timeline --model", "ser", lambda c, p: [
        "timeline", "--model", p, "--file", c["clip"], "--out", c["new"] / "t"]),
    Option("ser evaluate --model", "ser", lambda c, p: [
        "evaluate", "--model", p, "--corpus", "ravdess", "--root", c["rav"],
        "--out", c["new"] / "e"]),
    Option("ser evaluate --root", "ser", lambda c, p: [
        "evaluate", "--model", c["model"], "--corpus", "ravdess", "--root", p,
        "--out", c["new"] / "e"]),
    Option("ser data import SOURCE", "ser", lambda c, p: [
        "data", "import", "ravdess", p, "--dest", c["new"] / "raw", "--no-dvc"], ".zip",
        "file"),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> dict:
    """Valid inputs for every command (a tiny RAVDESS, its manifest, features, split,
    a model, a clip, a shard, a cache holding a verified archive)."""
    import hashlib
    import zipfile

    from ser.features.sets import feature_set_params, feature_set_spec
    from ser.params.load import load_params
    from ser.parquet_tables import write_table

    base = tmp_path_factory.mktemp("ctx")
    rav = base / "rav"
    for a in range(1, 5):
        (rav / f"Actor_{a:02d}").mkdir(parents=True)
        for e in (5, 3, 4):  # angry, happy, sad
            for rep in (1, 2):
                sf.write(rav / f"Actor_{a:02d}" / f"03-01-{e:02d}-01-01-{rep:02d}-{a:02d}.wav",
                         tone(seed=e + a + 10 * rep), 16000)
    from ser.corpora import parse_corpus

    manifest = base / "manifest.parquet"
    write_table(parse_corpus("ravdess", rav).to_frame(), manifest)
    params = load_params(PARAMS)
    features = base / "features" / "mfcc"
    feature_set_spec("mfcc").extract_function()(
        manifest, features / "ravdess", params=feature_set_params("mfcc", params),
        progress=False)
    from ser.features.shards import extract_shard

    shard = base / "shards" / "1-of-1"
    extract_shard("mfcc", manifest, shard, params=feature_set_params("mfcc", params),
                  shard=1, shards=1, progress=False)
    split = base / "speaker.parquet"
    from ser.cli import run_cli

    assert run_cli(script("make_splits"), ["--protocol", "speaker", "--out", str(split),
                                           "--params", str(PARAMS), str(manifest)]) == 0
    clip = base / "clip.wav"
    sf.write(clip, tone(2.0), 16000)
    archive = base / "cache" / "ravdess.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(rav.rglob("*.wav")):
            zf.write(path, path.relative_to(rav).as_posix())
    return {"rav": rav, "manifest": manifest, "features": features,
            "split": split, "shard": shard, "clip": clip,
            "cache": archive.parent,
            "archive_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}


def _fault(tmp: Path, fault: str, option: Option) -> tuple[Path, Path | None]:
    """Create the fault at ``tmp/victim<suffix>``; return it and the link's target."""
    victim = tmp / f"victim{option.suffix}"
    outside = None
    if fault == "file":
        victim.write_bytes(b"someone's data, not a ser file\n")
    elif fault == "folder":
        victim.mkdir()
        (victim / "notes.txt").write_text("mine")
        (victim / "sub").mkdir()
        (victim / "sub" / "photo.jpg").write_bytes(b"\xff\xd8jpeg")
        if option.name == "report --out":  # a reports folder may hold other files ...
            (victim / "report.html").write_text("<html>my own page</html>")  # ... not this
        if option.name == "ser data download --cache-dir":
            (victim / "ravdess.zip").write_bytes(b"my own zip")
    else:
        outside = tmp / "outside"
        outside.mkdir()
        target = outside / f"target{option.suffix}"
        if option.kind == "dir":
            target.mkdir()
            (target / "notes.txt").write_text("mine")
            (target / "report.html").write_text("<html>my own page</html>")
        else:
            target.write_bytes(b"someone's data, not a ser file\n")
        victim.symlink_to(target, target_is_directory=option.kind == "dir")
    return victim, outside


def _check(option: Option, fault: str, ctx: dict, tmp_path: Path, capsys, monkeypatch) -> str:
    import pooch

    def no_network(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    c = dict(ctx, new=tmp_path / "new")
    victim, outside = _fault(work, fault, option)
    before = snapshot(*(p for p in (victim, outside) if p is not None))
    rc = COMMANDS[option.command](option.argv(c, victim))
    _, err = capsys.readouterr()
    assert_one_line(rc, err)
    assert rc == 2, err
    assert snapshot(*(p for p in (victim, outside) if p is not None)) == before, err
    no_partials(tmp_path)
    return err


@pytest.fixture()
def full_ctx(ctx, flat_model):  # noqa: F811 - conftest.py:s saved MFCC model
    return dict(ctx, model=flat_model)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("option", OUTPUTS, ids=lambda o: o.name)
def test_output_option_faults_are_one_line_and_lose_nothing(
        option, fault, full_ctx, tmp_path, capsys, monkeypatch):
    err = _check(option, fault, full_ctx, tmp_path, capsys, monkeypatch)
    assert "victim" in err  # the message names the path


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("option", INPUTS, ids=lambda o: o.name)
def test_input_option_faults_are_one_line_and_lose_nothing(
        option, fault, full_ctx, tmp_path, capsys, monkeypatch):
    _check(option, fault, full_ctx, tmp_path, capsys, monkeypatch)
    assert not os.path.exists(tmp_path / "new" / "m")
