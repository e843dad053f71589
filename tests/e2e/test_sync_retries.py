"""Synchronous requests that are safe to retry and never run work for nobody, end to end: a
real server with API keys on, a tenant of its own for each test.

* A request sent again with the same ``Idempotency-Key`` gets the job the first one made
  (its answer at once once it has ended, or waited for as before); another request with
  the key is refused with 409; keys belong to a tenant.
* A sync client that disconnects before its answer has its job cancelled, queued or
  running; one that sent a key has it kept. The requests that leave are sent whole on a
  socket of their own, closed once their job is seen in the store.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server
from tests.e2e.test_auth import SECRET, _as

CORPUS = corpus_root()
TEXT = CORPUS / "text" / "plain-utf8.txt"
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
LOCKED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
PNG = CORPUS / "images" / "ocr-text.png"
#: 619 pages: OCR of it runs, in parts on every worker, for minutes.
HUGE = CORPUS / "pdf" / "huge-619-pages.pdf"
PROBLEM = "application/problem+json"
KEPT = "client left: its jobs are kept for its key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("retries"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_SERVER__MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    return server.keys("create", "--tenant", "ops", "--scope", "admin")


@pytest.fixture
def new_key(server: Server, admin: str) -> Callable[[], str]:
    """Makes a key of a new tenant: its job list holds only what the test sent with it."""

    def make() -> str:
        body = {"tenant": f"t-{uuid.uuid4().hex[:10]}", "scopes": ["read", "submit"]}
        with server.client() as http:
            created = http.post("/api/v2/keys", json=body, headers=_as(admin))
        assert created.status_code == 201, created.text
        return str(created.json()["token"])

    return make


@pytest.fixture
def key(new_key: Callable[[], str]) -> str:
    return new_key()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    return _as(key) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})


def _extract(
    client: httpx.Client, key: str, path: Path, idempotency_key: str | None
) -> httpx.Response:
    return client.post(
        "/api/v2/extract",
        files={"file": (path.name, path.read_bytes())},
        data={"output": "text"},
        headers=_headers(key, idempotency_key),
    )


def _jobs(client: httpx.Client, key: str, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v2/jobs", params=query, headers=_as(key))
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


def _until(check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the condition never held")


def _status(client: httpx.Client, key: str, job_id: str) -> str:
    job = client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()
    return str(job["status"])


def _only_job(client: httpx.Client, key: str, status: str) -> dict[str, Any]:
    """The tenant's one job once it is in ``status``."""

    def found() -> dict[str, Any] | None:
        jobs = _jobs(client, key)
        return jobs[0] if jobs and jobs[0]["status"] == status else None

    job: dict[str, Any] = _until(found)
    return job


@contextmanager
def _leaving(server: Server, path: str, headers: dict[str, str], **parts: Any) -> Iterator[None]:
    """A request sent whole on a socket of its own whose answer is never read; leaving
    the block closes the socket: its client is gone."""
    request = httpx.Request("POST", f"{server.url}{path}", headers=headers, **parts)
    lines = [f"POST {path} HTTP/1.1", *(f"{k}: {v}" for k, v in request.headers.items())]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + request.read())
        yield


def _logged(server: Server, event: str, job_id: str) -> bool:
    for line in server.log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event and job_id in entry.get("job_ids", []):
                return True
    return False


def _blocker(client: httpx.Client, key: str) -> str:
    """A job of the tenant split into parts that keep every worker busy for minutes:
    the tenant's jobs submitted after it wait in the queue behind them."""
    response = client.post(
        "/api/v2/jobs",
        files={"file": (HUGE.name, HUGE.read_bytes())},
        data={"operation": "ocr"},
        headers=_as(key),
    )
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    _until(lambda: client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()["parts"])
    return job_id


# -- retries ------------------------------------------------------------------------------


def test_a_sync_request_sent_again_with_its_key_gets_the_same_job(
    client: httpx.Client, key: str
) -> None:
    first = _extract(client, key, TEXT, "extract-1")
    assert first.status_code == 200, first.text
    again = _extract(client, key, TEXT, "extract-1")
    assert again.status_code == 200, again.text
    assert again.headers["X-Job-Id"] == first.headers["X-Job-Id"]
    assert again.json() == first.json()
    assert [job["id"] for job in _jobs(client, key)] == [first.headers["X-Job-Id"]]


def test_a_file_answer_sent_again_is_the_same_file_of_the_same_job(
    client: httpx.Client, key: str
) -> None:
    def thumbnail() -> httpx.Response:
        return client.post(
            "/api/v2/thumbnail",
            files={"file": (PNG.name, PNG.read_bytes())},
            data={"size": "64", "format": "png"},
            headers=_headers(key, "thumb-1"),
        )

    first, again = thumbnail(), thumbnail()
    assert first.status_code == again.status_code == 200, again.text
    assert first.headers["content-type"] == "image/png"
    assert again.headers["X-Job-Id"] == first.headers["X-Job-Id"]
    assert again.content == first.content
    assert len(_jobs(client, key)) == 1


