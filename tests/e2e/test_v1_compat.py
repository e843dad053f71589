"""The v1 compatibility contract (V1_API.md §17), route by route, against a real server.

One server serves the whole module, configured with v1's variables (``OCR_LANGUAGE``,
``CACHE_*``, ``MARKDOWN_BATCH_ROOT``); a second, started without ``--port``, shows
that ``SERVER_PORT`` and the other v1 variables are honoured. Assertions are on
status codes, key sets, types and v1's exact ``error`` texts, never on ``details``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bench.scoring import corpus_root
from tests.e2e.server import Server, free_port

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
DOCX = CORPUS / "office" / "word-sample.docx"
PNG = CORPUS / "images" / "ocr-text.png"
TEXT = CORPUS / "text" / "plain-utf8.txt"
UNION = {"error", "timestamp", "path", "code", "success"}
EXTRACTION_KEYS = {
    "text",
    "source_type",
    "page_count",
    "word_count",
    "char_count",
    "metadata",
    "extracted_at",
    "duration",
}
JOB_KEYS = {"id", "type", "status", "payload", "created_at", "updated_at", "retry_count"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("v1")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    (root / "batch" / "in" / "sub").mkdir(parents=True)
    with Server(
        root / "data",
        DOCWORKER_SERVER__MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
        OCR_LANGUAGE="eng",
        OCR_PSM="3",
        OCR_DPI="200",
        CACHE_DIRECTORY=str(root / "cache"),
        CACHE_TTL="90m",
        CACHE_MAX_SIZE="5000000",
        MARKDOWN_BATCH_ROOT=str(root / "batch"),
    ) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _file(path: Path, part: str = "file") -> dict[str, tuple[str, bytes]]:
    return {part: (path.name, path.read_bytes())}


def _poll(client: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/job/{job_id}").json()
        seen.add(job["status"])
        assert job["status"] in {"pending", "processing", "completed", "failed"}
        if job["status"] in {"completed", "failed"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish; states seen: {seen}")


def _is_uuid4(text: str) -> bool:
    return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text


# -- §2 routing, CORS, HEAD, errors --------------------------------------------------------


def test_unknown_route_and_wrong_method_answer_the_framework_union(client: httpx.Client) -> None:
    unknown = client.get("/api/v1/nothing")
    assert unknown.status_code == 404
    body = unknown.json()
    assert set(body) == UNION
    assert body["error"] == "Cannot GET /api/v1/nothing"
    assert body["path"] == "/api/v1/nothing" and body["code"] == 404 and body["success"] is False
    wrong = client.post("/api/v1/queue/stats")
    assert wrong.status_code == 404
    assert wrong.json()["error"] == "Cannot POST /api/v1/queue/stats"


def test_paths_match_without_case_and_with_one_trailing_slash(client: httpx.Client) -> None:
    assert client.get("/API/V1/Queue/Stats/").status_code == 200
    assert client.get("/Health/Liveness").json()["status"] == "alive"
    # v2 paths stay exact, answering problems.
    v2 = client.get("/API/V2/OPERATIONS")
    assert v2.status_code == 404
    assert v2.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/health/liveness",
        "/health/readiness",
        "/metrics",
        "/api/v1/health",
        "/api/v1/queue/stats",
        "/api/v1/stats/queue",
        "/api/v1/cache/stats",
        "/api/v1/documents/nope/jobs",
    ],
)
def test_every_get_route_answers_head(client: httpx.Client, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["access-control-allow-origin"] == "*"


def test_cors_on_answers_and_preflight(client: httpx.Client) -> None:
    assert client.get("/api/v1/queue/stats").headers["access-control-allow-origin"] == "*"
    assert client.get("/api/v1/nothing").headers["access-control-allow-origin"] == "*"
    preflight = client.options(
        "/api/v1/extract/text",
        headers={"Origin": "http://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET,POST,PUT,DELETE,OPTIONS"
    assert (
        preflight.headers["access-control-allow-headers"]
        == "Origin,Content-Type,Accept,Authorization"
    )


def test_a_body_past_the_limit_is_413_with_the_union(client: httpx.Client) -> None:
    big = b"%PDF-1.4\n" + b"0" * (9 * 1024 * 1024)
    response = client.post("/api/v1/extract/text", files={"file": ("big.pdf", big)})
    assert response.status_code == 413
    body = response.json()
    assert set(body) == UNION and body["error"] == "Request Entity Too Large"


# -- §3 health and metrics -----------------------------------------------------------------


def test_health_probes_and_metrics(client: httpx.Client) -> None:
    health = client.get("/health")
    body = health.json()
    assert {"status", "version", "timestamp", "uptime", "services", "queue", "system"} <= set(body)
    assert body["status"] in {"healthy", "degraded"} and health.status_code == 200
    assert set(body["services"]) == {"ffmpeg", "vips", "libreoffice", "mutool", "tesseract"}
    # v1's probe "versions": what each printed on stdout; mutool prints on stderr.
    versions = {name: info.get("version") for name, info in body["services"].items()}
    assert versions == {
        "ffmpeg": "detected",
        "vips": "detected",
        "libreoffice": "detected",
        "mutool": "available",
        "tesseract": "detected",
    }
    assert body["queue"]["connected"] is True and isinstance(body["queue"]["stats"]["pending"], int)
    assert body["version"] == "1.0.0" and body["system"]["platform"] == "kubernetes"
    live = client.get("/health/liveness").json()
    assert live["status"] == "alive" and live["uptime"].endswith("s")
    assert client.get("/health/readiness").json()["status"] == "ready"
    metrics = client.get("/metrics").json()
    assert metrics["documents_worker_up"] == 1
    assert isinstance(metrics["documents_worker_queue_pending_jobs"], int)
    assert isinstance(metrics["documents_worker_uptime_seconds"], float)
    assert 'documents_worker_service_available{service="tesseract"}' in metrics
    # Prometheus text, asked for, carries v1's metrics under v1's names too.
    text = client.get("/metrics", headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.text)
        for sample in family.samples
    }
    assert samples[("documents_worker_up", ())] == 1
    assert ("documents_worker_queue_pending_jobs", ()) in samples
    assert samples[("documents_worker_service_available", (("service", "mutool"),))] == 1


def test_domain_health_is_200_iff_healthy(client: httpx.Client) -> None:
    response = client.get("/api/v1/health")
    body = response.json()
    assert set(body) == {"status", "version", "timestamp", "services", "dependencies"}
    assert set(body["services"]) == {"document-processor", "queue"}
    assert set(body["dependencies"]) == {
        "queue",
        "cache",
        "vips",
        "ffmpeg",
        "tesseract",
        "playwright",
    }
    for dep in body["dependencies"].values():
        assert dep["status"] in {"healthy", "unhealthy", "unavailable"}
        assert isinstance(dep["available"], bool)
    assert body["dependencies"]["queue"]["available"] is True
    assert body["dependencies"]["cache"]["available"] is True
    assert (response.status_code == 200) == (body["status"] == "healthy")


# -- §7 extraction -------------------------------------------------------------------------


def test_extract_text_of_a_pdf(client: httpx.Client) -> None:
    response = client.post("/api/v1/extract/text", files=_file(PDF))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == EXTRACTION_KEYS
    assert body["source_type"] == "pdf" and body["page_count"] == 5
    assert "\n" not in body["text"] and body["text"] == body["text"].strip()
    assert "word processor" in body["text"].lower()
    assert body["char_count"] == len(body["text"].encode("utf-8"))
    assert body["word_count"] == len(body["text"].split())
    assert isinstance(body["duration"], int)
    assert body["metadata"]["pdf_info"]["pages"] == 5
    assert isinstance(body["metadata"]["source_file"], str)


def test_extract_text_of_office_and_plain_text(client: httpx.Client) -> None:
    office = client.post("/api/v1/extract/text", files=_file(DOCX)).json()
    assert office["source_type"] == "office_direct" and office["page_count"] == 1
    assert "\n" not in office["text"] and office["word_count"] > 10
    plain = client.post("/api/v1/extract/text", files=_file(TEXT)).json()
    assert plain["source_type"] == "plain_text"
    assert plain["char_count"] == len(plain["text"].encode("utf-8"))


@pytest.mark.parametrize(
    "path",
    [
        CORPUS / "web" / "wiki.md",
        CORPUS / "web" / "comma.csv",
        CORPUS / "web" / "table-rowspan.html",
        CORPUS / "web" / "jats-article.xml",
        CORPUS / "office" / "tika-test.rtf",
        CORPUS / "text" / "all-whitespace.txt",
    ],
    ids=lambda path: path.name,
)
def test_extract_text_of_a_text_file_is_the_file_as_it_is(client: httpx.Client, path: Path) -> None:
    # v1 read every text/* file raw: Markdown with its marks, CSV with its commas, HTML
    # with its tags, XML and RTF as their source, white space kept.
    raw = path.read_bytes().decode("utf-8")
    sync = client.post("/api/v1/extract/text", files=_file(path))
    assert sync.status_code == 200, sync.text
    body = sync.json()
    assert body["source_type"] == "plain_text" and body["text"] == raw
    assert body["char_count"] == len(path.read_bytes())
    assert body["metadata"]["extractor"] == "direct_read"
    job_id = _accepted(client.post("/api/v1/extract/async/text", files=_file(path)), "full")
    job = _poll(client, job_id)
    assert job["status"] == "completed", job
    assert job["result"]["extraction_result"]["text"] == raw


def test_extract_text_of_text_in_another_encoding_is_decoded(client: httpx.Client) -> None:
    # Not UTF-8: v1 sent the bytes (each one not UTF-8 replaced); here they are decoded.
    body = client.post("/api/v1/extract/text", files=_file(CORPUS / "text" / "utf16le.txt"))
    assert body.status_code == 200, body.text
    assert body.json()["text"].startswith("This is a test document")


def test_extract_text_refuses_what_v1_could_not_read(client: httpx.Client) -> None:
    response = client.post("/api/v1/extract/text", files=_file(PNG))
    assert response.status_code == 500
    assert response.json()["error"] == "Text extraction failed"


@pytest.mark.parametrize("route", ["/api/v1/extract/text", "/api/v1/extract/async/text"])
def test_missing_file_is_an_upload_error(client: httpx.Client, route: str) -> None:
    no_part = client.post(route, files={"other": ("a.txt", b"x")})
    assert no_part.status_code == 400 and no_part.json()["error"] == "File upload error"
    broken = client.post(
        route,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\r\n',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 400 and broken.json()["error"] == "File upload error"
    not_multipart = client.post(route, content=b"{}", headers={"content-type": "application/json"})
    assert not_multipart.status_code == 400
    assert not_multipart.json()["error"] == "File upload error"


def test_pdf_pages(client: httpx.Client) -> None:
    body = client.post("/api/v1/extract/pdf-pages", files=_file(PDF)).json()
    assert set(body) == {"pages", "total_pages", "extracted_at"}
    assert body["total_pages"] == len(body["pages"]) == 5
    for number, page in enumerate(body["pages"], start=1):
        assert set(page) == EXTRACTION_KEYS
        assert page["source_type"] == "pdf_page" and page["page_count"] == 1
        assert page["metadata"]["page_number"] == number
    refused = client.post("/api/v1/extract/pdf-pages", files=_file(DOCX))
    assert refused.status_code == 400
    assert refused.json()["error"] == "File must be a PDF document"
    assert refused.json()["details"].startswith("Detected MIME type: ")


def test_pdf_range_checks_in_v1_order(client: httpx.Client) -> None:
    route = "/api/v1/extract/pdf-range"
    missing = client.post(route, files=_file(PDF))
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "start_page and end_page parameters are required",
        "example": "start_page=1&end_page=3",
    }
    cases = [
        ({"start_page": "x", "end_page": "2"}, "Invalid start_page parameter"),
        ({"start_page": "1", "end_page": "y"}, "Invalid end_page parameter"),
        ({"start_page": "3", "end_page": "2"}, "Invalid page range"),
        ({"start_page": "0", "end_page": "2"}, "Invalid page range"),
        # v1 read the pages with Go's Atoi: a sign and ASCII digits only.
        ({"start_page": "1_0", "end_page": "12"}, "Invalid start_page parameter"),
        ({"start_page": " 1", "end_page": "2"}, "Invalid start_page parameter"),
        ({"start_page": "1", "end_page": "\u0662"}, "Invalid end_page parameter"),
    ]
    for form, error in cases:
        response = client.post(route, files=_file(PDF), data=form)
        assert response.status_code == 400 and response.json()["error"] == error
    beyond = client.post(route, files=_file(PDF), data={"start_page": "2", "end_page": "9"})
    assert beyond.status_code == 500 and beyond.json()["error"] == "PDF range extraction failed"
    not_pdf = client.post(route, files=_file(DOCX), data={"start_page": "1", "end_page": "1"})
    assert not_pdf.status_code == 400
    assert not_pdf.json()["error"] == "File must be a PDF document"


def test_pdf_range_reads_the_query_string_and_the_form(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/extract/pdf-range?start_page=2", files=_file(PDF), data={"end_page": "3"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source_type"] == "pdf_pages" and body["page_count"] == 2
    assert body["metadata"]["page_range"] == "2-3" and body["metadata"]["total_pages"] == 5
    whole = client.post("/api/v1/extract/text", files=_file(PDF)).json()["text"]
    assert body["text"] in whole and len(body["text"]) < len(whole)


def _accepted(response: httpx.Response, job_type: str) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert _is_uuid4(body["job_id"])
    assert body["status"] == "accepted" and body["job_type"] == job_type
    assert body["message"] == "Text extraction job submitted for processing"
    assert body["check_status_url"] == "/api/v1/job/" + body["job_id"]
    job_id: str = body["job_id"]
    return job_id


def test_async_extraction_jobs(client: httpx.Client) -> None:
    full = _accepted(client.post("/api/v1/extract/async/text", files=_file(PDF)), "full")
    pages = _accepted(client.post("/api/v1/extract/async/pdf-pages", files=_file(PDF)), "pages")
    ranged = client.post(
        "/api/v1/extract/async/pdf-range", files=_file(PDF), data={"start_page": 1, "end_page": 2}
    )
    range_id = _accepted(ranged, "range")
    assert ranged.json()["start_page"] == 1 and ranged.json()["end_page"] == 2

    job = _poll(client, full)
    assert JOB_KEYS | {"result", "completed_at", "max_retries"} <= set(job)
    assert job["type"] == "text_extraction" and job["status"] == "completed"
    assert job["max_retries"] == 3 and job["retry_count"] == 0
    payload = job["payload"]
    assert _is_uuid4(payload["id"]) and payload["id"] != full
    assert set(payload["metadata"]) == {
        "original_filename",
        "file_size",
        "upload_time",
        "client_ip",
    }
    assert payload["metadata"]["original_filename"] == PDF.name
    assert payload["metadata"]["file_size"] == PDF.stat().st_size
    result = job["result"]
    assert {"processed_at", "input_path", "metadata", "extraction_result", "job_type"} <= set(
        result
    )
    assert result["extraction_result"]["page_count"] == 5

    pages_job = _poll(client, pages)["result"]
    assert pages_job["job_type"] == "pages" and pages_job["total_pages"] == 5
    assert len(pages_job["extraction_results"]) == 5
    range_job = _poll(client, range_id)["result"]
    assert range_job["start_page"] == 1 and range_job["end_page"] == 2
    assert range_job["extraction_result"]["source_type"] == "pdf_pages"

    domain = client.get(f"/api/v1/jobs/{full}").json()
    assert domain["id"] == full and domain["type"] == "text_extract"
    assert domain["status"] == "completed" and domain["document_id"] == payload["id"]
    assert {"created_at", "started_at", "completed_at", "retry_count"} <= set(domain)


def test_a_failing_job_ends_failed_with_its_error(client: httpx.Client) -> None:
    broken = b"%PDF-1.4\n1 0 obj garbage that is not a PDF at all\n"
    job_id = _accepted(
        client.post("/api/v1/extract/async/text", files={"file": ("bad.pdf", broken)}), "full"
    )
    job = _poll(client, job_id)
    assert job["status"] == "failed"
    assert job["error"].startswith("Text extraction failed: ")
    assert "result" not in job and "completed_at" not in job
    assert job["max_retries"] == 3 and 1 <= job["retry_count"] <= 3


def test_a_job_failed_by_its_v1_shape_counts_a_failed_attempt(client: httpx.Client) -> None:
    # Not a PDF: the pages job fails (in the job, as v1's did), with one failed attempt.
    job_id = _accepted(client.post("/api/v1/extract/async/pdf-pages", files=_file(DOCX)), "pages")
    job = _poll(client, job_id)
    assert job["status"] == "failed"
    assert job["error"].startswith("PDF pages extraction failed: ")
    assert 1 <= job["retry_count"] <= job["max_retries"]
    domain = client.get(f"/api/v1/jobs/{job_id}").json()
    assert domain["status"] == "failed" and domain["retry_count"] == job["retry_count"]


def test_unknown_jobs_are_404(client: httpx.Client) -> None:
    for path in (f"/api/v1/job/{uuid.uuid4()}", f"/api/v1/jobs/{uuid.uuid4()}"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"] == "Job not found"


def test_queue_stats(client: httpx.Client) -> None:
    stats = client.get("/api/v1/queue/stats").json()
    assert set(stats) == {"queue_stats", "timestamp"}
    assert isinstance(stats["queue_stats"]["pending"], int)
    counts = client.get("/api/v1/stats/queue").json()
    keys = {"pending_jobs", "processing_jobs", "completed_jobs", "failed_jobs", "total_jobs"}
    assert set(counts) == keys | {"timestamp"}
    assert all(isinstance(counts[k], int) for k in keys)
    assert counts["total_jobs"] >= counts["completed_jobs"] + counts["failed_jobs"]


# -- §6 OCR --------------------------------------------------------------------------------


def test_ocr_image(client: httpx.Client) -> None:
    body = client.post("/api/v1/ocr/image", files=_file(PNG)).json()
    assert set(body) == {"text", "confidence", "language", "page_count", "metadata"}
    assert body["language"] == "eng" and body["page_count"] == 1
    assert 0 <= body["confidence"] <= 1
    assert "words" in body["text"]
    assert body["metadata"] == {"input_file": PNG.name, "psm": 3, "dpi": 200}


def test_ocr_document_reads_the_first_page(client: httpx.Client) -> None:
    body = client.post("/api/v1/ocr/document", files=_file(PDF)).json()
    assert body["page_count"] == 1
    assert body["metadata"]["source_type"] == "pdf" and body["metadata"]["page_number"] == 1
    assert {"input_file", "psm", "dpi", "source_file"} <= set(body["metadata"])
    assert (body["metadata"]["psm"], body["metadata"]["dpi"]) == (3, 200)
    assert "Word Processor" in body["text"]
    missing = client.post("/api/v1/ocr/document", files={"x": ("a", b"a")})
    assert missing.status_code == 400 and missing.json()["error"] == "File upload error"


def test_ocr_metadata_keys_follow_the_route_not_the_input(client: httpx.Client) -> None:
    # v1 had LibreOffice wrap an image sent to /ocr/document in a PDF: the document's keys.
    document = client.post("/api/v1/ocr/document", files=_file(PNG))
    assert document.status_code == 200, document.text
    assert document.json()["metadata"] == {
        "input_file": "pdf-page-1.png",
        "psm": 3,
        "dpi": 200,
        "source_type": "pdf",
        "page_number": 1,
        "source_file": "ocr-text.pdf",
    }
    assert "words" in document.json()["text"]
    # A PDF read by /ocr/image (v1 refused it) keeps the image route's keys.
    image = client.post("/api/v1/ocr/image", files=_file(PDF))
    assert image.status_code == 200, image.text
    assert image.json()["metadata"] == {"input_file": PDF.name, "psm": 3, "dpi": 200}


def test_ocr_of_a_blank_image_has_no_confidence(client: httpx.Client) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(blank, "PNG")
    body = client.post("/api/v1/ocr/image", files={"file": ("b.png", blank.getvalue())}).json()
    assert body["text"] == "" and body["confidence"] == 0


# -- §9 Markdown ---------------------------------------------------------------------------


def test_markdown_routes(client: httpx.Client) -> None:
    pdf = client.post("/api/v1/markdown/convert", files=_file(PDF, "document"))
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"].startswith("text/markdown")
    assert "content-disposition" not in pdf.headers
    assert "\n---\n\n*Page 2*\n" in pdf.text and "*Page 5*" in pdf.text
    docx = client.post("/api/v1/markdown/convert", files=_file(DOCX, "document"))
    assert docx.status_code == 200 and docx.text.strip()
    assert (
        client.post("/api/v1/markdown/convert/pdf", files=_file(PDF, "pdf_file")).status_code == 200
    )
    office = client.post("/api/v1/markdown/convert/office", files=_file(DOCX, "office_file"))
    assert office.status_code == 200 and office.text == docx.text
    wrong = client.post("/api/v1/markdown/convert/pdf", files=_file(DOCX, "pdf_file"))
    assert wrong.status_code == 500
    assert wrong.json()["error"] == "PDF to markdown conversion failed"


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ("/api/v1/markdown/convert", "No document file provided"),
        ("/api/v1/markdown/convert/pdf", "No PDF file provided"),
        ("/api/v1/markdown/convert/office", "No office file provided"),
    ],
)
def test_markdown_routes_refuse_missing_parts(client: httpx.Client, route: str, error: str) -> None:
    missing = client.post(route, files={"file": ("a.pdf", PDF.read_bytes())})
    assert missing.status_code == 400 and missing.json() == {"error": error}
    plain = client.post(route, content=b"x", headers={"content-type": "text/plain"})
    assert plain.status_code == 400 and plain.json() == {"error": "Failed to parse multipart form"}


def test_markdown_batch(client: httpx.Client, root: Path) -> None:
    source = root / "batch" / "in"
    (source / "sub" / PDF.name).write_bytes(PDF.read_bytes())
    (source / DOCX.name).write_bytes(DOCX.read_bytes())
    (source / "notes.bin").write_bytes(b"\x00\x01 not a document")
    response = client.post("/api/v1/markdown/batch", json={"input_directory": str(source)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
    for result in body["results"]:
        assert result["success"] and Path(result["output_path"]).is_file()
        written = Path(result["output_path"]).read_text(encoding="utf-8")
        assert result["file_size"] == len(written.encode()) and result["char_count"] == len(written)
        assert isinstance(result["duration"], float)
    assert (root / "batch" / "in_markdown" / "sub" / "multi-page-article.md").is_file()
    types = {r["conversion_type"] for r in body["results"]}
    assert types == {"pdf_to_markdown", "office_to_markdown"}
    # v1's converters' labels, with each one's own key.
    metadata = {r["conversion_type"]: r["metadata"] for r in body["results"]}
    assert metadata["pdf_to_markdown"] == {"generator": "pymupdf", "source_pages": 5}
    assert metadata["office_to_markdown"] == {"generator": "pandoc", "source_format": ".docx"}


def test_markdown_batch_refusals(client: httpx.Client, root: Path) -> None:
    route = "/api/v1/markdown/batch"
    assert client.post(route, json={}).json() == {"error": "Input directory is required"}
    bad = client.post(route, content=b"nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json() == {"error": "Invalid JSON body"}
    outside = client.post(route, json={"input_directory": str(root)})
    assert outside.status_code == 500 and outside.json()["error"] == "Batch conversion failed"
    escape = client.post(
        route, json={"input_directory": str(root / "batch" / "in"), "output_directory": "/tmp"}
    )
    assert escape.status_code == 500


# -- §10 cache -----------------------------------------------------------------------------


def test_cache_stats_and_clear(client: httpx.Client, root: Path) -> None:
    cache = root / "cache"
    (cache / "nested").mkdir(parents=True, exist_ok=True)
    (cache / "nested" / "entry.bin").write_bytes(b"x" * 1234)
    stats = client.get("/api/v1/cache/stats").json()
    assert stats["success"] is True
    assert stats["cache"] == {
        "enabled": True,
        "size": 1234,
        "directory": str(cache),
        "ttl": "1h30m0s",
        "max_size": 5000000,
    }
    cleared = client.delete("/api/v1/cache/clear")
    assert cleared.json() == {"success": True, "message": "Cache clear operation completed"}
    assert cache.is_dir() and not any(cache.iterdir())
    assert client.get("/api/v1/cache/stats").json()["cache"]["size"] == 0


# -- §11 documents -------------------------------------------------------------------------


def test_documents_api(client: httpx.Client) -> None:
    unknown = client.get(f"/api/v1/documents/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "Document not found"
    assert client.get(f"/api/v1/documents/{uuid.uuid4()}/jobs").json() == []
    bad = client.post(
        "/api/v1/documents/process", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "Invalid request body"

    job_id = _accepted(client.post("/api/v1/extract/async/text", files=_file(DOCX)), "full")
    document_id = _poll(client, job_id)["payload"]["id"]
    document = client.get(f"/api/v1/documents/{document_id}").json()
    assert document["id"] == document_id and document["name"] == DOCX.name
    assert document["type"] == "office" and document["size"] == DOCX.stat().st_size
    assert document["status"] == "completed"
    process = client.post(
        "/api/v1/documents/process", json={"document_id": document_id, "type": "text_extract"}
    )
    assert process.status_code == 202
    body = process.json()
    assert body["status"] == "pending" and body["duration"] == 0
    assert body["completed_at"] == "0001-01-01T00:00:00Z"
    assert _poll(client, body["job_id"])["status"] == "completed"
    jobs = client.get(f"/api/v1/documents/{document_id}/jobs").json()
    assert [j["id"] for j in jobs] == [job_id, body["job_id"]]
    assert all(j["document_id"] == document_id for j in jobs)
    thumbnail = client.post(
        "/api/v1/documents/process",
        json={"document_id": document_id, "type": "thumbnail", "parameters": {"size": 120}},
    )
    assert thumbnail.status_code == 202
    thumbnail_id = thumbnail.json()["job_id"]
    assert _poll(client, thumbnail_id)["type"] == "media_processing"
    assert client.get(f"/api/v1/jobs/{thumbnail_id}").json()["type"] == "thumbnail"
    image = client.get(f"/api/v1/job/{thumbnail_id}/download")
    assert image.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(image.content)) as opened:
        assert opened.format == "WEBP" and max(opened.size) == 120
    unknown = client.post(
        "/api/v1/documents/process", json={"document_id": document_id, "type": "bogus"}
    )
    assert unknown.status_code == 500 and unknown.json()["error"] == "Failed to process document"


# -- OpenAPI and the offline documentation ---------------------------------------------------


def test_openapi_lists_the_v1_routes_with_their_bodies(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    v1 = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "v1" in op.get("tags", [])
    }
    # The 36 routes of V1_API.md §1, and the download of a media job's output (an extension).
    assert len(v1 - {("GET", "/api/v1/job/{id}/download")}) == 36
    assert ("POST", "/api/v1/process/image/convert") in v1
    assert ("GET", "/api/v1/job/{id}") in v1 and ("GET", "/metrics") in v1
    body = spec["paths"]["/api/v1/extract/pdf-range"]["post"]["requestBody"]
    fields = body["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"file", "start_page", "end_page"} <= set(fields)
    assert "400" in spec["paths"]["/api/v1/extract/pdf-range"]["post"]["responses"]
    ok = spec["paths"]["/api/v1/extract/text"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/V1ExtractionResult")
    job = spec["components"]["schemas"]["V1Job"]["properties"]
    assert {"id", "status", "payload", "retry_count", "max_retries"} <= set(job)


def test_docs_work_offline(client: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "http://" not in html and "https://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 100_000


# -- §14 configuration ---------------------------------------------------------------------


def _serve(tmp_path: Path, port: int, **variables: str) -> subprocess.Popen[bytes]:
    """``docworker serve`` without ``--port``: the port comes from the v1 variables."""
    env = {
        **os.environ,
        "DOCWORKER_DATA_DIR": str(tmp_path / "data"),
        "DOCWORKER_EXECUTOR__WORKERS": "1",
        **variables,
    }
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "docworker", "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/liveness", timeout=1).is_success:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    process.wait(30)
    raise AssertionError((tmp_path / "server.log").read_text()[-3000:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def test_server_port_and_v1_variables(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(
        tmp_path,
        port,
        PORT="",
        SERVER_PORT=str(port),
        CACHE_ENABLED="false",
        WORKER_RETRY_COUNT="2",
        VIPS_ENABLED="false",
        # A name that is no profile: shown as it is, as v1 did.
        ENVIRONMENT="staging",
        FFMPEG_PATH=str(tmp_path / "no-ffmpeg"),
        # Numbers v1 took and v2 cannot: let go of, with a warning, as v1 let go of
        # values it could not read; the service starts on its defaults.
        OCR_DPI="5000",
        WORKER_MAX_CONCURRENCY="0",
        CACHE_TTL="0s",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            stats = client.get("/api/v1/cache/stats").json()
            assert stats["success"] is True and stats["cache"] == {"enabled": False}
            # The result cache is reported on top, whatever v1's folder is.
            assert stats["result_cache"]["enabled"] is True
            cleared = client.delete("/api/v1/cache/clear")
            assert cleared.status_code == 400
            assert cleared.json() == {"error": "Cache is not enabled"}
            submitted = client.post("/api/v1/extract/async/text", files=_file(TEXT))
            job = client.get(f"/api/v1/job/{_accepted(submitted, 'full')}").json()
            assert job["max_retries"] == 2
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert health.json()["services"]["vips"] == {"status": "disabled", "available": False}
            assert health.json()["system"]["environment"] == "staging"
            # The probe looks for FFMPEG_PATH's program, as v1's did.
            assert health.json()["services"]["ffmpeg"]["available"] is False
            domain = client.get("/api/v1/health")
            assert domain.status_code == 503 and domain.json()["status"] == "degraded"
            assert domain.json()["dependencies"]["cache"] == {
                "status": "unavailable",
                "available": False,
                "message": "Cache service not initialized",
            }
    finally:
        _stop(process)


def test_port_wins_over_server_port(tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    process = _serve(tmp_path, port, PORT=str(port), SERVER_PORT=str(other))
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/queue/stats").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{other}/health/liveness", timeout=1)
    finally:
        _stop(process)
