"""Logging: what a log line may show."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from docworker.telemetry import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


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
