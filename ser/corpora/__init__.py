"""Corpus parsers: a corpus folder -> one manifest row per clip.

:data:`CORPUS_SPECS` is the one table of corpora. Each entry is a corpus module with
``NAME``, ``DISPLAY`` (name shown in reports), ``CODES`` (its own emotion codes -> unified
label), ``EXTRA_COLUMNS`` and ``parse(root, **options) -> ParseResult`` (whose docstring
shows the folder tree it expects); the spec also finds its acquisition facts and licence
(:data:`ser.corpora.sources.CORPORA`, for ``ser data download/import``) and its synthetic
demo layout (:data:`ser.corpora.demo.LAYOUTS`), both optional. Everything else (the
schema's corpus enums, :data:`CORPUS_CODES`, the report's display names) derives from it.
Use :func:`parse_corpus` to check the name and root first.

Adding a corpus: write ``ser/corpora/<name>.py`` (see :mod:`ser.corpora.emodb` for the
shortest example, using :func:`ser.corpora.base.parse_files`), add its module to
:data:`_MODULES`, and a test (CONTRIBUTING.md has the recipe).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ser.corpora import cremad, custom, emodb, ravdess, savee, tess
from ser.corpora.base import COMMON_COLUMNS, ParseResult, find_wavs
from ser.errors import ConfigError

__all__ = ["COLUMNS", "COMMON_COLUMNS", "CORPUS_CODES", "CORPUS_SPECS", "PARSERS", "CorpusSpec",
           "ParseResult", "parse_corpus"]

_MODULES = (tess, ravdess, cremad, savee, emodb, custom)


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: its module (parser, display name, emotion codes, columns), and where its
    acquisition and demo facts live."""

    name: str
    module: ModuleType

    @property
    def display(self) -> str:
        """Name shown in reports (``CREMA-D``)."""
        return self.module.DISPLAY

    @property
    def codes(self) -> dict[str, str]:
        """The corpus' own emotion codes -> unified label (empty: the user's own labels)."""
        return dict(self.module.CODES)

    @property
    def parse(self) -> Callable[..., ParseResult]:
        """``parse(root, **options) -> ParseResult``; the expected layout is its docstring."""
        return self.module.parse

    @property
    def columns(self) -> tuple[str, ...]:
        """Manifest column order."""
        return COMMON_COLUMNS + self.module.EXTRA_COLUMNS

    @property
    def acquisition(self):
        """Licence, source, expected size and how to get it
        (:class:`ser.corpora.sources.CorpusInfo`); ``None`` if it cannot be downloaded or
        imported by name (``custom``)."""
        from ser.corpora.sources import CORPORA

        return CORPORA.get(self.name)

    @property
    def licence(self) -> str | None:
        """Its licence or terms of use (from :attr:`acquisition`)."""
        info = self.acquisition
        return info.licence if info is not None else None

    @property
    def demo_layout(self):
        """The synthetic demo's layout (:class:`ser.corpora.demo.CorpusLayout`); ``None``
        if the demo generator does not write it."""
        from ser.corpora.demo import LAYOUTS

        return LAYOUTS.get(self.name)


#: Every corpus the workflow knows, by name (the schema's corpus enums match it; tested).
CORPUS_SPECS: dict[str, CorpusSpec] = {m.NAME: CorpusSpec(m.NAME, m) for m in _MODULES}

#: Corpus name -> its own emotion codes -> unified label.
CORPUS_CODES: dict[str, dict[str, str]] = {n: s.codes for n, s in CORPUS_SPECS.items()
                                           if s.codes}

#: Corpus name -> parse function (a snapshot at import; :func:`parse_corpus` reads
#: :data:`CORPUS_SPECS`, so a corpus registered later counts).
PARSERS: dict[str, Callable[..., ParseResult]] = {n: s.parse for n, s in CORPUS_SPECS.items()}

#: Corpus name -> manifest column order.
COLUMNS: dict[str, tuple[str, ...]] = {n: s.columns for n, s in CORPUS_SPECS.items()}


def parse_corpus(name: str, root: str | Path, **options: Any) -> ParseResult:
    """Check ``name``, ``root`` and ``options``, then parse the corpus.

    Parameters
    ----------
    name
        One of :data:`CORPUS_SPECS`.
    root
        Corpus root folder (``custom`` also takes a ``.csv``/``.tsv`` manifest file);
        row paths keep it relative or absolute as given.
    **options
        Parser options (e.g. ``include_song=True`` for RAVDESS).

    Returns
    -------
    ParseResult

    Raises
    ------
    ConfigError
        Unknown corpus or option; root missing, not a folder, without any
        audio file, or with no file that parses as this corpus.
    """
    if name not in CORPUS_SPECS:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPUS_SPECS)}")
    parser = CORPUS_SPECS[name].parse
    allowed = [p.name for p in inspect.signature(parser).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"corpus {name!r}: unknown parser option(s) {', '.join(unknown)}; "
                          f"it accepts {', '.join(allowed) or 'none'}")
    root = Path(root)
    check_root(name, root)
    result = parser(root, **options)
    if not result.rows:
        reason, count = Counter(r for _, r in result.rejected).most_common(1)[0]
        raise ConfigError(f"corpus {name!r}: none of the {len(result.rejected)} audio files under "
                          f"{root} parse as {name} (most common reason, {count} files: {reason}); "
                          f"is it the right folder?")
    return result


def check_root(name: str, root: str | Path) -> None:
    """Refuse a corpus root that is missing, not a folder (or, for ``custom``, not a
    CSV/TSV table), or holds no audio file: one :class:`ConfigError` line saying what
    to do. Run by :func:`parse_corpus`, and before any job by the workflow engines
    (:func:`ser.params.checks.check_corpus_roots`), so a run never goes on with stale data."""
    if name not in CORPUS_SPECS:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPUS_SPECS)}")
    root = Path(root)
    how = (f"generate the demo corpus (python scripts/generate_demo.py --corpus {name}) "
           f"or point params.yaml "
           f"'corpora.{name}' at a downloaded copy (see 'ser data download {name}' "
           f"or 'ser data import {name} <archive-or-folder>')")
    if name == custom.NAME:
        how = ("put your clips in <folder>/<emotion>/[<speaker>/]*.wav, or list them in a "
               "CSV/TSV with a header 'path,emotion[,speaker,gender,split]', and point "
               "params.yaml 'corpora.custom' at the folder or the CSV file")
    if not root.exists():
        raise ConfigError(f"corpus {name!r}: root {root} does not exist; {how}")
    if name == custom.NAME and root.is_file() and root.suffix.lower() in (".csv", ".tsv"):
        if root.stat().st_size == 0:  # its rows are checked by the parser
            raise ConfigError(f"corpus {name!r}: manifest {root} is empty; {how}")
    elif not root.is_dir():
        raise ConfigError(f"corpus {name!r}: root {root} is a file, not a folder; an archive "
                          f"must be unpacked first: 'ser data import {name} {root}'")
    elif name == custom.NAME and not custom.find_inputs(root):
        raise ConfigError(f"corpus {name!r}: no audio files (any format soundfile reads) and "
                          f"no manifest.csv/.tsv in or under {root}; {how}")
    elif name != custom.NAME and not find_wavs(root):
        raise ConfigError(f"corpus {name!r}: no audio files (.wav, .flac, ...) in or under "
                          f"{root}; {how}")
