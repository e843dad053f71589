"""The local executor with real worker processes, a real SQLite job store and blob store."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import pypdfium2
import pytest

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.jobs.audit import AuditFilter, AuditLog
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobRecord, JobStatus, JobStore
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"

OPEN = Principal.open()


def _settings(tmp_path: Path, **executor: object) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        executor={"workers": 1, "retry_delay": 0.1, "poll_interval": 0.1, **executor},
    )


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.store = JobStore(settings.database_url)
        self.store.migrate()
        self.blobs = BlobStore(settings.storage_url)
        self.keys = SecretKeys.from_settings(settings)
        self.executor = LocalExecutor(settings, self.store, JobEvents(), keys=self.keys)
        self.queue = JobQueue(
            self.store,
            self.blobs,
            self.executor,
            self.executor.events,
            max_attempts=settings.executor.max_attempts,
            keys=self.keys,
        )

    def submit(self, path: Path, operation: str = "extract", **params: object) -> JobRecord:
        blob = self.blobs.put_file(path)
        record, _ = self.queue.submit(
            operation, dict(params), JobInput(blob, name=path.name), caller=OPEN
        )
        return record

    def wait_until(self, job_id: str, predicate: object, timeout: float = 60.0) -> JobRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            if predicate(record):  # type: ignore[operator]
                return record
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached the expected state: {record}")

    def running_pid(self, job_id: str, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.executor.busy().get(job_id)
            if pid:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} never started")


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    marker = request.node.get_closest_marker("executor")
    h = Harness(_settings(tmp_path, **(marker.kwargs if marker else {})))
    h.executor.start()
    try:
        yield h
    finally:
        h.executor.stop()
        h.store.close()


def _done(record: JobRecord) -> bool:
    return record.status in {
        JobStatus.SUCCEEDED,
        JobStatus.PARTIAL,
        JobStatus.FAILED,
        JobStatus.DEAD,
        JobStatus.CANCELLED,
    }


def test_a_job_runs_and_its_result_is_stored(harness: Harness) -> None:
    record = harness.submit(SMALL_TEXT, output="text")
    done = harness.wait_until(record.id, _done)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    payload = harness.queue.result(done)
    assert "test document" in payload["content"]
    assert payload["format"] == "text"


def test_killing_the_worker_mid_job_retries_the_job(harness: Harness) -> None:
    record = harness.submit(HUGE_PDF, output="markdown")
    pid = harness.running_pid(record.id)
    os.kill(pid, signal.SIGKILL)
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    assert pid not in harness.executor.pids()
    assert json.loads(harness.blobs.read_bytes(done.result["uri"]))["metadata"]["page_count"] == 619


def test_cancelling_a_running_job_stops_its_worker(harness: Harness) -> None:
    record = harness.submit(HUGE_PDF, output="markdown")
    pid = harness.running_pid(record.id)
    harness.queue.cancel(record.id, OPEN)
    done = harness.wait_until(record.id, _done)
    assert done.status is JobStatus.CANCELLED
    assert pid not in harness.executor.pids()
    # The pool is whole again and takes the next job.
    after = harness.submit(SMALL_TEXT, output="text")
    assert harness.wait_until(after.id, _done).status is JobStatus.SUCCEEDED


@pytest.mark.executor(max_attempts=2)
def test_a_worker_lost_on_every_attempt_is_retried_up_to_the_cap(harness: Harness) -> None:
    record = harness.submit(HUGE_PDF, output="markdown")
    for attempt in (1, 2):
        harness.wait_until(record.id, lambda r, n=attempt: r.attempts == n and r.worker)
        os.kill(harness.running_pid(record.id), signal.SIGKILL)
    done = harness.wait_until(record.id, _done, timeout=60)
    assert (done.status, done.attempts) == (JobStatus.DEAD, 2)
    assert done.error is not None and done.error["code"] == "engine-failed"


@pytest.mark.executor(job_timeout=0.5, max_attempts=3)
def test_a_job_over_its_time_limit_is_dead_after_one_attempt(harness: Harness) -> None:
    record = harness.submit(HUGE_PDF, output="markdown")
    pid = harness.running_pid(record.id)
    done = harness.wait_until(record.id, _done, timeout=60)
    # Not retried: the same document would hold a worker for the whole limit again.
    assert (done.status, done.attempts) == (JobStatus.DEAD, 1)
    assert done.error is not None and done.error["code"] == "job-timeout"
    assert done.error["detail"] == "the job ran longer than its limit of 0.5 s"
    assert pid not in harness.executor.pids()


@pytest.mark.executor(memory_limit_mb=64, max_attempts=3)
def test_a_job_over_its_memory_limit_is_dead_after_one_attempt(harness: Harness) -> None:
    # A worker alone (Python, its parsers loaded) is over 64 MiB once it reads a PDF.
    record = harness.submit(HUGE_PDF, output="markdown")
    pid = harness.running_pid(record.id)
    done = harness.wait_until(record.id, _done, timeout=60)
    assert (done.status, done.attempts) == (JobStatus.DEAD, 1)
    assert done.error is not None and done.error["code"] == "memory-limit-exceeded"
    assert "64 MiB" in done.error["detail"]
    assert pid not in harness.executor.pids()


def test_bad_input_fails_once_without_retry(harness: Harness, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    record = harness.submit(broken, output="text")
    done = harness.wait_until(record.id, _done)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None and done.error["code"] == "corrupt-document"


@pytest.mark.executor(jobs_per_worker=2)
def test_a_worker_is_replaced_after_its_job_quota(harness: Harness) -> None:
    first_pids = set(harness.executor.pids())
    for _ in range(3):
        record = harness.submit(SMALL_TEXT, output="text")
        assert harness.wait_until(record.id, _done).status is JobStatus.SUCCEEDED
    assert set(harness.executor.pids()).isdisjoint(first_pids)


def test_priority_then_age_decides_the_order(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    blob = h.blobs.put_file(SMALL_TEXT)
    low, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob), caller=OPEN, priority=0)
    high, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob), caller=OPEN, priority=5)
    h.executor.start()
    try:
        low_done = h.wait_until(low.id, _done)
        high_done = h.wait_until(high.id, _done)
    finally:
        h.executor.stop()
        h.store.close()
    assert high_done.started_at is not None and low_done.started_at is not None
    assert high_done.started_at < low_done.started_at


def test_jobs_left_running_by_a_dead_executor_of_this_host_run_again(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    blob = h.blobs.put_file(SMALL_TEXT)
    record, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob), caller=OPEN)
    # A server on this host claimed the job, then died: its process no longer exists.
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = f"{socket.gethostname()}:{dead.pid}:deadbeef"
    assert h.store.claim_next(orphan) is not None
    h.executor.start()
    try:
        done = h.wait_until(record.id, _done, timeout=30)
    finally:
        h.executor.stop()
        h.store.close()
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 2


# -- jobs split into parts ------------------------------------------------------------------

ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"
SPLIT = {"workers": 2, "split_min_pages": 2, "split_parts": 3}


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-only PDF: the first three pages of a corpus article, rendered (a scan)."""
    pdf = pypdfium2.PdfDocument(str(ARTICLE))
    try:
        pages = [pdf[index].render(scale=150 / 72, grayscale=True).to_pil() for index in range(3)]
    finally:
        pdf.close()
    target = tmp_path_factory.mktemp("scan") / "scanned-article.pdf"
    pages[0].save(target, save_all=True, append_images=pages[1:], resolution=150)
    return target


