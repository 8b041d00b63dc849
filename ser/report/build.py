"""The report stage: every pipeline output -> ``reports/report.html`` and ``report.md``.

:func:`build_report` reads the manifests, metrics, model cards and a few audio
files (:mod:`ser.report.inputs`), draws the figures (:mod:`ser.report.figures`),
renders two Jinja2 templates (``templates/report.html.j2``, a self-contained
page with inline CSS and base64 PNGs, and ``templates/report.md.j2``, the
tables for a terminal or GitHub) and writes both atomically.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.labels import sort_labels
from ser.layout import REPORT_HTML, REPORT_MARKDOWN
from ser.outputs import atomic_path, head_contains, text_starts_with
from ser.report import comparison, facts, figures, provenance
from ser.report.facts import corpus_name, model_name, protocol_name
from ser.report.inputs import ReportInputs, load_inputs
from ser.report.overview import (
    audio_headers,
    corpus_overview,
    examples,
    is_synthetic,
    label_mapping,
    protocol_classes,
    unused_clips,
)
from ser.report.results import (
    best_model,
    confusion_images,
    headline,
    lstm_section,
    per_corpus_table,
    results_table,
    search_table,
    seed_comparison,
    shown_sets,
    uar_rows,
)

#: Output file names inside ``out_dir``.
HTML_NAME = REPORT_HTML  # ser.layout owns the file names
MARKDOWN_NAME = REPORT_MARKDOWN
REPORT_TITLE = "Speech emotion recognition: results report"


# --------------------------------------------------------------------------- assembly


def build_context(inputs: ReportInputs, params: dict[str, Any],
                  project_dir: Path, *, real_results: Path | None = None) -> dict[str, Any]:
    """Everything the templates show, computed from the inputs.

    ``real_results`` is the real-data benchmark's results file quoted by the
    "why these numbers differ" box (absent: the box says so).
    """
    headers = audio_headers(inputs.manifests, inputs.corpora, project_dir)
    synthetic = [corpus_name(c) for c, r in inputs.corpora.items() if is_synthetic(r)]
    results = []
    for protocol in inputs.protocols:
        runs = [inputs.run(protocol, m) for m in inputs.models]
        results.append({
            "slug": protocol,
            "name": protocol_name(protocol),
            "table": results_table(inputs, protocol),
            "best": best_model(inputs, protocol),
            "headline": headline(inputs, protocol),
            "classes": sort_labels(runs[0].details.get("test_classes", [])),
            "per_corpus": per_corpus_table(inputs, protocol),
            "test_corpora": ", ".join(corpus_name(c) for c in runs[0].test_corpora),
        })
    search, grids = search_table(inputs, params)
    compare, compare_rows, transductive = comparison.comparison(inputs)
    distribution, collapsed = comparison.prediction_distribution(inputs)
    return {
        "title": REPORT_TITLE,
        "synthetic": synthetic,
        "all_synthetic": len(synthetic) == len(inputs.corpora),
        "corpora": [corpus_name(c) for c in inputs.corpora],
        "models": [model_name(m) for m in inputs.models],
        "protocols": [protocol_name(p) for p in inputs.protocols],
        "overview": corpus_overview(inputs, headers, params),
        "labels": label_mapping(inputs, params),
        "unused": unused_clips(inputs, params),
        "protocol_classes": protocol_classes(inputs, params),
        "examples": examples(inputs, headers, params, project_dir),
        "examples_per_emotion": int(params.get("report", {}).get("examples_per_emotion", 1)),
        "results": results,
        "shown_sets": shown_sets(inputs),
        "seed": seed_comparison(inputs),
        "real": comparison.real_data_facts(real_results),
        "seed_published": ", ".join(f"{model_name(m)} {v:.2f}"
                                    for m, v in facts.SEED_ACCURACY.items()),
        "comparison": {
            "table": compare, "transductive": transductive,
            "mark": comparison.TRANSDUCTIVE_MARK,
            "img": (figures.comparison_chart(compare_rows, inputs.protocols)
                    if compare_rows else None)},
        "speaker_cv": comparison.speaker_cv_table(inputs),
        "distribution": {"table": distribution, "collapsed": collapsed,
                         "share": f"{comparison.COLLAPSE_SHARE:.0%}"},
        "uar_img": figures.uar_chart(uar_rows(inputs), inputs.models, inputs.protocols),
        "confusions": confusion_images(inputs),
        "lstm": lstm_section(inputs),
        "search": search,
        "grids": grids,
        "provenance": provenance.collect(project_dir, inputs.manifest_files, params),
    }


def render(context: dict[str, Any]) -> tuple[str, str]:
    """Render the HTML and Markdown templates with ``context``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ser.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    return (env.get_template("report.html.j2").render(**context),
            env.get_template("report.md.j2").render(**context))


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


