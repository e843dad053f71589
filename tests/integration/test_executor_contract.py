"""What every executor does, proved on each of them and on each job store: the local
executor (worker processes under this process) and the celery executor (a real
``docworker worker`` on Redis with an SQLite store, on RabbitMQ with a PostgreSQL one),
jobs submitted through the same :class:`JobQueue` and watched in the same store.

A test's ``executor`` marker names the settings it needs beyond the common ones; the
tests of one group of settings share one executor (one fleet) per combination, started
on first use and stopped when the combination's tests are done. Executor-specific tests
stay in test_local_executor.py and tests/e2e/test_celery_executor.py."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pypdfium2
import pytest

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.jobs.audit import AuditFilter, AuditLog
from docworker.jobs.distributed import CeleryDispatch
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore, Records
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from tests.celery_worker import Worker, delete_queues, queue_prefix
from tests.conftest import new_postgres_database

HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"
ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"

OPEN = Principal.open()

#: The settings of every executor here: two worker processes, quick retries, and a scan of
#: two pages or more read by parts (three at most).
COMMON = {
    "workers": 2,
    "retry_delay": 0.1,
    "poll_interval": 0.1,
    "max_attempts": 2,
    "split_min_pages": 2,
    "split_parts": 3,
}


@dataclass
class Backend:
    """An executor running jobs of a job store, and the queue that submits them."""

    kind: str
    settings: Settings
    store: JobStore
    queue: JobQueue
    executor: LocalExecutor | None = None
    worker: Worker | None = None
    closing: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def blobs(self) -> BlobStore:
        return self.queue.blobs

    def submit(
        self,
        path: Path,
        operation: str = "extract",
        *,
        priority: int = 0,
        idempotency_key: str | None = None,
        **params: object,
    ) -> JobRecord:
        blob = self.blobs.put_file(path)
        record, _ = self.queue.submit(
            operation,
            dict(params),
            JobInput(blob, name=path.name),
            caller=OPEN,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        return record

    def wait_until(
        self, job_id: str, predicate: Callable[[JobRecord], object], timeout: float = 60.0
    ) -> JobRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            if predicate(record):
                return record
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached the expected state: {record}\n{self}")

    def done(self, job_id: str, timeout: float = 60.0) -> JobRecord:
        return self.wait_until(job_id, _done, timeout)

    def running_pid(self, job_id: str, attempt: int = 1, timeout: float = 30.0) -> int:
        """The process id of the worker process running ``attempt`` of the job (maybe
        ended since): the local executor's supervisor knows it (the job's ``worker`` names
        the executor); a Celery worker process names itself in the job's ``worker``."""
        if self.executor is None:
            record = self.wait_until(job_id, lambda r: r.attempts >= attempt and r.worker, timeout)
            assert record.worker is not None
            return int(record.worker.split(":")[1])
        deadline = time.monotonic() + timeout
        while True:
            pid = self.executor.busy().get(job_id)
            if pid and (attempt == 1 or self.store.get(job_id).attempts >= attempt):
                return pid
            assert time.monotonic() < deadline, f"job {job_id} never ran attempt {attempt}"
            time.sleep(0.005)

    def pids(self) -> list[int]:
        """Process ids of the worker processes that run jobs."""
        if self.executor is not None:
            return self.executor.pids()
        assert self.worker is not None
        return self.worker.pids()

    def ended(self, pid: int) -> None:
        """The worker process ``pid`` is gone: at once under the local executor, whose
        supervisor replaces a process before it records the job's end; soon under Celery,
        which replaces its pool's processes on its own."""
        if self.executor is not None:
            assert pid not in self.pids()
            return
        deadline = time.monotonic() + 30
        while pid in self.pids():
            assert time.monotonic() < deadline, f"worker process {pid} still runs\n{self}"
            time.sleep(0.05)

    def occupy(self) -> list[str]:
        """Every worker process busy with a long job: the ids of those jobs."""
        workers = self.settings.executor.workers
        blockers = [self.submit(HUGE_PDF, output="markdown").id for _ in range(workers)]
        for job_id in blockers:
            self.running_pid(job_id)
        return blockers

    def audit_events(self, job_id: str) -> int:
        events, _ = AuditLog(self.store).list(AuditFilter(job_id=job_id, kind="job"))
        return len(events)

    def __str__(self) -> str:
        log = f", worker log:\n{self.worker.tail()}" if self.worker else ""
        return f"{self.kind} executor{log}"

    def close(self) -> None:
        self.closing.close()


