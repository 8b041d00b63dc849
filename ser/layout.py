"""The one place outside the workflow files that knows where a run's outputs live.

Training and evaluation outputs are ``<root>/<protocol>/<feature_set>/<model>/``
under ``models/`` and ``metrics/`` (the Snakefile's patterns say the same).
"""

from __future__ import annotations

from pathlib import Path


def run_dir(root: str | Path, protocol: str, feature_set: str, model: str) -> Path:
    """Folder of one protocol x feature set x model under ``root`` (``models`` or ``metrics``)."""
    return Path(root) / protocol / feature_set / model


def run_key(path: str | Path, root: str | Path) -> tuple[str, str, str]:
    """``(protocol, feature_set, model)`` of a run folder under ``root`` (inverse of run_dir)."""
    parts = Path(path).relative_to(root).parts
    if len(parts) < 3:
        raise ValueError(f"{path} is not <protocol>/<feature_set>/<model> under {root}")
    return parts[0], parts[1], parts[2]


def demo_root(corpus: str) -> Path:
    """Where the workflow's ``generate_demo`` stage writes a demo corpus (the Snakefile's
    ``data/demo/{corpus}``), and ``scripts/generate_demo.py`` writes it by default.

    Parameters
    ----------
    corpus : str
        Corpus name (``ravdess``, ``emodb``, ...).
    """
    return Path("data") / "demo" / corpus
