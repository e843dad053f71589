"""What the worker template imports, and how it is started: kept apart from
:mod:`docworker.jobs.template` so that :mod:`docworker.launch` can start the template
before importing the service's modules (this module imports only the registry of
parsers and the list of codecs)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from multiprocessing.context import BaseContext

from docworker.formats.encoding import codec_modules
from docworker.formats.registry import parser_modules


def preloaded_modules() -> list[str]:
    """Every module the template imports before it forks workers, in the order a worker
    started afresh imports them: the worker's own (and with them the operations, the
    engines' bindings, the guard), those that validating the settings imports (the rate
    limiter's, for its checks), WeasyPrint (which the operations import only where a
    page is laid out: not in the API), then every parser, then what parsers import on their
    first document of a kind: pdfplumber's table finder (the first ruled PDF page, 0.15 s)
    and the codecs an encoding guess probes (0.1 s): a few percent of a worker's time
    when workers are replaced every few seconds under load."""
    return [
        "docworker.jobs.worker",
        "docworker.ratelimit",
        "docworker.render.html_fetch",
        *parser_modules(),
        "pdfplumber.table",
        *codec_modules(),
    ]


def forkserver_context() -> BaseContext:
    """multiprocessing's fork server context, its template importing
    :func:`preloaded_modules` when it starts."""
    context = multiprocessing.get_context("forkserver")
    # One fork server per process, whichever starts it first: the list is the same for all.
    context.set_forkserver_preload(preloaded_modules())
    return context


def start_template() -> None:
    """Start the template now (it imports while this process goes on); a no-op when it
    runs already. The first worker started waits for its imports to be done."""
    forkserver_context()
    multiprocessing.forkserver.ensure_running()
