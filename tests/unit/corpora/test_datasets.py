"""Importing and downloading corpora: verification, safe unpacking, DVC tracking."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser import cli
from ser.corpora.acquire import import_corpus
from ser.corpora.downloads import download_corpus
from ser.corpora.sources import CORPORA
from ser.errors import ConfigError, SerError
from ser.outputs import sha256_file

TESS_FILES = [
    "OAF_angry/OAF_back_angry.wav",
    "OAF_Fear/OAF_back_fear.wav",
    "YAF_pleasant_surprised/YAF_back_ps.wav",
    "YAF_neutral/YAF_germ_neutral.wav",
]


def wav_bytes(seed: int, sr: int = 16000, n: int = 400) -> bytes:
    buf = io.BytesIO()
    y = np.random.default_rng(seed).uniform(-0.2, 0.2, n)
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def fake_tess(tmp_path) -> Path:
    """A small TESS-like folder, plus files an import should skip."""
    root = tmp_path / "src" / "TESS Toronto emotional speech set data"
    for i, name in enumerate(TESS_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(wav_bytes(i))
    (root / "README.txt").write_text("fake TESS\n")
    (root / "OAF_angry" / "video.mp4").write_bytes(b"\0" * 100)
    return tmp_path / "src"


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def tess_members() -> dict[str, bytes]:
    return {f"TESS/{name}": wav_bytes(i) for i, name in enumerate(TESS_FILES)}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".ser-import.json"}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ import


def test_import_from_folder(fake_tess, tmp_path):
    dest = tmp_path / "raw" / "tess"
    result = import_corpus("tess", fake_tess, dest=dest, dvc_add=True)
    files = tree(dest)
    assert sorted(files) == sorted(
        [f"TESS Toronto emotional speech set data/{n}" for n in TESS_FILES]
        + ["TESS Toronto emotional speech set data/README.txt"])
    assert result.n_written == 5 and result.n_skipped == 1  # the .mp4
    assert len(result.parse.rows) == 4 and result.parse.rejected == []
    assert all(r["path"].startswith(str(dest)) for r in result.parse.rows)
    assert result.sha256 is None and result.dvc_file is None
    report = result.report()
    assert "not inside a DVC repository" in report
    assert "expected 2800" in report and "2796 fewer" in report
    assert leftovers(dest.parent) == ["tess"]


def test_import_from_zip_and_tar(tmp_path):
    archive = make_zip(tmp_path / "tess.zip", tess_members())
    result = import_corpus("tess", archive, dest=tmp_path / "a" / "tess", dvc_add=False)
    assert len(result.parse.rows) == 4
    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.sha256 in result.report()
    assert tree(tmp_path / "a" / "tess") == tess_members()

    tgz = tmp_path / "tess.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, data in tess_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    result = import_corpus("tess", tgz, dest=tmp_path / "b" / "tess", dvc_add=False,
                           expected_sha256=sha256_file(tgz))
    assert tree(tmp_path / "b" / "tess") == tess_members()


def test_import_replaces_existing_copy_only_when_complete(tmp_path):
    dest = tmp_path / "raw" / "tess"
    import_corpus("tess", make_zip(tmp_path / "ok.zip", tess_members()), dest=dest,
                  dvc_add=False)
    before = tree(dest)
    bad = make_zip(tmp_path / "bad.zip", {"x/03-01-05-01-01-01-01.wav": wav_bytes(0)})
    with pytest.raises(SerError, match="none of its 1 .wav files parse as tess"):
        import_corpus("tess", bad, dest=dest, dvc_add=False, force=True)
    assert tree(dest) == before
    assert leftovers(dest.parent) == ["tess"]


@pytest.mark.parametrize("evil", ["../evil.wav", "TESS/../../evil.wav", "/ABS/evil.wav",
                                  "C:/evil.wav"])
def test_zip_path_traversal_is_refused(tmp_path, evil):
    work = tmp_path / "work"
    work.mkdir()
    if evil.startswith("/ABS"):
        evil = str(tmp_path / "abs_evil.wav")
    archive = make_zip(tmp_path / "evil.zip", {**tess_members(), evil: wav_bytes(9)})
    assert evil in zipfile.ZipFile(archive).namelist()
    dest = work / "raw" / "tess"
    with pytest.raises(SerError) as err:
        import_corpus("tess", archive, dest=dest, dvc_add=False)
    message = str(err.value)
    assert str(archive) in message and repr(evil) in message and "path traversal" in message
    assert "\n" not in message
    assert not dest.exists() and leftovers(dest.parent) == []
    assert not (tmp_path / "evil.wav").exists() and not (work / "evil.wav").exists()
    assert not (tmp_path / "abs_evil.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "work"]


@pytest.mark.parametrize("link", ["../../../outside", "/etc/passwd"])
def test_tar_link_escaping_is_refused(tmp_path, link):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in tess_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        sym = tarfile.TarInfo("TESS/OAF_angry/OAF_link_angry.wav")
        sym.type, sym.linkname = tarfile.SYMTYPE, link
        tf.addfile(sym)
    dest = tmp_path / "raw" / "tess"
    with pytest.raises(SerError, match="link pointing outside"):
        import_corpus("tess", archive, dest=dest, dvc_add=False)
    assert not dest.exists()


def test_zip_symlink_escaping_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("TESS/OAF_angry/OAF_link_angry.wav")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../../../etc/passwd")
    with pytest.raises(SerError, match="symbolic link pointing outside"):
        import_corpus("tess", archive, dest=tmp_path / "raw" / "tess", dvc_add=False)


def test_sha256_mismatch_is_refused(tmp_path):
    archive = make_zip(tmp_path / "tess.zip", tess_members())
    with pytest.raises(SerError) as err:
        import_corpus("tess", archive, dest=tmp_path / "raw" / "tess", dvc_add=False,
                      expected_sha256="0" * 64)
    assert "sha256 mismatch" in str(err.value) and str(archive) in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_import_errors(tmp_path, fake_tess):
    with pytest.raises(SerError, match="not found"):
        import_corpus("tess", tmp_path / "nope.zip", dest=tmp_path / "d")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SerError, match="not a .zip"):
        import_corpus("tess", tmp_path / "notes.txt", dest=tmp_path / "d")
    empty = make_zip(tmp_path / "empty.zip", {"readme.txt": b"x"})
    with pytest.raises(SerError, match="holds no .wav files"):
        import_corpus("tess", empty, dest=tmp_path / "d")
    with pytest.raises(ConfigError, match="unknown corpus"):
        import_corpus("timit", fake_tess, dest=tmp_path / "d")
    with pytest.raises(ConfigError, match="folder"):
        import_corpus("tess", fake_tess, dest=tmp_path / "d", expected_sha256="0" * 64)
    assert not (tmp_path / "d").exists()


def test_cli_import_and_one_line_errors(tmp_path, capsys):
    archive = make_zip(tmp_path / "tess.zip", tess_members())
    assert cli.main(["data", "import", "tess", str(archive), "--dest",
                     str(tmp_path / "raw" / "tess"), "--no-dvc"]) == 0
    out = capsys.readouterr().out
    assert "4 clips" in out and "dvc: skipped" in out
    assert cli.main(["data", "import", "tess", str(tmp_path / "missing.zip"), "--no-dvc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing.zip" in err
    assert cli.main(["data", "download", "tess"]) == 2
    assert "no public download URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["data", "import", "--help"])
    assert exit_.value.code == 0
    assert "--no-dvc" in capsys.readouterr().out


def test_registry_has_no_invented_hashes():
    assert CORPORA["ravdess"].url == (
        "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip")
    assert CORPORA["emodb"].url == "http://emodb.bilderbar.info/download/download.zip"
    assert {c.expected_wavs for c in CORPORA.values()} == {2800, 1440, 7442, 480, 535}
    assert all(c.sha256 is None for c in CORPORA.values())


# ------------------------------------------------------------------ DVC


def run(*cmd: str, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def dvc_env(monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def test_dvc_add_push_pull_round_trip(tmp_path, fake_tess, dvc_env):
    repo = tmp_path / "project"
    repo.mkdir()
    dvc = [sys.executable, "-m", "dvc"]
    run("git", "init", "-q", cwd=repo)
    run(*dvc, "init", "-q", cwd=repo)
    run(*dvc, "config", "core.site_cache_dir", str(tmp_path / "site-cache"), cwd=repo)
    storage = tmp_path / "storage"  # not created yet: dvc push must create it
    run(*dvc, "remote", "add", "-d", "local", str(storage), cwd=repo)

    dest = repo / "data" / "raw" / "tess"
    result = import_corpus("tess", fake_tess, dest=dest)
    assert result.dvc_file == repo / "data" / "raw" / "tess.dvc"
    assert result.dvc_file.is_file()
    assert "outs:" in result.dvc_file.read_text()
    assert "/tess" in (repo / "data" / "raw" / ".gitignore").read_text()
    assert "data/raw/tess.dvc" in result.dvc_note
    original = tree(dest)
    assert len(original) == 5

    run(*dvc, "push", "data/raw/tess.dvc", cwd=repo)
    assert any(p.is_file() for p in storage.rglob("*"))
    # A pipeline output recorded in dvc.lock but never pushed (the generated stages'
    # outputs are rebuilt, not necessarily uploaded).
    run(*dvc, "stage", "add", "-q", "-n", "built", "-o", "built.txt", "echo x > built.txt",
        cwd=repo)
    run(*dvc, "repro", "-q", cwd=repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(dest)
    (repo / "built.txt").unlink()
    # What the README says to run in a fresh clone: restores the data, exit 0.
    run(*dvc, "pull", "--allow-missing", cwd=repo)
    assert tree(dest) == original
    assert not (repo / "built.txt").exists()  # rebuilt by `dvc repro`, not downloaded


# ------------------------------------------------------------------ download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1 (ephemeral port); yields (folder, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_download_with_right_and_wrong_hash(tmp_path, http_root):
    www, base = http_root
    archive = make_zip(www / "fake_tess.zip", tess_members())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    cache = tmp_path / "cache"

    with pytest.raises(SerError) as err:
        download_corpus("tess", url=f"{base}/fake_tess.zip", known_hash="sha256:" + "0" * 64,
                        dest_dir=cache, dest=tmp_path / "raw" / "tess", dvc_add=False)
    assert f"{base}/fake_tess.zip" in str(err.value) and "nothing was imported" in str(err.value)
    assert not (tmp_path / "raw").exists()
    assert not (cache / "fake_tess.zip").exists()

    result = download_corpus("tess", url=f"{base}/fake_tess.zip", known_hash=f"sha256:{digest}",
                             dest_dir=cache, dest=tmp_path / "raw" / "tess", dvc_add=False)
    assert (cache / "fake_tess.zip").read_bytes() == archive.read_bytes()
    assert len(result.parse.rows) == 4 and result.sha256 == digest
    assert tree(tmp_path / "raw" / "tess") == tess_members()

    with pytest.raises(SerError, match="download failed"):
        download_corpus("tess", url=f"{base}/missing.zip", dest_dir=cache,
                        dest=tmp_path / "raw2" / "tess", dvc_add=False)
    assert not (tmp_path / "raw2").exists()


def test_download_needs_a_url():
    with pytest.raises(ConfigError, match="no public download URL for savee"):
        download_corpus("savee")


def test_tar_link_inside_dest_is_skipped_not_followed(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in tess_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        sym = tarfile.TarInfo("TESS/OAF_angry/OAF_link_angry.wav")
        sym.type, sym.linkname = tarfile.SYMTYPE, "../OAF_Fear/OAF_back_fear.wav"
        tf.addfile(sym)
    result = import_corpus("tess", archive, dest=tmp_path / "raw" / "tess", dvc_add=False)
    assert result.n_skipped == 1 and len(result.parse.rows) == 4
    assert not any(p.is_symlink() for p in (tmp_path / "raw").rglob("*"))


def test_truncated_and_corrupt_archives_are_refused(tmp_path):
    good = make_zip(tmp_path / "tess.zip", tess_members())
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SerError, match="truncated"):
        import_corpus("tess", truncated, dest=tmp_path / "raw" / "tess", dvc_add=False)
    # flip a byte inside the first member's audio: the CRC check fails while unpacking
    corrupt = tmp_path / "corrupt.zip"
    offset = data.index(b"data", 100) + 50
    corrupt.write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:])
    with pytest.raises(SerError, match="corrupt or truncated"):
        import_corpus("tess", corrupt, dest=tmp_path / "raw" / "tess", dvc_add=False)
    tgz = tmp_path / "tess.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, payload in tess_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(SerError, match="tar archive|truncated"):
        import_corpus("tess", cut, dest=tmp_path / "raw" / "tess", dvc_add=False)
    assert not (tmp_path / "raw" / "tess").exists()
