"""``python -m docworker``: the command line."""

from docworker.cli import main

main()
