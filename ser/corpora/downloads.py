"""Download a corpus archive with pooch into the download cache, then import it.

``ser data download NAME`` fetches the corpora that have a stable public URL
(:data:`ser.corpora.sources.CORPORA`) and imports them with
:func:`ser.corpora.acquire.import_corpus`. A file in the cache the tool did not
download is never overwritten, and never used unless a known hash verifies it.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from ser.corpora.acquire import ImportResult, corpus_info, import_corpus
from ser.corpora.archives import MAX_RATIO, MAX_UNPACKED_GB
from ser.errors import ConfigError, SerError
from ser.outputs import atomic_path, sha256_file

#: Environment variable overriding the download cache (default ``~/.cache/ser``,
#: outside the project, so archives are never committed).
DOWNLOAD_CACHE_ENV = "SER_DOWNLOAD_DIR"


def default_download_dir() -> Path:
    """Download cache: ``$SER_DOWNLOAD_DIR`` or the user cache (``~/.cache/ser``)."""
    env = os.environ.get(DOWNLOAD_CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("ser"))


def download_corpus(
    name: str,
    *,
    url: str | None = None,
    known_hash: str | None = None,
    dest_dir: str | Path | None = None,
    dest: str | Path | None = None,
    dvc_add: bool = True,
    force: bool = False,
    max_unpacked_gb: float = MAX_UNPACKED_GB,
    max_ratio: float = MAX_RATIO,
) -> ImportResult:
    """Download a corpus archive with pooch (progress bar, hash check), then import it.

    Parameters
    ----------
    name
        Corpus name (see :data:`CORPORA`).
    url
        Archive URL; default the registry's public URL (RAVDESS, EMO-DB).
    known_hash
        Expected hash in pooch's format (``"sha256:<hex>"``, ``"md5:<hex>"``
        or a bare SHA-256); default the registry's, if known. None downloads
        without a check and the import report prints the SHA-256 to pin.
    dest_dir
        Download cache folder; default :func:`default_download_dir`. An
        archive already there (with a matching hash) is not fetched again.
    dest, dvc_add, force, max_unpacked_gb, max_ratio
        Passed to :func:`import_corpus`.

    Raises
    ------
    SerError
        No URL known, download failure, hash mismatch, or an import error.
    """
    info = corpus_info(name)
    url = url or info.url
    if not url:
        raise ConfigError(f"no public download URL for {name} ({info.source}); "
                          f"{info.how_to_get}")
    known_hash = known_hash or (info.sha256 if url == info.url else None)
    fname = (info.archive if url == info.url and info.archive
             else posixpath.basename(url.split("?")[0]) or f"{name}.zip")
    folder = Path(dest_dir) if dest_dir is not None else default_download_dir()
    import pooch

    cached = folder / fname
    if _cached_download_ok(cached, known_hash):
        return import_corpus(name, cached, dest=dest, dvc_add=dvc_add, force=force,
                             max_unpacked_gb=max_unpacked_gb, max_ratio=max_ratio)
    try:
        archive = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                 progressbar=True)
        _write_download_record(Path(archive))
    except ValueError as exc:  # hash mismatch
        raise SerError(f"{url}: {str(exc).splitlines()[0]} - the download is corrupt or "
                       "another version; nothing was imported") from None
    except OSError as exc:  # requests' errors are OSErrors
        raise SerError(f"{url}: download failed ({type(exc).__name__}: {exc}); check the URL "
                       f"and connection, or download it yourself and run "
                       f"'ser data import {name} <file>'") from None
    return import_corpus(name, Path(archive), dest=dest, dvc_add=dvc_add, force=force,
                         max_unpacked_gb=max_unpacked_gb, max_ratio=max_ratio)


#: Beside each archive the tool downloaded: its SHA-256 (``<archive>.ser-download``).
DOWNLOAD_RECORD_SUFFIX = ".ser-download"


def _is_download_record(path: Path) -> bool:
    """Whether ``path`` holds just a SHA-256 line, as :func:`_write_download_record` writes."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _write_download_record(archive: Path) -> None:
    """Record the archive's SHA-256 beside it: the next run knows the file is its own."""
    with atomic_path(f"{archive}{DOWNLOAD_RECORD_SUFFIX}", owned=_is_download_record,
                     option="--cache-dir") as tmp:
        tmp.write_text(sha256_file(archive) + "\n")


def _hash_matches(path: Path, known_hash: str) -> bool:
    import pooch

    alg, _, digest = known_hash.rpartition(":")
    try:
        return pooch.file_hash(str(path), alg=(alg or "sha256").lower()) == digest.lower()
    except ValueError:
        raise ConfigError(f"--known-hash {known_hash}: unknown hash algorithm "
                          f"{alg!r}; use sha256:<hex> or md5:<hex>") from None


def _cached_download_ok(cached: Path, known_hash: str | None) -> bool:
    """Whether ``cached`` (the archive's name in the download cache) can be used as is.

    ``False``: nothing there (or the tool's own earlier download, which pooch may
    fetch again). A file the tool did not download is never overwritten, and never
    used unless ``known_hash`` verifies it; links and folders are refused.
    """
    folder = cached.parent
    if folder.is_symlink():
        raise SerError(f"--cache-dir {folder}: is a link (to {os.readlink(folder)}); downloads "
                       "never write through links - give the real folder")
    if folder.exists() and not folder.is_dir():
        raise SerError(f"--cache-dir {folder}: is a file, not a folder; choose another "
                       "--cache-dir")
    if cached.is_symlink():
        raise SerError(f"--cache-dir {folder}: {cached.name} there is a link; the download "
                       "never follows or replaces links - move it away or choose another "
                       "--cache-dir")
    if not cached.exists():
        return False
    if not cached.is_file():
        raise SerError(f"--cache-dir {folder}: {cached.name} there is not a regular file "
                       "(a folder?); nothing was changed - move it away or choose another "
                       "--cache-dir")
    record = Path(f"{cached}{DOWNLOAD_RECORD_SUFFIX}")
    ours = record.is_file() and record.read_text().strip() == sha256_file(cached)
    if known_hash:
        if _hash_matches(cached, known_hash):
            return True  # verified: no need to download it again
        if ours:
            return False  # the tool's own earlier download: pooch fetches the right one
        raise SerError(f"{cached}: already exists, was not downloaded by ser and does not "
                       f"match --known-hash {known_hash}; it was left alone - move it away "
                       "or choose another --cache-dir")
    if ours:
        return True
    raise SerError(f"{cached}: already exists and was not downloaded by ser; without "
                   "--known-hash it cannot be verified, so it is neither used nor "
                   "overwritten - pass --known-hash, move it away or choose another "
                   "--cache-dir")
