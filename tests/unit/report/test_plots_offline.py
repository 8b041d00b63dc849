"""`dvc plots show` renders without network: Vega inlined into the HTML template.

The page is rendered in headless Chromium with every host name unresolvable
(``--host-resolver-rules``), so a page that needs the CDN stays blank; the
same check on DVC's default page shows the check can fail.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.errors import SerError
from ser.plots import offline

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def test_inline_script_cannot_close_early():
    html = offline.inline_script('var s = "</script><b>";')
    assert html.count("</script") == 1 and html.endswith("</script>")
    assert '"<\\/script><b>"' in html


def test_page_has_dvc_placeholder_and_no_cdn():
    page = offline.render_page(offline.inline_script("var vegaEmbed = 1;"), origin="test")
    assert page.count("{plot_divs}") == 1
    assert "{scripts}" not in page and "cdn.jsdelivr" not in page  # DVC adds no CDN scripts


def test_without_npm_falls_back_to_cdn(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)
    out = tmp_path / "t.html"
    assert offline.build_template(out, cache=tmp_path / "cache") is False
    assert "cdn.jsdelivr.net/npm/vega@5" in out.read_text()
    assert "npm not found" in capsys.readouterr().err
    with pytest.raises(SerError, match="npm not found"):
        offline.build_template(tmp_path / "u.html", cache=tmp_path / "cache", offline_only=True)
    assert not (tmp_path / "u.html").exists()


def test_repository_config_points_dvc_at_the_template():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config["plots"]["html_template"] == "../" + offline.DEFAULT_TEMPLATE.as_posix()
    assert config["core"]["analytics"] == "false"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(offline.DEFAULT_TEMPLATE)],
                             cwd=ROOT, check=False).returncode
    assert ignored == 0, "the generated template must be git-ignored"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The offline template, built from the npm tarballs (cached in build/plots/npm if there)."""
    cache = ROOT / offline.DEFAULT_CACHE
    if not all(offline._cached(cache, spec) for spec in offline.PACKAGES):
        cache = tmp_path_factory.mktemp("npm")
    out = tmp_path_factory.mktemp("template") / "dvc_offline.html"
    try:
        offline.build_template(out, cache=cache, offline_only=True)
    except SerError as exc:
        pytest.skip(f"cannot fetch Vega from npm: {exc}")
    return out


def _dvc_plots_page(project: Path, template: Path | None) -> Path:
    """``dvc plots show`` of a small loss curve in a fresh DVC project; returns the page."""
    project.mkdir()
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(dvc + ["init", "--no-scm", "-q"], cwd=project, check=True)
    subprocess.run(dvc + ["config", "core.analytics", "false"], cwd=project, check=True)
    rows = "".join(f"{i}\t{np.exp(-i / 4):.4f}\n" for i in range(20))
    (project / "loss.tsv").write_text("step\tloss\n" + rows)
    args = ["plots", "show", "loss.tsv", "-o", "out"]
    if template is not None:
        args += ["--html-template", str(template)]
    subprocess.run(dvc + args, cwd=project, check=True, capture_output=True, timeout=120)
    return project / "out" / "index.html"


def _screenshot(page: Path, shot: Path, profile: Path) -> np.ndarray:
    """Render ``page`` in headless Chromium with no network at all; return RGB pixels."""
    from PIL import Image

    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--window-size=900,700", "--virtual-time-budget=5000", f"--screenshot={shot}",
           page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(shot).convert("RGB"))


def _ink(pixels: np.ndarray) -> int:
    """Pixels clearly darker or more colourful than the white background."""
    return int((pixels.astype(int).min(axis=2) < 200).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make install adds it)")
def test_dvc_plots_render_offline(template, tmp_path):
    page = _dvc_plots_page(tmp_path / "offline", template)
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed(" in html
    pixels = _screenshot(page, tmp_path / "offline.png", tmp_path / "profile1")
    # Axes, labels and the curve: thousands of dark pixels (~4,300 measured at 900x700).
    assert _ink(pixels) > 2000, f"page looks blank offline ({_ink(pixels)} ink pixels)"
    # The warning shown when Vega is missing is not on the page.
    red = (pixels[..., 0] > 120) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() < 50


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make install adds it)")
def test_default_dvc_page_is_blank_offline(tmp_path):
    """The control: DVC's CDN page under the same conditions shows nothing."""
    page = _dvc_plots_page(tmp_path / "cdn", None)
    assert "cdn.jsdelivr" in page.read_text()
    pixels = _screenshot(page, tmp_path / "cdn.png", tmp_path / "profile2")
    assert _ink(pixels) < 200
