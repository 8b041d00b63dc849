"""Shared fixtures: the real recordings in ../shared/data, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real corpus recordings (never copied into the repo).

    Skipped on a developer machine without it; on CI (``CI`` set) its absence
    is a failure, so the real-data tests can never silently not run there.
    """
    if not (SHARED_DATA / "ravdess").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real recordings expected at {SHARED_DATA} on CI")
        pytest.skip(f"real recordings not found at {SHARED_DATA}")
    return SHARED_DATA
