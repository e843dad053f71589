"""What only the celery executor does: a real ``docworker serve --executor celery`` (the
API) and a real ``docworker worker`` process, on Redis with an SQLite job store and on
RabbitMQ with a PostgreSQL one; every job is submitted and its result read through the
API. What every executor does (cancel, priorities, limits, retries, parts) is proved on
this executor too by tests/integration/test_executor_contract.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdfium2
import pytest
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
from tests.celery_worker import Worker, delete_queues, queue_prefix
from tests.conftest import new_postgres_database
from tests.e2e.server import Server

SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"
ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"
HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
ENDED = {"succeeded", "partial", "failed", "dead", "cancelled"}
OPEN = Principal.open()


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
            "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
            # A scan of two pages or more is read by parts, a page each.
            "DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES": "2",
            "DOCWORKER_EXECUTOR__SPLIT_PARTS": "2",
        }
        store = JobStore(database)
        store.migrate()
        stack.callback(store.close)
        stack.callback(delete_queues, env)
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
    deadline = time.monotonic() + 120
    while (batch := client.get(f"/api/v2/batches/{batch_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, fleet.worker.tail()
        time.sleep(0.1)
    assert (batch["status"], batch["counts"]["succeeded"]) == ("succeeded", len(files)), batch
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
        "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
    }
    settings = _settings(env, tmp_path)
    with contextlib.ExitStack() as stack:
        store = JobStore(settings.database_url)
        store.migrate()
        stack.callback(store.close)
        stack.callback(delete_queues, env)
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
