"""Writes never delete foreign files: corpus import and ser evaluate outputs.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from support import (
    RAV,
    one_line,
    run_with_timeout,
    small_ravdess,
)

from ser.errors import SerError

ROOT = Path(__file__).resolve().parents[3]


def test_import_dest_next_to_an_existing_corpus_keeps_it(tmp_path, monkeypatch):
    from ser.corpora.acquire import IMPORT_RECORD, import_corpus

    monkeypatch.chdir(tmp_path)
    src = small_ravdess(tmp_path / "src")
    data = tmp_path / "data"
    (data / "raw" / "tess").mkdir(parents=True)
    (data / "raw" / "tess" / "keep.wav").write_bytes(b"user audio")
    (data / "notes.txt").write_text("mine")
    with pytest.raises(SerError) as exc:
        import_corpus("ravdess", src, dest=data, dvc_add=False)
    assert "exists and is not empty" in one_line(exc) and "--force" in str(exc.value)
    import_corpus("ravdess", src, dest=data, dvc_add=False, force=True)
    assert (data / "raw" / "tess" / "keep.wav").read_bytes() == b"user audio"
    assert (data / "notes.txt").read_text() == "mine"
    assert (data / "Actor_01" / f"{RAV.format(e=5, a=1)}.wav").is_file()
    # A second forced import replaces only what the first one wrote.
    (src / "Actor_02" / f"{RAV.format(e=4, a=2)}.wav").unlink()
    import_corpus("ravdess", src, dest=data, dvc_add=False, force=True)
    assert not (data / "Actor_02" / f"{RAV.format(e=4, a=2)}.wav").exists()
    assert (data / "notes.txt").read_text() == "mine"
    assert "Actor_01/" in (data / IMPORT_RECORD).read_text()
    assert not list(tmp_path.glob("**/*.partial"))


def test_import_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    from ser.corpora.acquire import import_corpus

    src = small_ravdess(tmp_path / "src")
    dest = tmp_path / "dest"
    (dest / "Actor_01").mkdir(parents=True)
    clash = dest / "Actor_01" / f"{RAV.format(e=5, a=1)}.wav"
    clash.write_bytes(b"user take")
    with pytest.raises(SerError) as exc:
        import_corpus("ravdess", src, dest=dest, dvc_add=False, force=True)
    assert "were not written by an import" in one_line(exc)
    assert clash.read_bytes() == b"user take"


def test_import_dest_dot_is_a_clear_message(tmp_path, monkeypatch, capsys):
    from ser import cli

    monkeypatch.chdir(tmp_path)
    src = small_ravdess(tmp_path / "src")
    assert cli.main(["data", "import", "ravdess", str(src), "--dest", ".", "--no-dvc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the current folder" in err


def test_import_from_a_folder_with_a_fifo_does_not_hang(tmp_path):
    from ser.corpora.acquire import import_corpus

    src = small_ravdess(tmp_path / "src")
    os.mkfifo(src / "Actor_01" / f"{RAV.format(e=6, a=1)}.wav")
    run_with_timeout(lambda: import_corpus("ravdess", src, dest=tmp_path / "out" / "ravdess",
                                           dvc_add=False))
    assert not list((tmp_path / "out").glob("*.partial"))
    assert len(list((tmp_path / "out" / "ravdess").rglob("*.wav"))) == 6


def test_zip_bomb_is_refused_naming_the_limit(tmp_path):
    from ser.corpora.acquire import import_corpus

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("OAF_back_angry.wav", b"\0" * (40 << 20))  # 40 MB of zeros
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SerError) as exc:
        import_corpus("tess", bomb, dest=tmp_path / "tess", dvc_add=False)
    msg = one_line(exc)
    assert "bomb.zip: expands" in msg and "limit of 20x" in msg and "--max-ratio" in msg
    with pytest.raises(SerError) as exc:
        import_corpus("tess", bomb, dest=tmp_path / "tess", dvc_add=False, max_ratio=1e6,
                      max_unpacked_gb=0.01)
    assert "above the limit of 0.01 GB" in one_line(exc) and "--max-unpacked-gb" in msg + str(
        exc.value)
    assert not (tmp_path / "tess").exists()


def test_evaluate_out_refuses_a_non_empty_folder_and_keeps_foreign_files(
        flat_model, tmp_path, monkeypatch, capsys):
    from ser import cli

    monkeypatch.chdir(tmp_path)
    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "results"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    args = ["evaluate", "--model", str(flat_model), "--corpus", "ravdess", "--root", str(root),
            "--out", str(out), "--bootstrap", "10"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "holds 1 file(s) this tool did not write (e.g. mine.txt)" in err and "--force" in err
    assert cli.main([*args, "--force"]) == 0
    assert (out / "mine.txt").read_text() == "keep"
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 6
    assert not list(tmp_path.glob("*.partial"))


def test_evaluate_default_out_is_unique_per_model_folder():
    from ser.evaluation.external import default_external_out

    a = default_external_out(Path("models/speaker/svm"), "ravdess")
    b = default_external_out(Path("models/random/svm"), "ravdess")
    assert a != b and a == Path("metrics/external/ravdess--models-speaker-svm")
