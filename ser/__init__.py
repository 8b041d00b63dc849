"""ser: a reproducible speech-emotion-recognition workflow.

The package holds all logic; ``scripts/`` are thin stage CLIs that the
Snakefile and dvc.yaml both call.
"""

import os
import warnings

# Keras 3 picks its backend at import time; JAX is the project's backend.
os.environ.setdefault("KERAS_BACKEND", "jax")

# Deprecated in scikit-learn 1.9 (removed in 1.11, pinned below that): see ser.models.classical.
warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated",
                        category=FutureWarning)

__version__ = "0.1.0"
