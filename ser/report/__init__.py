"""The final report: every pipeline output in one self-contained HTML page and a Markdown summary.

Use :func:`build_report` (or ``python scripts/report.py`` from the project root).
"""

from ser.report.build import build_report

__all__ = ["build_report"]
