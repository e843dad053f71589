"""``GET /api/v2/ocr/languages`` on the router alone, with settings given directly."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from docworker.api.deps import get_settings
from docworker.api.routes.ocr import router
from docworker.config import OcrSettings, load_settings


def test_languages_are_listed_with_the_configured_default() -> None:
    app = FastAPI()
    app.include_router(router)
    settings = load_settings(ocr=OcrSettings(language="eng+kor"))
    app.dependency_overrides[get_settings] = lambda: settings
    with TestClient(app) as client:
        answer = client.get("/api/v2/ocr/languages")
    assert answer.status_code == 200
    body = answer.json()
    assert body["default"] == "eng+kor"
    assert "eng" in body["languages"] and "osd" not in body["languages"]
    assert app.openapi()["paths"]["/api/v2/ocr/languages"]["get"]["operationId"] == "ocr_languages"
