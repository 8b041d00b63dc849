"""Every stage script requires --params (issue 20 item 2): one that forgot it must not
silently read ./params.yaml, whatever settings the workflow runs with."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Stage scripts that read no settings.
NO_SETTINGS = {"merge_features.py"}
STAGES = sorted(p.name for p in (ROOT / "scripts").glob("*.py")
                if p.name not in NO_SETTINGS and "run_stage" in p.read_text()
                or p.name == "generate_demo.py")


def test_the_stage_list_is_complete():
    assert {"prepare_manifest.py", "extract_features.py", "make_splits.py", "train.py",
            "tune_candidate.py", "evaluate.py", "report.py", "generate_demo.py"} <= set(STAGES)


@pytest.mark.parametrize("script", STAGES)
def test_a_stage_without_params_is_refused_before_any_work(script, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.chdir(tmp_path)  # a params.yaml here must not be picked up either
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    main = runpy.run_path(str(ROOT / "scripts" / script))["main"]
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "--params" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_byols_stats_requires_params(capsys):
    from ser.cli import byols

    with pytest.raises(SystemExit) as exc:
        byols.main(["stats", "some.wav"])
    assert exc.value.code == 2 and "--params" in capsys.readouterr().err