def _done(record: JobRecord) -> bool:
    return record.status in TERMINAL_STATUSES


def _local(settings: Settings, closing: contextlib.ExitStack) -> Backend:
    store = JobStore(settings.database_url)
    closing.callback(store.close)
    store.migrate()
    keys = SecretKeys.from_settings(settings)
    executor = LocalExecutor(settings, store, JobEvents(), keys=keys)
    queue = JobQueue(
        store,
        BlobStore(settings.storage_url),
        executor,
        executor.events,
        max_attempts=settings.executor.max_attempts,
        keys=keys,
    )
    executor.start()
    closing.callback(executor.stop)
    return Backend("local", settings, store, queue, executor=executor, closing=closing)


def _celery(settings: Settings, env: dict[str, str], closing: contextlib.ExitStack) -> Backend:
    store = JobStore(settings.database_url)
    closing.callback(store.close)
    store.migrate()
    closing.callback(delete_queues, env)
    dispatch = CeleryDispatch(settings)
    closing.callback(dispatch.stop)
    queue = JobQueue(
        store,
        BlobStore(settings.storage_url),
        dispatch,
        JobEvents(),
        max_attempts=settings.executor.max_attempts,
        keys=SecretKeys.from_settings(settings),
    )
    worker = Worker(settings.data_dir, env, concurrency=settings.executor.workers)
    closing.callback(worker.stop)
    worker.start()  # the caller waits until it is ready
    return Backend("celery", settings, store, queue, worker=worker, closing=closing)


Group = tuple[tuple[str, Any], ...]


def _group(executor: dict[str, Any]) -> Group:
    return tuple(sorted(executor.items()))


class Combination:
    """One executor on one database: a backend per group of settings, made on first use;
    the celery fleets of every group the combination's tests need start at once."""

    def __init__(
        self, kind: str, request: pytest.FixtureRequest, folders: pytest.TempPathFactory
    ) -> None:
        self.executor, _, self.database = kind.partition("-")
        self.request, self.folders = request, folders
        self.backends: dict[Group, Backend] = {}

    def backend(self, **executor: Any) -> Backend:
        group = _group(executor)
        if group not in self.backends:
            wanted = {group: executor}
            if self.executor == "celery":  # a worker takes long to start: all at once
                wanted |= self._groups()
            started = []
            for key, settings in wanted.items():
                if key not in self.backends:
                    self.backends[key] = self._start({**COMMON, **settings})
                    started.append(self.backends[key])
            for backend in started:
                if backend.worker is not None:
                    backend.worker.wait_ready()
        return self.backends[group]

    def _groups(self) -> dict[Group, dict[str, Any]]:
        """The settings groups (``executor`` markers) of this module's tests selected to
        run on this combination."""
        groups: dict[Group, dict[str, Any]] = {}
        for item in self.request.session.items:
            callspec = getattr(item, "callspec", None)
            if getattr(item, "module", None) is not self.request.module or callspec is None:
                continue
            if callspec.params.get("combination") != f"{self.executor}-{self.database}":
                continue
            marker = item.get_closest_marker("executor")
            settings = dict(marker.kwargs) if marker else {}
            groups[_group(settings)] = settings
        return groups

    def _start(self, executor: dict[str, Any]) -> Backend:
        data_dir = self.folders.mktemp(f"{self.executor}-{self.database}")
        closing = contextlib.ExitStack()
        try:
            if self.database == "sqlite":
                database = f"sqlite:///{data_dir / 'jobs.db'}"
            else:
                postgres_url = self.request.getfixturevalue("postgres_url")
                database = closing.enter_context(new_postgres_database(postgres_url))
            overrides: dict[str, Any] = {
                "data_dir": data_dir,
                "database": {"url": database},
                "executor": executor,
                # The same file is submitted again and again, to be run each time.
                "cache": {"enabled": False},
            }
            if self.executor == "local":
                return _local(load_settings(**overrides), closing)
            broker = self.request.getfixturevalue(
                "redis_url" if self.database == "sqlite" else "amqp_url"
            )
            celery = {"broker_url": broker, "queue_prefix": queue_prefix()}
            env = {
                **os.environ,
                "DOCWORKER_DATA_DIR": str(data_dir),
                "DOCWORKER_DATABASE__URL": database,
                "DOCWORKER_LOG__FORMAT": "json",
                "DOCWORKER_CACHE__ENABLED": "false",
                "DOCWORKER_EXECUTOR__KIND": "celery",
                "DOCWORKER_CELERY__BROKER_URL": celery["broker_url"],
                "DOCWORKER_CELERY__QUEUE_PREFIX": celery["queue_prefix"],
                **{f"DOCWORKER_EXECUTOR__{key.upper()}": str(v) for key, v in executor.items()},
            }
            overrides["executor"] = {**executor, "kind": "celery"}
            settings = load_settings(**overrides, celery=celery)
            return _celery(settings, env, closing)
        except BaseException:
            closing.close()
            raise

    def close(self) -> None:
        for backend in self.backends.values():  # the fleets stop side by side
            if backend.worker is not None:
                backend.worker.terminate()
        for backend in self.backends.values():
            backend.close()


