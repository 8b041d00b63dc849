"""``ser data import|download|list``: bring the real corpora into the project
(:mod:`ser.corpora.acquire`, :mod:`ser.corpora.downloads`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ser.corpora import acquire
from ser.corpora.acquire import import_corpus
from ser.corpora.archives import MAX_RATIO, MAX_UNPACKED_GB
from ser.corpora.downloads import DOWNLOAD_CACHE_ENV, download_corpus
from ser.corpora.sources import CORPORA


def register(subparsers: Any) -> None:
    """Add ``ser data import|download|list`` to the ``ser`` command."""
    data = subparsers.add_parser(
        "data", help="import or download the real corpora (tracked with DVC)",
        description=acquire.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{import,download,list}")
    names = sorted(CORPORA)

    imp = sub.add_parser(
        "import", help="verify and unpack a corpus archive or folder into data/raw/NAME",
        description="Verify a corpus archive (.zip/.tar.gz/.tgz/.tar) or folder, unpack its "
                    ".wav audio and metadata into data/raw/NAME (refusing members that would "
                    "land outside it), then 'dvc add data/raw/NAME'.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("name", choices=names, metavar="NAME", help=f"corpus: {', '.join(names)}")
    imp.add_argument("source", type=Path, metavar="SOURCE", help="archive or folder to import")
    imp.add_argument("--dest", type=Path, default=None,
                     help="destination folder (default: data/raw/NAME)")
    imp.add_argument("--sha256", default=None, metavar="HEX",
                     help="refuse the archive unless its SHA-256 is this")
    imp.add_argument("--no-dvc", action="store_true", help="do not run 'dvc add'")
    _add_safety_arguments(imp)
    imp.set_defaults(func=_cmd_import)

    dl = sub.add_parser(
        "download", help="download a corpus with a public URL, then import it",
        description="Download a corpus archive (RAVDESS and EMO-DB have public URLs; give "
                    "--url for others) into the download cache, then import it as "
                    "'ser data import' does.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    dl.add_argument("name", choices=names, metavar="NAME", help=f"corpus: {', '.join(names)}")
    dl.add_argument("--url", default=None, help="archive URL (default: the corpus' public URL)")
    dl.add_argument("--known-hash", default=None, metavar="HASH",
                    help="expected hash: sha256:<hex>, md5:<hex> or a bare SHA-256")
    dl.add_argument("--cache-dir", type=Path, default=None,
                    help=f"download cache (default: ${DOWNLOAD_CACHE_ENV} or ~/.cache/ser)")
    dl.add_argument("--dest", type=Path, default=None,
                    help="destination folder (default: data/raw/NAME)")
    dl.add_argument("--no-dvc", action="store_true", help="do not run 'dvc add'")
    _add_safety_arguments(dl)
    dl.set_defaults(func=_cmd_download)

    ls = sub.add_parser("list", help="list the known corpora and how to get each",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.set_defaults(func=_cmd_list)


def _add_safety_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="import into a non-empty --dest: replace only the files a previous "
                             "import wrote there, keep everything else")
    parser.add_argument("--max-unpacked-gb", type=float, default=MAX_UNPACKED_GB, metavar="GB",
                        help=f"refuse an archive unpacking to more (default {MAX_UNPACKED_GB:g})")
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO, metavar="R",
                        help="refuse an archive expanding more than R times its size "
                             f"(zip bomb; default {MAX_RATIO:g})")


def _cmd_import(args: Any) -> int:
    result = import_corpus(args.name, args.source, dest=args.dest, dvc_add=not args.no_dvc,
                           expected_sha256=args.sha256, force=args.force,
                           max_unpacked_gb=args.max_unpacked_gb, max_ratio=args.max_ratio)
    print(result.report())
    return 0


def _cmd_download(args: Any) -> int:
    result = download_corpus(args.name, url=args.url, known_hash=args.known_hash,
                             dest_dir=args.cache_dir, dest=args.dest, dvc_add=not args.no_dvc,
                             force=args.force, max_unpacked_gb=args.max_unpacked_gb,
                             max_ratio=args.max_ratio)
    print(result.report())
    return 0


def _cmd_list(args: Any) -> int:
    for info in CORPORA.values():
        print(f"{info.name}: {info.title}\n  {info.expected_wavs} clips; licence: {info.licence}"
              f"\n  source: {info.source}\n  get it: {info.how_to_get}")
    return 0
