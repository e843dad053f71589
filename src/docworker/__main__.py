"""``python -m docworker``: the command line."""

from docworker.launch import main

main()