@pytest.fixture(
    scope="module",
    params=[
        "local-sqlite",
        pytest.param("local-postgres", marks=pytest.mark.postgres),
        pytest.param("celery-sqlite", marks=pytest.mark.redis),
        pytest.param("celery-postgres", marks=[pytest.mark.rabbitmq, pytest.mark.postgres]),
    ],
)
def combination(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Combination]:
    combination = Combination(request.param, request, tmp_path_factory)
    try:
        yield combination
    finally:
        combination.close()


@pytest.fixture
def backend(combination: Combination, request: pytest.FixtureRequest) -> Backend:
    marker = request.node.get_closest_marker("executor")
    return combination.backend(**(marker.kwargs if marker else {}))


def test_a_job_runs_and_its_result_is_stored(backend: Backend) -> None:
    record = backend.submit(SMALL_TEXT, output="text")
    done = backend.done(record.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    if backend.worker is not None:  # run by a worker process, not by this one
        assert done.worker is not None and done.worker.split(":")[1] != str(os.getpid())
    payload = backend.queue.result(done)
    assert "test document" in payload["content"]
    assert payload["format"] == "text"
    assert backend.audit_events(done.id) == 1


def test_the_same_idempotency_key_gives_the_same_job_run_once(backend: Backend) -> None:
    key = f"contract-{os.urandom(6).hex()}"
    first = backend.submit(SMALL_TEXT, idempotency_key=key, output="text")
    again = backend.submit(SMALL_TEXT, idempotency_key=key, output="text")
    assert again.id == first.id
    done = backend.done(first.id)
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 1)
    assert backend.audit_events(done.id) == 1
    assert backend.submit(SMALL_TEXT, idempotency_key=key, output="text").id == first.id


