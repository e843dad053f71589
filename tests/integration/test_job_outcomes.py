"""How an attempt's end is recorded, the same for both executors (jobs/outcomes.py): the
retry delay of the backoff, and the engines' circuit breakers told of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docworker.config import BreakerSettings
from docworker.engines.breaker import Breakers, BreakerState
from docworker.errors import EngineFailed
from docworker.jobs.outcomes import end_attempt, record_answer
from docworker.jobs.retries import Backoff
from docworker.jobs.store import JobCost, JobRecord, JobStatus, JobStore, NewJob

#: A job that converts through LibreOffice (admission records the engine in its input).
CONVERTS = {"uri": "blob://inputs/x", "sha256": "x", "engine": "libreoffice"}
BACKOFF = Backoff(base=60.0, maximum=600.0, jitter=0.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    jobs.migrate()
    try:
        yield jobs
    finally:
        jobs.close()


def _claimed(store: JobStore) -> JobRecord:
    created, _ = store.create(NewJob("extract", {}, dict(CONVERTS), max_attempts=3))
    job = store.claim(created.id, "host:1:test")
    assert job is not None
    return job


def test_an_engine_failure_is_retried_after_the_backoff_and_counted_by_its_breaker(
    store: JobStore,
) -> None:
    breakers = Breakers(BreakerSettings(threshold=2))
    crashed = EngineFailed("LibreOffice exited", engine="LibreOffice").to_dict()
    job: JobRecord | None = _claimed(store)
    for attempt, delay in ((1, 60.0), (2, 120.0)):
        assert job is not None and job.attempts == attempt
        before = datetime.now(UTC)
        record, parts = record_answer(
            store,
            job,
            {"type": "error", "error": crashed},
            cost=JobCost(),
            backoff=BACKOFF,
            breakers=breakers,
        )
        assert (record.status, parts) == (JobStatus.QUEUED, [])
        assert record.run_after is not None
        assert before + timedelta(seconds=delay) <= record.run_after
        assert record.run_after <= datetime.now(UTC) + timedelta(seconds=delay)
        # Not claimed before its delay is over; then claimed for its next attempt.
        assert store.claim(job.id, "host:1:test") is None
        job = store.claim(job.id, "host:1:test", now=record.run_after)
    # Two failures in a row: the breaker of LibreOffice opened, the others' did not.
    assert breakers.state("libreoffice") is BreakerState.OPEN
    assert breakers.state("storage") is BreakerState.CLOSED


def test_a_success_closes_the_count_and_a_refused_attempt_is_not_counted(
    store: JobStore,
) -> None:
    breakers = Breakers(BreakerSettings(threshold=2))
    crashed = EngineFailed("LibreOffice exited", engine="LibreOffice").to_dict()
    job = _claimed(store)
    end_attempt(store, job, crashed, cost=JobCost(), backoff=BACKOFF, breakers=breakers)
    assert breakers.status()["libreoffice"]["failures"] == 1
    done = _claimed(store)
    result = {"uri": "blob://results/r/result.json", "size": 2}
    record, _ = record_answer(
        store,
        done,
        {"type": "done", "result": result},
        cost=JobCost(),
        backoff=BACKOFF,
        breakers=breakers,
    )
    assert record.status == JobStatus.SUCCEEDED
    assert breakers.status()["libreoffice"]["failures"] == 0
    # Refused by a breaker before it ran (``heard`` False): no engine was tried.
    refused = _claimed(store)
    end_attempt(
        store, refused, crashed, cost=JobCost(), backoff=BACKOFF, breakers=breakers, heard=False
    )
    assert breakers.status()["libreoffice"]["failures"] == 0


def test_without_breakers_the_outcome_is_the_same(store: JobStore) -> None:
    """The hard time limit's handler of ``docworker worker`` has no breakers."""
    job = _claimed(store)
    crashed = EngineFailed("LibreOffice exited", engine="LibreOffice").to_dict()
    record = end_attempt(store, job, crashed, cost=JobCost(), backoff=BACKOFF)
    assert record.status == JobStatus.QUEUED and record.attempts == 1
