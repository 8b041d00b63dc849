"""``python -m ser.plots``: build the offline ``dvc plots show`` template."""

from ser.cli import run_cli
from ser.plots.offline import main

raise SystemExit(run_cli(main))