def _whole(settings: Settings, path: Path, operation: str, **params: object) -> dict[str, object]:
    """The payload of the operation run whole, in this process."""
    op = get_operation(operation)
    ctx = operation_context(settings)
    return op.run(ctx, InputFile(path, path.name), validate_params(op, dict(params))).payload


@pytest.mark.executor(**SPLIT)
def test_a_scan_is_read_by_parts_on_every_worker(harness: Harness, scanned_pdf: Path) -> None:
    record = harness.submit(scanned_pdf, output="markdown")
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (done.children_total, done.children_pending, done.attempts) == (3, 0, 1)
    parts = harness.store.parts_of(done.id)
    assert [p.operation for p in parts] == ["ocr"] * 3
    assert [p.params["pages"] for p in parts] == ["1", "2", "3"]
    assert all(p.status is JobStatus.SUCCEEDED and p.parent_id == done.id for p in parts)
    # Parts ran side by side, on both workers.
    spans = sorted((p.started_at, p.finished_at) for p in parts)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    # The result is the one the job makes when it runs whole.
    whole = _whole(harness.executor.settings, scanned_pdf, "extract", output="markdown")
    payload = harness.queue.result(done)
    assert payload["content"] == whole["content"]
    assert payload["metadata"] == whole["metadata"]
    assert "Abstract" in str(payload["content"]) or len(str(payload["content"])) > 1000
    # What the parts used adds up in the job, and in its audit event.
    parts = harness.store.parts_of(done.id)
    assert all(p.cpu_seconds > 0 and p.pages == 1 for p in parts)
    assert done.cpu_seconds >= sum(p.cpu_seconds for p in parts) and done.pages == 3
    (event,) = AuditLog(harness.store).list(AuditFilter(kind="job"))[0]
    assert (event.job_id, event.outcome, event.pages) == (done.id, "succeeded", 3)
    assert event.cpu_seconds == pytest.approx(done.cpu_seconds)
    assert event.detail == {"attempts": 1, "parts": 3}


