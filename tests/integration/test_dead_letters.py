"""Retries, attempt history and dead letters in the job store and the job queue, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from docworker.auth import Principal
from docworker.errors import Conflict, Forbidden
from docworker.jobs.events import JobEvents
from docworker.jobs.queue import DeadLetterFilter, JobQueue
from docworker.jobs.store import ClaimPolicy, JobRecord, JobStatus, JobStore
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from tests.integration.test_job_store import add

CRASH = {"code": "engine-failed", "detail": "LibreOffice exited during the conversion"}
TIMEOUT = {"code": "job-timeout", "detail": "the job ran longer than its limit of 300 s"}
BAD = {"code": "corrupt-document", "detail": "the docx document could not be read"}


def _dead(store: JobStore, error: dict[str, str], **changes: object) -> JobRecord:
    """A job that ended after one attempt with ``error``: dead, or failed for a bad input."""
    (job,) = add(store, max_attempts=1, **changes)
    claimed = store.claim_next("host:1:w")
    assert claimed is not None and claimed.id == job.id
    delay = None if error is BAD else 0.0
    return store.mark_failed(job.id, error, retry_delay=delay)


@pytest.mark.parametrize(
    "policy", [ClaimPolicy(), ClaimPolicy(fair=False)], ids=["by-tenant", "by-priority"]
)
def test_a_retried_job_is_not_claimed_before_its_time_and_is_after(
    store: JobStore, policy: ClaimPolicy
) -> None:
    (job,) = add(store, tenant="acme")
    store.claim_next("w1", policy=policy)
    retried = store.mark_failed(job.id, CRASH, retry_delay=30)
    assert retried.status == JobStatus.QUEUED and retried.run_after is not None
    early = retried.run_after - timedelta(seconds=1)
    assert store.claim_next("w2", now=early, policy=policy) is None
    again = store.claim_next("w2", now=retried.run_after, policy=policy)
    assert again is not None and again.id == job.id and again.attempts == 2


def test_each_attempt_is_kept_in_the_job_history(store: JobStore) -> None:
    (job,) = add(store, max_attempts=2)
    first = store.claim_next("host:1:a")
    assert first is not None
    retried = store.mark_failed(job.id, CRASH, retry_delay=0)
    assert store.claim_next("host:1:b") is not None
    dead = store.mark_failed(job.id, CRASH | {"detail": "again"}, retry_delay=0)
    assert dead.status == JobStatus.DEAD and dead.attempts == 2
    one, two = dead.history
    assert one["attempt"] == 1 and two["attempt"] == 2
    assert (one["worker"], two["worker"]) == ("host:1:a", "host:1:b")
    assert (one["outcome"], two["outcome"]) == ("retried", "dead")
    assert one["error"] == {"code": "engine-failed", "detail": CRASH["detail"]}
    assert two["error"]["detail"] == "again"
    assert one["retry_at"] == retried.run_after.isoformat()  # type: ignore[union-attr]
    assert one["started_at"] == first.started_at.isoformat()  # type: ignore[union-attr]
    assert datetime.fromisoformat(one["ended_at"]) <= datetime.fromisoformat(two["started_at"])
    # A success after a failure: no error in its entry; the history reads back the same.
    (ok,) = add(store)
    store.claim_next("host:1:c")
    store.mark_succeeded(ok.id, {"payload": {}})
    assert [e["outcome"] for e in store.get(ok.id).history] == ["succeeded"]
    assert store.get(ok.id).history[0]["error"] is None
    # A job held back (an engine's breaker tries the engine with another job) is queued
    # again as if it had not been claimed: no attempt counted, none recorded.
    (held,) = add(store)
    claimed = store.claim_next("w")
    assert claimed is not None and claimed.id == held.id and claimed.attempts == 1
    back = store.defer(held.id, delay=5)
    assert back.status == JobStatus.QUEUED and back.attempts == 0 and back.history == []
    assert back.run_after is not None and back.worker is None


def test_dead_letters_filter_by_operation_error_and_time(store: JobStore) -> None:
    crashed = _dead(store, CRASH, operation="convert")
    timed_out = _dead(store, TIMEOUT, operation="extract")
    assert crashed.finished_at is not None and timed_out.finished_at is not None
    _dead(store, BAD)  # failed, not dead

    def dead(**filters: object) -> list[str]:
        records, _ = store.list(status=[JobStatus.DEAD], **filters)  # type: ignore[arg-type]
        return [r.id for r in records]

    assert dead() == [timed_out.id, crashed.id]
    assert dead(operation="convert") == [crashed.id]
    assert dead(error_code="job-timeout") == [timed_out.id]
    assert dead(finished_after=timed_out.finished_at) == [timed_out.id]
    assert dead(finished_before=timed_out.finished_at) == [crashed.id]
    page, cursor = store.list(status=[JobStatus.DEAD], limit=1)
    assert [r.id for r in page] == [timed_out.id] and cursor is not None
    page, cursor = store.list(status=[JobStatus.DEAD], limit=1, cursor=cursor)
    assert [r.id for r in page] == [crashed.id] and cursor is None


def test_a_dead_job_is_retried_with_fresh_attempts_and_its_history(store: JobStore) -> None:
    dead = _dead(store, CRASH)
    again = store.retry(dead.id, attempts=3)
    assert again.status == JobStatus.QUEUED and again.max_attempts == 4
    assert again.error is None and again.finished_at is None and again.run_after is None
    assert [e["outcome"] for e in again.history] == ["dead"]
    claimed = store.claim_next("w")
    assert claimed is not None and claimed.id == dead.id and claimed.attempts == 2
    done = store.mark_succeeded(dead.id, {"payload": {}})
    assert [e["outcome"] for e in done.history] == ["dead", "succeeded"]
    # A failed job (bad input) may be retried too; a job that has not ended may not.
    failed = _dead(store, BAD)
    assert store.retry(failed.id, attempts=1).status == JobStatus.QUEUED
    with pytest.raises(Conflict, match="only a dead or failed job"):
        store.retry(failed.id, attempts=1)
    with pytest.raises(Conflict):
        store.retry(done.id, attempts=1)


def _queue(store: JobStore, tmp_path: Path) -> JobQueue:
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    return JobQueue(
        store, blobs, None, JobEvents(), max_attempts=3, keys=SecretKeys([Fernet.generate_key()])
    )


def test_dead_letters_are_scoped_to_the_tenant_and_replayed_a_bounded_number_at_a_time(
    store: JobStore, tmp_path: Path
) -> None:
    queue = _queue(store, tmp_path)
    ours = [_dead(store, CRASH, tenant="acme", operation=op) for op in ("convert", "extract")]
    theirs = _dead(store, CRASH, tenant="other")
    dead = [_dead(store, CRASH) for _ in range(3)]
    reader = Principal("acme", "k1", frozenset({"read"}))
    converter = Principal("acme", "k2", frozenset({"read", "submit:convert"}))
    submitter = Principal("acme", "k3", frozenset({"read", "submit"}))
    everything = DeadLetterFilter()
    listed, _ = queue.dead_letters(reader, everything, 50, None)
    assert {r.id for r in listed} == {r.id for r in ours}
    with pytest.raises(Forbidden):
        queue.replay(reader, everything, 10, 3)
    with pytest.raises(Forbidden):
        queue.replay(converter, everything, 10, 3)  # every operation: needs 'submit'
    replayed, more = queue.replay(converter, DeadLetterFilter(operation="convert"), 10, 3)
    assert [r.id for r in replayed] == [ours[0].id] and not more
    replayed, more = queue.replay(submitter, everything, 10, 3)
    assert [r.id for r in replayed] == [ours[1].id] and not more
    assert store.get(theirs.id).status == JobStatus.DEAD  # another tenant's stays
    # A replay is bounded, newest first, and says when more are dead.
    admin = Principal.open()
    replayed, more = queue.replay(admin, DeadLetterFilter(), 2, 3)
    assert [r.id for r in replayed] == [dead[2].id, dead[1].id] and more
    replayed, more = queue.replay(admin, DeadLetterFilter(), 2, 3)
    assert [r.id for r in replayed] == [dead[0].id, theirs.id] and not more  # an admin's
    assert all(r.status == JobStatus.QUEUED and r.max_attempts == 4 for r in replayed)
