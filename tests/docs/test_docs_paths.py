"""Every module, file and ``python -m`` command the docs name exists.

README.md and docs/*.md name code by path (``ser/features/sets.py``), by dotted name
(``ser.features.shards.shard_bounds``) and by command (``python -m ser.workflow.wiring``).
A rename in the package that the docs did not follow fails here, naming the doc and
the name. Dotted names are resolved without importing the package's modules (their
top-level definitions are read with :mod:`ast`), so the test stays fast.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Paths of tracked files: ``ser/...``, ``scripts/...``, ``tests/...`` (not preceded by
#: another path part, e.g. ``.snakemake/ser/...``); ``data/`` and the other outputs are built.
TRACKED = "ser|scripts|tests|benchmarks|workflow|profiles|docs"
PATH_RE = re.compile(rf"(?<![\w./-])(?:{TRACKED})/[\w./<>{{}},*-]*")
#: ``python -m ser...`` commands.
MODULE_RE = re.compile(r"python -m (ser(?:\.\w+)*)")
#: Dotted names ``ser.x.y`` (a module, or a module and one of its top-level names).
DOTTED_RE = re.compile(r"(?<![\w./-])ser(?:\.\w+)+")
#: Names that look like code but are not, each with the reason.
NOT_CODE = {
    "ser.output": "the Parquet metadata key a stage's table carries (ser/outputs.py)",
}
#: Characters that mark a pattern rather than a path (``ser/corpora/<name>.py``).
PLACEHOLDER = set("<>{}*")


def _mentions(pattern: re.Pattern) -> list[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        for match in pattern.finditer(doc.read_text(encoding="utf-8")):
            name = match.group(1) if pattern.groups else match.group(0)
            found.add((doc.name, name.rstrip(".")))
    return sorted(found)


def _module_file(dotted: str) -> Path | None:
    base = ROOT / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_names(module_file: Path) -> set[str]:
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _resolves(dotted: str) -> bool:
    """A module, a package, or a module's top-level name (one level of class attribute)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_file = _module_file(".".join(parts[:cut]))
        if module_file is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        if rest[0] not in _top_level_names(module_file):
            return False
        return len(rest) <= 2  # a name, or an attribute of it (Class.method)
    return False


def test_docs_name_some_code():
    """The patterns match: a doc that names no module at all means the regexes broke."""
    assert len(_mentions(PATH_RE)) > 10
    assert len(_mentions(DOTTED_RE)) > 5
    assert _mentions(MODULE_RE)


def _expand(path: str) -> list[str]:
    """``a.{json,csv}`` -> ``a.json``, ``a.csv`` (shell brace alternatives)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", path)
    if match is None:
        return [path]
    return [p for alt in match.group(1).split(",")
            for p in _expand(path[:match.start()] + alt + path[match.end():])]


@pytest.mark.parametrize(("doc", "path"), _mentions(PATH_RE))
def test_named_path_exists(doc, path):
    path = path.rstrip(",")
    if "," in path:
        for each in _expand(path):
            assert (ROOT / each).exists(), f"{doc} names {each!r} ({path}), which does not exist"
        return
    if PLACEHOLDER & set(path):
        parent = path.split("<")[0].split("{")[0].split("*")[0].rsplit("/", 1)[0]
        assert (ROOT / parent).is_dir(), f"{doc}: folder of {path!r} does not exist"
        return
    assert (ROOT / path).exists(), f"{doc} names {path!r}, which does not exist"


@pytest.mark.parametrize(("doc", "name"), _mentions(DOTTED_RE))
def test_named_module_or_object_exists(doc, name):
    if name in NOT_CODE:
        return
    assert _resolves(name), f"{doc} names {name!r}: no such module or top-level name"


@pytest.mark.parametrize(("doc", "module"), _mentions(MODULE_RE))
def test_python_m_module_runs(doc, module):
    """``python -m X`` needs X to be a module, or a package with ``__main__``."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{doc}: `python -m {module}`: no such module"
    if spec.submodule_search_locations is not None:
        assert importlib.util.find_spec(f"{module}.__main__") is not None, (
            f"{doc}: `python -m {module}`: a package without __main__")


def test_ci_sentence_matches_ci_script():
    """The README says which make targets CI runs, in the order ``.ci/run`` runs them."""
    targets = re.findall(r"^make ([\w-]+)\s*$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert targets, ".ci/run runs no make target?"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = re.search(r"CI \(`\.ci/run`\) runs ([^.]*)\.", readme)
    assert sentence, "README.md: the sentence 'CI (`.ci/run`) runs ...' is gone"
    named = re.findall(r"`make ([\w-]+)`", sentence.group(1))
    assert named == targets, (f"README.md says CI runs {named}; .ci/run runs {targets}")


def test_architecture_svg_is_current():
    """docs/architecture.svg is drawn from the Mermaid picture of docs/architecture.md."""
    import runpy

    drawing = runpy.run_path(str(ROOT / "docs" / "architecture_svg.py"))
    svg = (ROOT / "docs" / "architecture.svg").read_text(encoding="utf-8")
    assert svg == drawing["render"](), (
        "docs/architecture.svg is not current: run python docs/architecture_svg.py")
    for module in re.findall(r"ser/[\w/]+(?:\.py)?", svg):
        assert (ROOT / module).exists(), f"docs/architecture.svg names {module!r}"
