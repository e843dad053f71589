"""The job store against real databases: an SQLite file and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

import docworker.jobs
from docworker.errors import Conflict, DependencyDown, InvalidParameter, NotFound
from docworker.jobs.store import (
    TERMINAL_STATUSES,
    JobRecord,
    JobStatus,
    JobStore,
    NewJob,
)

INPUT = {
    "uri": "file:///blobs/ab/abcd",
    "sha256": "ab" * 32,
    "size": 10,
    "name": "a.pdf",
    "mime": "application/pdf",
}
TIMESTAMPS = ("created_at", "updated_at", "started_at", "finished_at", "run_after", "heartbeat_at")


def new_job(operation: str = "extract", **changes: Any) -> NewJob:
    fields: dict[str, Any] = {"operation": operation, "params": {"format": "md"}, "input": INPUT}
    fields.update(changes)
    return NewJob(**fields)


def add(store: JobStore, count: int = 1, **changes: Any) -> list[JobRecord]:
    return [store.create(new_job(**changes))[0] for _ in range(count)]


def assert_aware_utc(record: JobRecord) -> None:
    for name in TIMESTAMPS:
        value = getattr(record, name)
        assert value is None or value.utcoffset() == timedelta(0), name


# -- creating and reading -------------------------------------------------------------


def test_create_and_get(store: JobStore) -> None:
    record, created = store.create(new_job(params={"pages": (1, 3)}, priority=2))
    assert created
    assert record.id == str(uuid.UUID(record.id, version=4))
    assert record.status is JobStatus.QUEUED
    assert (record.attempts, record.max_attempts, record.priority) == (0, 3, 2)
    assert record.params == {"pages": [1, 3]}
    assert record.input == INPUT
    assert record.error is None and record.result is None and not record.cancel_requested
    assert record.created_at == record.updated_at
    assert abs(record.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert_aware_utc(record)
    assert store.get(record.id) == record


def test_get_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        store.get(str(uuid.uuid4()))


def test_list_filters(store: JobStore) -> None:
    extracts = add(store, 3)
    converts = add(store, 2, operation="convert")
    claimed = store.claim_next("w")
    assert claimed is not None and claimed.id == extracts[0].id

    def ids(**filters: Any) -> list[str]:
        return [record.id for record in store.list(**filters)[0]]

    assert ids() == [r.id for r in reversed(extracts + converts)]
    assert ids(operation="convert") == [converts[1].id, converts[0].id]
    assert ids(status=[JobStatus.RUNNING]) == [claimed.id]
    assert set(ids(status=[JobStatus.QUEUED, JobStatus.RUNNING])) == {
        r.id for r in extracts + converts
    }
    assert ids(status=[]) == []
    middle = extracts[2].created_at
    assert ids(created_after=middle) == [r.id for r in reversed([extracts[2], *converts])]
    assert ids(created_before=middle) == [extracts[1].id, extracts[0].id]
    with pytest.raises(InvalidParameter):
        store.list(created_after=middle.replace(tzinfo=None))


def test_list_pages_with_a_cursor(store: JobStore) -> None:
    jobs = add(store, 7)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(4):
        page, cursor = store.list(limit=3, cursor=cursor)
        seen += [record.id for record in page]
        if cursor is None:
            break
    assert cursor is None
    assert seen == [record.id for record in reversed(jobs)]
    assert len(store.list(limit=0)[0]) == 1
    with pytest.raises(InvalidParameter):
        store.list(cursor="not-a-cursor")


def test_idempotency_key_returns_the_first_job(store: JobStore) -> None:
    first, created = store.create(new_job(idempotency_key="k1", params={"p": (1, 2)}))
    again, created_again = store.create(new_job(idempotency_key="k1", params={"p": [1, 2]}))
    assert created and not created_again
    assert again == first
    other, created_other = store.create(new_job(idempotency_key="k2"))
    assert created_other and other.id != first.id


def test_idempotency_key_reused_for_another_request_conflicts(store: JobStore) -> None:
    store.create(new_job(idempotency_key="k"))
    changes: list[dict[str, Any]] = [
        {"params": {"format": "txt"}},
        {"operation": "convert"},
        {"input": {**INPUT, "sha256": "0" * 64}},
        {"input": None},
    ]
    for change in changes:
        with pytest.raises(Conflict):
            store.create(new_job(idempotency_key="k", **change))


def test_idempotency_key_race_creates_one_job(store: JobStore) -> None:
    results = run_together(4, lambda _: store.create(new_job(idempotency_key="race")))
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1


# -- claiming ---------------------------------------------------------------------------


def test_claim_order_priority_then_age(store: JobStore) -> None:
    old_low, new_low = add(store, 2)
    (high,) = add(store, priority=5)
    (other,) = add(store, operation="convert", priority=9)
    assert store.claim_next("w", operations={"extract"}) == store.get(high.id)
    assert store.claim_next("w", operations=[]) is None
    order = [store.claim_next("w") for _ in range(4)]
    assert [r.id if r else None for r in order] == [other.id, old_low.id, new_low.id, None]


def test_claim_sets_the_running_fields(store: JobStore) -> None:
    add(store)
    now = datetime.now(UTC)
    claimed = store.claim_next("worker-1", now=now)
    assert claimed is not None
    assert claimed.status is JobStatus.RUNNING
    assert (claimed.attempts, claimed.worker) == (1, "worker-1")
    assert claimed.started_at == claimed.heartbeat_at == claimed.updated_at == now
    assert_aware_utc(claimed)
    with pytest.raises(InvalidParameter):
        store.claim_next("w", now=now.replace(tzinfo=None))


def test_retried_job_waits_for_run_after(store: JobStore) -> None:
    (job,) = add(store)
    store.claim_next("w")
    retried = store.mark_failed(job.id, {"code": "engine-failed"}, retry_delay=60)
    assert retried.run_after is not None
    assert store.claim_next("w", now=retried.run_after - timedelta(seconds=1)) is None
    assert store.queue_depth() == (0, None)
    again = store.claim_next("w", now=retried.run_after)
    assert again is not None and again.attempts == 2


def test_a_job_is_claimed_by_id_once_and_when_due(store: JobStore) -> None:
    (job,) = add(store)
    claimed = store.claim(job.id, "w1")
    assert claimed is not None and (claimed.status, claimed.worker) == (JobStatus.RUNNING, "w1")
    # A message delivered twice: the job is no longer queued.
    assert store.claim(job.id, "w2") is None
    retried = store.mark_failed(job.id, {"code": "engine-failed"}, retry_delay=60)
    assert retried.run_after is not None
    assert store.claim(job.id, "w2", now=retried.run_after - timedelta(seconds=1)) is None
    again = store.claim(job.id, "w2", now=retried.run_after)
    assert again is not None and (again.attempts, again.worker) == (2, "w2")
    store.mark_succeeded(job.id, {"uri": "x"})
    assert store.claim(job.id, "w3") is None
    assert store.claim("00000000-0000-4000-8000-000000000000", "w3") is None
    # Of many claimers of one job, one wins.
    (raced,) = add(store)
    won = run_together(4, lambda n: store.claim(raced.id, f"w{n}"))
    assert sum(record is not None for record in won) == 1


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        return [future.result(timeout=60) for future in futures]


def claim_all(store: JobStore, worker: str) -> list[str]:
    claimed = []
    while (job := store.claim_next(worker)) is not None:
        claimed.append(job.id)
    return claimed


def test_concurrent_claims_from_threads(store: JobStore) -> None:
    jobs = add(store, 40)
    first, second = run_together(2, lambda i: claim_all(store, f"thread-{i}"))
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(job.id for job in jobs)


# Claims jobs in its own process once told "go" on stdin, and prints their ids last.
CLAIMER = """
import json, sys
from docworker.jobs.store import JobStore
store = JobStore(sys.argv[1])
store.ping()
print("ready", flush=True)
sys.stdin.readline()
claimed = []
while (job := store.claim_next(sys.argv[2])) is not None:
    claimed.append(job.id)
