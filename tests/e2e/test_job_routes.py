"""The job routes end to end — submit, poll, result, cancel, list, parts, artifacts —
against the service in each configuration it runs in: the local executor and the celery
one (an API-only server and a worker fleet), each on SQLite and PostgreSQL; one
deployment per configuration, shared (tests/e2e/deployments.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pypdfium2
import pytest

from bench.scoring import corpus_root
from tests.e2e.deployments import Deployment

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
ENCRYPTED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
PROBLEM = "application/problem+json"


@pytest.fixture
def client(deployment: Deployment) -> Iterator[httpx.Client]:
    with deployment.server.client() as c:
        yield c


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
