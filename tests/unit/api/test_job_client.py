""":class:`JobClient`: a route's job, keyed by the client's idempotency key and waited for
while the client is there.

The services are the real ones (SQLite job store, blob store) without an executor, so
jobs stay queued; the test plays the server's side of the ASGI ``receive`` channel,
saying ``http.disconnect`` when the client is to leave.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from docworker.api.app import build_services
from docworker.api.deps import Services
from docworker.api.submitting import JobClient
from docworker.auth import Principal, Scope
from docworker.config import load_settings
from docworker.errors import Conflict, NotFound
from docworker.jobs.queue import JobInput
from docworker.jobs.store import JobStatus


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(load_settings(data_dir=tmp_path), start_executor=False)
    yield built
    built.store.close()


def _caller(tenant: str) -> Principal:
    return Principal(tenant=tenant, key_id=None, scopes=frozenset({Scope.READ, Scope.SUBMIT}))


class Connection:
    """The server's side of a request's ``receive`` channel, its body already read: it
    says ``http.disconnect`` once :meth:`leave` is called."""

    def __init__(self) -> None:
        self.gone = anyio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()


def _client(connection: Connection, key: str | None = None, tenant: str = "a") -> JobClient:
    return JobClient(_caller(tenant), key, connection.receive)


def _input(services: Services, content: bytes = b"hello") -> JobInput:
    return JobInput(blob=services.blobs.put_stream(io.BytesIO(content)), name="a.txt")


def _run(test: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(test)


def _status(services: Services, job_id: str) -> JobStatus:
    return services.store.get(job_id).status


def test_a_client_that_leaves_has_its_job_cancelled(services: Services) -> None:
    connection = Connection()
    client = _client(connection)

    async def scenario() -> str:
        record = await client.submit(services.queue, "extract", {}, _input(services))
        async with anyio.create_task_group() as group:
            group.start_soon(_leave_soon, connection)
            with pytest.raises(ClientDisconnect):
                await client.wait(services.queue, record, 60)
        return record.id

    assert _status(services, _run(scenario)) is JobStatus.CANCELLED


async def _leave_soon(connection: Connection) -> None:
    await anyio.sleep(0.2)
    connection.leave()


def test_the_job_is_cancelled_while_the_request_is_torn_down(services: Services) -> None:
    """A server that cancels the request's task (on a disconnect, at shutdown): the
    cancel of the job is shielded from it."""
    client = _client(Connection())

    async def scenario() -> str:
        record = await client.submit(services.queue, "extract", {}, _input(services))
        with anyio.move_on_after(0.2) as scope:
            await client.wait(services.queue, record, 60)
        assert scope.cancelled_caught
        return record.id

    assert _status(services, _run(scenario)) is JobStatus.CANCELLED


def test_a_client_with_a_key_that_leaves_has_its_job_kept(services: Services) -> None:
    connection = Connection()
    connection.leave()
    client = _client(connection, key="come-back")

    async def scenario() -> str:
        record = await client.submit(services.queue, "extract", {}, _input(services))
        with pytest.raises(ClientDisconnect):
            await client.wait(services.queue, record, 60)
        return record.id

    job_id = _run(scenario)
    assert _status(services, job_id) is JobStatus.QUEUED
    # Coming back with the key: the same job.
    again = _run(
        lambda: _client(Connection(), key="come-back").submit(
            services.queue, "extract", {}, _input(services)
        )
    )
    assert again.id == job_id


def test_a_wait_that_runs_out_keeps_the_job(services: Services) -> None:
    client = _client(Connection())

    async def scenario() -> tuple[str, JobStatus]:
        record = await client.submit(services.queue, "extract", {}, _input(services))
        waited = await client.wait(services.queue, record, 0.2)
        return record.id, waited.status

    job_id, status = _run(scenario)
    assert status is JobStatus.QUEUED
    assert _status(services, job_id) is JobStatus.QUEUED


def test_an_error_of_the_wait_is_raised_as_it_is(services: Services) -> None:
    client = _client(Connection())

    async def failing() -> None:
        raise NotFound("job", "nothing")

    with pytest.raises(NotFound):
        _run(lambda: client.attend(services.queue, [], failing))


def test_a_key_is_one_job_of_one_tenant(services: Services) -> None:
    def submit(key: str, tenant: str, content: bytes = b"hello") -> str:
        client = _client(Connection(), key=key, tenant=tenant)
        record = _run(
            lambda: client.submit(services.queue, "extract", {}, _input(services, content))
        )
        return str(record.id)

    first = submit("k", "a")
    assert submit("k", "a") == first
    assert submit("k", "b") != first
    with pytest.raises(Conflict):
        submit("k", "a", b"another file")
    with pytest.raises(Conflict):
        _run(
            lambda: _client(Connection(), key="k").submit(
                services.queue, "extract", {"output": "text"}, _input(services)
            )
        )


def test_the_jobs_of_one_request_are_told_apart_by_their_part() -> None:
    client = _client(Connection(), key="batch")
    assert client.key() == "batch"
    assert client.key("a/one.pdf") != client.key("a/two.pdf")
    assert str(client.key("a/one.pdf")).startswith("batch#")
    assert _client(Connection()).key("a/one.pdf") is None
