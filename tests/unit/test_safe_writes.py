"""Issue 17: no output path destroys a user's files (the probes as written, and the matrix).

The rule (``ser.outputs``): a command replaces only what it wrote itself - a folder it
marked with ``.ser-output``, a Parquet table carrying its metadata key, a file its
folder's marker lists - and refuses anything else with one line naming ``--force``;
links are never followed out of a destination; a race never deletes a file that
appeared while a command ran. Every case checks the exit status, the single
``error:`` line and that nothing the user had changed.

Commands run in-process (``main(argv)``), as the project's other CLI tests do.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from support import assert_one_line, no_partials, script, small_ravdess, snapshot, tone

from ser.errors import SerError

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"


# ----------------------------------------------------------------- helpers


def run(main, argv, capsys) -> tuple[int, str, str]:
    """Run a command's ``main`` the way its console entry point does (one-line errors)."""
    from ser.cli import run_cli

    rc = run_cli(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def ser_cmd(argv):
    from ser.cli import main

    return lambda _argv: main([str(a) for a in argv])


def predict_cmd(argv):
    from ser.cli.predict import main

    return lambda _argv: main([str(a) for a in argv])


@pytest.fixture()
def model(flat_model) -> Path:  # noqa: F811 - conftest.py:s saved 3-class MFCC model
    return flat_model


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------- 1. stage scripts never delete what is at --out


def test_prepare_manifest_out_on_a_folder_of_notes_is_refused(tmp_path, capsys):
    """The probe: ``prepare_manifest.py --corpus ravdess --root R --out ~/docs``."""
    root = small_ravdess(tmp_path / "rav")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("my notes")
    before = snapshot(docs)
    main = script("prepare_manifest")
    for extra in ([], ["--force"]):
        rc, _, err = run(main, ["--corpus", "ravdess", "--root", root, "--out", docs,
                                "--params", PARAMS, *extra], capsys)
        assert_one_line(rc, err, str(docs), "is a folder")
    assert snapshot(docs) == before
    no_partials(tmp_path)


def test_prepare_manifest_replaces_its_own_output_but_not_a_foreign_file(tmp_path, capsys):
    import pandas as pd

    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "manifests" / "ravdess.parquet"
    main = script("prepare_manifest")
    argv = ["--corpus", "ravdess", "--root", root, "--out", out, "--params", PARAMS]
    assert run(main, argv, capsys)[0] == 0
    assert run(main, argv, capsys)[0] == 0  # a rerun replaces the tool's own table
    assert len(pd.read_parquet(out)) == 6
    pd.DataFrame({"a": [1]}).to_parquet(out)  # a user's Parquet file of that name
    before = snapshot(out)
    rc, _, err = run(main, argv, capsys)
    assert_one_line(rc, err, "was not written by this tool", "--force")
    assert snapshot(out) == before
    assert run(main, [*argv, "--force"], capsys)[0] == 0  # the user said so
    assert len(pd.read_parquet(out)) == 6


def _real_emodb_copy(folder: Path) -> Path:
    """A folder laid out like EMO-DB whose recordings share the demo's file names."""
    from ser.corpora.demo import generate_corpus
    from ser.outputs import OUTPUT_MARKER

    generate_corpus("emodb", folder, preset="tiny", seed=3)
    (folder / OUTPUT_MARKER).unlink()  # a real copy carries no marker of ours
    for wav in folder.rglob("*.wav"):
        wav.write_bytes(b"RIFF real recording " + wav.name.encode())
    return folder


def test_generate_demo_refuses_a_real_emodb_copy(tmp_path, capsys):
    """The probe: ``generate_demo.py --corpus emodb --out <a real EMO-DB copy>``."""
    real = _real_emodb_copy(tmp_path / "EmoDB")
    before = snapshot(real)
    main = script("generate_demo")
    argv = ["--corpus", "emodb", "--out", real, "--preset", "tiny", "--seed", "0",
            "--params", PARAMS]
    rc, _, err = run(main, argv, capsys)
    assert_one_line(rc, err, str(real), "did not write", "--force")
    # --force writes beside the user's files but never over one of them.
    rc, _, err = run(main, [*argv, "--force"], capsys)
    assert_one_line(rc, err, "not this tool's", "nothing was changed")
    assert snapshot(real) == before
    no_partials(tmp_path)


def test_generate_demo_reruns_replace_its_own_folder(tmp_path, capsys):
    out = tmp_path / "demo" / "emodb"
    main = script("generate_demo")
    argv = ["--corpus", "emodb", "--out", out, "--preset", "tiny", "--params", PARAMS]
    assert run(main, [*argv, "--seed", "1"], capsys)[0] == 0
    first = snapshot(out)
    assert run(main, [*argv, "--seed", "2"], capsys)[0] == 0
    assert snapshot(out) != first and (out / ".ser-output").is_file()
    # A file the user dropped into the output folder keeps it from being replaced.
    (out / "my-notes.txt").write_text("keep")
    rc, _, err = run(main, [*argv, "--seed", "1"], capsys)
    assert_one_line(rc, err, "an earlier output, but holds 1 file(s)", "my-notes.txt")
    assert (out / "my-notes.txt").read_text() == "keep"
    no_partials(tmp_path)


def test_own_folder_swap_keeps_a_file_that_appears_during_the_swap(tmp_path, monkeypatch):
    """No check-then-rmtree window: after the swap only the files the old marker lists
    are deleted; a file that appeared after the check survives and is named."""
    from ser import outputs as io

    out = tmp_path / "out"
    with io.atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("1")
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == out:  # the moment the old copy is moved aside
            (out / "late.txt").write_text("user")
        return real_rename(src, dst)

    monkeypatch.setattr(io.os, "rename", rename)
    with io.atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("2")
    assert (out / "a.txt").read_text() == "2"
    kept = tmp_path / "out.kept-files" / "late.txt"
    assert kept.read_text() == "user"


# ------------------------------------------------- 3. predict.py --speak-to


@pytest.fixture()
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.wav"
    sf.write(path, tone(2.0), 16000)
    return path


def test_speak_to_never_overwrites_the_recording_being_classified(model, clip, capsys):
    before = digest(clip)
    for extra in ([], ["--force"]):
        rc, _, err = run(predict_cmd(["--file", clip, "--model", model,
                                      "--speak-to", clip, *extra]), [], capsys)
        assert_one_line(rc, err, "is a recording being classified")
    assert digest(clip) == before


def test_speak_to_an_existing_file_needs_force(model, clip, tmp_path, capsys):
    answer = tmp_path / "answer.wav"
    answer.write_bytes(b"my own recording")
    rc, _, err = run(predict_cmd(["--file", clip, "--model", model, "--speak-to",
                                  answer]), [], capsys)
    assert_one_line(rc, err, "--speak-to", "was not written by this tool", "--force")
    assert answer.read_bytes() == b"my own recording"


def test_speak_refuses_a_link_and_writes_only_with_force(tmp_path):
    """:func:`ser.predict.speech.speak` itself (espeak-ng needed only for the last step)."""
    import shutil

    from ser.outputs import replacing_allowed
    from ser.predict.speech import speak

    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"outside")
    link = tmp_path / "link.wav"
    link.symlink_to(outside)
    for target in (link, outside):
        with pytest.raises(SerError) as exc:
            speak("hello", to_file=target)
        assert "\n" not in str(exc.value)
    assert outside.read_bytes() == b"outside" and link.is_symlink()
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    with replacing_allowed(True):
        speak("hello", to_file=link)  # replaces the link itself, never what it points to
    assert outside.read_bytes() == b"outside" and not link.is_symlink()
    assert link.read_bytes()[:4] == b"RIFF"