def test_bad_input_fails_once_without_retry(backend: Backend, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    record = backend.submit(broken, output="text")
    done = backend.done(record.id)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None and done.error["code"] == "corrupt-document"


def test_a_cancelled_queued_job_never_runs(backend: Backend) -> None:
    blockers = backend.occupy()
    queued = backend.submit(SMALL_TEXT, output="text")
    cancelled = backend.queue.cancel(queued.id, OPEN)
    assert cancelled.status is JobStatus.CANCELLED
    for job_id in blockers:
        backend.queue.cancel(job_id, OPEN)
    # The next job runs: the cancelled one was passed over.
    after = backend.submit(SMALL_TEXT, output="text")
    assert backend.done(after.id).status is JobStatus.SUCCEEDED
    for job_id in blockers:
        assert backend.done(job_id).status is JobStatus.CANCELLED
    record = backend.store.get(queued.id)
    assert (record.status, record.attempts, record.started_at) == (JobStatus.CANCELLED, 0, None)


def test_cancelling_a_running_job_stops_its_worker(backend: Backend) -> None:
    record = backend.submit(HUGE_PDF, output="markdown")
    pid = backend.running_pid(record.id)
    backend.queue.cancel(record.id, OPEN)
    done = backend.done(record.id)
    assert done.status is JobStatus.CANCELLED
    backend.ended(pid)
    # The pool is whole again and takes the next job.
    after = backend.submit(SMALL_TEXT, output="text")
    assert backend.done(after.id).status is JobStatus.SUCCEEDED


def test_killing_the_worker_mid_job_retries_the_job_and_it_ends_once(backend: Backend) -> None:
    record = backend.submit(HUGE_PDF, output="markdown", pages="1-250")
    pid = backend.running_pid(record.id)
    os.kill(pid, signal.SIGKILL)
    done = backend.done(record.id, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    if backend.worker is not None:  # the job's worker names the new worker process
        assert done.worker is not None and int(done.worker.split(":")[1]) != pid
    backend.ended(pid)
    assert backend.audit_events(done.id) == 1
    payload = backend.queue.result(done)
    assert payload["metadata"]["page_count"] == 619
    assert payload["content"]


def test_a_worker_lost_on_every_attempt_is_dead_after_the_last(backend: Backend) -> None:
    assert backend.settings.executor.max_attempts == 2
    record = backend.submit(HUGE_PDF, output="markdown")
    for attempt in (1, 2):
        os.kill(backend.running_pid(record.id, attempt, timeout=60), signal.SIGKILL)
    done = backend.done(record.id)
    assert (done.status, done.attempts) == (JobStatus.DEAD, 2)
    assert done.error is not None and done.error["code"] == "engine-failed"
    assert backend.audit_events(done.id) == 1


@pytest.mark.executor(job_timeout=0.5)
def test_a_job_over_its_time_limit_is_dead_after_one_attempt(backend: Backend) -> None:
    record = backend.submit(HUGE_PDF, output="markdown")
    pid = backend.running_pid(record.id)
    done = backend.done(record.id)
    # Not retried: the same document would hold a worker for the whole limit again.
    assert (done.status, done.attempts) == (JobStatus.DEAD, 1)
    assert done.error is not None and done.error["code"] == "job-timeout"
    assert done.error["detail"] == "the job ran longer than its limit of 0.5 s"
    backend.ended(pid)
    if backend.worker is not None:
        # The message, given back when the worker process was ended, found the job ended.
        assert backend.worker.wait_for_event("message skipped", record.id)["status"] == "dead"


@pytest.mark.executor(memory_limit_mb=64)
def test_a_job_over_its_memory_limit_is_dead_after_one_attempt(backend: Backend) -> None:
    # A worker alone (Python, its parsers loaded) is over 64 MiB once it reads a PDF.
    before = set(backend.pids())
    record = backend.submit(HUGE_PDF, output="markdown")
    done = backend.done(record.id)
    assert (done.status, done.attempts) == (JobStatus.DEAD, 1)
    assert done.error is not None and done.error["code"] == "memory-limit-exceeded"
    assert "64 MiB" in done.error["detail"]
    # The worker process that ran it was ended. It may be killed before a look at the
    # executor's busy workers sees it run: a Celery worker process names itself in the
    # job's worker; of the local executor's, one of those there before is gone.
    if backend.executor is None:
        assert done.worker is not None
        backend.ended(int(done.worker.split(":")[1]))
    else:
        assert before - set(backend.pids())
    if backend.worker is not None:
        assert backend.worker.wait_for_event("message skipped", record.id)["status"] == "dead"


def test_priority_then_age_decides_the_order(backend: Backend) -> None:
    blockers = backend.occupy()  # the next jobs wait, in the store or the broker
    low = backend.submit(SMALL_TEXT, priority=-1, output="text")
    high = backend.submit(SMALL_TEXT, priority=5, output="text")
    # One worker process free: it takes the job of higher priority, though it came later.
    backend.queue.cancel(blockers[0], OPEN)
    high_done = backend.done(high.id)
    for job_id in blockers[1:]:
        backend.queue.cancel(job_id, OPEN)
    low_done = backend.done(low.id)
    assert high_done.status is low_done.status is JobStatus.SUCCEEDED
    assert high_done.started_at is not None and low_done.started_at is not None
    assert high_done.started_at < low_done.started_at


# -- jobs split into parts ------------------------------------------------------------------


@functools.cache
def _whole(path: Path, operation: str, **params: object) -> dict[str, object]:
    """The payload of the operation run whole, in this process (once for every
    combination: it depends on none)."""
    op = get_operation(operation)
    ctx = operation_context(load_settings(cache={"enabled": False}))
    return op.run(ctx, InputFile(path, path.name), validate_params(op, dict(params))).payload


def _split_and_spread(backend: Backend, scanned_pdf: Path) -> tuple[JobRecord, Records, bool]:
    """The scan read as a split job: the job, its parts, and whether they fanned out.

    The local supervisor hands the parts to its two idle workers at once: they ran side
    by side. A Celery worker process takes a message when it is free, so one still
    ending the split may start after the other ended a part: they ran on both processes
    (each names itself in the part's worker)."""
    record = backend.submit(scanned_pdf, output="markdown")
    done = backend.done(record.id, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    parts = backend.store.parts_of(done.id)
    if backend.executor is not None:
        spans = sorted((p.started_at, p.finished_at) for p in parts)
        spread = any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    else:
        spread = len({p.worker for p in parts}) == 2
    return done, parts, spread


def test_a_scan_is_read_by_parts_on_every_worker(backend: Backend, scanned_pdf: Path) -> None:
    done, parts, spread = _split_and_spread(backend, scanned_pdf)
    if not spread and backend.executor is None:
        # A Celery worker process being replaced (its job quota, or killed by a test
        # before) takes no message until it has started: the other may run every part.
        # Once more, and the fleet must have shared the parts.
        done, parts, spread = _split_and_spread(backend, scanned_pdf)
    assert spread, [(p.worker, p.started_at, p.finished_at) for p in parts]
    assert (done.children_total, done.children_pending, done.attempts) == (3, 0, 1)
    assert [p.operation for p in parts] == ["ocr"] * 3
    assert [p.params["pages"] for p in parts] == ["1", "2", "3"]
    assert all(p.status is JobStatus.SUCCEEDED and p.parent_id == done.id for p in parts)
    # The result is the one the job makes when it runs whole.
    whole = _whole(scanned_pdf, "extract", output="markdown")
    payload = backend.queue.result(done)
    assert payload["content"] == whole["content"]
    assert payload["metadata"] == whole["metadata"]
    assert "Abstract" in str(payload["content"]) or len(str(payload["content"])) > 1000
    # What the parts used adds up in the job, and in its audit event.
    assert all(p.cpu_seconds > 0 and p.pages == 1 for p in parts)
    assert done.cpu_seconds >= sum(p.cpu_seconds for p in parts) and done.pages == 3
    (event,) = AuditLog(backend.store).list(AuditFilter(kind="job", job_id=done.id))[0]
    assert (event.job_id, event.outcome, event.pages) == (done.id, "succeeded", 3)
    assert event.cpu_seconds == pytest.approx(done.cpu_seconds)
    assert event.detail == {"attempts": 1, "parts": 3}


def test_ocr_parts_merge_into_the_whole_result(backend: Backend, scanned_pdf: Path) -> None:
    record = backend.submit(scanned_pdf, "ocr", output="searchable_pdf", pages="1-3")
    done = backend.done(record.id, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    parts = backend.store.parts_of(done.id)
    assert [(p.operation, p.params["pages"]) for p in parts] == [
        ("ocr", "1"),
        ("ocr", "2"),
        ("ocr", "3"),
    ]
    assert all(p.params["output"] == "searchable_pdf" for p in parts)
    payload = backend.queue.result(done)
    whole = _whole(scanned_pdf, "ocr", output="text", pages="1-3")
    assert payload["content"] == whole["content"]
    assert payload["confidence"] == pytest.approx(whole["confidence"], abs=1e-3)
    assert [p["page"] for p in payload["pages"]] == [1, 2, 3]
    assert payload["artifacts"] == [
        {"name": "searchable.pdf", "mime": "application/pdf", "size": ANY}
    ]
    # The parts' searchable PDFs are joined, pages in order, words selectable.
    _entry, stream = backend.queue.artifact(done, "searchable.pdf")
    with stream:
        joined = pypdfium2.PdfDocument(stream.read())
    try:
        assert len(joined) == 3
        texts = [joined[i].get_textpage().get_text_range() for i in range(3)]
    finally:
        joined.close()
    for text, page in zip(texts, payload["pages"], strict=True):
        assert set(page["text"].split()[:20]) <= set(text.split())


def test_a_document_with_a_text_layer_is_not_split(backend: Backend) -> None:
    record = backend.submit(ARTICLE, output="text")
    done = backend.done(record.id)
    assert done.status is JobStatus.SUCCEEDED and done.children_total == 0


def test_cancelling_a_split_job_cancels_its_parts(backend: Backend, scanned_pdf: Path) -> None:
    record = backend.submit(scanned_pdf, output="text")
    backend.wait_until(record.id, lambda r: r.children_total > 0, timeout=60)
    backend.running_pid(backend.store.parts_of(record.id)[0].id)
    cancelled = backend.queue.cancel(record.id, OPEN)
    assert cancelled.status is JobStatus.CANCELLED
    for part in backend.store.parts_of(record.id):
        assert backend.done(part.id).status is JobStatus.CANCELLED
    job = backend.store.get(record.id)
    assert job.status is JobStatus.CANCELLED
    # Parts stopped after their job ended still add their CPU time to its audit event.
    parts = backend.store.parts_of(record.id)
    assert job.cpu_seconds >= sum(p.cpu_seconds for p in parts) > 0
    (event,) = AuditLog(backend.store).list(AuditFilter(job_id=record.id))[0]
    assert event.outcome == "cancelled"
    assert event.cpu_seconds == pytest.approx(job.cpu_seconds)
