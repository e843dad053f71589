"""Batches in the job store, on SQLite and PostgreSQL: children made in order, the state
derived from theirs, admission as a whole, cancel, retry, idempotency, retention."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from docworker.errors import ActiveJobsLimit, Conflict, NotFound, QueueFull
from docworker.jobs.models import BatchState, NewBatch
from docworker.jobs.store import JobStatus, JobStore, NewJob

FAMILY = ("extract", "chunk")


def inputs(count: int, tag: str = "") -> list[dict[str, Any]]:
    shas = [hashlib.sha256(f"{tag}{i}".encode()).hexdigest() for i in range(count)]
    return [
        {
            "uri": f"blob://inputs/{sha}",
            "sha256": sha,
            "size": 10,
            "name": f"dir/file-{i}.txt",
            "mime": None,
        }
        for i, sha in enumerate(shas)
    ]


def new_batch(**changes: Any) -> NewBatch:
    fields: dict[str, Any] = {"operation": "extract", "params": {"output": "markdown"}}
    return NewBatch(**(fields | changes))


def run_all(store: JobStore, fail: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Claim every ready job and end it: children at the indexes of ``fail`` fail."""
    while (job := store.claim_next("w1")) is not None:
        if job.batch_index in fail:
            store.mark_failed(job.id, {"code": "corrupt-document"}, retry_delay=None)
        else:
            store.mark_succeeded(job.id, {"uri": "blob://results/x/result.json"})


def test_children_are_jobs_of_the_batch_claimed_in_order(store: JobStore) -> None:
    batch, created = store.create_batch(new_batch(priority=3), inputs(7))
    assert created and batch.total == 7 and batch.state is BatchState.RUNNING
    assert batch.counts[JobStatus.QUEUED] == 7
    claimed = [store.claim_next("w1") for _ in range(7)]
    assert [job.batch_index for job in claimed if job] == list(range(7))
    first = claimed[0]
    assert first is not None
    assert first.batch_id == batch.id and first.priority == 3 and first.parent_id is None
    assert first.input is not None and first.input["name"] == "dir/file-0.txt"
    page = store.batch_children(batch.id, after=2, limit=3)
    assert [job.batch_index for job in page] == [3, 4, 5]
    # Children are listed with their batch only, and do not count in the family's queue.
    assert store.list(batch_id=batch.id, limit=100)[0][0].batch_id == batch.id
    assert store.list(limit=100)[0] == []
    assert store.queued_by_operation() == {}


def test_state_is_derived_from_the_children(store: JobStore) -> None:
    ok, _ = store.create_batch(new_batch(), inputs(3, "a"))
    run_all(store)
    done = store.get_batch(ok.id)
    assert done.state is BatchState.SUCCEEDED and done.progress == 1.0
    assert done.finished_at is not None
    partial, _ = store.create_batch(new_batch(), inputs(3, "b"))
    run_all(store, fail={1})
    assert store.get_batch(partial.id).state is BatchState.PARTIAL
    failed, _ = store.create_batch(new_batch(), inputs(2, "c"))
    run_all(store, fail={0, 1})
    record = store.get_batch(failed.id)
    assert record.state is BatchState.FAILED
    assert record.counts[JobStatus.FAILED] == 2


def test_cancel_and_retry(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(4))
    running = store.claim_next("w1")
    assert running is not None
    cancelled = store.cancel_batch(batch.id)
    assert cancelled.counts[JobStatus.CANCELLED] == 3
    assert store.get(running.id).cancel_requested
    assert cancelled.state is BatchState.RUNNING  # one child still stops
    store.mark_cancelled(running.id)
    assert store.get_batch(batch.id).state is BatchState.CANCELLED
    # Retry queues the failed children only.
    other, _ = store.create_batch(new_batch(), inputs(3, "r"))
    run_all(store, fail={0, 2})
    retried, count = store.retry_batch(other.id)
    assert count == 2 and retried.counts[JobStatus.QUEUED] == 2
    assert retried.state is BatchState.RUNNING
    job = store.claim_next("w1")
    assert job is not None and job.attempts == 1 and job.error is None
    store.mark_succeeded(job.id, {"uri": "blob://results/x/result.json"})
    run_all(store)
    assert store.get_batch(other.id).state is BatchState.SUCCEEDED
    with pytest.raises(NotFound):
        store.cancel_batch("no-such-batch")


