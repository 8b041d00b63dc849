"""ser: a reproducible speech-emotion-recognition workflow.

The package holds all logic; ``scripts/`` are thin stage CLIs that the
Snakefile and dvc.yaml both call.
"""

import os
import warnings

# Keras 3 picks its backend at import time; JAX is the project's backend.
os.environ.setdefault("KERAS_BACKEND", "jax")


def _use_jax_compilation_cache() -> None:
    """Let JAX keep compiled programs on disk (its persistent compilation cache).

    A run has many short Keras jobs (train and evaluate per protocol, one model per
    speaker_cv fold), each compiling the same programs; with the cache each is compiled
    once. Measured (benchmarks/results/pipeline_custom150.json): lstm_seed speaker_cv on
    150 clips 67 s without, 46 s with an empty and 31 s with a filled cache, weights
    byte-identical. Entries are keyed by program, JAX version and backend; the size
    limit turns on JAX's eviction and its file lock (two jobs writing at once). Set
    ``JAX_COMPILATION_CACHE_DIR`` to move it, ``JAX_ENABLE_COMPILATION_CACHE=false`` to
    turn it off; an unwritable folder leaves it off.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "ser-workflow", "jax")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    if not os.access(folder, os.W_OK):
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(512 * 1024 * 1024))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


_use_jax_compilation_cache()

# Deprecated in scikit-learn 1.9 (removed in 1.11, pinned below that): see ser.models.classical.
warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated",
                        category=FutureWarning)

__version__ = "0.1.0"
