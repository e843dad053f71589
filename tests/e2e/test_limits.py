"""The service's limits over HTTP: body size per route, the engines' queues (429 with
Retry-After, not a failed job) and the free-disk floor (503 with Retry-After).

The server runs no jobs (``executor.kind=none``, one worker assumed): a queued job
stays queued, so what fills an engine's queue is known exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
DOCX = CORPUS / "office" / "handbook-1p.docx"
TEXT = CORPUS / "text" / "plain-utf8.txt"
PROBLEM = "application/problem+json"
pytestmark = pytest.mark.skipif(not DOCX.is_file(), reason=f"corpus not found at {CORPUS}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    limits = {"/api/v2/chunk": 4096, "/api/v1/ocr": 4096}
    with Server(
        tmp_path_factory.mktemp("limits"),
        DOCWORKER_EXECUTOR__KIND="none",
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_LIBREOFFICE__MAX_QUEUE="0",
        DOCWORKER_CHROMIUM__MAX_QUEUE="0",
        DOCWORKER_SERVER__UPLOAD_LIMITS=json.dumps(limits),
    ) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _file(name: str, body: bytes, part: str = "file") -> dict[str, tuple[str, bytes]]:
    return {part: (name, body)}


def test_a_route_has_its_own_body_limit(client: httpx.Client) -> None:
    body = b"five thousand bytes of text. " * 175
    refused = client.post("/api/v2/chunk", files=_file("a.txt", body))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "payload-too-large"
    assert refused.json()["maximum"] == 4096
    # Elsewhere the global limit holds.
    taken = client.post("/api/v2/extract", params={"wait": 0}, files=_file("a.txt", body))
    assert taken.status_code == 202
    v1 = client.post("/api/v1/ocr/document", files=_file("a.txt", body))
    assert v1.status_code == 413
    assert v1.json()["error"] == "Request Entity Too Large"


def test_a_full_engine_queue_answers_429_with_retry_after(client: httpx.Client) -> None:
    docx = _file(DOCX.name, DOCX.read_bytes())
    first = client.post("/api/v2/convert", params={"wait": 0}, files=docx)
    assert first.status_code == 202, first.text
    refused = client.post("/api/v2/convert", params={"wait": 0}, files=docx)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["code"] == "queue-full"
    assert "libreoffice" in refused.json()["detail"]
    # Refused at the door: no job was made for it.
    jobs = client.get("/api/v2/jobs", params={"operation": "convert"}).json()
    assert [job["id"] for job in jobs["jobs"]] == [first.json()["id"]]
    # v1 clients get the route's own error, with the same status and Retry-After.
    v1 = client.post(
        "/api/v1/pdf/generate/office", files=_file(DOCX.name, DOCX.read_bytes(), "office_file")
    )
    assert v1.status_code == 429 and int(v1.headers["retry-after"]) > 0
    assert v1.json()["error"] == "PDF generation failed"
    # Another engine, or none, takes work still.
    page = _file("page.html", b"<html><body><p>Hello</p></body></html>")
    assert client.post("/api/v2/screenshot", params={"wait": 0}, files=page).status_code == 202
    assert client.post("/api/v2/screenshot", params={"wait": 0}, files=page).status_code == 429
    text = _file(TEXT.name, TEXT.read_bytes())
    assert client.post("/api/v2/extract", params={"wait": 0}, files=text).status_code == 202
    # Cancelling the waiting job makes room.
    assert client.delete(f"/api/v2/jobs/{first.json()['id']}").status_code == 200
    assert client.post("/api/v2/convert", params={"wait": 0}, files=docx).status_code == 202


def test_health_reports_the_disk_and_the_sandbox(client: httpx.Client) -> None:
    checks = client.get("/health").json()["checks"]
    assert checks["disk"]["status"] == "up" and checks["disk"]["floor_mb"] == 1024
    assert all(disk["free_mb"] >= 1024 for disk in checks["disk"]["disks"])
    assert checks["sandbox"]["setting"] == "auto"
    assert checks["sandbox"]["network"] in {"namespace", "engine rules"}


def test_under_the_disk_floor_work_is_refused_with_retry_after(server: Server) -> None:
    server.stop()
    server.start(DOCWORKER_SERVER__MIN_FREE_DISK_MB=str(10**9))
    try:
        with server.client() as client:
            text = _file(TEXT.name, TEXT.read_bytes())
            refused = client.post("/api/v2/extract", files=text)
            assert refused.status_code == 503
            assert refused.headers["content-type"] == PROBLEM
            assert refused.headers["retry-after"] == "60"
            assert refused.json()["code"] == "insufficient-storage"
            job = client.post("/api/v2/jobs", json={"operation": "extract", "input_uri": "x"})
            assert job.status_code == 503
            v1 = client.post("/api/v1/extract/text", files=text)
            assert v1.status_code == 503 and v1.headers["retry-after"] == "60"
            assert "min_free_disk_mb" in v1.json()["error"]
            # Reads, and requests without a body (a cancel frees room), pass.
            health = client.get("/health").json()
            assert health["status"] == "degraded"
            assert health["checks"]["disk"]["status"] == "low"
            assert client.delete("/api/v2/jobs/nothing").status_code == 404
    finally:
        server.stop()
        server.start(DOCWORKER_SERVER__MIN_FREE_DISK_MB="1024")
