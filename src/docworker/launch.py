"""The command line's entry point: ``docworker serve`` starts its worker template first.

The service's own modules take seconds to import, and so does the template its local
workers are forked from (:mod:`docworker.jobs.template`), which imports every parser in
a process of its own. Started one after the other, a server was ready after both; here
the template is started before the command line's modules are imported, so that both
import at once on a machine with a second core, and a server is ready in about the time
of the longer of the two. Only for ``serve`` (or no command, which serves), with the
local executor forking its workers; anything else goes straight to
:func:`docworker.cli.main`, and a template that could not be started early is started
by the first worker, as before.
"""

from __future__ import annotations

import contextlib
import itertools
import sys

#: Options of ``serve`` after which no template is wanted.
_NO_LOCAL_WORKERS = {("--executor", "celery"), ("--executor", "none"), ("--workers", "0")}


def main() -> None:
    """``docworker``: the template started early when the command serves, then the CLI."""
    if serves(sys.argv[1:]):
        # Whatever fails here fails again, and is reported, where the service starts.
        with contextlib.suppress(Exception):
            start_template()
    from docworker.cli import main as cli_main

    cli_main()


def serves(args: list[str]) -> bool:
    """Whether the command line ``args`` starts the server with local workers."""
    if args and args[0] != "serve":
        return False
    options = args[1:]
    if {"--help", "-h"} & set(options):
        return False
    pairs = [tuple(option.split("=", 1)) for option in options if "=" in option]
    pairs += list(itertools.pairwise(options))
    return not _NO_LOCAL_WORKERS & set(pairs)


def start_template() -> bool:
    """Start the worker template now if the settings' executor forks local workers from
    it; whether it was started."""
    from docworker.config import ExecutorKind, WorkerStart, load_settings
    from docworker.jobs.preload import start_template as start

    executor = load_settings().executor
    if executor.kind is not ExecutorKind.LOCAL or executor.workers < 1:
        return False
    if executor.worker_start is not WorkerStart.FORKSERVER:
        return False
    start()
    return True
