"""v1's media, image-convert and PDF-generation routes (V1_API.md §5, §8; §17 items 3, 6, 7,
10) against one real server for the module.

Images are made here with pyvips, the video with FFmpeg; documents come from the corpus.
Every answer is opened: formats by magic bytes, exact pixel sizes, PDF pages and text.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdfium2
import pytest

from bench.scoring import corpus_root
from docworker.engines.vips import pyvips
from tests.e2e.server import Server
from tests.videos import make_video, needs_ffmpeg

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
DOCX = CORPUS / "office" / "word-sample.docx"
RESULT_KEYS = {"output_path", "processed_at", "input_path", "media_kind", "metadata"}
PAYLOAD_KEYS = {"id", "input_path", "media_kind", "search_params", "format", "vips_enabled"}
SEARCH_KEYS = {"Width", "Height", "Crop", "Quality", "ResizeScale", "CutVideo", "Page"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("v1media"),
        DOCWORKER_SERVER__MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
    ) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def png(width: int, height: int) -> bytes:
    """A ``width`` × ``height`` RGB PNG: a gradient, so no encoder takes a shortcut."""
    ramp = pyvips.Image.xyz(width, height)[0].linear(255 / max(width, 1), 0).cast("uchar")
    data: bytes = ramp.bandjoin([ramp, ramp.invert()]).write_to_buffer(".png")
    return data


def kind_of(data: bytes) -> str:
    """The format, by magic bytes."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return "unknown"


