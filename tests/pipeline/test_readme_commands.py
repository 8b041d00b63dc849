"""Every command of README.md's fenced shell blocks works as printed.

Each command line of a ```bash/```sh block is checked one of three ways, listed in
:data:`CHECKS` (a README command without an entry fails the test, so a new one cannot
go unchecked):

* ``run``: run exactly as printed (with the venv first on PATH, as after
  ``source .venv/bin/activate``) in a scratch project that has a small ``my_data/``
  folder and the repository's workflow files;
* ``dry``: the costly ones (the whole pipeline, the test suite) through their own
  dry-run flag (``make -n``, ``snakemake -n``), exactly as printed otherwise; ``make
  repro``'s wrapper runs for real on the first DVC stage;
* ``options``: commands that need a trained model, a recording of one's own or real
  data: the program runs with ``--help`` and must list every option the command uses.
  Each has its reason; the list is asserted to stay small.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "KERAS_BACKEND": "jax"}
SHELL_LANGS = ("bash", "sh", "shell", "console")

#: How each README command is checked: (mode, reason or dry-run form).
CHECKS: dict[str, tuple[str, str]] = {
    "make demo": ("dry", "make -n demo"),
    "make test": ("dry", "make -n test"),
    "snakemake --cores 8": ("dry", "snakemake --cores 8 -n"),
    "snakemake --configfile other.yaml --cores 8":
        ("dry", "snakemake --configfile other.yaml --cores 8 -n"),
    "make repro && dvc metrics show": ("dry", "make -n repro && dvc metrics show"),
    "snakemake --cores 2": ("dry", "snakemake --cores 2 -n"),
    # What `make repro` runs, on its first stage only (DVC's --dry needs built inputs).
    "make repro": ("dry", "make -n repro && python -m ser.workflow.wiring repro manifest-custom"),
    "python scripts/generate_demo.py --corpus emodb --params params.yaml": ("run", ""),
    "python scripts/prepare_manifest.py --corpus custom --root my_data --params params.yaml":
        ("run", ""),
    "dvc plots show": ("options", "needs a built pipeline; rendered offline by "
                                  "tests/unit/report/test_plots_offline.py"),
    "python predict.py --file clip.wav": ("options", "needs a trained model and a recording"),
    "python predict.py --file a.wav --file recordings/ --top-k 3 --json":
        ("options", "needs a trained model and recordings"),
    "python predict.py --file clip.wav --model models/speaker/mfcc/svm":
        ("options", "needs a trained model and a recording"),
    "python predict.py --file clip.wav --transcribe": ("options", "needs a trained model"),
    "python predict.py --file clip.wav --speak-to answer.wav":
        ("options", "needs a trained model"),
    "python predict.py --file interview.flac --segments": ("options", "needs a trained model"),
    "python predict.py --model models/speaker/mfcc/svm --file interview.flac --segments":
        ("options", "needs a trained model and a long recording"),
    "ser timeline --model models/speaker/mfcc/svm --file interview.flac":
        ("options", "needs a trained model and a long recording"),
    "ser timeline --model models/speaker/mfcc/svm --file interview.flac --out "
    "timelines/interview": ("options", "needs a trained model and a long recording"),
    "ser evaluate --model models/speaker/mfcc/svm --corpus emodb --root data/demo/emodb":
        ("options", "needs a trained model"),
    "nice -n 10 python benchmarks/real_data_bench.py --corpus ravdess --root "
    "../shared/data/ravdess --protocol speaker_cv":
        ("options", "real RAVDESS, more than 30 minutes"),
    # Speaker-normalised models on new recordings: behaviour in
    # tests/unit/predict/test_speaker_adaptation.py.
    "python predict.py --file clip.wav --model models/speaker/egemaps_spk/svm --speaker-clips "
    "my_voice/": ("options", "needs a trained _spk model and a speaker's clips"),
    "python predict.py --file clip.wav --speaker-clips my_voice/":
        ("options", "needs trained _spk models and a speaker's clips"),
    "python predict.py --file clip.wav --speaker-profile me.json":
        ("options", "needs trained _spk models and a saved profile"),
    "ser evaluate --model models/speaker/egemaps_spk/svm --corpus ravdess --root ~/RAVDESS":
        ("options", "needs a trained _spk model and a RAVDESS copy"),
    "ser speaker enrol --model models/speaker/egemaps_spk/svm --clips my_voice/ --out me.json":
        ("options", "needs a trained _spk model and a speaker's clips"),
    "ser timeline --model models/speaker/egemaps_spk/svm --file talk.flac "
    "--speaker-from-recording": ("options", "needs a trained _spk model and a long recording"),
}


def readme_commands(text: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of every command line in a fenced shell block (comments
    and a trailing ``# ...`` left out; fences may be indented, as inside a list)."""
    out = []
    fence = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
                       re.M | re.S)
    for m in fence.finditer(text):
        if m.group("lang") not in SHELL_LANGS:
            continue
        first = text[:m.start("body")].count("\n") + 1
        for i, line in enumerate(m.group("body").splitlines()):
            command = line.strip()
            if not command or command.startswith("#"):
                continue
            command = re.sub(r"\s+#\s.*$", "", command).strip()
            out.append((first + i, command))
    return out


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_every_readme_command_is_checked_and_the_option_only_list_is_small():
    commands = {c for _, c in COMMANDS}
    unchecked = sorted(commands - set(CHECKS))
    assert not unchecked, f"README commands without a check in CHECKS: {unchecked}"
    stale = sorted(set(CHECKS) - commands)
    assert not stale, f"CHECKS entries no longer in README.md: {stale}"
    options_only = [c for c, (mode, _) in CHECKS.items() if mode == "options"]
    assert all(CHECKS[c][1] for c in options_only)  # each says why it is not run
    # 13 general commands + 6 speaker-adaptation ones (each tested in-process elsewhere).
    assert len(options_only) <= 19


