"""``python -m abscopal`` runs the command-line interface."""

from abscopal.cli import main

main()
