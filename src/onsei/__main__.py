"""``python -m onsei`` runs the command line."""

from onsei.cli import run

run()