# ------------------------------------------------- 4. timelines


def test_timeline_never_overwrites_a_users_csv_nor_deletes_a_png_folder(
        model, clip, tmp_path, capsys):
    out = tmp_path / "talk"
    out.mkdir()
    (out / "timeline.csv").write_text("my,table\n")
    (out / "timeline.png").mkdir()
    (out / "timeline.png" / "photo.jpg").write_bytes(b"jpeg")
    before = snapshot(out)
    for argv in (["timeline", "--model", model, "--file", clip, "--out", out,
                  "--no-progress"],):
        rc, _, err = run(ser_cmd(argv), [], capsys)
        assert_one_line(rc, err, "did not write", "--force")
        rc, _, err = run(ser_cmd([*argv, "--force"]), [], capsys)
        assert_one_line(rc, err, "not this tool's", "nothing was changed")
    rc, _, err = run(predict_cmd(["--file", clip, "--model", model, "--segments",
                                  "--out", out]), [], capsys)
    assert_one_line(rc, err, "did not write", "--force")
    assert snapshot(out) == before
    no_partials(tmp_path)


def test_timeline_force_writes_beside_other_files(model, clip, tmp_path, capsys):
    out = tmp_path / "talk"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["timeline", "--model", model, "--file", clip, "--out", out, "--no-progress",
            "--force"]
    assert run(ser_cmd(argv), [], capsys)[0] == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "timeline.csv").is_file()
    assert run(ser_cmd(argv), [], capsys)[0] == 0  # its own files are replaced on a rerun
    assert (out / "notes.txt").read_text() == "mine"


