"""The local executor with real worker processes, a real SQLite job store and blob store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.config import Settings, load_settings
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobRecord, JobStatus, JobStore
from docworker.storage import BlobStore

HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"


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
        self.executor = LocalExecutor(settings, self.store, JobEvents())
        self.queue = JobQueue(
            self.store,
            self.blobs,
            self.executor,
            self.executor.events,
            max_attempts=settings.executor.max_attempts,
        )

    def submit(self, path: Path, **params: object) -> JobRecord:
        blob = self.blobs.put_file(path)
        record, _ = self.queue.submit("extract", dict(params), JobInput(blob, name=path.name))
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
    harness.queue.cancel(record.id)
    done = harness.wait_until(record.id, _done)
    assert done.status is JobStatus.CANCELLED
    assert pid not in harness.executor.pids()
    # The pool is whole again and takes the next job.
    after = harness.submit(SMALL_TEXT, output="text")
    assert harness.wait_until(after.id, _done).status is JobStatus.SUCCEEDED


@pytest.mark.executor(job_timeout=0.3, max_attempts=2)
def test_a_job_over_its_time_limit_is_retried_then_dead(harness: Harness) -> None:
    record = harness.submit(HUGE_PDF, output="markdown")
    done = harness.wait_until(record.id, _done, timeout=60)
    assert done.status is JobStatus.DEAD
    assert done.attempts == 2
    assert done.error is not None and done.error["code"] == "job-timeout"


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
    low, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob), priority=0)
    high, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob), priority=5)
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
    record, _ = h.queue.submit("extract", {"output": "text"}, JobInput(blob))
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
