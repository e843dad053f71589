"""The engines' circuit breakers: what opens them, what they refuse, how they recover.

The clock is the breaker's own (a cool-down is waited for by moving it on): the states
and their changes are the breaker's logic, not an engine's behaviour.
"""

from __future__ import annotations

import pytest

from docworker.config import BreakerSettings
from docworker.engines.breaker import Breakers, BreakerState, engines_of, failed_engines
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    EngineFailed,
    EngineUnavailable,
    JobTimeout,
)

CRASH = EngineFailed("LibreOffice exited during the conversion", engine="LibreOffice").to_dict()
MISSING = DependencyDown("LibreOffice is not installed here", engine="LibreOffice").to_dict()
BAD_INPUT = CorruptDocument("docx", "not a zip file").to_dict()
LIBREOFFICE = engines_of("convert", {"engine": "libreoffice"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breakers(clock: Clock) -> Breakers:
    return Breakers(BreakerSettings(threshold=3, cooldown=30), clock=clock)


def test_the_engines_a_job_needs_and_those_an_error_blames() -> None:
    assert engines_of("convert", {"engine": "libreoffice"}) == {"libreoffice", "storage"}
    assert engines_of("ocr", {}) == {"tesseract", "storage"}
    assert engines_of("video", None) == {"ffmpeg", "storage"}
    assert engines_of("extract", {"engine": None}) == {"storage"}
    assert failed_engines(CRASH, {"storage"}) == {"libreoffice"}
    # A worker that died under the job: the engines the job needed, not the store.
    died = EngineFailed("the worker process running the job died (exit code -9)").to_dict()
    assert failed_engines(died, LIBREOFFICE) == {"libreoffice"}
    store_down = DependencyDown("the blob store failed", dependency="storage").to_dict()
    assert failed_engines(store_down, LIBREOFFICE) == {"storage"}
    database = DependencyDown("the job database failed", dependency="database").to_dict()
    assert failed_engines(database, LIBREOFFICE) == set()
    assert failed_engines(BAD_INPUT, LIBREOFFICE) == set()
    assert failed_engines(JobTimeout(300).to_dict(), LIBREOFFICE) == set()


def test_failures_in_a_row_open_it_and_work_needing_the_engine_fails_fast(
    breakers: Breakers,
) -> None:
    breakers.ended(LIBREOFFICE, CRASH)
    breakers.ended(LIBREOFFICE, CRASH)
    breakers.ended(LIBREOFFICE)  # a success resets the count
    for _ in range(2):
        breakers.ended(LIBREOFFICE, MISSING)
    breakers.ended(LIBREOFFICE, BAD_INPUT)  # a bad input says nothing of the engine
    assert breakers.state("libreoffice") is BreakerState.CLOSED
    breakers.ended(LIBREOFFICE, MISSING)
    assert breakers.state("libreoffice") is BreakerState.OPEN
    with pytest.raises(EngineUnavailable) as refused:
        breakers.check({"libreoffice"})
    error = refused.value.to_dict()
    assert error["code"] == "engine-unavailable" and error["engine"] == "LibreOffice"
    assert error["retry_after"] == 30 and error["failures"] == 3
    # Work needing other engines goes on.
    breakers.check({"tesseract", "storage"})
    assert breakers.begin({"tesseract", "storage"}) is True
    status = breakers.status()
    assert status["libreoffice"]["state"] == "open" and status["libreoffice"]["retry_after"] == 30
    assert status["libreoffice"]["last_error"] == "LibreOffice is not installed here"
    assert status["tesseract"] == {"state": "closed", "failures": 0, "threshold": 3}


def test_it_half_opens_after_the_cooldown_lets_one_trial_through_and_closes_on_success(
    breakers: Breakers, clock: Clock
) -> None:
    for _ in range(3):
        breakers.ended(LIBREOFFICE, CRASH)
    clock.now += 29
    assert breakers.state("libreoffice") is BreakerState.OPEN
    clock.now += 1
    assert breakers.state("libreoffice") is BreakerState.HALF_OPEN
    breakers.check(LIBREOFFICE)  # submissions are accepted again
    assert breakers.begin(LIBREOFFICE) is True  # the trial
    assert breakers.begin(LIBREOFFICE) is False  # the others wait for it
    breakers.ended(LIBREOFFICE)
    assert breakers.state("libreoffice") is BreakerState.CLOSED
    assert breakers.status()["libreoffice"]["failures"] == 0
    assert breakers.begin(LIBREOFFICE) is True


def test_a_failed_trial_opens_it_again_and_a_silent_one_lets_the_next_try(
    breakers: Breakers, clock: Clock
) -> None:
    for _ in range(3):
        breakers.ended(LIBREOFFICE, CRASH)
    clock.now += 30
    assert breakers.begin(LIBREOFFICE) is True
    breakers.release(LIBREOFFICE)  # cancelled: no verdict
    assert breakers.begin(LIBREOFFICE) is True
    breakers.ended(LIBREOFFICE, BAD_INPUT)  # no verdict either
    assert breakers.begin(LIBREOFFICE) is True
    breakers.ended(LIBREOFFICE, CRASH)
    assert breakers.state("libreoffice") is BreakerState.OPEN
    assert breakers.status()["libreoffice"]["retry_after"] == 30


def test_disabled_breakers_never_refuse(clock: Clock) -> None:
    breakers = Breakers(BreakerSettings(enabled=False, threshold=1), clock=clock)
    breakers.ended(LIBREOFFICE, CRASH)
    breakers.check(LIBREOFFICE)
    assert breakers.begin(LIBREOFFICE) is True
