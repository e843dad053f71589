"""``POST /api/v2/convert`` and convert jobs, against a real server with its worker pool."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pypdfium2
import pytest

from bench.scoring import corpus_root

CORPUS = corpus_root()
DOCX = CORPUS / "office" / "word-sample.docx"
ENCRYPTED = CORPUS / "office" / "encrypted.odt"
MARKDOWN = CORPUS / "web" / "wiki.md"
PROBLEM = "application/problem+json"

pytestmark = pytest.mark.skipif(not DOCX.is_file(), reason=f"corpus not found at {CORPUS}")


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _pdf_pages(body: bytes) -> list[tuple[int, int]]:
    with pypdfium2.PdfDocument(body) as pdf:
        return [(round(pdf[i].get_size()[0]), round(pdf[i].get_size()[1])) for i in range(len(pdf))]


def _poll(client: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_office_to_pdf_answers_the_file(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/convert", files=_upload(DOCX), data={"landscape": "true"}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="converted.pdf"'
    assert response.headers["x-job-id"]
    pages = _pdf_pages(response.content)
    assert len(pages) == 3
    assert set(pages) == {(792, 612)}


def test_json_when_only_json_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/convert",
        files=_upload(MARKDOWN),
        data={"page_size": "A5", "pages": "1"},
        headers={"Accept": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "weasyprint"
    assert body["output"]["pages"] == 1
    assert body["artifacts"] == [
        {"name": "converted.pdf", "mime": "application/pdf", "size": body["output"]["size"]}
    ]
    artifact = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/converted.pdf")
    assert _pdf_pages(artifact.content) == [(420, 595)]


def test_not_finished_within_wait_is_202_then_the_artifact(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/convert", params={"wait": 0}, files=_upload(DOCX), data={"to": "odt"}
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert _poll(client, job["id"])["status"] == "succeeded"
    artifact = client.get(f"/api/v2/jobs/{job['id']}/artifacts/converted.odt")
    assert artifact.status_code == 200
    assert artifact.headers["content-type"] == "application/vnd.oasis.opendocument.text"
    assert artifact.content[:2] == b"PK"
    assert b"application/vnd.oasis.opendocument.text" in artifact.content[:100]


def test_convert_as_a_job(client: httpx.Client) -> None:
    data = {"operation": "convert", "params": json.dumps({"to": "docx"})}
    job = client.post("/api/v2/jobs", files=_upload(MARKDOWN), data=data).json()
    assert _poll(client, job["id"])["status"] == "succeeded"
    result = client.get(f"/api/v2/jobs/{job['id']}/result").json()
    assert result["engine"] == "docx-writer"
    docx = client.get(f"/api/v2/jobs/{job['id']}/artifacts/converted.docx")
    assert docx.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert docx.content[:2] == b"PK"


def test_password_problems(client: httpx.Client) -> None:
    missing = client.post("/api/v2/convert", files=_upload(ENCRYPTED), timeout=120)
    assert missing.status_code == 422
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["code"] == "password-required"
    wrong = client.post(
        "/api/v2/convert", files=_upload(ENCRYPTED), data={"password": "nope"}, timeout=120
    )
    assert wrong.json()["code"] == "wrong-password"
    right = client.post(
        "/api/v2/convert", files=_upload(ENCRYPTED), data={"password": "tika"}, timeout=120
    )
    assert right.status_code == 200
    assert len(_pdf_pages(right.content)) == 1
    # The password never shows in the job as clients see it.
    job = client.get(f"/api/v2/jobs/{right.headers['x-job-id']}").json()
    assert job["params"]["password"] == "********"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"engine": "chromium", "pdfa": "2b"}, "pdfa"),
        ({"page_size": "enormous"}, "page_size"),
        ({"to": "xlsx"}, "to"),
    ],
)
def test_bad_requests_name_the_parameter(
    client: httpx.Client, data: dict[str, str], name: str
) -> None:
    response = client.post("/api/v2/convert", files=_upload(MARKDOWN), data=data, timeout=120)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert name in response.json()["detail"]


def test_openapi_documents_the_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v2/convert"]["post"]
    assert route["operationId"] == "convert"
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(route["responses"])
    assert "application/pdf" in route["responses"]["200"]["content"]
    schema_ref = route["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]["properties"]
    assert {"file", "to", "pages", "password", "pdfa", "page_size", "header_html"} <= set(fields)
    assert all(fields[name].get("description") for name in fields)


def test_a_scripted_page_through_chromium(client: httpx.Client) -> None:
    page = (
        b"<!doctype html><html><body><p>Static.</p><p id='x'></p>"
        b"<script>document.getElementById('x').textContent='Made by script'</script>"
        b"</body></html>"
    )
    response = client.post(
        "/api/v2/convert",
        files={"file": ("page.html", page, "text/html")},
        data={"engine": "chromium", "page_size": "A5"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    with pypdfium2.PdfDocument(response.content) as pdf:
        assert [round(v) for v in pdf[0].get_size()] in ([420, 595], [420, 596])
        textpage = pdf[0].get_textpage()
        assert "Made by script" in textpage.get_text_range()
        textpage.close()
