"""Reading and writing the pipeline's Parquet tables (pooled over corpora)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ser.errors import SerError
from ser.outputs import PARQUET_KEY, atomic_path


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` to Parquet atomically, without the index (byte-stable reruns).

    Parameters
    ----------
    df : pandas.DataFrame
        The table (manifest, split, ...).
    path : str or Path
        Output file; replaced only under the rule of :mod:`ser.outputs`.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    # The key marks the file as the tool's own, so a rerun may replace it (ser.outputs).
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           PARQUET_KEY: b'{"written_by": "ser"}'})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | Path, *, what: str, hint: str,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Read one Parquet table, or raise :class:`SerError` saying which stage makes it.

    Parameters
    ----------
    path : str or Path
        The table.
    what : str
        What it is, for the message (``"split"``, ``"manifest"``).
    hint : str
        What to do when it is missing or unreadable (``"run the splits stage first"``).
    columns : list of str, optional
        Read only these columns.
    """
    path = Path(path)
    if not path.is_file():
        raise SerError(f"{path}: {what} not found; {hint}")
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SerError(f"{path}: not a readable {what} Parquet table ({detail}); "
                       f"{hint}") from None


def read_manifests(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate the manifest Parquet files ``paths`` (one per corpus).

    Parameters
    ----------
    paths : iterable of str or Path
        Manifest files.
    """
    frames = [
        read_table(p, what="manifest",
                   hint="run the manifest stage first (snakemake / dvc repro)")
        for p in paths
    ]
    return pd.concat(frames, ignore_index=True)


def load_features(folder: str | Path, corpora: Iterable[str], *,
                  kind: str = "summary") -> pd.DataFrame:
    """Concatenate ``<folder>/<corpus>/<kind>.parquet`` (``summary``) for the corpora.

    Parameters
    ----------
    folder : str or Path
        A feature set's folder (``data/features/<set>``).
    corpora : iterable of str
        The corpora to read.
    kind : str
        The table (``summary`` or ``sequences``).
    """
    frames = [
        read_table(Path(folder) / c / f"{kind}.parquet", what=f"{kind} features of {c}",
                   hint="run the feature stage first (snakemake / dvc repro)")
        for c in corpora
    ]
    return pd.concat(frames, ignore_index=True)