def test_a_failed_job_sent_again_answers_its_error(client: httpx.Client, key: str) -> None:
    first = _extract(client, key, LOCKED, "locked-1")
    again = _extract(client, key, LOCKED, "locked-1")
    assert first.status_code == again.status_code == 422
    assert first.json()["code"] == again.json()["code"] == "password-required"
    (job,) = _jobs(client, key)
    assert job["status"] == "failed"


def test_the_same_key_for_another_request_is_a_conflict(client: httpx.Client, key: str) -> None:
    assert _extract(client, key, TEXT, "reused").status_code == 200
    other_file = _extract(client, key, PDF, "reused")
    assert other_file.status_code == 409
    assert other_file.headers["content-type"] == PROBLEM
    assert other_file.json()["code"] == "conflict"
    assert "reused" in other_file.json()["detail"]
    other_route = client.post(
        "/api/v2/chunk",
        files={"file": (TEXT.name, TEXT.read_bytes())},
        headers=_headers(key, "reused"),
    )
    assert other_route.status_code == 409
    assert len(_jobs(client, key)) == 1


def test_keys_belong_to_a_tenant(
    client: httpx.Client, key: str, new_key: Callable[[], str]
) -> None:
    other = new_key()
    mine = _extract(client, key, TEXT, "shared-key")
    theirs = _extract(client, other, TEXT, "shared-key")
    assert mine.status_code == theirs.status_code == 200
    assert mine.headers["X-Job-Id"] != theirs.headers["X-Job-Id"]
    # Another file under the same key is this tenant's own business.
    assert _extract(client, other, PDF, "shared-key").status_code == 409
    assert [job["id"] for job in _jobs(client, key)] == [mine.headers["X-Job-Id"]]
    assert [job["id"] for job in _jobs(client, other)] == [theirs.headers["X-Job-Id"]]


def test_a_key_is_one_to_two_hundred_characters(client: httpx.Client, key: str) -> None:
    response = _extract(client, key, TEXT, "k" * 201)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert _jobs(client, key) == []


def test_v1_routes_take_the_key(client: httpx.Client, key: str) -> None:
    def extract(path: Path) -> httpx.Response:
        return client.post(
            "/api/v1/extract/text",
            files={"file": (path.name, path.read_bytes())},
            headers=_headers(key, "v1-sync"),
        )

    first, again = extract(TEXT), extract(TEXT)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["text"] == again.json()["text"]
    assert len(_jobs(client, key)) == 1
    conflict = extract(PDF)
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "Text extraction failed"

    def submit() -> httpx.Response:
        return client.post(
            "/api/v1/extract/async/text",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            headers=_headers(key, "v1-async"),
        )

    accepted, accepted_again = submit(), submit()
    assert accepted.status_code == accepted_again.status_code == 202
    assert accepted.json()["job_id"] == accepted_again.json()["job_id"]
    assert len(_jobs(client, key)) == 2


# -- clients that leave ---------------------------------------------------------------------


def test_a_client_that_leaves_has_its_running_job_cancelled(
    server: Server, client: httpx.Client, key: str
) -> None:
    files = {"file": (HUGE.name, HUGE.read_bytes())}
    with _leaving(server, "/api/v2/ocr", _as(key), files=files):
        job = _only_job(client, key, "running")
    _until(lambda: _status(client, key, job["id"]) == "cancelled", timeout=30)


@pytest.mark.parametrize(
    ("path", "field", "document"),
    [
        ("/api/v2/extract", "file", TEXT),
        ("/api/v1/markdown/convert/pdf", "pdf_file", PDF),
    ],
    ids=["v2", "v1"],
)
def test_a_client_that_leaves_has_its_queued_job_cancelled(
    server: Server, client: httpx.Client, key: str, path: str, field: str, document: Path
) -> None:
    blocker = _blocker(client, key)
    try:
        files = {field: (document.name, document.read_bytes())}
        with _leaving(server, path, _as(key), files=files):
            job = _until(lambda: _jobs(client, key, operation="extract"))[0]
            assert job["status"] == "queued"
        _until(lambda: _status(client, key, job["id"]) == "cancelled", timeout=30)
    finally:
        client.delete(f"/api/v2/jobs/{blocker}", headers=_as(key))


def test_a_client_that_sent_a_key_has_its_job_kept(
    server: Server, client: httpx.Client, key: str
) -> None:
    headers = _headers(key, "come-back")
    files = {"file": (HUGE.name, HUGE.read_bytes())}
    with _leaving(server, "/api/v2/ocr", headers, files=files):
        job = _only_job(client, key, "running")
    try:
        _until(lambda: _logged(server, KEPT, job["id"]), timeout=30)
        assert _status(client, key, job["id"]) == "running"
        # Coming back with the key: the same job, still running, waited for as before.
        again = client.post("/api/v2/ocr", params={"wait": 0}, files=files, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == job["id"]
        assert again.json()["status"] == "running"
        assert len(_jobs(client, key)) == 1
    finally:
        client.delete(f"/api/v2/jobs/{job['id']}", headers=_as(key))