def test_fences_inside_list_items_are_found():
    text = "1. step\n\n   ```bash\n   make repro   # comment\n   ```\n"
    assert readme_commands(text) == [(4, "make repro")]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A project folder: the workflow files, params.yaml pointing at my_data/ (a folder of
    a few clips per emotion and speaker), other.yaml, a DVC repository."""
    project = tmp_path_factory.mktemp("readme")
    for name in ("Snakefile", "workflow", "scripts", "ser", "profiles", "predict.py", "benchmarks",
                 "Makefile", "pyproject.toml"):
        (project / name).symlink_to(ROOT / name)
    (project / ".venv").symlink_to(BIN.parent)
    sr = 16_000
    t = np.arange(sr) / sr
    for k, emotion in enumerate(("angry", "happy", "neutral", "sad")):
        for speaker in ("alice", "bob"):
            folder = project / "my_data" / emotion / speaker
            folder.mkdir(parents=True)
            for i in range(2):
                y = 0.3 * np.sin(2 * np.pi * (120 + 40 * k + 10 * i) * t) * np.hanning(sr)
                sf.write(folder / f"take{i}.wav", y.astype(np.float32), sr)
    sf.write(project / "my_data" / "stray.wav", y.astype(np.float32), sr)  # no emotion folder
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"custom": "my_data"}
    params["train"]["protocols"] = ["random", "speaker"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "other.yaml").write_text(yaml.safe_dump({"evaluate": {"bootstrap": 100}}))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project,
                   env=ENV, check=True)
    return project


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


def _by_mode(mode: str) -> list[str]:
    return [c for _, c in COMMANDS if CHECKS.get(c, ("", ""))[0] == mode]


@pytest.mark.parametrize("command", _by_mode("run"))
def test_readme_command_runs_as_printed(command, scratch):
    proc = _shell(command, scratch)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def test_check_folder_step_writes_nothing_and_names_the_rejected_file(scratch):
    before = sorted(p.relative_to(scratch) for p in scratch.rglob("*") if "data" not in p.parts)
    proc = _shell("python scripts/prepare_manifest.py --corpus custom --root my_data "
                  "--params params.yaml", scratch)
    assert proc.returncode == 0, proc.stderr
    assert "custom: 16 clips from 2 speakers, 1 rejected" in proc.stdout
    assert "stray.wav" in proc.stdout and "nothing written" in proc.stdout
    after = sorted(p.relative_to(scratch) for p in scratch.rglob("*") if "data" not in p.parts)
    assert after == before and not (scratch / "data" / "manifests").exists()


@pytest.mark.parametrize("command", _by_mode("dry"))
def test_costly_readme_command_dry_runs(command, scratch):
    dry = CHECKS[command][1]
    proc = _shell(dry, scratch)
    assert proc.returncode == 0, f"{dry}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", _by_mode("options"))
def test_readme_command_options_exist(command, scratch):
    words = shlex.split(command)
    if words[:3] == ["nice", "-n", "10"]:
        words = words[3:]
    first_option = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
    program = words[:first_option]
    proc = _shell(shlex.join([*program, "--help"]), scratch)
    assert proc.returncode == 0, f"{program}: {proc.stderr}"
    for option in (w for w in words[first_option:] if w.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", proc.stdout), \
            f"{command}: {option} is not an option of {' '.join(program)}"
