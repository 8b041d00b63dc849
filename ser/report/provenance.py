"""Provenance of a report: code revision, data versions, package versions, time."""

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

#: Files larger than this are not re-hashed to check them against dvc.lock.
MAX_VERIFY_BYTES = 200 * 1024 * 1024


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


def dvc_outputs(project_dir: Path) -> list[dict[str, Any]] | None:
    """Every stage output recorded in ``dvc.lock`` with its md5, or ``None`` without one.

    For plain files the recorded md5 is compared with the file on disk
    (``matches``: ``True``/``False``; ``None`` for folders, absent or huge
    files), so a lock file left over from an older ``dvc repro`` shows up.
    """
    lock = project_dir / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        data = yaml.safe_load(lock.read_text()) or {}
    except yaml.YAMLError:
        return None
    rows: list[dict[str, Any]] = []
    for stage, spec in (data.get("stages") or {}).items():
        for out in (spec or {}).get("outs") or []:
            md5 = out.get("md5") or out.get("etag") or ""
            path = project_dir / str(out.get("path", ""))
            matches = None
            if md5 and not str(md5).endswith(".dir") and path.is_file() \
                    and path.stat().st_size <= MAX_VERIFY_BYTES:
                matches = file_digest(path, "md5") == md5
            rows.append({"stage": str(stage), "path": str(out.get("path", "")),
                         "md5": str(md5), "matches": matches})
    return rows


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
        "dvc": dvc_outputs(project_dir),
        "manifests": [{"corpus": c, "path": _shown(p, project_dir), "sha256": file_digest(p)}
                      for c, p in manifest_files.items()],
        "packages": package_versions(),
        "params_yaml": yaml.safe_dump(params, sort_keys=False, default_flow_style=None,
                                      width=100),
        "built": build_time(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
