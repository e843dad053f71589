"""The v2 API end to end, against a real server process with its worker pool."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import httpx
import pypdfium2
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


def test_jobs_submit_poll_result_and_idempotency(client: httpx.Client) -> None:
    data = {"operation": "extract", "params": json.dumps({"output": "json"})}
    headers = {"Idempotency-Key": "e2e-key-1"}
    first = client.post("/api/v2/jobs", files=_upload(PDF), data=data, headers=headers)
    assert first.status_code == 202, first.text
    job = first.json()
    assert first.headers["location"] == f"/api/v2/jobs/{job['id']}"
    again = client.post("/api/v2/jobs", files=_upload(PDF), data=data, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == job["id"]
    done = _poll(client, job["id"])
    assert done["status"] == "succeeded"
    result = client.get(f"/api/v2/jobs/{job['id']}/result").json()
    assert result["content"]["schema_name"] == "docworker.document"
    assert result["content"]["blocks"]
    # The stored input can be named again in JSON.
    uri = f"blob://inputs/{job['input']['sha256']}"
    by_uri = client.post(
        "/api/v2/jobs",
        json={"operation": "extract", "params": {"output": "text"}, "input_uri": uri},
    )
    assert by_uri.status_code == 202
    assert _poll(client, by_uri.json()["id"])["status"] == "succeeded"


def test_a_failed_job_answers_its_problem_as_result(client: httpx.Client) -> None:
    job = client.post(
        "/api/v2/jobs", files=_upload(ENCRYPTED), data={"operation": "extract"}
    ).json()
    assert _poll(client, job["id"])["status"] == "failed"
    result = client.get(f"/api/v2/jobs/{job['id']}/result")
    assert result.status_code == 422
    assert result.json()["code"] == "password-required"


def test_jobs_list_filters_and_pages(client: httpx.Client) -> None:
    for _ in range(3):
        client.post("/api/v2/extract", files=_upload(CORPUS / "text" / "plain-utf8.txt"))
    page = client.get("/api/v2/jobs", params={"limit": 2, "status": "succeeded"}).json()
    assert len(page["jobs"]) == 2
    assert all(j["status"] == "succeeded" for j in page["jobs"])
    rest = client.get(
        "/api/v2/jobs", params={"limit": 2, "status": "succeeded", "cursor": page["next_cursor"]}
    ).json()
    assert {j["id"] for j in rest["jobs"]}.isdisjoint(j["id"] for j in page["jobs"])


def test_unknown_job_and_operation(client: httpx.Client) -> None:
    missing = client.get("/api/v2/jobs/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not-found"
    unknown = client.post("/api/v2/jobs", files=_upload(PDF), data={"operation": "frobnicate"})
    assert unknown.status_code == 404


def test_wait_zero_answers_202_with_the_job(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/extract", params={"wait": 0}, files=_upload(CORPUS / "pdf" / "huge-619-pages.pdf")
    )
    assert response.status_code == 202
    job = response.json()
    cancelled = client.delete(f"/api/v2/jobs/{job['id']}").json()
    assert cancelled["status"] in {"cancelled", "running", "queued"}
    assert _poll(client, job["id"])["status"] == "cancelled"


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


def test_ocr_languages_and_an_ocr_job(client: httpx.Client) -> None:
    languages = client.get("/api/v2/ocr/languages").json()
    assert "eng" in languages["languages"]
    job = client.post(
        "/api/v2/jobs",
        files=_upload(CORPUS / "images" / "ocr-text.png"),
        data={"operation": "ocr", "params": json.dumps({"output": "json"})},
    ).json()
    assert _poll(client, job["id"])["status"] == "succeeded"
    result = client.get(f"/api/v2/jobs/{job['id']}/result").json()
    words = [
        w
        for page in result["pages"]
        for p in page["paragraphs"]
        for line in p["lines"]
        for w in line["words"]
    ]
    assert words and all(0 <= w["confidence"] <= 1 for w in words)


def test_ocr_route_answers_text_a_searchable_pdf_and_the_v1_shape(
    client: httpx.Client,
) -> None:
    image = _upload(CORPUS / "images" / "ocr-text.png")
    text = client.post("/api/v2/ocr", files=image, headers={"Accept": "text/plain"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "contains some words" in text.text
    pdf = client.post("/api/v2/ocr", files=image, data={"output": "searchable_pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    job_id = pdf.headers["x-job-id"]
    result = client.get(f"/api/v2/jobs/{job_id}/result").json()
    assert result["artifacts"] == [
        {"name": "searchable.pdf", "mime": "application/pdf", "size": len(pdf.content)}
    ]
    again = client.get(f"/api/v2/jobs/{job_id}/artifacts/searchable.pdf")
    assert again.content == pdf.content
    missing = client.get(f"/api/v2/jobs/{job_id}/artifacts/other.pdf")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    v1 = client.post("/api/v2/ocr", files=image, data={"output": "v1"}).json()
    # v1's OCR result in v2's envelope: the job's id and the security section beside it.
    assert set(v1) == {
        "job_id",
        "text",
        "confidence",
        "language",
        "page_count",
        "metadata",
        "security",
    }
    assert v1["page_count"] == 1 and 0 <= v1["confidence"] <= 1
    refused = client.post("/api/v2/ocr", files=_upload(CORPUS / "text" / "plain-utf8.txt"))
    assert refused.status_code == 415 and refused.headers["content-type"] == PROBLEM


def test_a_long_scan_is_split_across_the_workers(client: httpx.Client, tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    document = pypdfium2.PdfDocument(str(PDF))
    try:
        images = [document[i].render(scale=100 / 72, grayscale=True).to_pil() for i in range(4)]
    finally:
        document.close()
    images[0].save(scan, save_all=True, append_images=images[1:], resolution=100)
    job = client.post(
        "/api/v2/jobs",
        files=_upload(scan),
        data={"operation": "extract", "params": json.dumps({"output": "text"})},
    ).json()
    done = _poll(client, job["id"], timeout=120)
    assert done["status"] == "succeeded"
    assert done["parts"] == {"total": 4, "pending": 0}
    parts = client.get(done["links"]["parts"]).json()["jobs"]
    assert sorted(p["part"] for p in parts) == [0, 1, 2, 3]
    assert {p["operation"] for p in parts} == {"ocr"} and all(p["parent_id"] for p in parts)
    assert parts[0]["links"]["parent"] == f"/api/v2/jobs/{job['id']}"
    listed = client.get("/api/v2/jobs", params={"limit": 500}).json()["jobs"]
    assert not any(j["parent_id"] for j in listed)
    assert len(client.get(f"/api/v2/jobs/{job['id']}/result").json()["content"]) > 1000


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


def test_a_job_takes_further_input_files_in_order(client: httpx.Client) -> None:
    files = [
        ("file", ("a.txt", b"first input\n", "text/plain")),
        ("files", ("b.txt", b"second input\n", "text/plain")),
        ("files", ("c.txt", b"third input\n", "text/plain")),
    ]
    data = {"operation": "extract", "params": json.dumps({"output": "text"})}
    headers = {"Idempotency-Key": "e2e-others-1"}
    answer = client.post("/api/v2/jobs", files=files, data=data, headers=headers)
    assert answer.status_code == 202, answer.text
    job_input = answer.json()["input"]
    assert job_input["name"] == "a.txt"
    assert [o["name"] for o in job_input["others"]] == ["b.txt", "c.txt"]
    assert _poll(client, answer.json()["id"])["status"] == "succeeded"
    # The same key with other further inputs is another request.
    changed = [*files[:2], ("files", ("d.txt", b"fourth input\n", "text/plain"))]
    conflict = client.post("/api/v2/jobs", files=changed, data=data, headers=headers)
    assert conflict.status_code == 409, conflict.text
    # Named by URI in JSON, in the same order.
    uris = [f"blob://inputs/{o['sha256']}" for o in job_input["others"]]
    by_uri = client.post(
        "/api/v2/jobs",
        json={
            "operation": "extract",
            "input_uri": f"blob://inputs/{job_input['sha256']}",
            "other_input_uris": uris[::-1],
        },
    )
    assert by_uri.status_code == 202, by_uri.text
    assert [o["name"] for o in by_uri.json()["input"]["others"]] == [None, None]
    assert [o["sha256"] for o in by_uri.json()["input"]["others"]] == [
        o["sha256"] for o in job_input["others"][::-1]
    ]
