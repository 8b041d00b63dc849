"""BYOL-S weights: the shipped ``byols.npz``, checked on load, and the conversion of the
original ``.pth`` checkpoint into it (``python -m ser.features.byols convert``).

No pickle is involved: the ``.pth`` is read by :mod:`ser.features.torch_checkpoint`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import ConfigError
from ser.features.torch_checkpoint import CheckpointError, read_state_dict

#: The original checkpoint (README of ../shared/models/byols).
ORIGINAL_FILE = "default512_BYOLAs64x96-2107281850-e100-bs256-lr0003-rs42.pth"
ORIGINAL_SHA256 = "449f5d0dc6b6fa8433d5e43769097520d3bc0fdae88977a7ac29e2e72ca51b52"
ORIGINAL_SOURCE = ("https://github.com/Neclow/SERAB, file SERAB/checkpoints/"
                   f"{ORIGINAL_FILE}")
ORIGINAL_COMMIT = "8023cb75dc6f32a6f211bfbc83efe9491c41d8b7"
#: The shipped converted weights and the sha256 of that file (checked when loaded).
SHIPPED_WEIGHTS = "byols.npz"
SHIPPED_SHA256 = "5c076cdd2a801617c1256549d89e64cd09b441142a61d26d964e4b24d2281927"

#: Array name -> shape of an AudioNTT2020 (d = 512) state dict (``num_batches_tracked``
#: is dropped: it does not affect the outputs).
EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"features.{i}.weight": (64, c, 3, 3) for i, c in ((0, 1), (4, 64), (8, 64))},
    **{f"features.{i}.bias": (64,) for i in (0, 4, 8)},
    **{f"features.{i}.{k}": (64,) for i in (1, 5, 9)
       for k in ("weight", "bias", "running_mean", "running_var")},
    "fc.0.weight": (512, 512), "fc.0.bias": (512,),
    "fc.3.weight": (512, 512), "fc.3.bias": (512,),
}


def weights_dir() -> Path:
    """Folder of the shipped weights and their licence notice."""
    return Path(str(resources.files("ser") / "features" / "weights"))


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Content checksum of named arrays (names, dtypes, shapes and bytes, sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_architecture(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The AudioNTT2020 arrays of ``arrays`` as float32, or one line naming what differs."""
    missing = [k for k in EXPECTED_SHAPES if k not in arrays]
    if missing:
        raise CheckpointError(f"{source}: not a BYOL-S (AudioNTT2020, d=512) checkpoint: "
                              f"missing {', '.join(missing[:3])}"
                              + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    for key, shape in EXPECTED_SHAPES.items():
        if tuple(arrays[key].shape) != shape:
            raise CheckpointError(f"{source}: not a BYOL-S (AudioNTT2020, d=512) checkpoint: "
                                  f"{key} has shape {tuple(arrays[key].shape)}, expected "
                                  f"{shape}")
    out = {k: np.asarray(arrays[k], np.float32) for k in EXPECTED_SHAPES}
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise CheckpointError(f"{source}: the checkpoint holds NaN or infinite weights")
    return out


def convert_checkpoint(src: str | Path, out: str | Path, *,
                       expected_sha256: str | None = ORIGINAL_SHA256,
                       source: str = ORIGINAL_SOURCE,
                       source_commit: str = ORIGINAL_COMMIT) -> dict[str, Any]:
    """Convert a ``torch.save`` AudioNTT2020 state dict into a pickle-free ``.npz``.

    The ``.pth`` is read by :func:`ser.features.torch_checkpoint.read_state_dict` (only
    tensor storages are accepted) after its sha256 is checked against
    ``expected_sha256`` (``None``: not checked). The ``.npz`` holds one float32 array per
    weight plus ``meta``, a JSON string with the provenance and ``arrays_sha256`` (the
    content checksum :func:`load_weights` verifies). Returns ``meta``.
    """
    from ser.outputs import atomic_path, sha256_file

    src = Path(src)
    if not src.is_file():
        raise CheckpointError(f"{src}: no such checkpoint file")
    digest = sha256_file(src)
    if expected_sha256 is not None and digest != expected_sha256:
        raise CheckpointError(f"{src}: sha256 {digest} differs from the expected "
                              f"{expected_sha256}; not the original BYOL-S checkpoint "
                              "(pass --sha256 none to convert another checkpoint)")
    arrays = check_architecture(read_state_dict(src), str(src))
    meta = {"architecture": "AudioNTT2020 (BYOL-A/BYOL-S), d=512, 64 mel bands",
            "source": source, "source_commit": source_commit,
            "source_sha256": digest, "licence": "MIT (see BYOLS_LICENSE.txt)",
            "arrays_sha256": arrays_sha256(arrays), "format_version": 1}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return meta


@functools.lru_cache(maxsize=4)
def _load_weights_cached(path: str, mtime_ns: int) -> tuple[dict[str, np.ndarray], str]:
    p = Path(path)
    shipped = p.resolve() == (weights_dir() / SHIPPED_WEIGHTS).resolve()
    if p.suffix == ".pth" or (p.is_file() and p.read_bytes()[:4] == b"PK\x03\x04"
                              and p.suffix != ".npz"):
        arrays = check_architecture(read_state_dict(p), path)
        return arrays, arrays_sha256(arrays)
    if shipped:
        from ser.outputs import sha256_file

        digest = sha256_file(p)
        if digest != SHIPPED_SHA256:
            raise CheckpointError(f"{p}: sha256 {digest} differs from the shipped weights' "
                                  f"{SHIPPED_SHA256}; the package is damaged, reinstall it")
    try:
        with np.load(p, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{p}: not a weights .npz ({type(exc).__name__}: "
                              f"{str(exc)[:80]})") from None
    meta_raw = raw.pop("meta", None)
    arrays = check_architecture(raw, path)
    digest = arrays_sha256(arrays)
    if meta_raw is not None:
        try:
            expected = json.loads(str(meta_raw))["arrays_sha256"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{p}: unreadable 'meta' entry") from None
        if expected != digest:
            raise CheckpointError(f"{p}: checksum mismatch (arrays {digest[:12]}..., meta "
                                  f"says {str(expected)[:12]}...); the file is damaged, "
                                  "convert the checkpoint again")
    return arrays, digest


def resolve_weights_path(weights: str | Path | None) -> Path:
    """``byols.weights``: ``None`` is the shipped file; else the user's path."""
    if weights is None:
        return weights_dir() / SHIPPED_WEIGHTS
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"byols.weights: {path}: no such file; point it at a BYOL-S "
                          ".pth/.npz or set it to null for the shipped weights")
    return path


def load_weights(weights: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """``(arrays, content sha256)`` of the shipped weights or of a user's ``.npz``/``.pth``.

    Raises :class:`CheckpointError` (one line) on a missing, damaged (checksum), unsafe or
    mismatched (keys, shapes) file.
    """
    path = resolve_weights_path(weights)
    arrays, digest = _load_weights_cached(str(path.resolve()), path.stat().st_mtime_ns)
    return dict(arrays), digest
