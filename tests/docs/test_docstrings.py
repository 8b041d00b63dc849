"""The public functions the stage scripts call have a numpy-style ``Parameters`` section.

Which functions: every ``from ser... import name`` in ``scripts/*.py`` and ``predict.py``
(read with :mod:`ast`) that is a function, every ``Class.method`` a script calls on an
imported class (``TrainSettings.from_section``), and the functions the scripts reach
through the registries: each extracted feature set's extractor
(``feature_set_spec(name).extract_function()``, as ``scripts/extract_features.py`` calls
it), each model's trainer (``model_spec(name).train_function()``, called by
``ser.models.training.train``) and each corpus parser (``ser.corpora.PARSERS``, called by
``parse_corpus``); and the steps of docs/architecture.md that no script imports
(:data:`ENTRY_POINTS`). Classes and constants are not checked.

A function with parameters must have a ``Parameters`` section naming every one of them
(``self``/``cls`` aside); one without parameters only needs a docstring. Run with
``-v`` to see the list.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((ROOT / "scripts").glob("*.py")), ROOT / "predict.py"]
HEADER = re.compile(r"^(\w[\w ]*)\n-{3,}\s*$", re.M)
#: Library entry points of the pipeline and of predict.py that scripts reach indirectly.
ENTRY_POINTS = (
    "ser.splits.protocols.make_split",
    "ser.splits.protocols.split_with_labels",
    "ser.splits.protocols.speaker_cv_split",
    "ser.splits.protocol_data.load_protocol_data",
    "ser.models.store.save_model",
    "ser.models.store.load_model",
    "ser.models.store.read_card",
    "ser.evaluation.metrics.evaluate_predictions",
    "ser.predict.inference.Predictor.load",
    "ser.predict.inference.Predictor.predict_files",
    "ser.predict.inference.Predictor.features_for_files",
    "ser.predict.inference.default_model_dir",
)


def _script_imports(script: Path) -> set[str]:
    """Dotted names of the ``ser`` objects a script imports, plus ``Class.attr`` it uses."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ser":
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    names = set(imported.values())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported):
            names.add(f"{imported[node.value.id]}.{node.attr}")
    return names


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _script_functions() -> list[str]:
    names = set().union(*(_script_imports(script) for script in SCRIPTS))
    return sorted(n for n in names
                  if inspect.isfunction(obj := _resolve(n)) or inspect.ismethod(obj))


def _registry_functions() -> list[tuple[str, object]]:
    from ser.corpora import PARSERS
    from ser.features.sets import EXTRACTED_SETS, feature_set_spec
    from ser.models import MODELS, model_spec

    found = {}
    funcs = [*(feature_set_spec(name).extract_function() for name in EXTRACTED_SETS),
             *(model_spec(name).train_function() for name in MODELS), *PARSERS.values()]
    for func in funcs:
        func = getattr(func, "func", func)  # a functools.partial: the function it binds
        found[f"{func.__module__}.{func.__qualname__}"] = func
    return sorted(found.items())


def documented_parameters(doc: str) -> set[str] | None:
    """Names listed in the ``Parameters`` section of a (dedented) numpy docstring."""
    headers = list(HEADER.finditer(doc))
    for i, header in enumerate(headers):
        if header.group(1).strip() == "Parameters":
            end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
            names: set[str] = set()
            for line in doc[header.end():end].splitlines():
                if line and not line[0].isspace():
                    for name in line.split(" : ")[0].split(","):
                        names.add(name.strip().lstrip("*"))
            return names
    return None


def check(func) -> None:
    doc = inspect.getdoc(func)
    assert doc, "no docstring"
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    if not params:
        return
    listed = documented_parameters(doc)
    assert listed is not None, f"no numpy 'Parameters' section (parameters: {params})"
    missing = [p for p in params if p not in listed]
    assert not missing, f"Parameters section does not describe {missing}"


def test_enough_functions_found():
    """The ast scan works: the scripts call dozens of ser functions."""
    assert len(_script_functions()) >= 25
    assert len(_registry_functions()) >= 5


@pytest.mark.parametrize("name", _script_functions())
def test_script_function_has_parameters_section(name):
    check(_resolve(name))


@pytest.mark.parametrize("name", [name for name, _ in _registry_functions()])
def test_registry_function_has_parameters_section(name):
    check(dict(_registry_functions())[name])


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_has_parameters_section(name):
    check(_resolve(name))


def test_documented_parameters_reads_numpy_sections():
    doc = "Summary.\n\nParameters\n----------\na, b : int\n    Two.\n*rows\n    More.\n\n" \
          "Returns\n-------\nc\n    Not a parameter.\n"
    assert documented_parameters(doc) == {"a", "b", "rows"}
    assert documented_parameters("Summary only.") is None
