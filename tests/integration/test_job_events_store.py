"""Job events and the webhook outbox in the job store: written with each state change,
numbered per job, bounded, claimed once, deleted with their job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from docworker.jobs.journal import Journal, Subscription
from docworker.jobs.outbox import DELIVERED, Outbox
from docworker.jobs.store import JobStore, NewJob

HOOK = {"url": "https://hooks.example.com/in", "events": ["started", "succeeded"], "secret": None}


def _run(store: JobStore, job_id: str, progress: int) -> None:
    assert store.claim_next("executor-1") is not None
    for step in range(progress):
        store.set_progress(job_id, (step + 1) / (progress + 1), f"step {step + 1}")
    store.mark_succeeded(job_id, {"content": "done"})


def test_each_change_is_an_event_numbered_per_job_and_progress_is_coalesced(
    store: JobStore,
) -> None:
    record, _ = store.create(NewJob(operation="extract", params={}, input=None))
    _run(store, record.id, progress=5)

    status, events = store.events_after(record.id, 0)
    assert status == "succeeded"
    assert [e.kind for e in events] == ["queued", "started", "progress", "succeeded"]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Five progress writes took five numbers; only the latest event is kept.
    assert seqs[-1] == 8
    assert events[2].data["progress_message"] == "step 5"
    _, later = store.events_after(record.id, events[1].seq)
    assert [e.kind for e in later] == ["progress", "succeeded"]


def test_a_retried_attempt_is_queued_then_started_again(store: JobStore) -> None:
    record, _ = store.create(NewJob(operation="extract", params={}, input=None))
    store.claim_next("executor-1")
    store.mark_failed(record.id, {"code": "engine-failed"}, retry_delay=0)
    store.claim_next("executor-1")
    store.mark_failed(record.id, {"code": "corrupt-document"}, retry_delay=None)
    _, events = store.events_after(record.id, 0)
    assert [e.kind for e in events] == ["queued", "started", "queued", "started", "failed"]
    assert events[2].data["error"] == {"code": "engine-failed"}


def test_deliveries_are_queued_with_the_event_claimed_once_and_deleted_with_the_job(
    store: JobStore,
) -> None:
    store.journal = Journal(
        (
            Subscription("all", "https://all.example.com/", frozenset({"succeeded"})),
            Subscription("other", "https://o.example.com/", frozenset({"succeeded"}), "other"),
        )
    )
    record, _ = store.create(
        NewJob(operation="extract", params={}, input=None, tenant="acme", webhook=HOOK)
    )
    _run(store, record.id, progress=1)
    outbox = Outbox(store)
    deliveries = outbox.of_job(record.id)
    assert sorted((d.event_seq, d.event, d.subscription or "") for d in deliveries) == [
        (2, "started", ""),
        (4, "succeeded", ""),
        (4, "succeeded", "all"),
    ]

    now = datetime.now(UTC)
    claimed = outbox.claim_due(now, limit=10, lease=60)
    assert {d.id for d in claimed} == {d.id for d in deliveries}
    own = next(d for d in claimed if d.subscription is None)
    assert own.job_webhook == HOOK
    # Leased: not claimed again until the lease runs out.
    assert outbox.claim_due(now, limit=10, lease=60) == []
    assert len(outbox.claim_due(now + timedelta(seconds=61), limit=10, lease=60)) == 3

    entry = {"attempt": 1, "at": now.isoformat(), "status": 204, "ms": 3.0}
    outbox.record_attempt(own.id, entry, status=DELIVERED, next_at=None)
    done = next(d for d in outbox.of_job(record.id) if d.id == own.id)
    assert (done.status, done.attempts, done.log) == (DELIVERED, 1, [entry])

    assert store.delete_job(record.id) is not None
    assert outbox.of_job(record.id) == []
    assert outbox.claim_due(now + timedelta(hours=1), limit=10, lease=60) == []
