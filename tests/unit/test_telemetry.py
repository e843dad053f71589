"""Logging: what a log line may show."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from docworker.telemetry import configure_logging
from docworker.tracing import tracer


@pytest.fixture
def restored_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("json_logs", [False, True])
def test_a_traceback_in_the_log_shows_no_local_variable(
    json_logs: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="INFO", json_logs=json_logs)
    log = structlog.get_logger("test")

    def open_document(password: str) -> None:
        raise ValueError("the parser gave up")

    # Made at run time: the traceback's source lines do not hold it, only its variables.
    secret = "-".join(["Local", "Secret", "8812"])
    try:
        open_document(secret)
    except ValueError:
        log.exception("job attempt raised an unexpected error")
    logged = capsys.readouterr().err
    assert "the parser gave up" in logged and "open_document" in logged
    assert "Local-Secret-8812" not in logged


@pytest.mark.usefixtures("restored_logging")
def test_the_standard_library_lines_are_json_with_the_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(level="INFO", json_logs=True)
    structlog.contextvars.bind_contextvars(request_id="req-1", job_id="job-1", tenant="t")
    try:
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
        logging.getLogger("alembic.runtime.migration").info("Running upgrade 0012 -> 0013")
        logging.getLogger("some.library").debug("below the level")
        structlog.get_logger("docworker.test").info("job transition")
        with tracer.start_as_current_span("job run"):
            logging.getLogger("celery.worker").warning("in a span")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == [
        "Started server process [7]",
        "Running upgrade 0012 -> 0013",
        "job transition",
        "in a span",
    ]
    assert [line.get("logger") for line in lines[:2]] == [
        "uvicorn.error",
        "alembic.runtime.migration",
    ]
    for line in lines:
        assert (line["request_id"], line["job_id"], line["tenant"]) == ("req-1", "job-1", "t")
        assert line["level"] in ("info", "warning") and line["timestamp"].endswith("Z")
