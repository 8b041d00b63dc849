"""``import ser`` points JAX's persistent compilation cache at the user's cache folder
(ser/__init__.py), unless the user chose one or the folder cannot be written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KEYS = ("JAX_COMPILATION_CACHE_DIR", "JAX_COMPILATION_CACHE_MAX_SIZE",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")


def jax_env_after_import(**env: str) -> dict[str, str | None]:
    base = {k: v for k, v in os.environ.items() if k not in KEYS and k != "XDG_CACHE_HOME"}
    code = f"import json, os, ser; print(json.dumps({{k: os.environ.get(k) for k in {KEYS}}}))"
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_cache_goes_to_the_user_cache_folder_with_a_size_limit(tmp_path):
    env = jax_env_after_import(XDG_CACHE_HOME=str(tmp_path))
    folder = tmp_path / "ser-workflow" / "jax"
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(folder) and folder.is_dir()
    # A size limit turns on JAX's eviction and, with it, the file lock around writes.
    assert int(env["JAX_COMPILATION_CACHE_MAX_SIZE"]) > 0
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"


def test_a_users_choice_wins(tmp_path):
    env = jax_env_after_import(XDG_CACHE_HOME=str(tmp_path), JAX_COMPILATION_CACHE_DIR="/x")
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/x"
    assert env["JAX_COMPILATION_CACHE_MAX_SIZE"] is None
    assert not (tmp_path / "ser-workflow").exists()


def test_an_unusable_cache_folder_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would go")
    env = jax_env_after_import(XDG_CACHE_HOME=str(blocker))
    assert env == dict.fromkeys(KEYS)
    assert Path(blocker).read_text().startswith("a file")
