"""The celery executor: a real ``docworker serve --executor celery`` (the API) and a real
``docworker worker`` process, on Redis with an SQLite job store and on RabbitMQ with a
PostgreSQL one; every job is submitted and its result read through the API. The time and
memory limits have workers of their own, their jobs submitted as the API does."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdfium2
import pytest
import redis
from kombu.connection import Connection
from sqlalchemy import update

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.jobs.audit import AuditFilter, AuditLog
from docworker.jobs.distributed import CeleryDispatch
from docworker.jobs.events import JobEvents
from docworker.jobs.models import Job
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.results import read_payload
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore
from docworker.result_cache import CACHE_KEY, ResultCache
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from tests.conftest import new_postgres_database
from tests.e2e.server import Server

SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"
HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"
ENDED = {"succeeded", "partial", "failed", "dead", "cancelled"}
OPEN = Principal.open()


class Worker:
    """One ``docworker worker`` process (one worker process under it) with ``env``."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.env = env
        self.log = data_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "docworker", "worker", "--concurrency", "1"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self) -> None:
        self.wait_for_line(re.compile(r"docworker-\d+@\S+ ready"), 120)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            for line in self.log.read_text(errors="replace").splitlines():
                if pattern.search(line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no line {pattern.pattern!r} in the worker's log:\n{self.tail()}")

    def wait_for_event(self, event: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The first JSON log line of ``event`` about ``job_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and job_id in line:
                    entry: dict[str, Any] = json.loads(line)
                    if entry.get("event") == event and entry.get("job_id") == job_id:
                        return entry
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} of job {job_id} in the worker's log:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Fleet:
    """The API, a worker, and the job store they share (read directly by the tests)."""

    def __init__(
        self, broker: str, server: Server, worker: Worker, store: JobStore, env: dict[str, str]
    ) -> None:
        self.broker = broker
        self.server = server
        self.worker = worker
        self.store = store
        self.env = env

    def submit(
        self,
        client: httpx.Client,
        path: Path,
        operation: str = "extract",
        *,
        priority: int = 0,
        **params: Any,
    ) -> str:
        response = client.post(
            "/api/v2/jobs",
            files={"file": (path.name, path.read_bytes())},
            data={"operation": operation, "params": json.dumps(params), "priority": str(priority)},
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def wait(self, client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = client.get(f"/api/v2/jobs/{job_id}").json()
            if job["status"] in ENDED:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not end:\n{self.worker.tail()}")

    def running(self, job_id: str, timeout: float = 60) -> JobRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            if record.status == JobStatus.RUNNING and record.worker:
                return record
            assert record.status == JobStatus.QUEUED, record
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} never started:\n{self.worker.tail()}")

    def audit_events(self, job_id: str) -> int:
        events, _ = AuditLog(self.store).list(AuditFilter(job_id=job_id, kind="job"))
        return len(events)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=[pytest.mark.rabbitmq, pytest.mark.postgres]),
    ],
)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    data_dir = tmp_path_factory.mktemp(f"celery-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "redis":
            broker = request.getfixturevalue("redis_url")
            database = f"sqlite:///{data_dir / 'jobs.db'}"
        else:
            broker = request.getfixturevalue("amqp_url")
            database = stack.enter_context(
                new_postgres_database(request.getfixturevalue("postgres_url"))
            )
        env = {
            "DOCWORKER_EXECUTOR__KIND": "celery",
            "DOCWORKER_DATABASE__URL": database,
            "DOCWORKER_CELERY__BROKER_URL": broker,
            # Queues of their own on a broker that others may share.
            "DOCWORKER_CELERY__QUEUE_PREFIX": f"test-{uuid.uuid4().hex[:12]}-",
            # A scan of two pages or more is read by parts, a page each.
            "DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES": "2",
            "DOCWORKER_EXECUTOR__SPLIT_PARTS": "2",
        }
        store = JobStore(database)
        store.migrate()
        stack.callback(store.close)
        stack.callback(_delete_queues, env)
        server = Server(data_dir, **env)
        stack.callback(server.stop)
        worker = Worker(data_dir, {**server.env})
        stack.callback(worker.stop)
        worker.start()
        server.start()
        worker.wait_ready()
        yield Fleet(request.param, server, worker, store, server.env)


def _settings(env: dict[str, str], data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir,
        executor={"kind": "celery"},
        celery={
            "broker_url": env["DOCWORKER_CELERY__BROKER_URL"],
            "queue_prefix": env["DOCWORKER_CELERY__QUEUE_PREFIX"],
        },
    )


def _delete_queues(env: dict[str, str]) -> None:
    """Delete what the fleet made on the broker (others share it): on Redis every key of
    its prefix, on RabbitMQ its queues and exchanges."""
    broker, prefix = env["DOCWORKER_CELERY__BROKER_URL"], env["DOCWORKER_CELERY__QUEUE_PREFIX"]
    if broker.startswith("redis"):
        client = redis.Redis.from_url(broker)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        return
    exchanges = [f"{prefix}docworker{suffix}" for suffix in ("", ".pidbox", ".events")]
    with Connection(broker) as connection:
        channel = connection.channel()
        for family in ("documents", "ocr", "convert", "media"):
            channel.queue_delete(f"{prefix}{family}")
        for name in [*exchanges, f"reply.{prefix}docworker.pidbox"]:
            channel.exchange_delete(name)


@pytest.fixture
def client(fleet: Fleet) -> Iterator[httpx.Client]:
    with fleet.server.client() as c:
        yield c


def test_a_job_runs_on_the_worker_and_its_result_is_read_through_the_api(
    fleet: Fleet, client: httpx.Client
) -> None:
    response = client.post(
        "/api/v2/extract",
        files={"file": (SMALL_TEXT.name, SMALL_TEXT.read_bytes())},
        data={"output": "text"},
    )
    assert response.status_code == 200, response.text
    assert "test document" in response.json()["content"]
    job_id = response.headers["x-job-id"]
    record = fleet.store.get(job_id)
    assert record.status == JobStatus.SUCCEEDED
    assert record.attempts == 1
    assert record.worker is not None and record.worker.split(":")[1] != str(os.getpid())
    # The API runs no job; its health names the broker it publishes to.
    executor = client.get("/health").json()["checks"]["executor"]
    assert (executor["kind"], executor["status"]) == ("celery", "up")


def test_a_message_delivered_again_does_not_run_a_finished_job(
    fleet: Fleet, client: httpx.Client
) -> None:
    job_id = fleet.submit(client, SMALL_TEXT, output="text")
    assert fleet.wait(client, job_id)["status"] == "succeeded"
    before = fleet.store.get(job_id)
    dispatch = CeleryDispatch(_settings(fleet.env, fleet.server.data_dir))
    try:
        dispatch.publish(before)
    finally:
        dispatch.stop()
    assert fleet.worker.wait_for_event("message skipped", job_id)["status"] == "succeeded"
    after = fleet.store.get(job_id)
    assert after.attempts == 1
    assert after.finished_at == before.finished_at
    assert after.result == before.result
    assert fleet.audit_events(job_id) == 1


def test_cancel_stops_a_running_job_and_the_worker_goes_on(
    fleet: Fleet, client: httpx.Client
) -> None:
    job_id = fleet.submit(client, HUGE_PDF, output="markdown")
    fleet.running(job_id)
    cancelled = client.delete(f"/api/v2/jobs/{job_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert fleet.wait(client, job_id)["status"] == "cancelled"
    # The worker process that ran it was replaced: the next job runs.
    after = fleet.submit(client, SMALL_TEXT, output="text")
    assert fleet.wait(client, after)["status"] == "succeeded"


def test_the_job_of_higher_priority_is_taken_first(fleet: Fleet, client: httpx.Client) -> None:
    blocker = fleet.submit(client, HUGE_PDF, output="text")
    fleet.running(blocker)  # the one worker process is busy: the next two wait in the broker
    low = fleet.submit(client, SMALL_TEXT, priority=-1, output="text")
    high = fleet.submit(client, SMALL_TEXT, priority=5, output="text")
    assert client.delete(f"/api/v2/jobs/{blocker}").status_code == 200
    assert fleet.wait(client, low)["status"] == fleet.wait(client, high)["status"] == "succeeded"
    first, then = fleet.store.get(high), fleet.store.get(low)
    assert first.started_at is not None and then.started_at is not None
    assert first.started_at < then.started_at


def test_a_message_is_a_turn_given_to_the_tenant_served_least(
    fleet: Fleet, client: httpx.Client
) -> None:
    """Claims are fair across tenants, as the local executor's: the message of the
    first job waiting starts the job of the tenant that runs the fewest jobs and was
    served least recently, whose message came last."""
    blocker = fleet.submit(client, HUGE_PDF, output="text")
    fleet.running(blocker)
    crowd = [fleet.submit(client, SMALL_TEXT, output="text") for _ in range(3)]
    late = fleet.submit(client, SMALL_TEXT, output="text")
    with fleet.store.transaction(writes=True) as session:  # the API runs without keys
        session.execute(update(Job).where(Job.id.in_([blocker, *crowd])).values(tenant="a"))
        session.execute(update(Job).where(Job.id == late).values(tenant="b"))
    assert client.delete(f"/api/v2/jobs/{blocker}").status_code == 200
    for job_id in (*crowd, late):
        assert fleet.wait(client, job_id)["status"] == "succeeded"
    started = {job_id: fleet.store.get(job_id).started_at for job_id in (*crowd, late)}
    first = min(started, key=lambda job_id: started[job_id] or 0)
    assert first == late, started
    # Every job ran once: as many messages as jobs, each a turn.
    assert all(fleet.store.get(job_id).attempts == 1 for job_id in (*crowd, late))


def test_a_worker_process_killed_mid_job_leaves_the_job_done_once(
    fleet: Fleet, client: httpx.Client
) -> None:
    job_id = fleet.submit(client, HUGE_PDF, output="text", pages="1-250")
    running = fleet.running(job_id)
    assert running.worker is not None
    os.kill(int(running.worker.split(":")[1]), signal.SIGKILL)
    done = fleet.wait(client, job_id)
    assert done["status"] == "succeeded", done
    record = fleet.store.get(job_id)
    assert record.attempts == 2
    assert record.worker != running.worker
    assert fleet.audit_events(job_id) == 1
    result = client.get(f"/api/v2/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.json()["content"]


def test_a_batch_publishes_each_child_and_runs_them_on_the_worker(
    fleet: Fleet, client: httpx.Client
) -> None:
    files = [SMALL_TEXT, corpus_root() / "pdf" / "minimal-document.pdf"]
    response = client.post(
        "/api/v2/batches",
        data={"operation": "extract", "params": '{"output": "text"}'},
        files=[("file", (path.name, path.read_bytes())) for path in files],
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    # The long poll answers once the worker has ended the last child.
    waited = client.get(f"/api/v2/batches/{batch_id}", params={"wait": 120}, timeout=150)
    batch = waited.json()
    assert batch["status"] != "running", fleet.worker.tail()
    assert (batch["status"], batch["counts"]["succeeded"]) == ("succeeded", len(files)), batch
    # The batch's events were written by the worker, in its children's transactions.
    stream = client.get(f"/api/v2/batches/{batch_id}/events", timeout=30).text
    kinds = [line[len("event: ") :] for line in stream.splitlines() if line.startswith("event:")]
    assert kinds[0] == "batch.queued" and kinds[-1] == "batch.succeeded", kinds
    children = fleet.store.batch_children(batch_id)
    assert all(c.attempts == 1 and c.worker is not None for c in children)
    assert all(c.worker.split(":")[1] != str(os.getpid()) for c in children if c.worker)


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-only PDF: the first two pages of a corpus article, rendered (a scan)."""
    pdf = pypdfium2.PdfDocument(str(ARTICLE))
    try:
        pages = [pdf[index].render(scale=150 / 72, grayscale=True).to_pil() for index in range(2)]
    finally:
        pdf.close()
    target = tmp_path_factory.mktemp("scan") / "scanned-article.pdf"
    pages[0].save(target, save_all=True, append_images=pages[1:], resolution=150)
    return target


@pytest.mark.slow
def test_the_parts_of_a_split_job_run_as_messages_of_their_own(
    fleet: Fleet, client: httpx.Client, scanned_pdf: Path
) -> None:
    if fleet.broker != "redis":
        pytest.skip("parts are the same messages on either broker: run once, on Redis")
    job_id = fleet.submit(client, scanned_pdf, output="markdown")
    assert fleet.wait(client, job_id)["status"] == "succeeded"
    record = fleet.store.get(job_id)
    assert (record.children_total, record.children_pending, record.attempts) == (2, 0, 1)
    parts = fleet.store.parts_of(job_id)
    assert [p.operation for p in parts] == ["ocr"] * 2
    assert all(p.status == JobStatus.SUCCEEDED and p.attempts == 1 for p in parts)
    # Each part was a message of its own, taken from the broker.
    for part in parts:
        fleet.worker.wait_for_line(re.compile(rf"run_job\[{part.id}\] received"))
    result = client.get(f"/api/v2/jobs/{job_id}/result")
    assert result.status_code == 200
    assert len(str(result.json()["content"])) > 500
    assert fleet.audit_events(job_id) == 1


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "code"),
    [
        # The 619-page PDF to Markdown takes 1.4 s in process on a fast machine.
        ({"JOB_TIMEOUT": "0.5"}, "job-timeout"),
        # Below what a worker process holds once every parser is loaded: any job passes it.
        ({"MEMORY_LIMIT_MB": "100"}, "memory-limit-exceeded"),
    ],
    ids=["time", "memory"],
)
def test_a_job_past_its_limit_ends_dead_after_one_attempt(
    tmp_path: Path, redis_url: str, limit: dict[str, str], code: str
) -> None:
    """A worker of its own with a tight limit; jobs submitted as the API does."""
    env = {
        **os.environ,
        "DOCWORKER_DATA_DIR": str(tmp_path),
        "DOCWORKER_LOG__FORMAT": "json",
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": f"test-{uuid.uuid4().hex[:12]}-",
        **{f"DOCWORKER_EXECUTOR__{name}": value for name, value in limit.items()},
    }
    settings = _settings(env, tmp_path)
    with contextlib.ExitStack() as stack:
        store = JobStore(settings.database_url)
        store.migrate()
        stack.callback(store.close)
        stack.callback(_delete_queues, env)
        dispatch = CeleryDispatch(settings)
        stack.callback(dispatch.stop)
        queue = JobQueue(
            store,
            BlobStore(settings.storage_url),
            dispatch,
            JobEvents(),
            max_attempts=3,
            keys=SecretKeys.from_settings(settings),
        )
        worker = Worker(tmp_path, env)
        stack.callback(worker.stop)
        worker.start()
        worker.wait_ready()

        def run(path: Path, output: str = "text") -> JobRecord:
            blob = queue.blobs.put_file(path)
            record, _ = queue.submit(
                "extract", {"output": output}, JobInput(blob, name=path.name), caller=OPEN
            )
            deadline = time.monotonic() + 120
            while (record := store.get(record.id)).status not in TERMINAL_STATUSES:
                assert time.monotonic() < deadline, worker.tail()
                time.sleep(0.1)
            return record

        ended = run(HUGE_PDF, "markdown")
        assert ended.status == JobStatus.DEAD, ended
        assert ended.error is not None and ended.error["code"] == code
        assert ended.attempts == 1
        # The message, given back when the worker process was ended, found the job ended.
        assert worker.wait_for_event("message skipped", ended.id)["status"] == "dead"
        if code == "job-timeout":  # the replaced worker process takes the next job
            assert run(SMALL_TEXT).status == JobStatus.SUCCEEDED


@pytest.mark.redis
def test_a_result_kept_by_a_worker_answers_the_same_request_without_the_broker(
    tmp_path: Path, redis_url: str
) -> None:
    """The worker keeps a job's result in the cache's shared tier (on disk in the data
    folder it shares with the API); the same request again is a job made from it,
    succeeded at once and published nowhere."""
    env = {
        **os.environ,
        "DOCWORKER_DATA_DIR": str(tmp_path),
        "DOCWORKER_LOG__FORMAT": "json",
        "DOCWORKER_CACHE__ENABLED": "true",
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": f"test-{uuid.uuid4().hex[:12]}-",
    }
    settings = _settings(env, tmp_path)
    with contextlib.ExitStack() as stack:
        store = JobStore(settings.database_url)
        store.migrate()
        stack.callback(store.close)
        stack.callback(_delete_queues, env)
        dispatch = CeleryDispatch(settings)
        stack.callback(dispatch.stop)
        cache = ResultCache(settings)
        stack.callback(cache.close)
        queue = JobQueue(
            store,
            BlobStore.of(settings),
            dispatch,
            JobEvents(),
            max_attempts=3,
            keys=SecretKeys.from_settings(settings),
            cache=cache,
        )
        worker = Worker(tmp_path, env)
        stack.callback(worker.stop)
        worker.start()
        worker.wait_ready()

        def submit(queue: JobQueue) -> JobRecord:
            blob = queue.blobs.put_file(SMALL_TEXT)
            record, _ = queue.submit(
                "extract", {"output": "text"}, JobInput(blob, name=SMALL_TEXT.name), caller=OPEN
            )
            return record

        first = submit(queue)
        deadline = time.monotonic() + 120
        while (first := store.get(first.id)).status not in TERMINAL_STATUSES:
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.1)
        assert (first.status, first.cached) == (JobStatus.SUCCEEDED, False)
        assert first.input.get(CACHE_KEY) is not None
        assert [tier.entries for tier in cache.stats() if tier.tier != "memory"] == [1]
        # Through a broker that does not answer: a job made from the cache is published
        # nowhere, so it is not refused.
        down = settings.model_copy(deep=True)
        down.celery.broker_url = f"redis://127.0.0.1:{_closed_port()}/0"
        nowhere = CeleryDispatch(down)
        stack.callback(nowhere.stop)
        again = submit(
            JobQueue(
                store,
                queue.blobs,
                nowhere,
                JobEvents(),
                max_attempts=3,
                keys=queue.keys,
                cache=cache,
            )
        )
        assert (again.status, again.cached, again.attempts) == (JobStatus.SUCCEEDED, True, 0)
        assert again.worker is None and again.result is not None
        assert "test document" in read_payload(queue.blobs, again.result)["content"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
