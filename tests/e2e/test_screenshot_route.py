"""``POST /api/v2/screenshot`` end to end: a live server, its worker's warm Chromium."""

from __future__ import annotations

import io
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from docworker.config import ChromiumSettings
from docworker.engines.chromium import ChromiumEngine
from tests.e2e.server import Server

if ChromiumEngine(ChromiumSettings()).unavailable_reason() is not None:
    pytest.skip("Chromium is not installed", allow_module_level=True)

PROBLEM = "application/problem+json"
PAGE = b"""<!DOCTYPE html><html><head><title>Route page</title></head>
<body style="margin:0"><script>
const box = document.createElement("div");
box.style.cssText = "position:absolute;left:20px;top:30px;width:100px;height:50px;"
  + "background:rgb(0,0,255)";
document.body.appendChild(box);
</script></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One worker: one browser for the module.
    with Server(
        tmp_path_factory.mktemp("server"),
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_EXECUTOR__MAX_ATTEMPTS="1",
        DOCWORKER_CHROMIUM__TIMEOUT="4",
    ) as srv:
        yield srv


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/hostname")
    return buffer.getvalue()


def _image(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


def test_the_image_itself(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", PAGE, "text/html")},
        data={"width": "320", "height": "200", "full_page": "false"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = _image(response.content)
    assert (image.width, image.height) == (320, 200)
    assert image(70, 55)[:3] == [0, 0, 255]  # the box the script drew
    assert min(image(200, 150)[:3]) == 255
    job_id = response.headers["x-job-id"]
    again = client.get(f"/api/v2/jobs/{job_id}/artifacts/screenshot.png")
    assert again.content == response.content


def test_json_when_only_json_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", PAGE, "text/html")},
        data={"format": "jpeg", "width": "300", "height": "150", "full_page": "false"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["width"] == 300 and body["height"] == 150 and body["title"] == "Route page"
    assert body["mime"] == "image/jpeg" and body["artifact"] == "screenshot.jpeg"
    assert body["artifacts"][0]["name"] == "screenshot.jpeg"
    jpeg = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/screenshot.jpeg")
    assert jpeg.content.startswith(b"\xff\xd8\xff")


def test_a_zipped_site_with_its_assets(client: httpx.Client) -> None:
    red = pyvips.Image.black(60, 40).new_from_image([255, 0, 0]).cast("uchar")
    page = b"""<html><head><link rel="stylesheet" href="css/site.css"></head><body>
    <img id="pic" src="img/red.png"><p class="note">Assets</p></body></html>"""
    css = b"body { margin: 0; background: rgb(0, 128, 0); } #pic { display: block; }"
    archive = _zip(
        {
            "site/index.html": page,
            "site/css/site.css": css,
            "site/img/red.png": red.pngsave_buffer(),
        }
    )
    response = client.post(
        "/api/v2/screenshot",
        files={"file": ("site.zip", archive, "application/zip")},
        data={"format": "webp", "width": "200", "height": "100", "full_page": "false"},
    )
    assert response.status_code == 200, response.text
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WEBP"
    image = _image(response.content)
    assert (image.width, image.height) == (200, 100)
    r, g, b = image(30, 20)[:3]
    assert r > 200 and g < 60 and b < 60  # the zipped image
    r, g, b = image(150, 80)[:3]
    assert r < 60 and 90 < g < 170 and b < 60  # the zipped style sheet's background


@pytest.mark.parametrize(
    ("archive", "fragment"),
    [
        (_zip({"index.html": PAGE, "../escape.html": b"x"}), "outside its folder"),
        (_zip({"index.html": PAGE}, links=("host.txt",)), "is a link"),
        (_zip({"index.html": PAGE, "big.txt": b"0" * 5_000_000}), "zip bomb"),
        (_zip({"readme.txt": b"no page here"}), "no index.html"),
    ],
)
def test_bad_zips_are_refused(client: httpx.Client, archive: bytes, fragment: str) -> None:
    response = client.post(
        "/api/v2/screenshot", files={"file": ("site.zip", archive, "application/zip")}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert fragment in response.json()["detail"]


def test_markdown(client: httpx.Client) -> None:
    text = b"# Title\n\n<div style='width:80px;height:40px;background:rgb(0,255,0)'></div>\n"
    response = client.post(
        "/api/v2/screenshot",
        files={"file": ("notes.md", text, "text/markdown")},
        data={"selector": "div", "full_page": "false"},
    )
    assert response.status_code == 200, response.text
    image = _image(response.content)
    assert (image.width, image.height) == (80, 40)
    assert image(40, 20)[:3] == [0, 255, 0]


def test_other_inputs_and_parameters(client: httpx.Client) -> None:
    pdf = client.post(
        "/api/v2/screenshot", files={"file": ("a.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")}
    )
    assert pdf.status_code == 415 and pdf.headers["content-type"] == PROBLEM
    bad = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", PAGE, "text/html")},
        data={"format": "gif"},
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    missing = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", PAGE, "text/html")},
        data={"selector": "#nothing"},
    )
    assert missing.status_code == 422 and "no element" in missing.json()["detail"]


def test_a_page_that_never_finishes(client: httpx.Client) -> None:
    loop = b"<html><body><script>while (true) {}</script></body></html>"
    started = time.monotonic()
    response = client.post("/api/v2/screenshot", files={"file": ("loop.html", loop, "text/html")})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "limit-exceeded" and "not ready within 4 s" in body["detail"]
    assert time.monotonic() - started < 20
    after = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", PAGE, "text/html")},
        data={"full_page": "false", "width": "200", "height": "100"},
    )
    assert after.status_code == 200 and _image(after.content).width == 200


def test_not_finished_in_time_is_a_job(client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/screenshot",
        params={"wait": 0},
        files={"file": ("page.html", PAGE, "text/html")},
        data={"wait_delay": "1"},
    )
    assert response.status_code == 202
    job = response.json()
    deadline = time.monotonic() + 30
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/api/v2/jobs/{job['id']}").json()
    assert job["status"] == "succeeded"


def test_openapi_documents_the_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v2/screenshot"]["post"]
    assert post["operationId"] == "screenshot"
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(post["responses"])
    assert {"image/png", "image/jpeg", "image/webp"} <= set(post["responses"]["200"]["content"])
    schema_ref = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"file", "format", "width", "full_page", "selector", "wait_until"} <= set(
        schema["properties"]
    )
    assert schema["properties"]["file"]["description"].startswith("An HTML file")


def test_the_job_records_what_was_refused(client: httpx.Client, tmp_path: Path) -> None:
    page = b'<html><body><img src="http://169.254.169.254/latest/meta-data/"></body></html>'
    response = client.post(
        "/api/v2/screenshot",
        files={"file": ("page.html", page, "text/html")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    refused = response.json()["requests"]["refused"]
    assert refused[0]["url"] == "http://169.254.169.254/latest/meta-data/"
