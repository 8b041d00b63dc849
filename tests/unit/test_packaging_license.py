"""Packaging metadata that modern setuptools accepts without deprecation warnings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_string_with_a_setuptools_that_knows_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The `license = { text = ... }` table is deprecated (setuptools warns on every build).
    assert pyproject["project"]["license"] == "MIT"
    setuptools = next(r for r in pyproject["build-system"]["requires"]
                      if r.startswith("setuptools"))
    minimum = re.search(r">=\s*(\d+)", setuptools)
    assert minimum and int(minimum.group(1)) >= 77, setuptools   # PEP 639 support

