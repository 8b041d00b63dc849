"""The corpus scan stays in its root, never blocks, and rejects odd files with a reason.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf
from support import (
    RAV,
    run_with_timeout,
    tone,
)

ROOT = Path(__file__).resolve().parents[3]










@pytest.fixture()
def hostile_root(tmp_path):
    root = tmp_path / "corpus"
    (root / "Actor_01").mkdir(parents=True)
    sf.write(root / "Actor_01" / f"{RAV.format(e=1, a=1)}.wav", tone(), 16000)
    (root / "up").symlink_to("..")                          # -> .. (the corpus' parent)
    (root / "slash").symlink_to("/")                        # -> /
    (root / "Actor_01" / "loop").symlink_to("..")           # -> the root itself: no loop
    os.mkfifo(root / "Actor_01" / f"{RAV.format(e=2, a=1)}.wav")  # FIFO named .wav
    (root / "Actor_01" / f"{RAV.format(e=3, a=1)}.wav").symlink_to(tmp_path / "gone.wav")
    outside = tmp_path / f"{RAV.format(e=4, a=1)}.wav"
    sf.write(outside, tone(), 16000)
    (root / "Actor_01" / outside.name).symlink_to(outside)  # file link outside the root
    return root


@pytest.mark.parametrize("case, reason", [
    ("up", "symbolic link to a folder outside the corpus root"),
    ("slash", "symbolic link to a folder outside the corpus root"),
    (f"Actor_01/{RAV.format(e=2, a=1)}.wav", "a FIFO (named pipe)"),
    (f"Actor_01/{RAV.format(e=3, a=1)}.wav", "dangling symbolic link"),
    (f"Actor_01/{RAV.format(e=4, a=1)}.wav", "symbolic link pointing outside the corpus root"),
])
def test_corpus_scan_never_leaves_its_root_nor_blocks(hostile_root, case, reason):
    from ser.corpora.ravdess import parse

    result = run_with_timeout(lambda: parse(hostile_root))
    assert [Path(r["path"]).name for r in result.rows] == [f"{RAV.format(e=1, a=1)}.wav"]
    rejected = dict(result.rejected)
    assert reason in rejected[str(hostile_root / case)]


def test_other_soundfile_extensions_are_scanned(tmp_path):
    from ser.corpora.ravdess import parse

    actor = tmp_path / "Actor_02"
    actor.mkdir()
    for ext, emotion in (("flac", 1), ("ogg", 2), ("aiff", 3), ("WAV", 4)):
        sf.write(actor / f"{RAV.format(e=emotion, a=2)}.{ext}", tone(), 16000)
    result = parse(tmp_path)
    assert sorted(Path(r["path"]).suffix for r in result.rows) == [".WAV", ".aiff", ".flac",
                                                                    ".ogg"]


def truncated_wav(path: Path) -> Path:
    sf.write(path, tone(2.0), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header still claims 2 s
    return path


def test_truncated_wav_is_rejected_by_the_scan_and_loads_what_is_there(tmp_path):
    from ser.audio import load_audio
    from ser.corpora.ravdess import parse

    (tmp_path / "Actor_03").mkdir()
    bad = truncated_wav(tmp_path / "Actor_03" / f"{RAV.format(e=1, a=3)}.wav")
    result = parse(tmp_path)
    assert not result.rows
    assert dict(result.rejected)[str(bad)].startswith("truncated: the header promises")
    y, sr = load_audio(bad)
    assert sr == 16000 and 0.9 * 16000 < y.size < 1.1 * 16000


def test_non_utf8_folder_name_does_not_crash_the_manifest(tmp_path):
    import pandas as pd

    from ser.corpora.ravdess import parse

    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xff"))
    (root / "Actor_01").mkdir(parents=True)
    sf.write(os.fsencode(root / "Actor_01" / f"{RAV.format(e=1, a=1)}.wav"), tone(), 16000)
    result = parse(root)
    assert not result.rows
    reason = result.rejected[0][1]
    assert "not valid UTF-8" in reason and "\\xff" in result.rejected[0][0]
    result.rejected_frame().to_csv(tmp_path / "rejected.csv", index=False)
    result.to_frame().to_parquet(tmp_path / "m.parquet")
    assert "\\xff" in pd.read_csv(tmp_path / "rejected.csv")["path"][0]
