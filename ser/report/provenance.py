"""Provenance of a report: code revision, data versions, package versions, time.

The data versions are the hashes of the files the report itself reads (the manifests);
``dvc.lock`` is not read: no stage declares it, and during a Snakemake build it holds
the previous build's record.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

#: Distributions whose versions the report lists (distribution name -> shown name).
PACKAGES: dict[str, str] = {
    "ser-workflow": "ser",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "librosa": "librosa",
    "soundfile": "soundfile",
    "scikit-learn": "sklearn",
    "keras": "keras",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "dvc": "dvc",
    "snakemake": "snakemake",
}

def git_revision(project_dir: Path) -> dict[str, Any]:
    """``git rev-parse HEAD`` and whether the work tree has uncommitted changes.

    Returns
    -------
    dict
        ``commit`` (``None`` without git or outside a repository), ``dirty``
        (bool or ``None``) and ``note`` explaining a missing revision.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True,
                              text=True, check=True, timeout=20).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "note": "git is not installed"}
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None, "note": "not a git repository (or no commit)"}
    try:
        # Untracked files count: outputs are git-ignored, so anything else is source.
        dirty: bool | None = bool(git("status", "--porcelain"))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        dirty = None
    return {"commit": commit, "dirty": dirty, "note": ""}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results (without importing them)."""
    out = {"python": platform.python_version()}
    for dist, shown in PACKAGES.items():
        try:
            out[shown] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[shown] = "not installed"
    return out


def build_time() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _shown(path: Path, project_dir: Path) -> str:
    """``path`` relative to the project when it lies inside it (shorter, machine-independent)."""
    try:
        return Path(path).resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def collect(project_dir: Path, manifest_files: dict[str, Path],
            params: dict[str, Any]) -> dict[str, Any]:
    """All provenance facts of a report, ready for the templates."""
    return {
        "git": git_revision(project_dir),
        "manifests": [{"corpus": c, "path": _shown(p, project_dir), "sha256": file_digest(p)}
                      for c, p in manifest_files.items()],
        "packages": package_versions(),
        "params_yaml": yaml.safe_dump(params, sort_keys=False, default_flow_style=None,
                                      width=100),
        "built": build_time(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
