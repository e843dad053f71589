"""What only the local executor does, with real worker processes, a real SQLite job store
and blob store; what every executor does is in test_executor_contract.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.models import Job
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobRecord, JobStatus, JobStore
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from tests.videos import ffmpeg

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


@pytest.mark.executor(jobs_per_worker=2)
def test_a_worker_is_replaced_after_its_job_quota(harness: Harness) -> None:
    first_pids = set(harness.executor.pids())
    for _ in range(3):
        record = harness.submit(SMALL_TEXT, output="text")
        assert harness.wait_until(record.id, _done).status is JobStatus.SUCCEEDED
    assert set(harness.executor.pids()).isdisjoint(first_pids)


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


def test_a_job_whose_message_does_not_encode_fails_and_frees_its_worker(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    blob = h.blobs.put_file(SMALL_TEXT)
    record, _ = h.queue.submit("render", {"width": 100}, JobInput(blob), caller=OPEN)
    # Stored before parameters were checked for size: no worker message holds the number.
    with Session(h.store._engine) as session, session.begin():
        session.execute(update(Job).where(Job.id == record.id).values(params={"width": 10**30}))
    h.executor.start()
    try:
        failed = h.wait_until(record.id, _done, timeout=30)
        after = h.submit(SMALL_TEXT, output="text")
        assert h.wait_until(after.id, _done, timeout=30).status is JobStatus.SUCCEEDED
    finally:
        h.executor.stop()
        h.store.close()
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error["code"] == "invalid-parameter"


# -- jobs split into parts ------------------------------------------------------------------

SPLIT = {"workers": 2, "split_min_pages": 2, "split_parts": 3}


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


@pytest.mark.executor(workers=2)
def test_ffmpeg_jobs_leave_a_worker_to_documents(harness: Harness, tmp_path: Path) -> None:
    """``ffmpeg.max_concurrent`` (default: one worker fewer than the pool): the second
    FFmpeg job waits for the first while a document takes the other worker."""
    tone = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=8000:duration=180", str(tone))
    first = harness.submit(tone, "audio", action="analyze")
    harness.running_pid(first.id)
    second = harness.submit(tone, "audio", action="analyze")
    document = harness.submit(SMALL_TEXT, output="text")
    ended = {job.id: harness.wait_until(job.id, _done, 120) for job in (first, second, document)}
    assert {record.status for record in ended.values()} == {JobStatus.SUCCEEDED}
    a, b, c = ended[first.id], ended[second.id], ended[document.id]
    assert a.finished_at and b.started_at and c.finished_at
    assert b.started_at >= a.finished_at
    assert c.finished_at <= a.finished_at
