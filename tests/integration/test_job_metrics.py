"""The job metrics as the job store's changes count them (docs/observability.md), on
SQLite and PostgreSQL: a job's start, end and times, a batch's children cancelled in
bulk, and the dead-letter count the API's scrape reads."""

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
