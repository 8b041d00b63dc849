"""Read a PyTorch ``torch.save`` state dict without PyTorch and without running its code.

A ``.pth`` written by ``torch.save`` (zip format) holds ``<root>/data.pkl``, a pickle of
the state dict whose tensors point at raw little-endian storages ``<root>/data/<key>``.
Unpickling it with :mod:`pickle` would let the file call any importable function; here
:class:`StateDictUnpickler` resolves only the names a plain state dict of tensors needs
(:data:`ALLOWED_GLOBALS`) to harmless stand-ins of our own, and refuses every other name
with :class:`CheckpointError` (one line naming the file and the global). The storages are
read with numpy from the zip. PyTorch itself is never imported.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError


class CheckpointError(SerError):
    """A checkpoint that cannot be read safely or does not fit the expected model."""


#: Storage class name -> numpy dtype of its raw bytes (little-endian, as torch.save writes).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class _Storage:
    """Marker for ``torch.<X>Storage`` (only its dtype is used)."""

    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage: np.ndarray, offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], requires_grad: bool = False,
                       backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` for numpy: a strided view, copied."""
    itemsize = storage.dtype.itemsize
    if not size:
        return np.array(storage[offset])
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    if offset < 0 or needed > storage.shape[0] or any(s < 0 for s in stride):
        raise CheckpointError("a tensor points outside its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride),
        writeable=False)
    return np.array(view)


#: ``(module, name)`` globals a state dict of tensors needs, and what they become here.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _Storage(name) for name in STORAGE_DTYPES},
}


class StateDictUnpickler(pickle.Unpickler):
    """Unpickler of a ``torch.save`` state dict that resolves only :data:`ALLOWED_GLOBALS`.

    Persistent ids ``("storage", <storage marker>, key, location, numel)`` are read from
    ``<root>/data/<key>`` of the zip as numpy arrays.
    """

    def __init__(self, data: bytes, *, archive: zipfile.ZipFile, root: str,
                 source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._root = root
        self._source = source
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._source}: refused to load: the checkpoint references {module}.{name}, "
                "which is not a tensor storage (it could run code); use a plain state dict "
                "of tensors saved with torch.save") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _Storage) or not isinstance(pid[2], str)):
            raise CheckpointError(f"{self._source}: refused to load: unexpected persistent "
                                  f"object {str(pid)[:60]!r}")
        marker, key, numel = pid[1], pid[2], pid[4]
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._root}/data/{key}")
            except KeyError:
                raise CheckpointError(f"{self._source}: storage {key} is missing from the "
                                      "archive") from None
            arr = np.frombuffer(raw, dtype=marker.dtype)
            if arr.shape[0] < int(numel):
                raise CheckpointError(f"{self._source}: storage {key} is truncated")
            self._storages[key] = arr
        return self._storages[key]


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` state dict as numpy arrays, read without torch.

    Raises
    ------
    CheckpointError
        The file is missing, not a torch zip checkpoint, references anything but tensor
        storages, or does not hold a mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a torch.save zip checkpoint ({exc})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")
                   and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a torch.save zip checkpoint (no single "
                                  "<root>/data.pkl)")
        root = pickles[0].split("/")[0]
        unpickler = StateDictUnpickler(archive.read(pickles[0]), archive=archive, root=root,
                                       source=str(path))
        try:
            obj = unpickler.load()
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any malformed pickle is one line
            raise CheckpointError(f"{path}: unreadable checkpoint pickle "
                                  f"({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise CheckpointError(f"{path}: the checkpoint is not a state dict of tensors")
    return dict(obj)