@pytest.mark.executor(**SPLIT)
def test_ocr_parts_merge_into_the_whole_result(harness: Harness, scanned_pdf: Path) -> None:
    record = harness.submit(scanned_pdf, "ocr", output="searchable_pdf", pages="1-3")
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    parts = harness.store.parts_of(done.id)
    assert [(p.operation, p.params["pages"]) for p in parts] == [
        ("ocr", "1"),
        ("ocr", "2"),
        ("ocr", "3"),
    ]
    assert all(p.params["output"] == "searchable_pdf" for p in parts)
    payload = harness.queue.result(done)
    whole = _whole(harness.executor.settings, scanned_pdf, "ocr", output="text", pages="1-3")
    assert payload["content"] == whole["content"]
    assert payload["confidence"] == pytest.approx(whole["confidence"], abs=1e-3)
    assert [p["page"] for p in payload["pages"]] == [1, 2, 3]
    assert payload["artifacts"] == [
        {"name": "searchable.pdf", "mime": "application/pdf", "size": ANY}
    ]
    # The parts' searchable PDFs are joined, pages in order, words selectable.
    _entry, stream = harness.queue.artifact(done, "searchable.pdf")
    with stream:
        joined = pypdfium2.PdfDocument(stream.read())
    try:
        assert len(joined) == 3
        texts = [joined[i].get_textpage().get_text_range() for i in range(3)]
    finally:
        joined.close()
    for text, page in zip(texts, payload["pages"], strict=True):
        assert set(page["text"].split()[:20]) <= set(text.split())


@pytest.mark.executor(**SPLIT)
def test_a_document_with_a_text_layer_is_not_split(harness: Harness) -> None:
    record = harness.submit(ARTICLE, output="text")
    done = harness.wait_until(record.id, _done)
    assert done.status is JobStatus.SUCCEEDED and done.children_total == 0


@pytest.mark.executor(**SPLIT, max_attempts=1)
def test_a_part_that_fails_leaves_its_pages_out(harness: Harness, scanned_pdf: Path) -> None:
    record = harness.submit(scanned_pdf, output="text")
    part = harness.wait_until(record.id, lambda r: r.children_total > 0, timeout=60)
    first = harness.store.parts_of(part.id)[0]
    os.kill(harness.running_pid(first.id), signal.SIGKILL)
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.PARTIAL
    assert harness.store.get(first.id).status is JobStatus.DEAD
    assert done.error is not None
    (item,) = done.error["items"]
    assert item["pages"] == "1" and item["code"] == "engine-failed"
    payload = harness.queue.result(done)
    codes = {(w["code"], w.get("page")) for w in payload["warnings"]}
    assert ("ocr-failed", 1) in codes
    assert payload["content"]


@pytest.mark.executor(**SPLIT)
def test_cancelling_a_split_job_cancels_its_parts(harness: Harness, scanned_pdf: Path) -> None:
    record = harness.submit(scanned_pdf, output="text")
    harness.wait_until(record.id, lambda r: r.children_total > 0, timeout=60)
    harness.running_pid(harness.store.parts_of(record.id)[0].id)
    cancelled = harness.queue.cancel(record.id, OPEN)
    assert cancelled.status is JobStatus.CANCELLED
    for part in harness.store.parts_of(record.id):
        assert harness.wait_until(part.id, _done).status is JobStatus.CANCELLED
    job = harness.store.get(record.id)
    assert job.status is JobStatus.CANCELLED
    # Parts stopped after their job ended still add their CPU time to its audit event.
    parts = harness.store.parts_of(record.id)
    assert job.cpu_seconds >= sum(p.cpu_seconds for p in parts) > 0
    (event,) = AuditLog(harness.store).list(AuditFilter(job_id=record.id))[0]
    assert event.outcome == "cancelled"
    assert event.cpu_seconds == pytest.approx(job.cpu_seconds)
