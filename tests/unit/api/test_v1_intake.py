"""The v1 plumbing the media routes share: §5.1 parameters (query, then form), v1's
202 body, v1's error bodies and the ``processed-….ext`` download."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from docworker.api.v1.errors import V1Error, install_v1_errors
from docworker.api.v1.intake import (
    MediaParams,
    MediaParamsDep,
    file_response,
    stream_response,
    upload_form,
)


def _app() -> FastAPI:
    app = FastAPI()
    install_v1_errors(app)

    @app.post("/media")
    async def media(request: Request, params: MediaParamsDep) -> dict[str, Any]:
        _form, upload = await upload_form(request)  # the form is still readable
        await upload.close()
        return asdict(params) | {"file": upload.filename}

    @app.get("/download/{ext}")
    async def download(ext: str) -> Response:
        if ext == "stream":
            return stream_response(io.BytesIO(b"RIFFxxxxWEBP"), 12, "webp")
        return file_response(b"%PDF-1.7", ext)

    @app.get("/fail")
    async def fail() -> Response:
        raise V1Error(500, "Processing failed")

    return app


def test_media_parameters_read_the_query_first_then_the_form() -> None:
    with TestClient(_app()) as client:
        body = client.post(
            "/media?width=100&format=png&page=0",
            files={"file": ("a.jpg", b"x")},
            data={"width": "999", "height": "50", "quality": "q", "vipsEnable": "false"},
        ).json()
    assert body["width"] == 100 and body["height"] == 50  # query wins, form fills in
    assert body["quality"] is None  # unparsable: ignored, as v1 did
    assert body["page"] is None  # 0 is not a page
    assert body["format"] == "png" and body["vips_enabled"] is False
    assert body["file"] == "a.jpg"
    assert MediaParams(width=800, clip="5:2").search_params() == {
        "Width": 800,
        "Height": None,
        "Crop": None,
        "Quality": None,
        "ResizeScale": None,
        "CutVideo": "5:2",
        "Page": None,
    }


def test_upload_errors_and_downloads() -> None:
    with TestClient(_app()) as client:
        missing = client.post("/media", data={"width": "1"})
        assert missing.status_code == 400
        assert missing.json()["error"] == "File upload error"
        assert client.get("/fail").json() == {"error": "Processing failed"}
        pdf = client.get("/download/pdf")
        assert pdf.headers["content-type"] == "application/pdf"
        disposition = pdf.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="processed-')
        assert disposition.endswith('.pdf"')
        other = client.get("/download/xyz")
        assert other.headers["content-type"] == "application/octet-stream"
        streamed = client.get("/download/stream")
        assert streamed.headers["content-type"] == "image/webp"
        assert streamed.content == b"RIFFxxxxWEBP"


def test_unexpected_faults_on_v1_routes_answer_the_framework_union() -> None:
    from docworker.api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/boom")
    @app.get("/api/v2/boom")
    async def boom() -> None:
        raise RuntimeError("a fault that must not leak")

    with TestClient(app, raise_server_exceptions=False) as client:
        v1 = client.get("/api/v1/boom")
        v2 = client.get("/api/v2/boom")
    assert v1.status_code == 500
    body = v1.json()
    assert set(body) == {"error", "timestamp", "path", "code", "success"}
    assert body["error"] == "Internal Server Error" and body["code"] == 500
    assert "leak" not in v1.text
    assert v2.headers["content-type"].startswith("application/problem+json")
