"""Faults during a run, on both executors, with servers of the tests' own that they stop
and start again (tests/services.py): a broker restarted (Redis, its messages kept in its
append-only file or lost with its files; RabbitMQ, its durable queues kept), PostgreSQL
restarted under the celery executor and under the local one, a worker process killed
mid-job. Each ends with every job the API accepted succeeded exactly once: one result,
one attempt that succeeded, one audit event, no manual action; and while a dependency is
down the API answers a clear ``503`` problem naming it, with ``Retry-After``."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bench.scoring import corpus_root
from docworker.jobs.audit import AuditFilter, AuditLog
from docworker.jobs.store import JobStatus, JobStore
from tests.conftest import new_postgres_database
from tests.e2e.server import Server
from tests.e2e.test_celery_executor import Worker
from tests.services import PrivateRabbitMQ, PrivateRedis, RestartablePostgres

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]

SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"
HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
#: A job of a few seconds: the text of the first pages of a long PDF.
SHORT_RUN = {"output": "text", "pages": "1-150"}
#: A job of minutes, stopped by a cancel.
LONG_RUN = {"output": "markdown"}
ENDED = {"succeeded", "partial", "failed", "dead", "cancelled"}
#: How soon a queued job no worker took is published again, in these tests.
REPUBLISH_AFTER = 30.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    server.create()
    try:
        yield server
    finally:
        server.destroy()


class Deployment:
    """An API (and, for the celery executor, a worker and its broker) over a database of
    the private PostgreSQL server, whose job store the tests read directly."""

    def __init__(
        self,
        server: Server,
        store: JobStore,
        postgres: RestartablePostgres,
        worker: Worker | None = None,
        broker: PrivateRedis | PrivateRabbitMQ | None = None,
    ) -> None:
        self.server = server
        self.store = store
        self.postgres = postgres
        self.worker = worker
        self.broker = broker

    @property
    def log(self) -> Path:
        """The log of the process that runs the jobs."""
        return self.worker.log if self.worker is not None else self.server.log

    def submit(self, client: httpx.Client, path: Path, **params: Any) -> httpx.Response:
        return client.post(
            "/api/v2/jobs",
            files={"file": (path.name, path.read_bytes())},
            data={"operation": "extract", "params": json.dumps(params)},
        )

    def accepted(self, client: httpx.Client, path: Path, **params: Any) -> str:
        response = self.submit(client, path, **params)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def wait_status(self, job_id: str, status: JobStatus, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.store.get(job_id).status != status:
            assert time.monotonic() < deadline, f"job {job_id} never {status}:\n{self.tail()}"
            time.sleep(0.05)

    def wait_ended(self, job_ids: list[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        for job_id in job_ids:
            while self.store.get(job_id).status not in ENDED:
                assert time.monotonic() < deadline, f"job {job_id} did not end:\n{self.tail()}"
                time.sleep(0.1)

    def wait_log(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no line {pattern!r} in the log:\n{self.tail()}")

    def logged(self, event: str, job_id: str) -> bool:
        """Whether the log has ``event`` about ``job_id`` (processes write lines of their
        own to one file: two may share a line)."""
        pattern = re.compile(
            rf'"job_id": "{job_id}", "event": "{re.escape(event)}"'
            rf'|"event": "{re.escape(event)}"[^{{}}]*"job_id": "{job_id}"'
        )
        return bool(pattern.search(self.log.read_text(errors="replace")))

    def assert_done_once(self, client: httpx.Client, job_id: str) -> None:
        """The job succeeded with one result, one attempt that succeeded and one audit
        event; its result reads through the API."""
        record = self.store.get(job_id)
        assert record.status == JobStatus.SUCCEEDED, (record, self.tail())
        outcomes = [entry["outcome"] for entry in record.history]
        assert outcomes.count("succeeded") == 1, record.history
        assert outcomes[-1] == "succeeded" and len(outcomes) == record.attempts, record.history
        assert record.result is not None
        events, _ = AuditLog(self.store).list(AuditFilter(job_id=job_id, kind="job"))
        assert len(events) == 1, events
        result = client.get(f"/api/v2/jobs/{job_id}/result")
        assert result.status_code == 200, result.text

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _store_down_problem(response: httpx.Response) -> None:
    """A clear 503 problem naming the job database, with the time to wait."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem["dependency"]) == ("dependency-down", "database"), problem
    assert int(response.headers["retry-after"]) > 0


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ],
)
def celery(
    request: pytest.FixtureRequest,
    postgres: RestartablePostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The celery executor: an API, a worker (one worker process) and a broker of their
    own, on a database of the private PostgreSQL server."""
    data_dir = tmp_path_factory.mktemp(f"faults-celery-{request.param}")
    with contextlib.ExitStack() as stack:
        broker = PrivateRedis() if request.param == "redis" else PrivateRabbitMQ()
        stack.callback(broker.destroy)
        broker_url = broker.start()
        database = stack.enter_context(new_postgres_database(postgres.url))
        env = {
            "DOCWORKER_EXECUTOR__KIND": "celery",
            "DOCWORKER_DATABASE__URL": database,
            "DOCWORKER_CELERY__BROKER_URL": broker_url,
            "DOCWORKER_CELERY__QUEUE_PREFIX": f"test-{uuid.uuid4().hex[:12]}-",
            "DOCWORKER_CELERY__SWEEP_INTERVAL": "1",
            "DOCWORKER_CELERY__REPUBLISH_AFTER": str(REPUBLISH_AFTER),
        }
        store = JobStore(database)
        store.migrate()
        stack.callback(store.close)
        server = Server(data_dir, **env)
        stack.callback(server.stop)
        worker = Worker(data_dir, {**server.env})
        stack.callback(worker.stop)
        worker.start()
        server.start()
        worker.wait_ready()
        yield Deployment(server, store, postgres, worker, broker)


@pytest.fixture(scope="module")
def local(
    postgres: RestartablePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The local executor (one worker process), on a database of the private PostgreSQL
    server."""
    data_dir = tmp_path_factory.mktemp("faults-local")
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(new_postgres_database(postgres.url))
        store = JobStore(database)
        store.migrate()
        stack.callback(store.close)
        server = Server(
            data_dir,
            DOCWORKER_DATABASE__URL=database,
            DOCWORKER_EXECUTOR__WORKERS="1",
            DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="0",
        )
        stack.callback(server.stop)
        server.start()
        yield Deployment(server, store, postgres)


def test_a_broker_restart_refuses_submissions_while_down_and_loses_no_job(
    celery: Deployment,
) -> None:
    """Jobs waiting in the broker's queue behind a running one survive its restart (Redis
    keeps them in its append-only file, RabbitMQ in its durable queues); a submission
    while it is down is refused at once, leaving no job behind."""
    assert celery.broker is not None
    with celery.server.client() as client:
        blocker = celery.accepted(client, HUGE_PDF, **LONG_RUN)
        celery.wait_status(blocker, JobStatus.RUNNING)
        waiting = [celery.accepted(client, SMALL_TEXT, output="text") for _ in range(3)]
        celery.broker.stop()
        started = time.monotonic()
        refused = celery.submit(client, SMALL_TEXT, output="text")
        assert time.monotonic() - started < 15
        assert refused.status_code == 503, refused.text
        problem = refused.json()
        assert (problem["code"], problem["dependency"]) == ("dependency-down", "broker"), problem
        assert int(refused.headers["retry-after"]) > 0
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["executor"]["status"] == "down"
        celery.broker.start()
        after = [celery.accepted(client, SMALL_TEXT, output="text") for _ in range(2)]
        assert client.delete(f"/api/v2/jobs/{blocker}").status_code == 200
        celery.wait_ended([blocker, *waiting, *after])
        if celery.store.get(blocker).status != JobStatus.CANCELLED:  # it ended meanwhile
            celery.assert_done_once(client, blocker)
        for job_id in [*waiting, *after]:
            celery.assert_done_once(client, job_id)
        # Run from the messages the broker kept, before the sweep would publish them again.
        for job_id in waiting:
            record = celery.store.get(job_id)
            assert record.started_at is not None
            waited = (record.started_at - record.created_at).total_seconds()
            assert waited < REPUBLISH_AFTER, celery.tail()
            assert not celery.logged("queued job taken by no worker published again", job_id)
        jobs, _ = celery.store.list(limit=500)
        assert len(jobs) == len(waiting) + len(after) + 1  # the refused one left nothing


def test_jobs_a_broker_lost_are_published_again(celery: Deployment) -> None:
    """A broker restarted without what it held (its files gone): the jobs whose messages
    it lost are published again by the workers' sweep, and run once."""
    if not isinstance(celery.broker, PrivateRedis):
        pytest.skip("what a broker lost is the same to the sweep: run on Redis")
    broker = celery.broker
    with celery.server.client() as client:
        blocker = celery.accepted(client, HUGE_PDF, **LONG_RUN)
        celery.wait_status(blocker, JobStatus.RUNNING)
        lost = [celery.accepted(client, SMALL_TEXT, output="text") for _ in range(3)]
        broker.stop()
        for path in broker.folder.iterdir():  # its append-only file: the queued messages
            if path.name != broker.log.name:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        broker.start()
        assert client.delete(f"/api/v2/jobs/{blocker}").status_code == 200
        celery.wait_ended([blocker, *lost], timeout=REPUBLISH_AFTER * 10)
        for job_id in lost:
            celery.assert_done_once(client, job_id)
            assert celery.logged("queued job taken by no worker published again", job_id)


def test_a_postgres_restart_answers_503_and_loses_no_job_on_the_celery_executor(
    celery: Deployment,
) -> None:
    if not isinstance(celery.broker, PrivateRedis):
        pytest.skip("the database's restart is the same on either broker: run on Redis")
    _restart_postgres_mid_run(celery)


def test_a_postgres_restart_answers_503_and_loses_no_job_on_the_local_executor(
    local: Deployment,
) -> None:
    _restart_postgres_mid_run(local)


def _restart_postgres_mid_run(deployment: Deployment) -> None:
    """PostgreSQL stopped while a job runs and others wait; the API answers 503 while it
    is down; the running job's outcome, computed meanwhile, is written once it is back,
    as its only attempt; the others run; nobody acts."""
    with deployment.server.client() as client:
        running = deployment.accepted(client, HUGE_PDF, **SHORT_RUN)
        deployment.wait_status(running, JobStatus.RUNNING)
        waiting = [deployment.accepted(client, SMALL_TEXT, output="text") for _ in range(2)]
        deployment.postgres.stop()
        try:
            started = time.monotonic()
            _store_down_problem(deployment.submit(client, SMALL_TEXT, output="text"))
            assert time.monotonic() - started < 15  # refused, not held until it is back
            _store_down_problem(client.get(f"/api/v2/jobs/{running}"))
            assert client.get("/health").status_code == 503
            # The running job ends while the database is away: its outcome waits.
            deployment.wait_log(
                rf"job outcome not written.*{running}|{running}.*job outcome not written"
            )
        finally:
            deployment.postgres.restart()
        after = deployment.accepted(client, SMALL_TEXT, output="text")
        deployment.wait_ended([running, *waiting, after])
        for job_id in [running, *waiting, after]:
            deployment.assert_done_once(client, job_id)
        assert deployment.store.get(running).attempts == 1
        assert client.get("/health").status_code == 200


def test_a_local_worker_killed_mid_job_leaves_the_job_done_once(local: Deployment) -> None:
    """The celery executor's case is in test_celery_executor.py."""
    with local.server.client() as client:
        job_id = local.accepted(client, HUGE_PDF, **SHORT_RUN)
        local.wait_status(job_id, JobStatus.RUNNING)
        assert local.server.process is not None
        (template,) = [
            child
            for child in psutil.Process(local.server.process.pid).children()
            if "multiprocessing.forkserver" in " ".join(child.cmdline())
        ]
        (worker,) = template.children()
        worker.send_signal(signal.SIGKILL)
        local.wait_ended([job_id])
        local.assert_done_once(client, job_id)
        record = local.store.get(job_id)
        assert record.attempts == 2
        assert [entry["outcome"] for entry in record.history] == ["retried", "succeeded"]
        assert record.history[0]["error"]["code"] == "engine-failed"
