"""Batch events in the job store, on SQLite and PostgreSQL: written in the transactions of
the batch's creation, of its children's ends, of its cancellation and its retry;
progress coalesced; the batch's end recorded once however its children end; its
webhooks queued in the outbox; deleted with the batch."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from docworker.errors import NotFound
from docworker.jobs.journal import Journal, Subscription, batch_key
from docworker.jobs.models import JobEventRecord, NewBatch
from docworker.jobs.outbox import Outbox
from docworker.jobs.store import JobStatus, JobStore
from docworker.jobs.webhooks import reseal_webhook
from docworker.sealing import SecretKeys


def inputs(count: int, tag: str = "") -> list[dict[str, Any]]:
    shas = [hashlib.sha256(f"{tag}{i}".encode()).hexdigest() for i in range(count)]
    return [
        {"uri": f"blob://inputs/{sha}", "sha256": sha, "size": 10, "name": f"f-{i}.txt"}
        for i, sha in enumerate(shas)
    ]


def new_batch(**changes: Any) -> NewBatch:
    return NewBatch(**({"operation": "extract", "params": {}} | changes))


def run_all(store: JobStore, fail: Collection[int] = ()) -> None:
    """Claim every ready job and end it: children at the indexes of ``fail`` fail."""
    while (job := store.claim_next("w1")) is not None:
        if job.batch_index in fail:
            store.mark_failed(job.id, {"code": "corrupt-document"}, retry_delay=None)
        else:
            store.mark_succeeded(job.id, RESULT)


RESULT = {"uri": "blob://results/x/result.json"}
HOOK = {
    "url": "https://hooks.example.com/batches",
    "events": ["batch.progress", "batch.succeeded", "batch.partial"],
    "secret": None,
}


def events(store: JobStore, batch_id: str, after: int = 0) -> list[JobEventRecord]:
    return store.batch_events_after(batch_id, after)[1]


def test_creation_child_ends_and_the_end_are_events_numbered_per_batch(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(3))
    first = events(store, batch.id)
    assert [e.kind for e in first] == ["batch.queued"]
    assert first[0].data["counts"]["queued"] == 3 and first[0].data["status"] == "running"
    job = store.claim_next("w1")
    assert job is not None
    store.mark_succeeded(job.id, RESULT)
    progress = events(store, batch.id, first[0].seq)
    assert [e.kind for e in progress] == ["batch.progress"]
    assert progress[0].data | {"counts": None} == {
        "batch_id": batch.id,
        "status": "running",
        "total": 3,
        "counts": None,
        "progress": round(1 / 3, 4),
        "job_id": job.id,
        "batch_index": 0,
        "job_status": "succeeded",
    }
    assert progress[0].data["counts"]["succeeded"] == 1
    # Claims and retries of a child are not ends: no batch event.
    job = store.claim_next("w1")
    assert job is not None
    store.mark_failed(job.id, {"code": "engine-failed"}, retry_delay=0)
    assert [e.kind for e in events(store, batch.id)] == ["batch.queued", "batch.progress"]
    run_all(store, fail={1})
    kinds = events(store, batch.id)
    # One progress event kept (the latest), then the end; the ids go on increasing.
    assert [e.kind for e in kinds] == ["batch.queued", "batch.progress", "batch.partial"]
    assert [e.seq for e in kinds] == [1, 3, 4]
    end = kinds[-1].data
    assert end["status"] == "partial" and end["progress"] == 1.0
    assert end["counts"]["succeeded"] == 2 and end["counts"]["failed"] == 1
    latest, after_end = store.batch_events_after(batch.id, 4)
    assert latest == "batch.partial" and after_end == []


def test_a_retry_brings_the_batch_back_and_it_ends_again(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(2))
    run_all(store, fail={0, 1})
    assert events(store, batch.id)[-1].kind == "batch.failed"
    _, count = store.retry_batch(batch.id)
    assert count == 2
    retried = events(store, batch.id)[-1]
    assert retried.kind == "batch.retried"
    assert retried.data["retried"] == 2 and retried.data["status"] == "running"
    run_all(store)
    kinds = [e.kind for e in events(store, batch.id)]
    # Only the latest progress event is kept, the ends and retries all.
    assert kinds == [
        "batch.queued",
        "batch.failed",
        "batch.retried",
        "batch.progress",
        "batch.succeeded",
    ]


def test_cancel_ends_the_batch_once_its_running_children_stop(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(4))
    running = store.claim_next("w1")
    assert running is not None
    store.cancel_batch(batch.id)
    # The three queued children cancelled at once: one progress event for them.
    after_cancel = events(store, batch.id)
    assert [e.kind for e in after_cancel] == ["batch.queued", "batch.progress"]
    assert after_cancel[-1].data["counts"]["cancelled"] == 3
    assert "job_id" not in after_cancel[-1].data
    store.mark_cancelled(running.id)
    end = events(store, batch.id)[-1]
    assert end.kind == "batch.cancelled" and end.data["counts"]["cancelled"] == 4


def test_children_ending_at_once_end_the_batch_once(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(8))
    claimed = [store.claim_next(f"w{i}") for i in range(8)]
    barrier = threading.Barrier(8)

    def end(job_id: str) -> None:
        barrier.wait(10)
        store.mark_succeeded(job_id, RESULT)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(end, job.id) for job in claimed if job]:
            future.result(30)
    kinds = [e.kind for e in events(store, batch.id)]
    assert kinds == ["batch.queued", "batch.progress", "batch.succeeded"]
    assert [e.seq for e in events(store, batch.id)][-1] == 9


def test_webhooks_of_batch_events_go_to_the_outbox(store: JobStore) -> None:
    store.journal = Journal(
        (
            Subscription("ops", "https://ops.example.com/in", frozenset({"batch.succeeded"})),
            Subscription("other", "https://o.example.com/in", frozenset({"batch.queued"}), "t2"),
        )
    )
    batch, _ = store.create_batch(new_batch(tenant="t1", webhook=HOOK), inputs(2))
    run_all(store)
    outbox = Outbox(store)
    deliveries = outbox.of_batch(batch.id)
    assert sorted((d.event, d.subscription or "") for d in deliveries) == [
        ("batch.progress", ""),
        ("batch.succeeded", ""),
        ("batch.succeeded", "ops"),
    ]
    assert all(d.job_id is None and d.batch_id == batch.id for d in deliveries)
    # The children send nothing to the batch's webhook.
    for child in store.batch_children(batch.id):
        assert outbox.of_job(child.id) == []
    claimed = outbox.claim_due(datetime.now(UTC), limit=10, lease=60)
    own = [d for d in claimed if d.subscription is None]
    assert len(own) == 2 and all(d.job_webhook == HOOK for d in own)
    payload = next(d.payload for d in deliveries if d.event == "batch.succeeded")
    assert '"type":"batch.succeeded"' in payload and f'"batch_id":"{batch.id}"' in payload


def test_each_batch_event_is_announced_after_its_commit(store: JobStore) -> None:
    heard: list[str] = []
    store.journal = Journal(on_event=heard.append)
    batch, _ = store.create_batch(new_batch(), inputs(1))
    assert heard == [batch_key(batch.id)]
    run_all(store)
    job_id = store.batch_children(batch.id)[0].id
    # The child's claim, then its end with its batch's end, in one transaction.
    assert heard[1:] == [job_id, job_id, batch_key(batch.id)]


def test_events_go_with_the_batch(store: JobStore) -> None:
    store.journal = Journal(
        (Subscription("ops", "https://ops.example.com", frozenset({"batch.queued"})),)
    )
    batch, _ = store.create_batch(new_batch(webhook=HOOK), inputs(2))
    run_all(store)
    store.delete_finished_before(datetime.now(UTC) + timedelta(seconds=1))
    with pytest.raises(NotFound):
        store.batch_events_after(batch.id, 0)
    assert Outbox(store).of_batch(batch.id) == []


def test_counts_in_events_match_the_batch(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(3))
    run_all(store, fail={2})
    end = events(store, batch.id)[-1].data
    record = store.get_batch(batch.id)
    assert end["counts"] == {status.value: n for status, n in record.counts.items()}
    assert record.counts[JobStatus.FAILED] == 1


def test_a_batch_webhook_secret_is_sealed_again_with_the_first_key(store: JobStore) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    secret = "whsec_" + "A" * 40
    hook = HOOK | {"secret": SecretKeys([old]).seal(secret)}
    batch, _ = store.create_batch(new_batch(webhook=hook), inputs(1))
    keys = SecretKeys([new, old])
    assert store.rewrite_batch_webhooks(lambda webhook: reseal_webhook(webhook, keys)) == 1
    resealed = store.get_batch(batch.id).webhook
    assert resealed is not None
    assert SecretKeys([new]).open(resealed["secret"]) == secret
    assert store.rewrite_batch_webhooks(lambda webhook: reseal_webhook(webhook, keys)) == 0


def test_progress_is_paced_but_the_end_is_always_written(store: JobStore) -> None:
    store.journal = Journal(batch_progress_interval=3600)
    batch, _ = store.create_batch(new_batch(), inputs(3))
    job = store.claim_next("w1")
    assert job is not None
    store.mark_succeeded(job.id, RESULT)
    # Within the interval of batch.queued: counted by the next event instead.
    assert [e.kind for e in events(store, batch.id)] == ["batch.queued"]
    run_all(store)
    end = events(store, batch.id)[-1]
    assert end.kind == "batch.succeeded" and end.data["counts"]["succeeded"] == 3
    assert store.get_batch(batch.id).updated_at > batch.updated_at


def test_a_cancel_while_children_end_locks_in_their_order(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(8))
    claimed = [store.claim_next(f"w{i}") for i in range(8)]
    barrier = threading.Barrier(9)

    def end(job_id: str) -> None:
        barrier.wait(10)
        store.mark_succeeded(job_id, RESULT)

    def cancel() -> None:
        barrier.wait(10)
        store.cancel_batch(batch.id)

    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(end, job.id) for job in claimed if job]
        futures.append(pool.submit(cancel))
        for future in futures:
            future.result(30)
    finals = [e.kind for e in events(store, batch.id) if e.kind != "batch.progress"]
    assert finals == ["batch.queued", "batch.succeeded"]


def test_a_child_retried_on_its_own_brings_its_ended_batch_back(store: JobStore) -> None:
    batch, _ = store.create_batch(new_batch(), inputs(2))
    run_all(store, fail={1})
    assert events(store, batch.id)[-1].kind == "batch.partial"
    failed = store.batch_children(batch.id)[1]
    store.retry(failed.id, attempts=1)
    # The job's own stream says it is queued again; the batch's that it runs again.
    _, job_events = store.events_after(failed.id, 0)
    assert job_events[-1].kind == "queued"
    retried = events(store, batch.id)[-1]
    assert retried.kind == "batch.retried" and retried.data["job_id"] == failed.id
    assert retried.data["status"] == "running" and retried.data["retried"] == 1
    run_all(store)
    assert events(store, batch.id)[-1].kind == "batch.succeeded"


def test_a_batch_whose_every_input_failed_at_intake_ends_at_once(store: JobStore) -> None:
    error = {"code": "url-unreadable", "title": "URL unreadable", "detail": "404"}
    unread = {"name": "missing.pdf", "url": "http://x.example/missing.pdf", "error": error}
    batch, _ = store.create_batch(new_batch(), [unread, unread | {"name": "gone.pdf"}])
    kinds = [e.kind for e in events(store, batch.id)]
    assert kinds == ["batch.queued", "batch.failed"]
    ended = events(store, batch.id)[-1].data
    assert ended["status"] == "failed" and ended["counts"]["failed"] == 2
    # One input failed among others: the batch runs, and its end comes with the others'.
    mixed, _ = store.create_batch(new_batch(), [unread, *inputs(1, "m")])
    assert [e.kind for e in events(store, mixed.id)] == ["batch.queued"]
    run_all(store)
    assert [e.kind for e in events(store, mixed.id)][-1] == "batch.partial"