def test_same_stem_inputs_get_their_own_timeline_folders(
        model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for sub, seed in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        sf.write(tmp_path / sub / "x.wav", tone(3.0, seed=seed), 16000)
    rc, out, err = run(predict_cmd(["--file", tmp_path / "a" / "x.wav", "--file",
                                    tmp_path / "b" / "x.wav", "--model", model,
                                    "--segments", "--json"]), [], capsys)
    assert rc == 0, err
    first, second = tmp_path / "timelines" / "x-dummy", tmp_path / "timelines" / "x-dummy-2"
    assert json.loads((first / "timeline.json").read_text())["file"].endswith("a/x.wav")
    assert json.loads((second / "timeline.json").read_text())["file"].endswith("b/x.wav")
    # A later run on b/x.wav finds its own folder again; a.wav's is never touched.
    a_before = snapshot(first)
    rc, _, err = run(ser_cmd(["timeline", "--model", model, "--file",
                              tmp_path / "b" / "x.wav", "--no-progress"]), [], capsys)
    assert rc == 0, err
    assert snapshot(first) == a_before and not (tmp_path / "timelines" / "x-dummy-3").exists()


# ------------------------------------------------- 9. races: files appearing mid-run


def test_import_keeps_a_file_created_in_the_empty_dest_while_it_runs(tmp_path, monkeypatch):
    from ser.corpora import acquire

    src = small_ravdess(tmp_path / "src")
    dest = tmp_path / "dest"
    dest.mkdir()
    real_verify = acquire._verify

    def verify(*args, **kwargs):
        (dest / "while-importing.txt").write_text("user")  # appears mid-run
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(acquire, "_verify", verify)
    acquire.import_corpus("ravdess", src, dest=dest, dvc_add=False)
    assert (dest / "while-importing.txt").read_text() == "user"
    assert len(list(dest.rglob("*.wav"))) == 6 and (dest / acquire.IMPORT_RECORD).is_file()
    no_partials(tmp_path)


def test_evaluate_keeps_a_file_created_in_the_empty_out_while_it_runs(
        model, tmp_path, monkeypatch, capsys):
    from ser.evaluation import external as evaluation

    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "results"
    out.mkdir()
    real = evaluation.evaluate_predictions

    def evaluate(*args, **kwargs):
        (out / "while-evaluating.txt").write_text("user")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_predictions", evaluate)
    rc, _, err = run(ser_cmd(["evaluate", "--model", model, "--corpus", "ravdess",
                              "--root", root, "--out", out, "--bootstrap", "5"]), [], capsys)
    assert rc == 0, err
    assert (out / "while-evaluating.txt").read_text() == "user"
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 6
    no_partials(tmp_path)


# ------------------------------------------------- 10. download cache


def _zip_of(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.wav")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def _download(cache: Path, dest: Path, *extra):
    return ser_cmd(["data", "download", "ravdess", "--url",
                    "https://example.invalid/ravdess.zip", "--cache-dir", cache, "--dest", dest,
                    "--no-dvc", *extra])


def test_download_never_overwrites_nor_trusts_a_users_file_in_the_cache(
        tmp_path, monkeypatch, capsys):
    import pooch

    def no_network(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    cache = tmp_path / "cache"
    cache.mkdir()
    user = cache / "ravdess.zip"
    user.write_bytes(b"my own zip, not RAVDESS")
    dest = tmp_path / "raw"
    rc, _, err = run(_download(cache, dest, "--known-hash", "sha256:" + "0" * 64), [], capsys)
    assert_one_line(rc, err, "does not match --known-hash", "left alone")
    rc, _, err = run(_download(cache, dest), [], capsys)
    assert_one_line(rc, err, "without --known-hash it cannot be verified")
    assert user.read_bytes() == b"my own zip, not RAVDESS" and not dest.exists()
    # A file the known hash verifies is used as the download (nothing fetched).
    _zip_of(small_ravdess(tmp_path / "src" / "ravdess"), user)
    rc, _, err = run(_download(cache, dest, "--known-hash", digest(user)), [], capsys)
    assert rc == 0, err
    assert len(list(dest.rglob("*.wav"))) == 6


def test_download_reuses_only_its_own_earlier_download(tmp_path, monkeypatch, capsys):
    import shutil

    import pooch

    archive = _zip_of(small_ravdess(tmp_path / "src" / "ravdess"), tmp_path / "served.zip")
    calls = []

    def fake_retrieve(url, *, known_hash, fname, path, progressbar):
        calls.append(url)
        Path(path).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, Path(path) / fname)
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    cache = tmp_path / "cache"
    assert run(_download(cache, tmp_path / "one"), [], capsys)[0] == 0
    assert run(_download(cache, tmp_path / "two"), [], capsys)[0] == 0
    assert len(calls) == 1  # the second run used the recorded download
    (cache / "ravdess.zip").write_bytes(b"swapped by someone")
    rc, _, err = run(_download(cache, tmp_path / "three"), [], capsys)
    assert_one_line(rc, err, "was not downloaded by ser")
    assert (cache / "ravdess.zip").read_bytes() == b"swapped by someone"


# ------------------------------------------------- 14. one line, not a traceback


def test_timeline_out_on_a_file_and_infinite_window_are_one_line(
        model, clip, tmp_path, capsys):
    existing = tmp_path / "report.txt"
    existing.write_text("mine")
    rc, _, err = run(ser_cmd(["timeline", "--model", model, "--file", clip, "--out",
                              existing]), [], capsys)
    assert_one_line(rc, err, str(existing))
    assert existing.read_text() == "mine"
    for option in ("--window", "--hop", "--margin-db", "--min-silence"):
        for value in ("inf", "nan"):
            rc, _, err = run(ser_cmd(["timeline", "--model", model, "--file", clip,
                                      option, value]), [], capsys)
            assert_one_line(rc, err, "must be a finite number")


def test_evaluate_negative_bootstrap_and_metrics_folder_are_one_line(
        model, tmp_path, capsys):
    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "results"
    base = ["evaluate", "--model", model, "--corpus", "ravdess", "--root", root,
            "--out", out]
    rc, _, err = run(ser_cmd([*base, "--bootstrap", "-5"]), [], capsys)
    assert_one_line(rc, err, "--bootstrap -5")
    (out / "metrics.json").mkdir(parents=True)
    (out / "metrics.json" / "old.json").write_text("{}")
    before = snapshot(out)
    rc, _, err = run(ser_cmd([*base, "--bootstrap", "5", "--force"]), [], capsys)
    assert_one_line(rc, err, "metrics.json (is a folder)", "nothing was changed")
    assert snapshot(out) == before


# ------------------------------------------------- 15. never through a linked sub-folder


def test_import_force_never_writes_through_a_linked_subfolder(tmp_path, capsys):
    src = small_ravdess(tmp_path / "src")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "Actor_01").symlink_to(outside, target_is_directory=True)
    before = snapshot(dest, outside)
    rc, _, err = run(ser_cmd(["data", "import", "ravdess", src, "--dest", dest, "--no-dvc",
                              "--force"]), [], capsys)
    assert_one_line(rc, err, "through a link", "nothing was changed")
    assert snapshot(dest, outside) == before and not list(outside.iterdir())


def test_force_merge_never_writes_through_a_linked_subfolder(tmp_path):
    from ser.outputs import atomic_path, replacing_allowed

    out = tmp_path / "out"
    (out).mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SerError) as exc, replacing_allowed(True), atomic_path(out) as tmp:
        (tmp / "sub").mkdir(parents=True)
        (tmp / "sub" / "f.txt").write_text("x")
    assert "through a link" in str(exc.value) and not list(outside.iterdir())


