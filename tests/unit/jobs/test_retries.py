"""When a failed attempt is retried: transient failures only, later each time."""

from __future__ import annotations

import pytest

from docworker.config import ExecutorSettings
from docworker.errors import (
    AfterFailure,
    CorruptDocument,
    DependencyDown,
    EngineFailed,
    EngineUnavailable,
    InvalidParameter,
    JobTimeout,
    MemoryLimitExceeded,
)
from docworker.jobs.retries import Backoff, after_failure


def test_the_delay_doubles_up_to_its_maximum() -> None:
    backoff = Backoff(base=2.0, maximum=30.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(10_000) == 30.0


@pytest.mark.parametrize(("drawn", "delay"), [(0.0, 8.0), (0.5, 6.0), (0.999, 4.004)])
def test_jitter_draws_a_share_of_the_delay(drawn: float, delay: float) -> None:
    backoff = Backoff(base=2.0, maximum=30.0, jitter=0.5, random=lambda: drawn)
    assert backoff.delay(3) == pytest.approx(delay)


def test_the_settings_make_the_backoff() -> None:
    settings = ExecutorSettings(retry_delay=1, retry_max_delay=60, retry_jitter=0.25)
    backoff = Backoff.of(settings)
    assert (backoff.base, backoff.maximum, backoff.jitter) == (1, 60, 0.25)


@pytest.mark.parametrize(
    "error",
    [
        EngineFailed("the worker process running the job died (exit code -9)"),
        EngineFailed("LibreOffice exited during the conversion", engine="LibreOffice"),
        DependencyDown("the blob store failed: timed out", dependency="storage"),
        EngineUnavailable("LibreOffice", 1, 5),
    ],
)
def test_transient_failures_are_retried_later(error: Exception) -> None:
    backoff = Backoff(base=5.0, maximum=300.0, jitter=0.0)
    outcome = after_failure(error.to_dict(), 2, backoff)  # type: ignore[attr-defined]
    assert outcome.after is AfterFailure.RETRY and outcome.retry_delay == 10.0


def test_a_retry_waits_at_least_for_an_open_breaker_to_cool_down() -> None:
    backoff = Backoff(base=5.0, maximum=300.0, jitter=0.0)
    refused = EngineUnavailable("LibreOffice", 25, 5).to_dict()
    assert after_failure(refused, 1, backoff).retry_delay == 25.0
    assert after_failure(refused, 4, backoff).retry_delay == 40.0


@pytest.mark.parametrize(
    ("error", "after"),
    [
        (CorruptDocument("pdf", "no trailer"), AfterFailure.FAILED),
        (InvalidParameter("pages", "out of range"), AfterFailure.FAILED),
        (JobTimeout(300), AfterFailure.DEAD),
        (MemoryLimitExceeded(2048), AfterFailure.DEAD),
    ],
)
def test_bad_input_and_poison_documents_are_never_retried(
    error: Exception, after: AfterFailure
) -> None:
    outcome = after_failure(error.to_dict(), 1, Backoff(5.0, 300.0, 0.5))  # type: ignore[attr-defined]
    assert outcome.after is after and outcome.retry_delay is None