def test_a_batch_is_admitted_whole(store: JobStore) -> None:
    store.create_batch(new_batch(), inputs(3), family=FAMILY, max_queued=5)
    with pytest.raises(QueueFull):
        store.create_batch(new_batch(), inputs(3, "x"), family=FAMILY, max_queued=5)
    # Refused whole: nothing of it was made.
    assert sum(store.counts().values()) == 3
    # Another family's batches do not count.
    store.create_batch(new_batch(operation="ocr"), inputs(3, "o"), family=("ocr",), max_queued=5)


def test_a_batch_takes_one_place_of_the_tenant_s_cap(store: JobStore) -> None:
    store.create_batch(new_batch(tenant="t"), inputs(50), max_active=2)
    store.create(NewJob("extract", {}, inputs(1)[0], tenant="t"), max_active=2)
    with pytest.raises(ActiveJobsLimit):
        store.create(NewJob("extract", {}, inputs(1)[0], tenant="t"), max_active=2)
    with pytest.raises(ActiveJobsLimit):
        store.create_batch(new_batch(tenant="t"), inputs(2, "y"), max_active=2)


def test_idempotency_key(store: JobStore) -> None:
    first, created = store.create_batch(new_batch(idempotency_key="k"), inputs(3))
    again, created_again = store.create_batch(new_batch(idempotency_key="k"), inputs(3))
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict):
        store.create_batch(new_batch(idempotency_key="k"), inputs(3, "z"))
    with pytest.raises(Conflict):
        store.create_batch(new_batch(idempotency_key="k", params={"output": "text"}), inputs(3))


def test_retention_takes_the_batch_with_its_last_child(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(2))
    run_all(store)
    store.delete_finished_before(datetime.now(UTC) + timedelta(seconds=1))
    with pytest.raises(NotFound):
        store.get_batch(batch.id)


def test_an_input_with_an_error_is_a_child_failed_at_once(store: JobStore) -> None:
    error = {"code": "url-unreadable", "title": "URL unreadable", "detail": "404"}
    given = inputs(2, "e")
    given.insert(1, {"name": "missing.pdf", "url": "http://x.example/missing.pdf", "error": error})
    batch, _ = store.create_batch(new_batch(), given, family=FAMILY, max_queued=2, max_active=1)
    # Not queued: not counted against the batches' queue (max_queued is 2).
    assert batch.counts[JobStatus.QUEUED] == 2 and batch.counts[JobStatus.FAILED] == 1
    failed = store.batch_children(batch.id)[1]
    assert failed.status is JobStatus.FAILED and failed.error == error
    assert failed.input == {"name": "missing.pdf", "url": "http://x.example/missing.pdf"}
    assert failed.finished_at is not None
    run_all(store)
    assert store.get_batch(batch.id).state is BatchState.PARTIAL
    # Nothing stored to run again: a retry leaves it failed.
    _, retried = store.retry_batch(batch.id)
    assert retried == 0
    only, _ = store.create_batch(new_batch(), [given[1]])
    assert only.state is BatchState.FAILED and only.finished_at is not None


def test_batches_are_listed_newest_first_per_tenant(store: JobStore) -> None:
    made = [
        store.create_batch(new_batch(tenant=tenant, operation=operation), inputs(1, tenant))[0]
        for tenant, operation in [("t1", "extract"), ("t2", "extract"), ("t1", "chunk")] * 2
    ]
    mine = [b for b in made if b.tenant == "t1"]
    first, cursor = store.list_batches(tenant="t1", limit=3)
    rest, last = store.list_batches(tenant="t1", limit=3, cursor=cursor)
    assert [b.id for b in [*first, *rest]] == [b.id for b in reversed(mine)]
    assert cursor is not None and last is None
    chunked, _ = store.list_batches(tenant="t1", operation="chunk")
    assert {b.id for b in chunked} == {b.id for b in mine if b.operation == "chunk"}
    every, _ = store.list_batches(limit=100)
    assert {b.id for b in made} <= {b.id for b in every}
    assert all(b.counts[JobStatus.QUEUED] == 1 for b in first)