# ------------------------------------------------- the probes end to end, as a user runs them


@pytest.mark.parametrize("probe", ["prepare_manifest", "generate_demo"])
def test_probe_as_a_subprocess_is_one_line_and_loses_nothing(probe, tmp_path):
    import subprocess
    import sys

    if probe == "prepare_manifest":
        root = small_ravdess(tmp_path / "rav")
        victim = tmp_path / "docs"
        victim.mkdir()
        (victim / "notes.md").write_text("my notes")
        argv = ["scripts/prepare_manifest.py", "--corpus", "ravdess", "--root", root,
                "--out", victim, "--params", PARAMS]
        says = "is a folder, not a file"  # --force cannot help: a folder is never replaced
    else:
        victim = _real_emodb_copy(tmp_path / "EmoDB")
        argv = ["scripts/generate_demo.py", "--corpus", "emodb", "--preset", "tiny", "--out",
                victim, "--params", PARAMS]
        says = "--force"
    before = snapshot(victim)
    proc = subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, KERAS_BACKEND="jax"))
    assert_one_line(proc.returncode, proc.stderr, str(victim), says)
    assert proc.returncode == 2 and snapshot(victim) == before


def test_a_link_at_out_is_never_resolved_even_towards_the_working_tree(tmp_path, monkeypatch):
    from ser.outputs import atomic_path, replacing_allowed

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep")
    link = tmp_path / "sub" / "here"
    link.parent.mkdir()
    link.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SerError) as exc, atomic_path(link) as tmp:
        tmp.mkdir()
    assert "is a link" in str(exc.value)
    with replacing_allowed(True), atomic_path(link) as tmp:  # replaces the link itself
        tmp.mkdir()
        (tmp / "a.txt").write_text("new")
    assert (tmp_path / "mine.txt").read_text() == "keep" and not link.is_symlink()
    assert (link / "a.txt").read_text() == "new"


def test_force_never_overwrites_a_foreign_file_named_like_the_marker(tmp_path):
    from ser.outputs import OUTPUT_MARKER, atomic_path, replacing_allowed

    out = tmp_path / "out"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text("someone's file")
    with pytest.raises(SerError) as exc, replacing_allowed(True), atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("x")
    assert "not a marker this tool wrote" in str(exc.value)
    assert (out / OUTPUT_MARKER).read_text() == "someone's file"
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER]


def test_a_crafted_marker_never_deletes_outside_its_folder(tmp_path):
    from ser.outputs import OUTPUT_MARKER, atomic_path

    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text(json.dumps(
        {"written_by": "ser", "files": ["../precious.txt", str(outside)]}))
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("x")
    assert outside.read_text() == "keep" and (out / "a.txt").read_text() == "x"


def test_force_never_replaces_a_file_by_an_output_folder(model, tmp_path, capsys):
    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "results"
    out.write_text("my results, a file")
    rc, _, err = run(ser_cmd(["evaluate", "--model", model, "--corpus", "ravdess", "--root",
                              root, "--out", out, "--bootstrap", "5", "--force"]), [], capsys)
    assert_one_line(rc, err, "is a file, not a folder")
    assert out.read_text() == "my results, a file"
