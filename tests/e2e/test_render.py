"""``/api/v2/render`` and ``/api/v2/thumbnail`` end to end, against a real server process."""

from __future__ import annotations

import io
import math
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pypdfium2
import pytest
import pyvips

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"
PROBLEM = "application/problem+json"
pytestmark = pytest.mark.skipif(not PDF.is_file(), reason="test corpus not present")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server: its two workers split every render of two pages or more."""
    with Server(
        tmp_path_factory.mktemp("server"),
        DOCWORKER_SERVER__MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
        DOCWORKER_RENDER__SPLIT_MIN_PAGES="2",
        DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="2",
    ) as srv:
        yield srv


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _page_size(path: Path, index: int) -> tuple[float, float]:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        width, height = pdf[index].get_size()
        return width, height
    finally:
        pdf.close()


def _image(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_several_pages_come_back_as_a_zip_of_images(client: httpx.Client) -> None:
    response = client.post("/api/v2/render", files=_upload(PDF), data={"pages": "1-3", "dpi": "40"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "multi-page-article-pages.zip" in response.headers["content-disposition"]
    job = client.get(f"/api/v2/jobs/{response.headers['x-job-id']}").json()
    assert job["parts"] == {"total": 3, "pending": 0}  # a page a part, on both workers
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["page-0001.png", "page-0002.png", "page-0003.png"]
        for index, name in enumerate(archive.namelist()):
            data = archive.read(name)
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = _page_size(PDF, index)
            image = _image(data)
            assert (image.width, image.height) == (
                math.ceil(width * 40 / 72),
                math.ceil(height * 40 / 72),
            )


def test_one_page_comes_back_as_the_image_itself(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/render",
        files=_upload(PDF),
        data={"pages": "2", "format": "jpeg", "width": "300", "quality": "70"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff"
    assert _image(response.content).width == 300
    assert response.headers["x-job-id"]


def test_json_lists_the_images_as_artifacts_to_download(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/render",
        files=_upload(PDF),
        data={"pages": "4-5", "format": "webp", "height": "200"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mime"] == "image/webp" and body["page_count"] == 5
    assert [p["artifact"] for p in body["pages"]] == ["page-0004.webp", "page-0005.webp"]
    assert all(p["height"] == 200 for p in body["pages"])
    for page in body["pages"]:
        image = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/{page['artifact']}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
        assert image.content[8:12] == b"WEBP" and len(image.content) == page["size"]


def test_an_unfinished_render_answers_202_and_its_images_download_later(
    client: httpx.Client,
) -> None:
    response = client.post(
        "/api/v2/render", files=_upload(PDF), data={"dpi": "30"}, params={"wait": 0}
    )
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 60
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/api/v2/jobs/{job['id']}").json()
    assert job["status"] == "succeeded"
    # Rendered in parts on both workers; the images are the job's own.
    assert job["parts"] == {"total": 4, "pending": 0}
    result = client.get(f"/api/v2/jobs/{job['id']}/result").json()
    assert [a["name"] for a in result["artifacts"]] == [f"page-000{n}.png" for n in range(1, 6)]
    last = client.get(f"/api/v2/jobs/{job['id']}/artifacts/page-0005.png")
    assert last.status_code == 200 and last.content[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("path", "landscape"),
    [
        (CORPUS / "office" / "powerpoint-sample.pptx", True),
        (CORPUS / "images" / "document-page.heic", False),
        (PDF, False),
    ],
)
def test_thumbnails_of_documents_and_images(
    client: httpx.Client, path: Path, landscape: bool
) -> None:
    response = client.post("/api/v2/thumbnail", files=_upload(path), params={"wait": 120})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    image = _image(response.content)
    assert max(image.width, image.height) == 256
    assert (image.width > image.height) is landscape
    small = client.post(
        "/api/v2/thumbnail", files=_upload(path), data={"size": "64", "format": "png"}
    )
    assert small.status_code == 200 and small.content[:4] == b"\x89PNG"
    assert max(_image(small.content).width, _image(small.content).height) == 64


def _huge_png_header() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"never decoded")
        + chunk(b"IEND", b"")
    )


def test_bad_requests_get_named_problems(client: httpx.Client) -> None:
    both = client.post("/api/v2/render", files=_upload(PDF), data={"dpi": "100", "width": "10"})
    assert both.status_code == 422 and both.headers["content-type"] == PROBLEM
    assert "dpi" in both.json()["detail"]
    bomb = client.post("/api/v2/thumbnail", files={"file": ("bomb.png", _huge_png_header())})
    assert bomb.status_code == 422, bomb.text
    problem = bomb.json()
    assert problem["code"] == "limit-exceeded" and "60000×60000" in problem["detail"]
    html = client.post("/api/v2/render", files=_upload(CORPUS / "web" / "table-rowspan.html"))
    assert html.status_code == 415 and html.json()["code"] == "unsupported-format"
    colour = client.post("/api/v2/render", files=_upload(PDF), data={"background": "nope"})
    assert colour.status_code == 422 and colour.json()["parameter"] == "background"


def test_the_routes_are_documented_with_their_errors(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, operation_id in (("/api/v2/render", "render"), ("/api/v2/thumbnail", "thumbnail")):
        post = paths[path]["post"]
        assert post["operationId"] == operation_id
        assert {"200", "202", "413", "415", "422", "429", "503"} <= set(post["responses"])
        form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
        name = form["$ref"].rsplit("/", 1)[1]
        fields = client_schemas(client)[name]["properties"]
        assert {"file", "format", "quality", "background", "password", "priority"} <= set(fields)
        assert ("pages" in fields) is (operation_id == "render")
        assert ("size" in fields) is (operation_id == "thumbnail")
        undescribed = [key for key, field in fields.items() if not field.get("description")]
        assert undescribed == [], undescribed
    operations = client.get("/api/v2/operations").json()
    assert "render" in str(operations)


def client_schemas(client: httpx.Client) -> dict[str, dict[str, object]]:
    schemas: dict[str, dict[str, object]] = client.get("/openapi.json").json()["components"][
        "schemas"
    ]
    return schemas
