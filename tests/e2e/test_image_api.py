"""``POST /api/v2/image`` end to end, against a real server process with its worker pool."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest
import pyvips
from PIL import Image

from bench.scoring import corpus_root
from tests.unit.operations.image_files import magic_format, photo_like, png_header_only

CORPUS = corpus_root()
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def photo() -> bytes:
    data: bytes = photo_like(600, 400).jpegsave_buffer(Q=92)
    return data


def _post(client: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/api/v2/image", files={"file": ("photo.jpg", data)}, data=fields)


def test_the_image_comes_back_with_its_type(client: httpx.Client, photo: bytes) -> None:
    steps = json.dumps([{"op": "rotate", "angle": 90}, {"op": "grayscale"}])
    response = _post(client, photo, width="200", format="webp", steps=steps)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert magic_format(response.content) == "webp"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (133, 200) and image.mode in {"L", "RGB"}
    assert response.headers["x-image-width"] == "133"
    job = client.get(f"/api/v2/jobs/{response.headers['x-job-id']}").json()
    assert job["status"] == "succeeded"


def test_json_when_only_json_is_accepted(client: httpx.Client, photo: bytes) -> None:
    response = client.post(
        "/api/v2/image",
        files={"file": ("photo.jpg", photo)},
        data={"min_ssim": "0.95", "formats": "webp,jpeg"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["auto"]["ssim"] >= 0.95 and body["format"] in {"webp", "jpeg"}
    [artifact] = body["artifacts"]
    download = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/{artifact['name']}")
    assert download.status_code == 200
    assert len(download.content) == body["size"] == artifact["size"]
    assert magic_format(download.content) == body["format"]


def test_202_when_not_finished_in_time(client: httpx.Client, photo: bytes) -> None:
    response = client.post(
        "/api/v2/image",
        params={"wait": 0},
        files={"file": ("photo.jpg", photo)},
        data={"width": "64", "format": "png"},
    )
    if response.status_code == 200:  # the worker was quicker than the answer
        assert magic_format(response.content) == "png"
        return
    assert response.status_code == 202
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/v2/jobs/{job_id}").json()["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    download = client.get(f"/api/v2/jobs/{job_id}/artifacts/image.png")
    with Image.open(io.BytesIO(download.content)) as image:
        assert image.size == (64, 43)


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        ({"steps": "not json"}, "invalid-parameter", 422),
        ({"steps": json.dumps([{"op": "explode"}])}, "invalid-parameter", 422),
        ({"format": "auto"}, "invalid-parameter", 422),
        ({"fit": "squash"}, "invalid-parameter", 422),
    ],
)
def test_bad_parameters_are_problems(
    client: httpx.Client, photo: bytes, fields: dict[str, str], code: str, status: int
) -> None:
    response = _post(client, photo, **fields)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code


def test_not_an_image_is_415(client: httpx.Client) -> None:
    response = _post(client, b"%PDF-1.4 not an image at all\n")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported-format"


def test_a_pixel_bomb_is_refused(client: httpx.Client, tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    response = _post(client, path.read_bytes(), width="100")
    assert response.status_code == 422
    assert response.json()["code"] == "limit-exceeded" and response.json()["limit"] == "pixels"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
def test_gps_is_gone_by_default(client: httpx.Client) -> None:
    source = (CORPUS / "images/exif-gps.jpg").read_bytes()
    response = _post(client, source)
    with Image.open(io.BytesIO(response.content)) as image:
        assert not image.getexif().get_ifd(0x8825)


def test_openapi_documents_the_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v2/image"]["post"]
    assert route["operationId"] == "image"
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(route["responses"])
    assert "image/webp" in route["responses"]["200"]["content"]
    ref = route["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"file", "steps", "width", "fit", "max_bytes", "min_ssim"} <= set(form)
    assert form["steps"]["description"]


def _png(width: int, height: int) -> bytes:
    data: bytes = photo_like(width, height).pngsave_buffer()
    return data


def test_a_watermark_image_as_the_second_file(client: httpx.Client, photo: bytes) -> None:
    steps = json.dumps([{"op": "watermark", "position": "centre", "opacity": 1, "width": 0.5}])
    mark: bytes = pyvips.Image.black(40, 40).new_from_image([255, 0, 255]).pngsave_buffer()
    response = client.post(
        "/api/v2/image",
        files=[("file", ("photo.jpg", photo)), ("file", ("mark.png", mark))],
        data={"steps": steps, "format": "png"},
    )
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (600, 400)
        assert image.convert("RGB").getpixel((300, 200)) == (255, 0, 255)


def test_a_batch_runs_in_parts_and_lists_every_image(client: httpx.Client) -> None:
    sizes = [(200, 100), (300, 150), (120, 120), (90, 180), (160, 80)]
    uploads = [("file", (f"img{i}.png", _png(*size))) for i, size in enumerate(sizes)]
    response = client.post(
        "/api/v2/image", files=uploads, data={"batch": "true", "width": "60", "format": "webp"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [image["file"] for image in body["images"]] == [1, 2, 3, 4, 5]
    job = client.get(f"/api/v2/jobs/{body['job_id']}").json()
    assert job["status"] == "succeeded"
    # Two workers: the five files ran as parts, at once.
    assert job["parts"] is not None and job["parts"]["total"] >= 2
    for image, (width, height) in zip(body["images"], sizes, strict=True):
        download = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/{image['artifact']}")
        assert magic_format(download.content) == "webp"
        with Image.open(io.BytesIO(download.content)) as made:
            assert made.size == (60, round(height * 60 / width))
