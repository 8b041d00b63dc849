"""Offline rendering of ``dvc plots show``: a page template with Vega bundled in.

See :mod:`ser.plots.offline`; ``python -m ser.plots`` builds the template.
"""
