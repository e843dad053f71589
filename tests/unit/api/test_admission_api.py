"""What a client is answered when a family's queue is full or the service drains: 429 or
503 with ``Retry-After``, as a problem under ``/api/v2`` and in v1's bodies under
``/api/v1``, while reads and health go on.

The app runs in process on a real job store and blob store, without an executor:
submitted jobs stay queued, which fills the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.config import load_settings
from docworker.jobs.admission import Drain

PROBLEM = "application/problem+json"
TEXT = {"file": ("a.txt", b"a few words of text")}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # documents: 2 places, of which normal priority may fill 1 and high both.
    settings = load_settings(data_dir=tmp_path, executor={"workers": 1}, queue={"documents": 2})
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        yield test_client


def _submit(client: TestClient, priority: int = 0) -> httpx.Response:
    data = {"operation": "extract", "priority": str(priority)}
    return client.post("/api/v2/jobs", files=TEXT, data=data)


def _retry_after(answer: httpx.Response) -> int:
    value = int(answer.headers["retry-after"])
    assert value >= 1
    return value


def test_a_full_family_answers_429_with_retry_after_and_high_priority_still_gets_in(
    client: TestClient,
) -> None:
    assert _submit(client).status_code == 202
    refused = _submit(client)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    body = refused.json()
    assert body["code"] == "queue-full" and body["family"] == "documents"
    assert (body["queued"], body["room"]) == (1, 1)
    # Nothing has drained yet: the drain window (60 s) is the estimate.
    assert _retry_after(refused) == body["retry_after"] == 60
    # A job of high priority may fill the places normal work leaves.
    assert _submit(client, priority=10).status_code == 202
    assert _submit(client, priority=10).status_code == 429
    # A synchronous route is refused alike.
    sync = client.post("/api/v2/extract", files=TEXT)
    assert sync.status_code == 429 and sync.json()["code"] == "queue-full"
    _retry_after(sync)
    health = client.get("/health").json()["checks"]["admission"]
    assert health["draining"] is False
    assert health["families"]["documents"] == {
        "bound": 2,
        "room": {"high": 2, "normal": 1, "low": 1},
        "queued": 2,
        "drain_per_second": 0.0,
    }


def test_v1_routes_answer_a_full_queue_in_v1_s_body(client: TestClient) -> None:
    assert client.post("/api/v1/extract/async/text", files=TEXT).status_code == 202
    refused = client.post("/api/v1/extract/async/text", files=TEXT)
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["error"] == "Failed to submit text extraction job"
    assert "queue.documents" in body["details"]
    _retry_after(refused)


def test_a_draining_service_refuses_new_work_and_still_answers_reads(
    client: TestClient,
) -> None:
    job = _submit(client).json()
    drain: Drain = client.app.state.drain  # type: ignore[attr-defined]
    drain.start()
    refused = _submit(client, priority=10)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "draining"
    assert _retry_after(refused) == 5  # server.drain_retry_after
    v1 = client.post("/api/v1/extract/async/text", files=TEXT)
    assert v1.status_code == 503
    assert v1.json()["success"] is False and v1.json()["code"] == 503  # v1's framework body
    _retry_after(v1)
    # Reads answer as before.
    assert client.get(f"/api/v2/jobs/{job['id']}").json()["status"] == "queued"
    assert client.get(f"/api/v1/job/{job['id']}").status_code == 200
    assert client.get("/health/liveness").status_code == 200
    ready = client.get("/health/readiness")
    assert (ready.status_code, ready.json()["reason"]) == (503, "Draining")
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["admission"]["draining"] is True


def _split_body(request: httpx.Request, drain: Drain) -> AsyncIterator[bytes]:
    """The request's body in two halves, the drain beginning between them: the request
    was let in, and its body is being read, when the service begins to stop."""
    raw = request.read()

    async def halves() -> AsyncIterator[bytes]:
        yield raw[: len(raw) // 2]
        await anyio.sleep(0)
        drain.start()
        yield raw[len(raw) // 2 :]

    return halves()


async def _post_while_drain_begins(app: FastAPI, path: str, form: dict[str, Any]) -> httpx.Response:
    drain: Drain = app.state.drain
    built = httpx.Request("POST", f"http://test{path}", **form)
    headers = {k: v for k, v in built.headers.items() if k.lower() != "host"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        return await client.post(path, content=_split_body(built, drain), headers=headers)


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/api/v2/jobs", {"files": TEXT, "data": {"operation": "extract"}}),
        ("/api/v1/extract/async/text", {"files": TEXT}),
    ],
)
def test_a_request_read_while_the_drain_begins_is_refused_at_admission(
    tmp_path: Path, path: str, form: dict[str, Any]
) -> None:
    app = create_app(load_settings(data_dir=tmp_path), start_executor=False)
    answer = anyio.run(_post_while_drain_begins, app, path, form)
    assert answer.status_code == 503, answer.text
    _retry_after(answer)
    body = answer.json()
    if path.startswith("/api/v2"):
        assert body["code"] == "draining"
    else:  # the route's own v1 error
        assert body["error"] == "Failed to submit text extraction job"
        assert "shutting down" in body["details"]


class _WatchedBody:
    """A multipart body with one text file, which notes whether it was read."""

    def __init__(self) -> None:
        request = httpx.Request("POST", "http://test/", files=TEXT)
        self.headers = {"content-type": request.headers["content-type"]}
        self.raw = request.read()
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.raw


async def _refusals_before_the_body(app: FastAPI) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    answers: dict[str, httpx.Response] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        # The counts are kept from the last refusal on: freeze their clock, so that
        # they stay fresh (Backlog.refusal trusts them for QUEUED_CACHE seconds).
        backlog = app.state.services.queue.admission.backlog
        backlog._clock = lambda: 0.0
        data = {"operation": "extract"}  # fills normal priority's one place
        answers["first"] = await client.post("/api/v2/jobs", files=TEXT, data=data)
        answers["queued"] = await client.post("/api/v2/ocr?wait=0", files=TEXT)
        answers["read"] = await client.post("/api/v2/extract", files=TEXT)
        for name, path in [
            ("unread", "/api/v2/chunk"),  # the documents queue, as /extract's
            ("v1", "/api/v1/extract/async/text"),  # declares no queue: its body is read
            ("keyed", "/api/v2/extract"),
        ]:
            body = _WatchedBody()
            headers = body.headers | ({"Idempotency-Key": "k1"} if name == "keyed" else {})
            answers[name] = await client.post(path, content=body, headers=headers)
            answers[name].extensions["body_read"] = body.read
        # High priority said in the query may still fill the places kept for it; said
        # only in the body, it is known too late (the request is refused unread).
        answers["both"] = await client.post(
            "/api/v2/chunk?priority=10&wait=0", files=TEXT, data={"priority": "-5"}
        )
        answers["high"] = await client.post("/api/v2/extract?priority=10&wait=0", files=TEXT)
    return answers


def test_a_route_feeding_a_full_queue_is_refused_before_its_body_is_read(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, executor={"workers": 1}, queue={"documents": 2})
    answers = anyio.run(_refusals_before_the_body, create_app(settings, start_executor=False))
    assert answers["first"].status_code == 202
    assert answers["queued"].status_code == 202  # another family's queue
    read = answers["read"]
    assert read.status_code == 429 and read.json()["code"] == "queue-full"
    unread = answers["unread"]
    assert unread.status_code == 429, unread.text
    assert unread.headers["content-type"].startswith(PROBLEM)
    body = unread.json()
    assert (body["code"], body["family"], body["queued"], body["room"]) == (
        "queue-full",
        "documents",
        1,
        1,
    )
    _retry_after(unread)
    assert unread.extensions["body_read"] is False
    # Routes that declare no queue, and retries with a key, are judged once read.
    for name in ("v1", "keyed"):
        assert answers[name].status_code == 429, answers[name].text
        assert answers[name].extensions["body_read"] is True
    assert answers["high"].status_code == 202, answers["high"].text
    both = answers["both"]
    assert both.status_code == 422 and both.json()["parameter"] == "priority"
