"""Reading a corpus archive (.zip, .tar.gz, .tgz, .tar) or folder safely.

Only audio and small metadata files are kept (:func:`is_wanted`); a member that could
land outside the destination (absolute path, ``..``, a link pointing outside) refuses
the whole archive, and so does one that would unpack to too much
(:func:`check_archive_size`), before anything is written.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ser.corpora.base import AUDIO_EXTENSIONS, walk_files
from ser.errors import SerError

#: Suffixes of the small metadata files kept besides ``.wav`` audio.
METADATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".md", ".json", ".yaml", ".yml", ".pdf"})
#: Default limits of an archive import (raise with --max-unpacked-gb / --max-ratio).
MAX_UNPACKED_GB = 50.0
MAX_RATIO = 20.0
#: Archives unpacking to less than this are never refused for their ratio.
RATIO_FLOOR_BYTES = 16 << 20
#: File-name prefixes (upper case) of licence/readme files kept.
METADATA_PREFIXES = ("LICENSE", "LICENCE", "README", "COPYING")


def is_wanted(rel: PurePosixPath) -> bool:
    """True for files an import keeps: ``.wav`` audio and small metadata, not hidden ones."""
    if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
        return False
    suffix = rel.suffix.lower()
    return (suffix in AUDIO_EXTENSIONS or suffix in METADATA_SUFFIXES
            or rel.name.upper().startswith(METADATA_PREFIXES))


def _unsafe(archive: Path, member: str, why: str) -> SerError:
    return SerError(f"{archive}: refusing to unpack: member {member!r} {why} (path traversal); "
                    "nothing was written - the archive is corrupt or malicious, get a clean copy")


def safe_member_path(archive: Path, name: str) -> PurePosixPath:
    """Return an archive member's relative path, or raise if it could land outside the dest.

    Raises
    ------
    SerError
        For absolute paths (``/x``, ``C:\\x``) and ``..`` components.
    """
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise _unsafe(archive, name, "has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "climbs out of the destination with '..'")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _link_escapes(rel: PurePosixPath, target: str) -> bool:
    """True if a link at ``rel`` pointing to ``target`` resolves outside the dest."""
    target = target.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return True
    joined = posixpath.normpath(posixpath.join(str(rel.parent), target))
    return joined == ".." or joined.startswith("../")


@dataclass
class _Member:
    rel: PurePosixPath
    open: Any  # () -> binary file object
    size: int = 0  # unpacked bytes (as the archive declares them)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> tuple[list[_Member], int]:
    members, skipped = [], 0
    for info in zf.infolist():
        rel = safe_member_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if _link_escapes(rel, zf.read(info).decode("utf-8", "replace")):
                raise _unsafe(archive, info.filename, "is a symbolic link pointing outside")
            skipped += 1
            continue
        if info.is_dir():
            continue
        if not is_wanted(rel):
            skipped += 1
            continue
        members.append(_Member(rel, lambda info=info: zf.open(info), info.file_size))
    return members, skipped


def _tar_members(archive: Path, tf: tarfile.TarFile) -> tuple[list[_Member], int]:
    members, skipped = [], 0
    for info in tf.getmembers():
        rel = safe_member_path(archive, info.name)
        if info.issym() or info.islnk():
            # a symlink's target is relative to its folder, a hard link's to the archive root
            where = rel if info.issym() else PurePosixPath("member")
            if _link_escapes(where, info.linkname):
                raise _unsafe(archive, info.name, "is a link pointing outside")
            skipped += 1
            continue
        if info.isdir():
            continue
        if not info.isfile():  # devices, fifos
            skipped += 1
            continue
        if not is_wanted(rel):
            skipped += 1
            continue
        members.append(_Member(rel, lambda info=info: tf.extractfile(info), info.size))
    return members, skipped


def _folder_members(source: Path) -> tuple[list[_Member], int]:
    everything = walk_files(source, lambda _name: True)
    members = []
    for path in everything:
        rel = PurePosixPath(path.relative_to(source).as_posix())
        if is_wanted(rel):
            members.append(_Member(rel, lambda path=path: open(path, "rb")))
    return members, len(everything) - len(members)


@dataclass
class _Opened:
    members: list[_Member]
    skipped: int
    handle: Any = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _open_source(source: Path) -> _Opened:
    if source.is_dir():
        return _Opened(*_folder_members(source))
    if zipfile.is_zipfile(source):
        try:
            zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SerError(f"{source}: not a readable zip archive ({exc}); "
                           "download it again") from None
        try:
            return _Opened(*_zip_members(source, zf), handle=zf)
        except BaseException:
            zf.close()
            raise
    try:
        is_tar = tarfile.is_tarfile(source)
    except OSError:
        is_tar = False
    if is_tar:
        try:
            tf = tarfile.open(source)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SerError(f"{source}: not a readable tar archive ({exc}); "
                           "download it again") from None
        try:
            return _Opened(*_tar_members(source, tf), handle=tf)
        except (tarfile.TarError, OSError, EOFError) as exc:
            tf.close()
            raise SerError(f"{source}: not a readable tar archive ({exc}); "
                           "download it again") from None
        except BaseException:
            tf.close()
            raise
    raise SerError(f"{source}: not a .zip/.tar.gz/.tar archive (or a truncated one) nor a "
                   "folder; pass the complete archive as downloaded, or the unpacked folder")


def check_archive_size(source: Path, members: list[_Member], *,
                       max_unpacked_gb: float = MAX_UNPACKED_GB,
                       max_ratio: float = MAX_RATIO) -> None:
    """Refuse an archive that unpacks to too much, or far more than its own size (zip bomb).

    Raises
    ------
    SerError
        Naming the archive, the limit and the option that raises it.
    """
    if source.is_dir():
        return
    total = sum(m.size for m in members)
    packed = max(1, source.stat().st_size)
    if total > max_unpacked_gb * 1e9:
        raise SerError(f"{source}: would unpack to {total / 1e9:.1f} GB, above the limit of "
                       f"{max_unpacked_gb:g} GB; nothing was written - if the archive is "
                       "genuine, raise the limit with --max-unpacked-gb")
    ratio = total / packed
    if total > RATIO_FLOOR_BYTES and ratio > max_ratio:
        raise SerError(f"{source}: expands {ratio:.0f} times ({packed / 1e6:.1f} MB -> "
                       f"{total / 1e6:.0f} MB), above the limit of {max_ratio:g}x for audio; "
                       "nothing was written - it looks like a zip bomb; if it is genuine, "
                       "raise the limit with --max-ratio")


def _copy_members(members: list[_Member], dest: Path, source: Path) -> int:
    """Write every member under ``dest`` (already checked to stay inside it)."""
    root = dest.resolve()
    from tqdm import tqdm

    for member in tqdm(members, desc=f"unpacking into {dest.name}", unit="file",
                       disable=None, leave=False):
        target = dest.joinpath(*member.rel.parts)
        if not target.resolve().is_relative_to(root):  # belt and braces
            raise SerError(f"refusing to write {member.rel}: it resolves outside {dest}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with member.open() as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, RuntimeError) as exc:
            raise SerError(f"{source}: cannot read member {member.rel} ({exc}); the archive is "
                           "corrupt or truncated - download it again") from None
    return len(members)
