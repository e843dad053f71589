"""The job metrics as the job store's changes count them (docs/observability.md), on
SQLite and PostgreSQL: a job's start, end and times, a job's end counted once by the
store that commits it (a cancel asked by the API and ended by a worker, a queued or
split job cancelled), a batch's children cancelled in bulk, and the dead-letter count
the API's scrape reads."""

from __future__ import annotations

from prometheus_client import REGISTRY

from docworker.jobs.models import NewBatch
from docworker.jobs.store import JobStore
from tests.integration.test_batch_store import inputs
from tests.integration.test_job_store import new_job


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_job_start_and_end_are_counted_once_committed(store: JobStore) -> None:
    ended = {"operation": "chunk", "status": "succeeded"}
    names = {
        "docworker_jobs_started_total": {"operation": "chunk"},
        "docworker_jobs_finished_total": ended,
        "docworker_job_queue_wait_seconds_count": {"operation": "chunk"},
        "docworker_job_end_to_end_seconds_count": ended,
    }
    before = {name: _value(name, **labels) for name, labels in names.items()}
    record, _ = store.create(new_job("chunk"))
    claimed = store.claim_next("w1")
    assert claimed is not None and claimed.id == record.id
    store.mark_succeeded(record.id, {"uri": "blob://results/x/result.json"})
    after = {name: _value(name, **labels) for name, labels in names.items()}
    assert after == {name: value + 1 for name, value in before.items()}


def test_a_batch_cancelled_counts_its_queued_children(store: JobStore) -> None:
    before = _value("docworker_jobs_finished_total", operation="extract", status="cancelled")
    batch, _ = store.create_batch(
        NewBatch(operation="extract", params={"output": "markdown"}), inputs(4, "metrics")
    )
    assert store.claim_next("w1") is not None  # running: asked to stop, not ended here
    store.cancel_batch(batch.id)
    after = _value("docworker_jobs_finished_total", operation="extract", status="cancelled")
    assert after == before + 3


def test_dead_letters_are_counted(store: JobStore) -> None:
    assert store.dead_count() == 0
    record, _ = store.create(new_job("extract"))
    assert store.claim_next("w1") is not None
    store.mark_dead(record.id, {"code": "timeout", "message": "past its limit"})
    assert store.dead_count() == 1


def _cancelled(operation: str) -> float:
    return _value("docworker_jobs_finished_total", operation=operation, status="cancelled")


def test_a_running_job_cancelled_is_counted_once_where_its_end_commits(
    database_url: str, store: JobStore
) -> None:
    """The API asks (no end yet), the worker's watch ends it: one count, from the store
    that committed the end; a late second end of the same job counts nothing."""
    worker_store = JobStore(database_url)
    try:
        before = _cancelled("chunk")
        failed = _value("docworker_jobs_finished_total", operation="chunk", status="dead")
        record, _ = store.create(new_job("chunk"))
        assert worker_store.claim_next("w1") is not None
        asked = store.request_cancel(record.id)  # the API's side
        assert asked.status == "running" and _cancelled("chunk") == before
        assert worker_store.mark_cancelled(record.id).status == "cancelled"  # the worker's
        assert _cancelled("chunk") == before + 1
        store.mark_cancelled(record.id)  # ended already: no change, no count
        worker_store.mark_dead(record.id, {"code": "timeout", "message": "late"})
        assert _cancelled("chunk") == before + 1
        assert _value("docworker_jobs_finished_total", operation="chunk", status="dead") == failed
    finally:
        worker_store.close()


def test_a_queued_job_cancelled_is_counted_once(store: JobStore) -> None:
    before = _cancelled("chunk")
    record, _ = store.create(new_job("chunk"))
    assert store.request_cancel(record.id).status == "cancelled"
    assert store.request_cancel(record.id).status == "cancelled"
    assert store.claim_next("w1") is None
    assert _cancelled("chunk") == before + 1


def test_a_split_job_cancelled_counts_the_job_not_its_parts(store: JobStore) -> None:
    before = _cancelled("ocr")
    record, _ = store.create(new_job("ocr"))
    assert store.claim_next("w1") is not None
    store.split(record.id, [{"params": {"pages": "1"}}, {"params": {"pages": "2"}}])
    assert store.claim_next("w2") is not None  # one part runs, one waits
    assert store.request_cancel(record.id).status == "cancelled"
    running = [p for p in store.parts_of(record.id) if p.status == "running"]
    for part in running:
        store.mark_cancelled(part.id)
    assert all(p.status == "cancelled" for p in store.parts_of(record.id))
    assert _cancelled("ocr") == before + 1
