"""BLAS on one thread around small matrix products, so features do not depend on the
machine's thread count (see :mod:`ser.features.mfcc`, step 4)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_BLAS_LIBS: tuple[Any, ...] | None = None
_BLAS_LOCK = threading.Lock()
_BLAS_DEPTH = 0
_BLAS_SAVED: list[Any] = []


def _blas_libs() -> tuple[Any, ...]:
    """threadpoolctl controllers of the loaded BLAS libraries (found once)."""
    global _BLAS_LIBS
    if _BLAS_LIBS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _BLAS_LIBS = ()
        else:
            _BLAS_LIBS = tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _BLAS_LIBS


def _set_blas_threads(libs: tuple[Any, ...], counts: list[Any]) -> None:
    for lib, count in zip(libs, counts, strict=True):
        if count is None:
            continue
        # threadpoolctl lets only one "controlling" thread change OpenBLAS's
        # process-wide pool and silently ignores the others; we serialise the
        # changes ourselves (under _BLAS_LOCK), so hand control to this thread.
        release = getattr(type(lib), "clear_controlling_thread", None)
        if release is not None:
            release(force=True)
        lib.set_num_threads(count)
        if release is not None:
            release(force=True)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Context in which BLAS (OpenBLAS/MKL) runs on one thread.

    The mel projection is one small matrix product; OpenBLAS's multi-threaded
    ``sgemm`` rounds differently from the single-threaded one (by ~1e-7
    relative) and is slower for such sizes (much slower when cores are
    busy). Running it on one thread makes the features independent of the
    machine's thread settings and of the number of extraction workers.

    Thread-safe and re-entrant: the first thread to enter lowers the
    process-wide limit, the last to leave restores it, so concurrent callers
    never see it change mid-product. Costs ~20 us per outermost entry;
    without ``threadpoolctl`` it does nothing.
    """
    global _BLAS_DEPTH, _BLAS_SAVED
    libs = _blas_libs()
    if not libs:
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_DEPTH == 0:
            _BLAS_SAVED = [lib.get_num_threads() for lib in libs]
            _set_blas_threads(libs, [1] * len(libs))
        _BLAS_DEPTH += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_DEPTH -= 1
            if _BLAS_DEPTH == 0:
                _set_blas_threads(libs, _BLAS_SAVED)