def size_of(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


def at_150_dpi(size: tuple[int, int], width: float, height: float) -> bool:
    """Whether ``size`` is a page of ``width`` × ``height`` points at 150 dpi (to a pixel:
    the renderer rounds the page box up)."""
    expected = (width * 150 / 72, height * 150 / 72)
    return all(abs(got - want) <= 1 for got, want in zip(size, expected, strict=True))


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    pdf = pypdfium2.PdfDocument(data)
    try:
        return [pdf[i].get_size() for i in range(len(pdf))]
    finally:
        pdf.close()


def pdf_text(data: bytes) -> str:
    pdf = pypdfium2.PdfDocument(data)
    try:
        texts = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(texts)
    finally:
        pdf.close()


def _poll(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/job/{job_id}").json()
        if job["status"] in {"completed", "failed"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _accepted(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"job_id", "status", "message", "check_status_url"}
    assert body["status"] == "accepted" and body["message"] == "Job submitted for processing"
    job_id: str = body["job_id"]
    assert uuid.UUID(job_id).version == 4 and str(uuid.UUID(job_id)) == job_id
    assert body["check_status_url"] == f"/api/v1/job/{job_id}"
    return job_id


# -- §5.6 synchronous conversions -----------------------------------------------------------


def test_sync_image_default_is_webp_attachment(client: httpx.Client) -> None:
    answer = client.post("/api/v1/sync/convert/image", files={"file": ("a.png", png(40, 20))})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/webp"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="processed-')
    assert disposition.endswith('.webp"')
    assert kind_of(answer.content) == "webp" and size_of(answer.content) == (40, 20)
    # v1's router rules apply to the new routes too.
    shouted = client.post("/API/V1/Sync/Convert/Image/", files={"file": ("a.png", png(40, 20))})
    assert shouted.status_code == 200 and kind_of(shouted.content) == "webp"
    assert shouted.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("source", "query", "expected"),
    [
        ((400, 200), "width=100", (100, 50)),
        ((200, 400), "width=100&height=100", (50, 100)),
        ((400, 200), "height=50", (100, 50)),
        ((400, 200), "resize=50", (200, 100)),
        ((400, 200), "crop=0:0:10:10", (10, 10)),
        # Priority: resize wins over crop and width.
        ((400, 200), "resize=25&crop=0:0:10:10&width=7", (100, 50)),
        # The thumbnail fit may enlarge.
        ((40, 20), "width=100", (100, 50)),
        # ffmpeg semantics: both sides exact, then the crop (w:h:x:y).
        ((400, 200), "vipsEnable=false&width=100&height=100", (100, 100)),
        ((400, 200), "vipsEnable=false&width=100&crop=30:20:5:5", (30, 20)),
        # Numbers are read as Go's Atoi read them: a sign is taken, what else Python's
        # int() would take (separators, spaces, other digits) is ignored, as v1 did.
        ((400, 200), "width=%2B100", (100, 50)),
        ((400, 200), "width=1_00", (400, 200)),
        ((400, 200), "width=%20100", (400, 200)),
        ((400, 200), "width=%D9%A1%D9%A0%D9%A0", (400, 200)),
    ],
)
def test_sync_image_geometry(
    client: httpx.Client, source: tuple[int, int], query: str, expected: tuple[int, int]
) -> None:
    answer = client.post(
        f"/api/v1/sync/convert/image?{query}&format=png", files={"file": ("a.png", png(*source))}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-disposition"].endswith('.png"')
    assert kind_of(answer.content) == "png"
    assert size_of(answer.content) == expected


def test_sync_image_reads_form_fields_when_the_query_lacks_them(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/sync/convert/image?width=100",
        data={"width": "300", "format": "jpg", "quality": "40"},
        files={"file": ("a.png", png(400, 200))},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert kind_of(answer.content) == "jpeg" and size_of(answer.content) == (100, 50)


@pytest.mark.parametrize("query", ["crop=0:0:10", "crop=a:b:c:d", "format=bmp", "resize=0"])
def test_sync_failures_are_processing_failed_without_details(
    client: httpx.Client, query: str
) -> None:
    answer = client.post(
        f"/api/v1/sync/convert/image?{query}", files={"file": ("a.png", png(40, 20))}
    )
    assert answer.status_code == 500
    assert answer.json() == {"error": "Processing failed"}


def test_sync_upload_errors_have_no_details(client: httpx.Client) -> None:
    for kind in ("image", "document", "video"):
        missing = client.post(f"/api/v1/sync/convert/{kind}", data={"x": "1"}, files={})
        assert missing.status_code == 400 and missing.json() == {"error": "File upload error"}
    not_multipart = client.post("/api/v1/sync/convert/image", json={"file": "x"})
    assert not_multipart.status_code == 400
    assert not_multipart.json() == {"error": "File upload error"}


def test_sync_document_pdf_is_page_one_as_webp(client: httpx.Client) -> None:
    data = PDF.read_bytes()
    width, height = pdf_pages(data)[0]
    answer = client.post("/api/v1/sync/convert/document", files={"file": (PDF.name, data)})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/webp"
    assert kind_of(answer.content) == "webp"
    assert at_150_dpi(size_of(answer.content), width, height)
    two = client.post(
        "/api/v1/sync/convert/document?page=2&width=300&format=png",
        files={"file": (PDF.name, data)},
    )
    assert two.status_code == 200 and kind_of(two.content) == "png"
    assert max(size_of(two.content)) == 300
    past = client.post("/api/v1/sync/convert/document?page=99", files={"file": (PDF.name, data)})
    assert past.status_code == 500 and past.json() == {"error": "Processing failed"}


def test_sync_document_format_pdf(client: httpx.Client) -> None:
    data = PDF.read_bytes()
    same = client.post("/api/v1/sync/convert/document?format=pdf", files={"file": (PDF.name, data)})
    assert same.status_code == 200
    assert same.headers["content-type"] == "application/pdf"
    assert same.headers["content-disposition"].endswith('.pdf"')
    assert same.content == data  # a PDF upload is answered as it is


def test_sync_document_docx_is_its_pdf_or_page_one(client: httpx.Client) -> None:
    data = DOCX.read_bytes()
    made = client.post(
        "/api/v1/sync/convert/document", data={"format": "pdf"}, files={"file": (DOCX.name, data)}
    )
    assert made.status_code == 200 and kind_of(made.content) == "pdf"
    pages = pdf_pages(made.content)
    assert len(pages) == 2
    assert "Swimming in the lake" in pdf_text(made.content)
    page = client.post("/api/v1/sync/convert/document", files={"file": (DOCX.name, data)})
    assert page.status_code == 200 and kind_of(page.content) == "webp"
    width, height = pages[0]
    assert at_150_dpi(size_of(page.content), width, height)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "v.mp4", size="160x120", seconds=2)


def _duration(data: bytes, folder: Path) -> float:
    path = folder / "out.webm"
    path.write_bytes(data)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return float(json.loads(probe.stdout)["format"]["duration"])


@needs_ffmpeg
def test_sync_video_is_webm_clipped(client: httpx.Client, video: Path, tmp_path: Path) -> None:
    answer = client.post(
        "/api/v1/sync/convert/video?clip=0.5:1&format=png",
        files={"file": (video.name, video.read_bytes())},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/webm"
    assert answer.headers["content-disposition"].endswith('.webm"')
    assert kind_of(answer.content) == "webm"
    assert abs(_duration(answer.content, tmp_path) - 1.0) < 0.15


# -- §5.5 jobs --------------------------------------------------------------------------------


def test_process_image_job_keeps_its_output(client: httpx.Client) -> None:
    job_id = _accepted(
        client.post(
            "/api/v1/process/image?resize=50&format=png",
            files={"file": ("photo.png", png(400, 200))},
        )
    )
    job = _poll(client, job_id)
    assert job["status"] == "completed" and job["type"] == "media_processing"
    assert set(job["result"]) == RESULT_KEYS
    assert job["result"]["media_kind"] == "image"
    assert isinstance(job["result"]["output_path"], str) and job["result"]["output_path"]
    payload = job["payload"]
    assert PAYLOAD_KEYS | {"metadata"} <= set(payload)
    assert set(payload["search_params"]) == SEARCH_KEYS
    assert payload["search_params"]["ResizeScale"] == 50 and payload["format"] == "png"
    assert payload["vips_enabled"] is True
    assert payload["metadata"]["original_filename"] == "photo.png"
    assert job["result"]["metadata"] == payload["metadata"]
    output = client.get(f"/api/v1/job/{job_id}/download")
    assert output.status_code == 200 and output.headers["content-type"] == "image/png"
    assert size_of(output.content) == (200, 100)


def _completed(client: httpx.Client, job_id: str, kind: str) -> bytes:
    job = _poll(client, job_id)
    assert job["status"] == "completed", job
    assert set(job["result"]) == RESULT_KEYS and job["result"]["media_kind"] == kind
    assert job["payload"]["media_kind"] == kind
    return client.get(f"/api/v1/job/{job_id}/download").content


def test_process_document_job(client: httpx.Client) -> None:
    files = {"file": (DOCX.name, DOCX.read_bytes())}
    job_id = _accepted(client.post("/api/v1/process/document?format=pdf", files=files))
    output = _completed(client, job_id, "document")
    assert kind_of(output) == "pdf" and len(pdf_pages(output)) == 2


@needs_ffmpeg
def test_process_video_job(client: httpx.Client, video: Path) -> None:
    files = {"file": (video.name, video.read_bytes())}
    job_id = _accepted(client.post("/api/v1/process/video?clip=0:1", files=files))
    assert kind_of(_completed(client, job_id, "video")) == "webm"


@pytest.mark.parametrize("query", ["image?crop=1:2", "video?clip=soon:later", "image?format=bmp"])
def test_bad_parameters_are_accepted_and_fail_the_job(client: httpx.Client, query: str) -> None:
    files = {"file": ("a.png", png(40, 20))}
    job_id = _accepted(client.post(f"/api/v1/process/{query}", files=files))
    job = _poll(client, job_id)
    assert job["status"] == "failed" and "result" not in job
    assert job["error"].startswith("Failed to process file: ")
    assert job["retry_count"] == 1  # not retried: every attempt would fail the same way
    assert client.get(f"/api/v1/job/{job_id}/download").status_code == 409


def test_process_routes_refuse_a_missing_file(client: httpx.Client) -> None:
    for kind in ("document", "image", "video"):
        answer = client.post(f"/api/v1/process/{kind}", data={"width": "1"})
        assert answer.status_code == 400 and answer.json()["error"] == "File upload error"


def test_documents_process_runs_the_media_operations(client: httpx.Client) -> None:
    files = {"file": (DOCX.name, DOCX.read_bytes())}
    first = _accepted(client.post("/api/v1/process/document?format=pdf", files=files))
    document_id = _poll(client, first)["payload"]["id"]
    jobs = {}
    for kind, parameters in (
        ("image_convert", {"width": 300, "format": "png", "page": 2}),
        ("pdf_generate", {}),
    ):
        answer = client.post(
            "/api/v1/documents/process",
            json={"document_id": document_id, "type": kind, "parameters": parameters},
        )
        assert answer.status_code == 202 and answer.json()["type"] == kind
        jobs[kind] = answer.json()["job_id"]
    page = _completed(client, jobs["image_convert"], "document")
    assert kind_of(page) == "png" and max(size_of(page)) == 300
    pdf = _poll(client, jobs["pdf_generate"])
    assert pdf["status"] == "completed" and pdf["type"] == "pdf_generation"
    listed = client.get(f"/api/v1/documents/{document_id}/jobs").json()
    assert [j["type"] for j in listed] == ["image_convert", "image_convert", "pdf_generate"]


# -- §5.7 image convert ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["output_format", "OutputFormat", "outputformat", "format"])
def test_image_convert_reads_every_spelling(client: httpx.Client, field: str) -> None:
    answer = client.post(
        "/api/v1/process/image/convert",
        data={field: "png"},
        files={"file": ("a.jpg", pyvips.Image.black(30, 20).write_to_buffer(".jpg"))},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-disposition"] == 'attachment; filename="converted.png"'
    assert kind_of(answer.content) == "png" and size_of(answer.content) == (30, 20)


def test_image_convert_parameters_and_types(client: httpx.Client) -> None:
    image = ("a.png", png(400, 200))
    fitted = client.post(
        "/api/v1/process/image/convert",
        data={"output_format": "jpeg", "parameters": json.dumps({"width": 100, "quality": 50})},
        files={"file": image},
    )
    assert fitted.status_code == 200 and fitted.headers["content-type"] == "image/jpeg"
    assert kind_of(fitted.content) == "jpeg" and size_of(fitted.content) == (100, 50)
    fields = client.post(
        "/api/v1/process/image/convert",
        data={"output_format": "webp", "height": "40", "parameters": '{"height": 10}'},
        files={"file": image},
    )
    assert kind_of(fields.content) == "webp" and size_of(fields.content) == (80, 40)
    gif = client.post(
        "/api/v1/process/image/convert", data={"output_format": "gif"}, files={"file": image}
    )
    assert gif.headers["content-type"] == "application/octet-stream"
    assert gif.headers["content-disposition"] == 'attachment; filename="converted.gif"'
    assert kind_of(gif.content) == "gif"


def test_image_convert_errors(client: httpx.Client) -> None:
    image = ("a.png", png(40, 20))
    no_file = client.post("/api/v1/process/image/convert", data={"output_format": "png"})
    assert no_file.status_code == 400 and no_file.json()["error"] == "No file provided"
    no_format = client.post("/api/v1/process/image/convert", files={"file": image})
    assert no_format.status_code == 400
    assert no_format.json() == {
        "error": "Invalid request body",
        "details": "output_format is required",
    }
    json_body = client.post("/api/v1/process/image/convert", json={"output_format": "png"})
    assert json_body.status_code == 400 and json_body.json()["error"] == "No file provided"
    # A body that its Content-Type cannot decode is v1's "Invalid request body".
    not_json = client.post(
        "/api/v1/process/image/convert",
        content=b"{output_format: png",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()["error"] == "Invalid request body"
    no_type = client.post("/api/v1/process/image/convert", content=b"x")
    assert no_type.status_code == 400 and no_type.json()["error"] == "Invalid request body"
    bad = client.post(
        "/api/v1/process/image/convert", data={"output_format": "bmp"}, files={"file": image}
    )
    assert bad.status_code == 500 and bad.json()["error"] == "Failed to convert image"


# -- §8 PDF generation -----------------------------------------------------------------------

HTML = (
    b"<!DOCTYPE html><html><head><title>T</title></head><body><h1>Quarterly figures</h1>"
    b"<img src='file:///etc/hostname'><img src='http://127.0.0.1:9/x.png'></body></html>"
)


def _images(data: bytes) -> int:
    pdf = pypdfium2.PdfDocument(data)
    try:
        count = 0
        for index in range(len(pdf)):
            page = pdf[index]
            count += sum(1 for _ in page.get_objects(filter=[pypdfium2.raw.FPDF_PAGEOBJ_IMAGE]))
            page.close()
        return count
    finally:
        pdf.close()


def test_pdf_from_html_with_v1_options(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/pdf/generate/html?page_size=Letter",
        data={"margin_top": "2cm"},
        files={"html_file": ("page.html", HTML)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert "content-disposition" not in answer.headers
    assert answer.content.startswith(b"%PDF-")
    assert [(round(w), round(h)) for w, h in pdf_pages(answer.content)] == [(612, 792)]
    assert "Quarterly figures" in pdf_text(answer.content)
    assert _images(answer.content) == 0  # neither a server file nor a loopback URL was read


def test_pdf_from_markdown_json_and_form(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/pdf/generate/markdown?page_size=A5",
        json={"content": "# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert [(round(w), round(h)) for w, h in pdf_pages(answer.content)] == [(420, 595)]
    assert "Report" in pdf_text(answer.content)
    form = client.post("/api/v1/pdf/generate/markdown", data={"Content": "Plain *words*"})
    assert form.status_code == 200 and "Plain words" in pdf_text(form.content)
    assert [(round(w), round(h)) for w, h in pdf_pages(form.content)] == [(595, 842)]


def test_pdf_from_office(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/pdf/generate/office", files={"office_file": (DOCX.name, DOCX.read_bytes())}
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-") and len(pdf_pages(answer.content)) == 2
    assert "Swimming in the lake" in pdf_text(answer.content)


@pytest.mark.parametrize(
    ("route", "request_kwargs", "body"),
    [
        (
            "html",
            {"data": {"x": "1"}, "files": {"f": ("a", b"x")}},
            {"error": "No HTML file provided"},
        ),
        ("html", {"json": {}}, {"error": "Failed to parse multipart form"}),
        (
            "office",
            {"data": {"x": "1"}, "files": {"f": ("a", b"x")}},
            {"error": "No office file provided"},
        ),
        ("office", {"content": b"x"}, {"error": "Failed to parse multipart form"}),
        ("markdown", {"json": {}}, {"error": "Markdown content is required"}),
        ("markdown", {"json": {"content": ""}}, {"error": "Markdown content is required"}),
        (
            "markdown",
            {"content": b"# x", "headers": {"content-type": "text/plain"}},
            {"error": "Invalid JSON body"},
        ),
        (
            "markdown",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            {"error": "Invalid JSON body"},
        ),
    ],
)
def test_pdf_generation_errors(
    client: httpx.Client, route: str, request_kwargs: dict[str, Any], body: dict[str, str]
) -> None:
    answer = client.post(f"/api/v1/pdf/generate/{route}", **request_kwargs)
    assert answer.status_code == 400
    assert answer.json() == body


def test_a_bad_page_size_is_generation_failed(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/pdf/generate/html?page_size=Nope", files={"html_file": ("p.html", HTML)}
    )
    assert answer.status_code == 500 and answer.json()["error"] == "PDF generation failed"
    assert isinstance(answer.json()["details"], str)
