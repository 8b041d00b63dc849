"""An HTML template for ``dvc plots show`` that works without network.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so it is
blank offline. :func:`build_template` writes a page with the three libraries
inlined (taken from their npm packages, fetched with ``npm pack`` at install
time into a git-ignored cache) and DVC's ``{plot_divs}`` placeholder; the
repository's ``.dvc/config`` points ``plots.html_template`` at it::

    python -m ser.plots                 # = make plots-assets (run by make install)
    dvc plots show                      # dvc_plots/index.html renders offline

Without npm (or without access to its registry) a template that loads the same
libraries from the CDN is written instead, with a warning, so ``dvc plots show``
keeps working online. Nothing from the packages is executed at build time: the
tarballs are read with :mod:`tarfile` and only the three ``build/*.min.js``
files are copied into the page.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from ser.errors import SerError
from ser.outputs import atomic_path, check_output, head_contains

#: npm package spec -> the bundle inside its tarball, in load order (embed needs the others).
PACKAGES: dict[str, str] = {
    "vega@5": "package/build/vega.min.js",
    "vega-lite@5": "package/build/vega-lite.min.js",
    "vega-embed@6": "package/build/vega-embed.min.js",
}

#: Where ``make plots-assets`` writes the template and caches the tarballs (git-ignored).
DEFAULT_TEMPLATE = Path("build/plots/dvc_offline.html")
DEFAULT_CACHE = Path("build/plots/npm")

#: The CDN scripts DVC itself uses (fallback when npm is unavailable).
CDN_SCRIPTS = (
    '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
    '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>\n'
    '<script src="https://cdn.jsdelivr.net/npm/vega-embed@6"></script>'
)

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC Plots</title>
<!-- Written by `python -m ser.plots` ({origin}); DVC fills the plot_divs placeholder. -->
{scripts}
<style>
  body {{ font-family: sans-serif; }}
  table {{ border-spacing: 15px; }}
  #ser-no-vega {{ color: #a00; display: none; }}
</style>
</head>
<body>
<p id="ser-no-vega">Vega did not load: run <code>make plots-assets</code> (offline copy)
or open this page with network access.</p>
<script>
  if (typeof vegaEmbed === "undefined") {{
    document.getElementById("ser-no-vega").style.display = "block";
  }}
</script>
{{plot_divs}}
</body>
</html>
"""


def npm_pack(specs: Sequence[str], dest: str | Path, *, timeout: float = 300) -> dict[str, Path]:
    """Download npm tarballs with ``npm pack`` (no install scripts run) into ``dest``.

    Returns
    -------
    dict
        Package spec -> tarball path.

    Raises
    ------
    SerError
        If npm is missing or fails (e.g. no access to the registry).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise SerError("npm not found; install Node.js/npm (apt-get install npm) to bundle Vega")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "pack", *specs, "--json", "--ignore-scripts", "--pack-destination", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SerError(f"npm pack timed out after {timeout:.0f} s; is the registry "
                       "reachable?") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise SerError(f"npm pack {' '.join(specs)} failed: {last}")
    entries = json.loads(proc.stdout)
    return {spec: dest / entry["filename"] for spec, entry in zip(specs, entries, strict=True)}


def read_member(tarball: str | Path, member: str) -> str:
    """Text of one file inside an npm tarball (read in memory, never extracted)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            fh = tar.extractfile(member)
            if fh is None:
                raise KeyError(member)
            return fh.read().decode("utf-8")
    except (KeyError, tarfile.TarError, OSError) as exc:
        raise SerError(f"{tarball}: no usable {member} ({exc}); delete the file and rerun "
                       "make plots-assets") from None


def inline_script(source: str) -> str:
    """A ``<script>`` element holding ``source``, safe to embed in HTML and in DVC's template.

    ``</script`` inside the code would end the element early, so it is
    written ``<\\/script`` (same JavaScript meaning inside strings and regexes).
    """
    return "<script>\n" + source.replace("</script", "<\\/script") + "\n</script>"


def render_page(scripts: str, *, origin: str) -> str:
    """The template text: ``scripts`` in the head and DVC's ``{plot_divs}`` placeholder."""
    page = PAGE.format(scripts="{__scripts__}", origin=origin)
    return page.replace("{__scripts__}", scripts)


def build_template(out: str | Path = DEFAULT_TEMPLATE, *, cache: str | Path = DEFAULT_CACHE,
                   offline_only: bool = False) -> bool:
    """Write the ``dvc plots show`` template; return True if Vega is inlined (offline).

    Parameters
    ----------
    out
        Template file to write (atomically).
    cache
        Folder for the npm tarballs; tarballs already there are reused.
    offline_only
        Raise instead of falling back to the CDN template.
    """
    try:
        tarballs = {spec: _cached(cache, spec) for spec in PACKAGES}
        if not all(tarballs.values()):
            tarballs = npm_pack(list(PACKAGES), cache)
        parts = [inline_script(read_member(tarballs[spec], member))
                 for spec, member in PACKAGES.items()]
        names = ", ".join(p.name for p in tarballs.values())
        page, inlined = render_page("\n".join(parts), origin=f"inlined from {names}"), True
    except SerError as exc:
        if offline_only:
            raise
        print(f"warning: {exc}; writing a template that loads Vega from the CDN "
              "(dvc plots show needs network)", file=sys.stderr)
        page, inlined = render_page(CDN_SCRIPTS, origin="CDN fallback"), False
    with atomic_path(out, owned=TEMPLATE_IS_OURS) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return inlined


#: An earlier template of this module (replaced on a rerun; anything else is refused).
TEMPLATE_IS_OURS = head_contains("<!-- Written by `python -m ser.plots`")


def _cached(cache: str | Path, spec: str) -> Path | None:
    """The newest cached tarball for ``spec`` (``vega@5`` -> ``vega-5.*.tgz``), if any."""
    name, _, major = spec.rpartition("@")
    found = sorted(Path(cache).glob(f"{name}-{major}.*.tgz"))
    return found[-1] if found else None


def main(argv: Sequence[str] | None = None) -> int:
    """Build the offline template (``make plots-assets``)."""
    parser = argparse.ArgumentParser(
        prog="python -m ser.plots",
        description="Write an HTML template for `dvc plots show` with Vega, Vega-Lite and "
                    "Vega-Embed inlined from their npm packages, so the plots render offline "
                    "(.dvc/config plots.html_template points at it).")
    parser.add_argument("--out", type=Path, default=DEFAULT_TEMPLATE,
                        help="template to write (default %(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="folder for the npm tarballs (default %(default)s)")
    parser.add_argument("--offline-only", action="store_true",
                        help="fail instead of writing the CDN fallback")
    args = parser.parse_args(argv)
    check_output(args.out, kind="file", owned=TEMPLATE_IS_OURS)  # before any npm call
    inlined = build_template(args.out, cache=args.cache, offline_only=args.offline_only)
    print(f"{args.out}: dvc plots template "
          f"({'Vega inlined, renders offline' if inlined else 'CDN fallback, needs network'})")
    return 0
