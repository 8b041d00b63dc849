"""ser: a reproducible speech-emotion-recognition workflow.

The package holds all logic; ``scripts/`` are thin stage CLIs that the
Snakefile and dvc.yaml both call.
"""

import os

# Keras 3 picks its backend at import time; JAX is the project's backend.
os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
