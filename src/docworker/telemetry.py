"""Logging set-up (the Prometheus metrics are in :mod:`docworker.metrics`).

Logs are structlog key-value events: JSON lines in production, readable lines
in a terminal. Context such as ``request_id`` and ``job_id`` is bound through
contextvars so that every line of a request or job carries it.
"""

from __future__ import annotations

import logging
import sys

import structlog

from docworker.tracing import add_trace_ids

#: The lowest level logged, changed at run time by :func:`set_log_level` (a reload).
_log_level = {"min": logging.INFO}
_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _drop_below_level(
    logger: object, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    if _METHOD_LEVELS.get(method_name, logging.INFO) < _log_level["min"]:
        raise structlog.DropEvent
    return event_dict


def set_log_level(level: str) -> None:
    """Log from ``level`` up from now on (structlog and the standard library's logging)."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _log_level["min"] = numeric
    logging.getLogger().setLevel(numeric)


#: The name of the standard library's handler :func:`configure_logging` installs.
_HANDLER = "docworker"


def configure_logging(*, level: str = "INFO", json_logs: bool = False) -> None:
    """Set up structlog, and the standard library's logging under it, once per process:
    every line (uvicorn's, Alembic's, Celery's and every library's too) goes through the
    same processors to one renderer, JSON lines when ``json_logs``. A line carries the
    context bound in contextvars (``request_id``, ``job_id``, ``tenant``, ``key_id``) and
    the ``trace_id`` and ``span_id`` of the span current when it was logged.
    The level can be changed later (:func:`set_log_level`): loggers are cached, so the
    level is a processor's check rather than the bound logger's."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _log_level["min"] = numeric
    shared: list[structlog.types.Processor] = [
        _drop_below_level,
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if json_logs:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Tracebacks without their local variables: those hold passwords and documents.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in list(root.handlers):
        # This function's handler of an earlier call (a test's capture handler stays).
        if old.get_name() == _HANDLER:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Warnings (a library's deprecation, Celery's about running as root) are lines too.
    logging.captureWarnings(True)
    # Loggers that bring handlers of their own (uvicorn's, when configured by it; Celery's)
    # hand their lines to the root's instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "celery"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
