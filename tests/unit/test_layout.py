"""The run layout has one home: ser/layout.py (issue 20 item 2).

Every path pattern of a run and every file name inside its folders is spelled in
``ser/layout.py`` only; the rules, the stage scripts and the rest of the package import it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "ser" / "layout.py"

#: The run folder pattern in any spelling: {protocol}/{feature_set}/{model}, <...>, or a
#: glob of its depth below a protocol (``{protocol}/*/*/``).
RUN_PATTERN = re.compile(r"[{<]protocol[}>]/[{<]feature_?set[}>]/[{<]model[}>]"
                         r"|protocol\}/\*/\*/")
#: A path below one of the run's roots, in a string literal.
ROOTED = re.compile(r"(^|/)(data/(demo|raw|manifests|features|shards|splits|grid)(/|$)"
                    r"|(models|metrics|reports|logs)/)")
#: Names that, given to Path() or as an option's default, make a default path.
ROOT_NAMES = {"data", "models", "metrics", "reports", "logs", "params.yaml", "dvc.lock"}
#: The file names the stages write inside their folders.
FILE_NAMES = {"metrics.json", "details.json", "predictions.csv", "model_card.md",
              "summary.parquet", "sequences.parquet", "skipped.csv", "report.html",
              "report.md", "dvc.lock"}


def _sources() -> list[Path]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow").rglob("*.smk"))]
    for folder in ("ser", "scripts"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f != LAYOUT]


def _path_literals(path: Path) -> list[tuple[int, str]]:
    """Path-like string literals of a Python file outside docstrings: rooted paths, output
    file names, and root names given to ``Path()`` or as an option's ``default=``."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    hits = [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings
            and (ROOTED.search(node.value) or node.value in FILE_NAMES)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        values = [k.value for k in node.keywords if k.arg == "default"]
        if isinstance(node.func, ast.Name) and node.func.id == "Path":
            values += node.args
        hits += [(v.lineno, v.value) for v in values
                 if isinstance(v, ast.Constant) and v.value in ROOT_NAMES]
    return hits


def test_the_layout_module_spells_the_run_pattern():
    assert RUN_PATTERN.search(LAYOUT.read_text())


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_file_spells_the_run_pattern(path):
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if RUN_PATTERN.search(line)]
    assert not hits, "the run layout belongs to ser/layout.py:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", [p for p in _sources() if p.suffix == ".py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_path_or_output_file_name_literal_outside_the_layout(path):
    """No default path (``Path("data")``, ``default="models"``...) and no output file name
    in code outside ser/layout.py; docstrings and comments may name them."""
    hits = [f"{path.relative_to(ROOT)}:{n}: {text!r}" for n, text in _path_literals(path)]
    assert not hits, "take these from ser.layout:\n" + "\n".join(hits)


def test_rules_import_the_layout_and_spell_no_path():
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile",
                                              *(ROOT / "workflow" / "rules").glob("*.smk")])
    assert "from ser import layout" in text or "from ser.layout import" in text
    code = [line for line in text.splitlines()
            if not line.strip().startswith("#") and '"""' not in line]
    literal = re.compile(r"[\"'](data|models|metrics|reports|logs)/")
    assert not [line for line in code if literal.search(line)]


def test_run_dir_and_run_key_are_inverse():
    from ser.layout import MODEL, run_dir, run_key

    folder = run_dir("models", "speaker", "mfcc", "svm")
    assert folder.as_posix() == MODEL.format(protocol="speaker", feature_set="mfcc", model="svm")
    assert run_key(folder, "models") == ("speaker", "mfcc", "svm")
    with pytest.raises(ValueError):
        run_key("models/speaker/mfcc", "models")


def test_run_metrics_files_finds_exactly_the_runs_of_a_protocol(tmp_path):
    from ser.layout import METRICS_FILE, run_dir, run_metrics_files

    for protocol, fs, model in [("speaker", "mfcc", "svm"), ("speaker", "egemaps", "knn"),
                                ("random", "mfcc", "svm")]:
        folder = run_dir(tmp_path, protocol, fs, model)
        folder.mkdir(parents=True)
        (folder / METRICS_FILE).write_text("{}")
    (tmp_path / "speaker" / "stray.json").write_text("{}")
    found = [f.relative_to(tmp_path).as_posix() for f in run_metrics_files(tmp_path, "speaker")]
    assert found == ["speaker/egemaps/knn/metrics.json", "speaker/mfcc/svm/metrics.json"]
