"""The v2 API end to end, against a real server process with its worker pool."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
ENCRYPTED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
PROBLEM = "application/problem+json"


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _poll(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_extract_answers_markdown_with_metadata(client: httpx.Client) -> None:
    response = client.post("/api/v2/extract", files=_upload(PDF), data={"output": "markdown"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "pdf"
    assert body["metadata"]["page_count"] == 5
    assert len(body["content"]) > 1000
    assert response.headers["x-job-id"] == body["job_id"]


def test_extract_gives_the_content_alone_when_asked(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/extract",
        files=_upload(PDF),
        data={"output": "text", "pages": "2"},
        headers={"Accept": "text/plain"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip()


def test_extract_per_page(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/extract", files=_upload(PDF), data={"output": "text", "per_page": "true"}
    )
    pages = response.json()["pages"]
    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]


def test_encrypted_pdf_needs_its_password(client: httpx.Client) -> None:
    refused = client.post("/api/v2/extract", files=_upload(ENCRYPTED))
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "password-required"
    wrong = client.post("/api/v2/extract", files=_upload(ENCRYPTED), data={"password": "nope"})
    assert wrong.json()["code"] == "wrong-password"
    opened = client.post("/api/v2/extract", files=_upload(ENCRYPTED), data={"password": "1234"})
    assert opened.status_code == 200
    assert opened.json()["content"].strip()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (os.urandom(4096), 415, "unsupported-format"),
        (b"%PDF-1.4\n" + b"\x00garbage" * 200, 422, "corrupt-document"),
    ],
)
def test_bad_documents_get_clear_problems(
    client: httpx.Client, payload: bytes, status: int, code: str
) -> None:
    response = client.post("/api/v2/extract", files={"file": ("x.bin", payload)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    assert body["detail"]


def test_bad_parameters_are_422(client: httpx.Client) -> None:
    bad_pages = client.post("/api/v2/extract", files=_upload(PDF), data={"pages": "3-1"})
    assert bad_pages.status_code == 422
    assert bad_pages.json()["code"] == "invalid-parameter"
    bad_output = client.post("/api/v2/extract", files=_upload(PDF), data={"output": "docx"})
    assert bad_output.status_code == 422
    missing = client.post("/api/v2/extract", data={"output": "text"})
    assert missing.status_code == 422


def test_a_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = client.post("/api/v2/extract", files={"file": ("big.txt", b"a" * (9 * 1024 * 1024))})
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"


def test_operations_lists_extract_with_its_schema(client: httpx.Client) -> None:
    ops = client.get("/api/v2/operations").json()["operations"]
    extract = next(op for op in ops if op["name"] == "extract")
    assert "output" in extract["params_schema"]["properties"]


def test_health_probes_and_metrics(client: httpx.Client) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] in {"healthy", "degraded"}
    assert set(body["services"]) == {"ffmpeg", "vips", "libreoffice", "mutool", "tesseract"}
    assert body["queue"]["connected"] is True
    assert client.get("/health/liveness").json()["status"] == "alive"
    assert client.get("/health/readiness").json()["status"] == "ready"
    as_json = client.get("/metrics").json()
    assert as_json["documents_worker_up"] == 1
    text = client.get("/metrics", headers={"Accept": "text/plain"}).text
    assert "docworker_http_requests_total" in text
    assert "docworker_jobs_finished_total" in text


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"extract", "create_job", "get_job", "list_jobs", "cancel_job", "list_operations"} <= ids
    assert client.get("/docs").status_code == 200


def test_unknown_routes(client: httpx.Client) -> None:
    v1 = client.get("/api/v1/nothing")
    assert v1.status_code == 404
    assert v1.json()["error"] == "Cannot GET /api/v1/nothing"
    v2 = client.get("/api/v2/nothing")
    assert v2.status_code == 404
    assert v2.headers["content-type"].startswith(PROBLEM)


def test_a_queued_job_survives_a_restart(tmp_path: Path) -> None:
    api_only = Server(tmp_path / "restart", DOCWORKER_EXECUTOR__KIND="none").start()
    try:
        with api_only.client() as c:
            job = c.post("/api/v2/jobs", files=_upload(PDF), data={"operation": "extract"}).json()
            assert c.get(f"/api/v2/jobs/{job['id']}").json()["status"] == "queued"
    finally:
        api_only.stop()
    with_workers = api_only.start(DOCWORKER_EXECUTOR__KIND="local")
    try:
        with with_workers.client() as c:
            assert _poll(c, job["id"])["status"] == "succeeded"
    finally:
        with_workers.stop()


def test_chunk_returns_bounded_chunks_with_relations(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/chunk",
        files=_upload(CORPUS / "office" / "word-sample.docx"),
        data={"strategy": "structure", "max_tokens": "64"},
    )
    assert response.status_code == 200, response.text
    chunks = response.json()["chunks"]
    assert len(chunks) > 1
    assert all(c["tokens"] <= 64 for c in chunks)
    assert chunks[0]["prev"] is None and chunks[-1]["next"] is None
    assert all(a["next"] == b["id"] and b["prev"] == a["id"] for a, b in itertools.pairwise(chunks))
    bad = client.post(
        "/api/v2/chunk", files=_upload(PDF), data={"max_tokens": "10", "overlap": "20"}
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid-parameter"


def test_legacy_word_goes_through_the_workers_libreoffice(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/extract",
        files=_upload(CORPUS / "office" / "legacy-word.doc"),
        params={"wait": 120},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "doc"
    assert body["content"].strip()
