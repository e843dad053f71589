"""The job store's look for queued jobs whose message was lost (the celery executor's
republish sweep, docs/distributed.md "Faults"), on each database."""

from __future__ import annotations

from datetime import timedelta

from docworker.jobs.store import JobStatus, JobStore
from tests.integration.test_job_store import new_job


def test_a_queued_job_nobody_took_is_handed_out_once_per_period(store: JobStore) -> None:
    queued, _ = store.create(new_job())
    assert store.unpublished(older_than=60) == []  # just queued: its message is on its way
    later = queued.updated_at + timedelta(seconds=61)
    (found,) = store.unpublished(older_than=60, now=later)
    assert (found.id, found.status) == (queued.id, JobStatus.QUEUED)
    assert found.updated_at == later
    # Touched: the sweeps of other workers pass it over until the period has passed again.
    assert store.unpublished(older_than=60, now=later + timedelta(seconds=30)) == []
    again = store.unpublished(older_than=60, now=later + timedelta(seconds=61))
    assert [record.id for record in again] == [queued.id]


def test_jobs_claimed_or_waiting_for_their_retry_delay_are_not_handed_out(
    store: JobStore,
) -> None:
    running, _ = store.create(new_job())
    assert store.claim(running.id, "worker-1") is not None
    retried, _ = store.create(new_job())
    assert store.claim(retried.id, "worker-1") is not None
    store.mark_failed(retried.id, {"code": "engine-failed"}, retry_delay=600)
    now = running.created_at + timedelta(seconds=120)
    assert store.unpublished(older_than=60, now=now) == []
    # Once its retry has been due for the period, the retried job's message is late too.
    late = running.created_at + timedelta(seconds=600 + 120)
    assert [record.id for record in store.unpublished(older_than=60, now=late)] == [retried.id]


def test_the_highest_priority_and_oldest_come_first_a_limit_at_a_time(store: JobStore) -> None:
    low, _ = store.create(new_job(priority=-1))
    first, _ = store.create(new_job())
    second, _ = store.create(new_job())
    high, _ = store.create(new_job(priority=5))
    now = high.created_at + timedelta(seconds=120)
    taken = store.unpublished(older_than=60, limit=3, now=now)
    assert [record.id for record in taken] == [high.id, first.id, second.id]
    assert [record.id for record in store.unpublished(older_than=60, now=now)] == [low.id]


def test_only_the_jobs_of_the_operations_asked_for(store: JobStore) -> None:
    extract, _ = store.create(new_job())
    ocr, _ = store.create(new_job("ocr"))
    now = ocr.created_at + timedelta(seconds=120)
    assert store.unpublished(older_than=60, operations=[], now=now) == []
    taken = store.unpublished(older_than=60, operations=["ocr"], now=now)
    assert [record.id for record in taken] == [ocr.id]
    assert [record.id for record in store.unpublished(older_than=60, now=now)] == [extract.id]
