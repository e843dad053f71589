"""Each family's queue bound, its priority bands and its Retry-After, and the drain, with
a real job store (SQLite and PostgreSQL) and blob store; no executor runs, so jobs stay
queued until a test moves them."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY

from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.errors import QueueFull, ServiceDraining
from docworker.jobs.admission import Admission, Drain
from docworker.jobs.backlog import DRAIN_CACHE, QUEUED_CACHE, REFUSAL_COUNT_AGE, Backlog, Band
from docworker.jobs.events import JobEvents
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobStatus, JobStore, NewJob
from docworker.operations.base import Family
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

OPEN = Principal.open()
HIGH, NORMAL, LOW = 5, 0, -5


def _settings(tmp_path: Path, database_url: str, **queue: Any) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        database={"url": database_url},
        executor={"workers": 1},
        queue={"documents": 10, **queue},
    )


def _queue(settings: Settings, store: JobStore, drain: Drain | None = None) -> JobQueue:
    blobs = BlobStore(settings.storage_url)
    admission = Admission(settings, store, blobs, drain=drain)
    keys = SecretKeys.from_settings(settings)
    return JobQueue(store, blobs, None, JobEvents(), max_attempts=1, keys=keys, admission=admission)


def _text(queue: JobQueue) -> JobInput:
    return JobInput(queue.blobs.put_stream(io.BytesIO(b"a few words")), name="a.txt")


def _fill(queue: JobQueue, count: int, priority: int, operation: str = "extract") -> None:
    for _ in range(count):
        queue.submit(operation, {}, _text(queue), caller=OPEN, priority=priority)


def _refusals(reason: str, family: str) -> float:
    labels = {"reason": reason, "family": family}
    return REGISTRY.get_sample_value("docworker_admission_refusals_total", labels) or 0.0


def test_bands_fill_their_share_of_the_family_bound(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    queue = _queue(_settings(tmp_path, database_url), store)
    backlog = queue.admission.backlog if queue.admission else None
    assert backlog is not None
    rooms = {band: backlog.room(Family.DOCUMENTS, band) for band in Band}
    assert rooms == {Band.HIGH: 10, Band.NORMAL: 8, Band.LOW: 5}
    refused_before = _refusals("queue_full", "documents")
    # A flood of low-priority work stops at its share.
    _fill(queue, 5, LOW)
    with pytest.raises(QueueFull, match=r"low priority may fill 5") as refused:
        _fill(queue, 1, LOW)
    fields = refused.value.fields
    assert (fields["family"], fields["queued"], fields["room"]) == ("documents", 5, 5)
    assert fields["retry_after"] >= 1
    # ... and leaves room for work of normal and high priority.
    _fill(queue, 3, NORMAL)
    with pytest.raises(QueueFull, match=r"normal priority may fill 8"):
        _fill(queue, 1, NORMAL)
    _fill(queue, 2, HIGH)
    with pytest.raises(QueueFull, match=r"its queue takes 10 \(queue.documents\)"):
        _fill(queue, 1, HIGH)
    assert _refusals("queue_full", "documents") == refused_before + 3


def test_other_families_are_not_held_by_a_full_one(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    queue = _queue(_settings(tmp_path, database_url, documents=2), store)
    _fill(queue, 2, HIGH)
    with pytest.raises(QueueFull):
        _fill(queue, 1, HIGH, operation="chunk")  # the same family as extract
    _fill(queue, 3, NORMAL, operation="ocr")  # the ocr family: room of its own
    # A job that leaves the queue (claimed, or cancelled) makes room.
    claimed = store.claim_next("w1")
    assert claimed is not None and claimed.operation == "extract"
    _fill(queue, 1, HIGH)


def test_a_family_without_a_bound_takes_every_job(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    queue = _queue(_settings(tmp_path, database_url, documents=0), store)
    assert queue.admission is not None
    assert queue.admission.backlog.room(Family.DOCUMENTS, Band.LOW) is None
    _fill(queue, 12, LOW)


def test_parts_of_a_split_job_are_neither_queued_jobs_nor_refused(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    queue = _queue(_settings(tmp_path, database_url, documents=2), store)
    _fill(queue, 1, NORMAL)
    job = store.claim_next("w1")
    assert job is not None
    # The supervisor splits a job into more parts than the bound: none is refused...
    _, parts = store.split(job.id, [{"params": {"pages": str(n)}} for n in range(1, 6)])
    assert len(parts) == 5 and all(p.status is JobStatus.QUEUED for p in parts)
    # ... and they take no place in the queue: submissions are what is counted.
    assert queue.admission is not None
    assert queue.admission.backlog.queued()[Family.DOCUMENTS] == 0
    _fill(queue, 2, HIGH)


def test_a_job_sent_again_under_its_key_is_answered_however_full_the_queue(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    queue = _queue(_settings(tmp_path, database_url, documents=1), store)
    job_input = _text(queue)
    first, created = queue.submit("extract", {}, job_input, caller=OPEN, idempotency_key="k")
    assert created
    again, created = queue.submit("extract", {}, job_input, caller=OPEN, idempotency_key="k")
    assert (again.id, created) == (first.id, False)
    with pytest.raises(QueueFull):
        queue.submit("extract", {}, job_input, caller=OPEN, idempotency_key="other")


def _end_jobs(store: JobStore, count: int, operation: str = "extract") -> None:
    """``count`` jobs of ``operation`` queued, run and ended now."""
    for _ in range(count):
        store.create(NewJob(operation, {}, {"uri": "blob://inputs/x", "sha256": "x"}))
        job = store.claim_next("w1")
        assert job is not None
        store.mark_succeeded(job.id, {"uri": "x"})


def test_retry_after_is_the_excess_over_the_drain_rate(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    now = [0.0]
    settings = _settings(tmp_path, database_url, drain_window=60, retry_after_max=1000)
    backlog = Backlog(settings, store, clock=lambda: now[0])
    # Nothing ended in the window yet: the window itself is the estimate.
    assert backlog.drain_rates()[Family.DOCUMENTS] == 0
    assert backlog.retry_after(Family.DOCUMENTS, 3) == 60
    # Parts of split jobs do not count in the drain either (their job does, when it ends).
    _end_jobs(store, 30)
    store.create(NewJob("extract", {}, {"uri": "blob://inputs/x", "sha256": "x"}))
    job = store.claim_next("w1")
    assert job is not None
    _, parts = store.split(job.id, [{"params": {}}, {"params": {}}])
    for _ in parts:
        part = store.claim_next("w1")
        assert part is not None and part.parent_id == job.id
        store.mark_succeeded(part.id, {"uri": "x"})
    # Within the cache's time the rate measured before stands...
    assert backlog.retry_after(Family.DOCUMENTS, 3) == 60
    # ... then 30 jobs ended in 60 s: half a job a second.
    now[0] += DRAIN_CACHE
    assert backlog.drain_rates()[Family.DOCUMENTS] == pytest.approx(0.5)
    assert backlog.retry_after(Family.DOCUMENTS, 3) == 6
    now[0] += 100  # the clients refused so far have come back (see the next test)
    assert backlog.retry_after(Family.DOCUMENTS, 1) == 2
    # Only the family's jobs count: OCR has drained nothing.
    assert backlog.retry_after(Family.OCR, 1) == 60
    # Within the configured range.
    now[0] += 100
    assert backlog.retry_after(Family.DOCUMENTS, 10_000) == 1000
    _end_jobs(store, 150)
    now[0] += 2000
    assert backlog.retry_after(Family.DOCUMENTS, 1) == 1  # 3 a second: 1/3 s, at least 1


def test_retry_after_is_exact_at_any_clock_reading(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    """A clock reading where ``now + 6 - now`` is not 6 in floating point still gives 6 s."""
    reading = 28.27505553071097
    assert math.ceil((reading + 6.0) - reading) == 7  # the reading this is about
    settings = _settings(tmp_path, database_url, drain_window=10, retry_after_max=30)
    backlog = Backlog(settings, store, clock=lambda: reading)
    _end_jobs(store, 5)  # half a job a second
    assert backlog.retry_after(Family.DOCUMENTS, 3) == 6


def test_refused_clients_are_sent_back_at_the_pace_of_the_drain(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    """A burst of refusals is spread: each refused client comes back one drained job
    after the one refused before it, not all of them together."""
    now = [0.0]
    settings = _settings(tmp_path, database_url, drain_window=10, retry_after_max=30)
    backlog = Backlog(settings, store, clock=lambda: now[0])
    _end_jobs(store, 20)  # two jobs a second over the 10 s window
    burst = [backlog.retry_after(Family.DOCUMENTS, 1) for _ in range(10)]
    # 0.5 s, 1 s, 1.5 s ... 5 s, in whole seconds (at least one).
    assert burst == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Never past the configured longest wait, however long the line.
    assert max(backlog.retry_after(Family.DOCUMENTS, 1) for _ in range(100)) == 30
    # Once the time of the line has passed, a refusal is back at the head of it.
    now[0] += 60
    assert backlog.retry_after(Family.DOCUMENTS, 1) == 1


def test_a_refusal_carries_the_retry_after_of_its_drain(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url, documents=3, drain_window=10)
    queue = _queue(settings, store)
    _end_jobs(store, 5)  # half a job a second over the 10 s window
    _fill(queue, 3, HIGH)
    with pytest.raises(QueueFull) as refused:
        _fill(queue, 1, LOW)  # low may fill 1 place: 3 queued, 3 must leave first
    assert refused.value.fields["retry_after"] == math.ceil(3 / 0.5)


def test_a_draining_service_refuses_new_work_and_leaves_queued_jobs(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url)
    drain = Drain.of(settings)
    held: list[str] = []
    drain.on_start(lambda: held.append("held"))
    queue = _queue(settings, store, drain)
    record, _ = queue.submit("extract", {}, _text(queue), caller=OPEN)
    refused_before = _refusals("draining", "documents")
    drain.start()
    drain.start()  # once only
    assert held == ["held"]
    with pytest.raises(ServiceDraining) as refused:
        _fill(queue, 1, HIGH)
    assert refused.value.fields["retry_after"] == settings.server.drain_retry_after
    assert _refusals("draining", "documents") == refused_before + 1
    # Reads go on.
    assert queue.get(record.id, OPEN).status is JobStatus.QUEUED
    assert queue.admission is not None
    assert queue.admission.status()["draining"] is True
    assert 0 < drain.remaining() <= settings.server.drain_timeout


def test_a_waiter_for_a_job_left_queued_is_answered_at_once(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url)
    drain = Drain.of(settings)
    queue = _queue(settings, store, drain)
    record, _ = queue.submit("extract", {}, _text(queue), caller=OPEN)
    drain.start()
    started = time.monotonic()
    waited = anyio.run(queue.wait, record.id, 30.0)
    assert waited.status is JobStatus.QUEUED
    assert time.monotonic() - started < 5


def test_admissions_count_on_a_fresh_count_and_refusals_count_anew(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    """An API process admits on a count of the queue at most QUEUED_CACHE seconds old
    plus what it admitted since, and counts anew before it refuses."""
    now = [0.0]
    settings = _settings(tmp_path, database_url, documents=4)
    queue = _queue(settings, store)
    assert queue.admission is not None
    queue.admission.backlog = Backlog(settings, store, clock=lambda: now[0])
    _fill(queue, 2, HIGH)
    # Another replica queues two jobs: within the count's time they are not seen ...
    for _ in range(2):
        store.create(NewJob("extract", {}, {"uri": "blob://inputs/x", "sha256": "x"}))
    _fill(queue, 1, HIGH)
    # ... and they are once it has passed: 5 queued, the bound is 4.
    now[0] += QUEUED_CACHE
    with pytest.raises(QueueFull):
        _fill(queue, 1, HIGH)
    # A refusal counts anew: a job that left the queue since makes room at once.
    for _ in range(2):
        assert store.claim_next("w1") is not None
    _fill(queue, 1, HIGH)


def test_a_refusal_from_the_counts_kept_waits_on_nothing_and_keeps_them_fresh(
    tmp_path: Path, store: JobStore, database_url: str
) -> None:
    """What the intake guard asks before a request's body is read: a refusal only when
    the counts kept show the band's room filled and a drain rate was measured; a count
    older than QUEUED_CACHE is made again in the background, one past REFUSAL_COUNT_AGE
    refuses nothing."""
    now = [0.0]
    settings = _settings(tmp_path, database_url, documents=2)
    queue = _queue(settings, store)
    assert queue.admission is not None
    backlog = queue.admission.backlog = Backlog(settings, store, clock=lambda: now[0])
    assert backlog.refusal(Family.DOCUMENTS, NORMAL) is None  # nothing counted yet
    _fill(queue, 1, NORMAL)
    with pytest.raises(QueueFull):  # counted anew, refused: the counts are kept
        _fill(queue, 1, NORMAL)
    refused_before = _refusals("queue_full", "documents")
    refusal = queue.admission.refusal(Family.DOCUMENTS, NORMAL)
    assert refusal is not None and refusal.fields["room"] == 1
    assert refusal.fields["retry_after"] >= 1
    assert _refusals("queue_full", "documents") == refused_before + 1
    assert backlog.refusal(Family.DOCUMENTS, HIGH) is None  # high priority has room
    assert backlog.refusal(Family.OCR, NORMAL) is None  # another family is empty

    def counted_again() -> None:
        deadline = time.monotonic() + 10
        while backlog._counting:
            assert time.monotonic() < deadline, "the background count did not end"
            time.sleep(0.01)

    # The queued job leaves: the count kept still says full, and refuses, until it is
    # made again; an old count starts that, in the background.
    assert store.claim_next("w1") is not None
    now[0] += QUEUED_CACHE
    assert backlog.refusal(Family.DOCUMENTS, NORMAL) is not None
    counted_again()
    assert backlog.refusal(Family.DOCUMENTS, NORMAL) is None
    # A count older than REFUSAL_COUNT_AGE refuses nothing (the body is read, and the
    # submission checked on a new count).
    _fill(queue, 1, NORMAL)
    with pytest.raises(QueueFull):
        _fill(queue, 1, NORMAL)
    now[0] += REFUSAL_COUNT_AGE
    assert backlog.refusal(Family.DOCUMENTS, NORMAL) is None
    counted_again()