#: How an existing report file is recognised as an earlier report (replaced on a rerun);
#: anything else at those names is refused (:mod:`ser.outputs`).
HTML_IS_OURS = head_contains('<meta name="generator" content="ser report stage">')
MARKDOWN_IS_OURS = text_starts_with(f"# {REPORT_TITLE}\n")


def check_report_out(out_dir: str | Path) -> None:
    """Refuse (one line) an ``--out`` whose report files this stage could not replace.

    Parameters
    ----------
    out_dir : str or Path
        The report folder (``report.html`` and ``report.md`` go there).
    """
    from ser.outputs import check_output

    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise SerError(f"--out {out_dir}: is {'a link' if out_dir.is_symlink() else 'a file'}, "
                       "not a folder; the report is never written through links or over "
                       "files - choose another --out")
    check_output(out_dir / HTML_NAME, kind="file", owned=HTML_IS_OURS)
    check_output(out_dir / MARKDOWN_NAME, kind="file", owned=MARKDOWN_IS_OURS)


def write_outputs(out_dir: Path, html: str, markdown: str) -> Path:
    """Write both files so that neither is replaced unless both were written.

    Returns
    -------
    Path
        The HTML report.
    """
    out_dir = Path(out_dir)
    html_path, md_path = out_dir / HTML_NAME, out_dir / MARKDOWN_NAME
    with ExitStack() as stack:
        tmp_html = stack.enter_context(atomic_path(html_path, owned=HTML_IS_OURS))
        tmp_md = stack.enter_context(atomic_path(md_path, owned=MARKDOWN_IS_OURS))
        tmp_md.write_text(markdown, encoding="utf-8")
        tmp_html.write_text(html, encoding="utf-8")
    return html_path


def build_report(*, params: dict[str, Any], manifests_dir: str | os.PathLike[str],
                 metrics_dir: str | os.PathLike[str], models_dir: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str],
                 project_dir: str | os.PathLike[str] | None = None,
                 real_results: str | os.PathLike[str] | None = None,
                 features_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build ``<out_dir>/report.html`` and ``<out_dir>/report.md`` from the pipeline outputs.

    Parameters
    ----------
    params
        The validated ``params.yaml`` mapping (``corpora``, ``train.models``,
        ``train.protocols``, ``report``, ``mfcc``, ``splits`` and the model
        sections are read).
    manifests_dir
        Folder of ``<corpus>.parquet`` manifests (manifest stage).
    metrics_dir
        Folder of the evaluate stage's run folders (:mod:`ser.layout`): ``metrics.json``,
        ``details.json`` and ``predictions.csv`` in each.
    models_dir
        Folder of the train stage's run folders: ``card.json`` (and ``history.csv`` for
        sequence models) in each.
    out_dir
        Where the two report files go (created if needed).
    project_dir
        Project root: relative audio paths of the manifests, ``git`` and
        ``dvc.lock`` are taken from here. Defaults to the current directory.
    real_results
        Results JSON of ``benchmarks/real_data_bench.py`` whose measured numbers
        the "why these numbers differ" box quotes; ``None`` or a missing file:
        the box says no real-data measurement is available.
    features_dir
        Folder of the extracted feature sets: the clips each set skipped
        (``<set>/<corpus>/skipped.csv``) are counted, and clips the sets disagree on
        are reported (``None``: not shown).

    Returns
    -------
    Path
        The written HTML report.

    Raises
    ------
    SerError
        If an input is missing or broken; the message names the file and the
        stage that makes it. Nothing is written then.
    """
    project = Path(project_dir) if project_dir is not None else Path.cwd()
    inputs = load_inputs(params, manifests_dir=Path(manifests_dir),
                         metrics_dir=Path(metrics_dir), models_dir=Path(models_dir),
                         features_dir=Path(features_dir) if features_dir else None)
    if not inputs.models or not inputs.protocols:
        raise SerError("params.yaml train.models and train.protocols must not be empty")
    context = build_context(inputs, params, project,
                            real_results=Path(real_results) if real_results else None)
    html, markdown = render(context)
    return write_outputs(Path(out_dir), html, markdown)