store.close()
print(json.dumps(claimed), flush=True)
"""


def test_concurrent_claims_from_processes(store: JobStore, database_url: str) -> None:
    jobs = add(store, 40)
    # The test's own process is the second claimer.
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, database_url, "child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    mine = claim_all(store, "parent")
    output = child.communicate(timeout=60)[0]
    assert child.returncode == 0
    theirs = json.loads(output.strip().splitlines()[-1])
    assert not set(mine) & set(theirs)
    assert sorted(mine + theirs) == sorted(job.id for job in jobs)


# -- finishing --------------------------------------------------------------------------


def test_transient_failures_retry_then_die(store: JobStore) -> None:
    (job,) = add(store, max_attempts=2)
    store.claim_next("w")
    error = {"code": "engine-failed", "title": "Engine failed", "detail": "crashed"}
    retried = store.mark_failed(job.id, error, retry_delay=0)
    assert retried.status is JobStatus.QUEUED
    assert (retried.error, retried.worker, retried.finished_at) == (error, None, None)
    assert retried.run_after is not None and retried.updated_at > job.updated_at
    assert store.claim_next("w") is not None
    dead = store.mark_failed(job.id, {**error, "detail": "again"}, retry_delay=0)
    assert dead.status is JobStatus.DEAD
    assert dead.attempts == 2 and dead.error == {**error, "detail": "again"}
    assert dead.finished_at is not None
    assert_aware_utc(dead)


def test_a_poison_document_is_dead_after_one_attempt(store: JobStore) -> None:
    (job, cancelled) = add(store, max_attempts=3, count=2)
    store.claim_next("w")
    store.claim_next("w")
    error = {"code": "job-timeout", "detail": "the job ran longer than its limit of 1 s"}
    dead = store.mark_dead(job.id, error)
    assert (dead.status, dead.attempts, dead.error) == (JobStatus.DEAD, 1, error)
    assert dead.finished_at is not None
    # Cancellation asked for meanwhile wins.
    store.request_cancel(cancelled.id)
    assert store.mark_dead(cancelled.id, error).status is JobStatus.CANCELLED


def test_bad_input_fails_at_once(store: JobStore) -> None:
    (job,) = add(store)
    store.claim_next("w")
    failed = store.mark_failed(job.id, {"code": "corrupt-document"}, retry_delay=None)
    assert failed.status is JobStatus.FAILED and failed.attempts == 1
    assert failed.finished_at is not None


def test_success_clears_an_earlier_error(store: JobStore) -> None:
    (job,) = add(store)
    store.claim_next("w")
    store.mark_failed(job.id, {"code": "engine-failed"}, retry_delay=0)
    store.claim_next("w")
    store.set_progress(job.id, 0.5, "page 1 of 2")
    assert (store.get(job.id).progress, store.get(job.id).progress_message) == (0.5, "page 1 of 2")
    done = store.mark_succeeded(job.id, {"uri": "file:///r", "mime": "text/markdown", "size": 3})
    assert done.status is JobStatus.SUCCEEDED
    assert done.error is None and done.progress == 1.0 and done.result is not None
    assert store.mark_failed(job.id, {"code": "x"}, retry_delay=0) == done
    assert store.get(job.id) == done


def test_partial_success_keeps_the_error_items(store: JobStore) -> None:
    (job,) = add(store)
    store.claim_next("w")
    items = [{"code": "corrupt-document", "page": 3}]
    done = store.mark_succeeded(job.id, {"uri": "file:///r"}, errors=items)
    assert done.status is JobStatus.PARTIAL
    assert done.error == {"code": "partial", "items": items}


def test_progress_is_clamped_and_only_for_running_jobs(store: JobStore) -> None:
    (job,) = add(store)
    store.set_progress(job.id, 0.3, None)
    assert store.get(job.id).progress == 0.0
    store.claim_next("w")
    store.set_progress(job.id, 7.0, "almost")
    assert store.get(job.id).progress == 1.0


# -- cancelling -------------------------------------------------------------------------


def test_cancel_a_queued_job(store: JobStore) -> None:
    (job,) = add(store)
    cancelled = store.request_cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    assert store.claim_next("w") is None
    assert store.request_cancel(job.id) == cancelled


def test_cancel_a_running_job(store: JobStore) -> None:
    (job,), (other,) = add(store), add(store)
    store.claim_next("w")
    store.claim_next("w")
    flagged = store.request_cancel(job.id)
    assert flagged.status is JobStatus.RUNNING and flagged.cancel_requested
    assert store.cancel_requested_among([job.id, other.id]) == {job.id}
    assert store.cancel_requested_among([]) == set()
    cancelled = store.mark_cancelled(job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    assert store.mark_succeeded(job.id, {"uri": "x"}) == cancelled
    assert store.cancel_requested_among([job.id]) == set()


def test_a_job_whose_cancel_was_asked_is_not_retried(store: JobStore) -> None:
    (job,) = add(store)
    store.claim_next("w")
    store.request_cancel(job.id)
    ended = store.mark_failed(job.id, {"code": "engine-failed"}, retry_delay=0)
    assert ended.status is JobStatus.CANCELLED


# -- abandoned jobs ---------------------------------------------------------------------


def test_requeue_stale(store: JobStore) -> None:
    (retried,), (buried,), (alive,) = add(store), add(store, max_attempts=1), add(store)
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=10)
    store.claim_next("dead-worker", now=long_ago)
    store.claim_next("dead-worker", now=long_ago)
    store.claim_next("live-worker", now=long_ago)
    store.heartbeat([alive.id], now=now)
    assert store.get(alive.id).heartbeat_at == now
    changed = {r.id: r for r in store.requeue_stale(older_than=60, now=now)}
    assert set(changed) == {retried.id, buried.id}
    assert changed[retried.id].status is JobStatus.QUEUED
    assert changed[retried.id].worker is None
    assert changed[buried.id].status is JobStatus.DEAD
    assert (changed[buried.id].error or {}).get("code") == "engine-failed"
    assert store.get(alive.id).status is JobStatus.RUNNING
    assert store.requeue_stale(older_than=60, now=now) == []


def test_requeue_worker(store: JobStore) -> None:
    (mine,), (theirs,) = add(store), add(store)
    store.claim_next("executor-a")
    store.claim_next("executor-b")
    assert [r.id for r in store.requeue_worker("executor-a")] == [mine.id]
    assert store.get(mine.id).status is JobStatus.QUEUED
    assert store.get(theirs.id).status is JobStatus.RUNNING


# -- housekeeping -----------------------------------------------------------------------


def test_delete_finished_before(store: JobStore) -> None:
    old, recent, queued = add(store, 3)
    store.request_cancel(old.id)
    cutoff = datetime.now(UTC)
    store.request_cancel(recent.id)
    deleted = store.delete_finished_before(cutoff)
    assert [r.id for r in deleted] == [old.id]
    assert deleted[0].status in TERMINAL_STATUSES
    with pytest.raises(NotFound):
        store.get(old.id)
    assert {r.id for r in store.list()[0]} == {recent.id, queued.id}


def test_jobs_found_by_a_tag_of_their_input(store: JobStore) -> None:
    tagged = {**INPUT, "v1": {"document_id": "doc-1", "payload": {"id": "doc-1"}}}
    first = add(store, input=tagged)[0]
    add(store, input={**INPUT, "v1": {"document_id": "doc-2"}})
    add(store)
    second = add(store, operation="ocr", input=tagged)[0]
    found = store.with_input_tag(("v1", "document_id"), "doc-1")
    assert [r.id for r in found] == [first.id, second.id]
    assert found[0].input == tagged
    assert store.with_input_tag(("v1", "document_id"), "nothing") == []
    # A split job's parts share its input but are not listed.
    claimed = store.claim_next("w")
    assert claimed is not None and claimed.id == first.id
    store.split(first.id, [{"params": {"pages": "1"}}, {"params": {"pages": "2"}}])
    assert [r.id for r in store.with_input_tag(("v1", "document_id"), "doc-1")] == [
        first.id,
        second.id,
    ]


def test_counts_and_queue_depth(store: JobStore) -> None:
    assert store.counts() == dict.fromkeys(JobStatus, 0)
    assert store.queue_depth() == (0, None)
    jobs = add(store, 3)
    store.claim_next("w")
    store.request_cancel(jobs[2].id)
    counts = store.counts()
    assert (counts[JobStatus.QUEUED], counts[JobStatus.RUNNING]) == (1, 1)
    assert counts[JobStatus.CANCELLED] == 1 and sum(counts.values()) == 3
    depth, age = store.queue_depth()
    assert depth == 1 and age is not None and 0 <= age < 60


MIGRATIONS = Path(docworker.jobs.__file__).parent / "migrations" / "versions"


def test_migrate_twice_is_a_no_op(store: JobStore, database_url: str) -> None:
    (job,) = add(store)
    store.migrate()
    assert store.get(job.id) == job
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    newest = max(p.name.split("_", 1)[0] for p in MIGRATIONS.glob("[0-9]*_*.py"))
    assert versions == [(newest,)]


def test_concurrent_migrations_on_a_new_database(database_url: str) -> None:
    stores = [JobStore(database_url) for _ in range(2)]
    run_together(2, lambda i: stores[i].migrate())
    assert stores[0].create(new_job())[1]
    for job_store in stores:
        job_store.close()


def test_ping(store: JobStore, tmp_path: Path) -> None:
    store.ping()
    unreachable = JobStore(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")
    with pytest.raises(DependencyDown):
        unreachable.ping()
    unreachable.close()


# -- jobs split into parts ----------------------------------------------------------------


def split_job(store: JobStore, parts: int = 3, **changes: Any) -> tuple[JobRecord, list[JobRecord]]:
    add(store, **changes)
    job = store.claim_next("w1")
    assert job is not None
    return store.split(job.id, [{"params": {"pages": str(n + 1)}} for n in range(parts)])


def test_split_makes_parts_that_inherit_the_job(store: JobStore) -> None:
    parent, parts = split_job(store, priority=3, params={"output": "text", "pages": "1-3"})
    assert parent.waiting_for_parts and parent.worker is None and parent.heartbeat_at is None
    assert (parent.children_total, parent.children_pending) == (3, 3)
    assert [p.part for p in parts] == [0, 1, 2]
    for number, part in enumerate(parts, start=1):
        assert part.parent_id == parent.id and part.status is JobStatus.QUEUED
        assert part.params == {"output": "text", "pages": str(number)}
        assert part.input == parent.input and part.priority == 3
        assert part.created_at == parent.created_at
    assert [p.id for p in store.parts_of(parent.id)] == [p.id for p in parts]
    # Listings show jobs, not their parts, unless asked.
    listed, _ = store.list()
    assert [r.id for r in listed] == [parent.id]
    listed, _ = store.list(parent_id=parent.id)
    assert {r.id for r in listed} == {p.id for p in parts}
    assert len(store.list(include_parts=True)[0]) == 4
    # Only a running job that was not split already can be split.
    with pytest.raises(Conflict):
        store.split(parent.id, [{"params": {"pages": "1"}}])


def test_a_waiting_job_is_neither_stale_nor_claimed(store: JobStore) -> None:
    parent, _ = split_job(store, parts=2)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.requeue_stale(older_than=30, now=later) == []
    assert store.requeue_worker("w1") == []
    claimed = [store.claim_next("w2"), store.claim_next("w2"), store.claim_next("w2")]
    assert [c.parent_id if c else None for c in claimed] == [parent.id, parent.id, None]


def test_the_last_part_to_end_queues_the_job_to_merge(store: JobStore) -> None:
    parent, _ = split_job(store, parts=3)
    first, second, third = (store.claim_next("w2") for _ in range(3))
    assert first and second and third
    store.mark_succeeded(first.id, {"uri": "r1"})
    assert store.get(parent.id).progress_message == "1 of 3 parts done"
    store.mark_failed(second.id, {"code": "corrupt-document"}, retry_delay=None)
    waiting = store.get(parent.id)
    assert waiting.waiting_for_parts and waiting.children_pending == 1
    assert 0.6 < waiting.progress < 0.7
    store.mark_succeeded(third.id, {"uri": "r3"})
    ready = store.get(parent.id)
    assert ready.status is JobStatus.QUEUED and ready.children_pending == 0
    merging = store.claim_next("w3")
    assert merging is not None and merging.id == parent.id
    # Merging is the attempt that split the job, and keeps the parts' progress.
    assert merging.attempts == 1 and merging.progress == pytest.approx(0.95)
    statuses = [p.status for p in store.parts_of(parent.id)]
    assert statuses == [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.SUCCEEDED]
    done = store.mark_succeeded(parent.id, {"uri": "merged"}, errors=[{"code": "x"}])
    assert done.status is JobStatus.PARTIAL


def test_a_part_buried_by_a_lost_executor_still_counts(store: JobStore) -> None:
    parent, _ = split_job(store, parts=1, max_attempts=1)
    part = store.claim_next("w2")
    assert part is not None
    (dead,) = store.requeue_worker("w2")
    assert dead.status is JobStatus.DEAD
    assert store.get(parent.id).status is JobStatus.QUEUED


def test_cancelling_a_split_job_cancels_its_parts(store: JobStore) -> None:
    parent, _ = split_job(store, parts=3)
    running = store.claim_next("w2")
    assert running is not None
    cancelled = store.request_cancel(parent.id)
    assert cancelled.status is JobStatus.CANCELLED
    parts = {p.id: p for p in store.parts_of(parent.id)}
    assert parts[running.id].status is JobStatus.RUNNING and parts[running.id].cancel_requested
    assert sum(p.status is JobStatus.CANCELLED for p in parts.values()) == 2
    store.mark_cancelled(running.id)
    assert store.get(parent.id).status is JobStatus.CANCELLED
    assert store.claim_next("w3") is None


def test_a_part_done_after_its_job_was_cancelled_ends_cancelled(store: JobStore) -> None:
    """The worker of a part may end it before it sees the cancel: the part is cancelled
    as its job is (no merge reads its result). A job of its own keeps what it made."""
    parent, _ = split_job(store, parts=2)
    running = store.claim_next("w2")
    assert running is not None
    store.request_cancel(parent.id)
    ended = store.mark_succeeded(running.id, {"uri": "r"})
    assert ended.status is JobStatus.CANCELLED and ended.result is None
    assert store.get(parent.id).status is JobStatus.CANCELLED
    (job,) = add(store)
    claimed = store.claim_next("w")
    assert claimed is not None and claimed.id == job.id
    store.request_cancel(job.id)
    kept = store.mark_succeeded(job.id, {"uri": "made"})
    assert kept.status is JobStatus.SUCCEEDED and kept.result == {"uri": "made"}


def test_a_split_asked_to_cancel_is_cancelled(store: JobStore) -> None:
    (job,) = add(store)
    claimed = store.claim_next("w1")
    assert claimed is not None
    store.request_cancel(job.id)
    record, parts = store.split(job.id, [{"params": {"pages": p}} for p in ("1", "2")])
    assert record.status is JobStatus.CANCELLED and parts == []


def test_parts_are_deleted_with_their_job(store: JobStore) -> None:
    parent, parts = split_job(store, parts=2)
    for _ in parts:
        claimed = store.claim_next("w2")
        assert claimed is not None
        store.mark_succeeded(claimed.id, {"uri": "r"})
    later = datetime.now(UTC) + timedelta(days=1)
    # Parts alone are never deleted while their job is still to merge.
    assert store.delete_finished_before(later) == []
    merging = store.claim_next("w3")
    assert merging is not None
    store.mark_succeeded(parent.id, {"uri": "merged"})
    deleted = store.delete_finished_before(later)
    assert {r.id for r in deleted} == {parent.id, *(p.id for p in parts)}
