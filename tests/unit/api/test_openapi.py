"""The OpenAPI document is whole and says what is answered: every ``$ref`` resolves, errors
are documented with the media type they are sent with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docworker.api.app import create_app
from docworker.config import load_settings

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("openapi"))
    return create_app(settings, start_executor=False).openapi()


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    target: Any = document
    for escaped in ref[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict) and part in target, f"{ref} points at nothing"
        target = target[part]
    return target


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert "#/components/schemas/JobCreate" in refs
    for ref in refs:
        _resolve(document, ref)


def test_the_job_body_is_a_component_requiring_an_input(document: dict[str, Any]) -> None:
    body = document["paths"]["/api/v2/jobs"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    job_create = document["components"]["schemas"]["JobCreate"]
    assert set(job_create["required"]) == {"operation"}
    # The input, given exactly one way.
    assert job_create["oneOf"] == [
        {"required": ["input_uri"]},
        {"required": ["uri"]},
        {"required": ["url"]},
    ]
    assert job_create["additionalProperties"] is False


def test_v2_errors_are_documented_as_problems(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if not path.startswith("/api/v2"):
            continue
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            assert set(response["content"]) == {PROBLEM}, (method, path, status)
            assert response["content"][PROBLEM]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


def test_v1_errors_are_documented_as_the_json_v1_sends(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if path.startswith("/api/v2"):
            continue
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert set(response["content"]) == {"application/json"}, (method, path, status)
        # A malformed v1 request is v1's framework error, a 400: never FastAPI's 422. A
        # 422 there is the content guard's refusal, in v1's error body.
        if "422" in operation["responses"]:
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/V1ErrorBody"}, (method, path)


def test_fastapi_validation_shapes_are_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_every_operation_has_an_id_and_every_body_a_schema(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        assert operation.get("operationId"), (method, path)
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            assert content.get("schema"), (method, path, media_type)


def test_the_document_is_built_once(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path), start_executor=False)
    assert app.openapi() is app.openapi()


def test_every_v2_route_documents_the_503_of_a_dependency_down(
    document: dict[str, Any],
) -> None:
    """The job database (or the broker, the blob store) not answering is a 503 problem
    with Retry-After on any route under /api/v2 (tests/e2e/test_faults.py)."""
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v2"):
            continue
        for method, operation in operations.items():
            answer = operation["responses"].get("503")
            assert answer is not None, f"{method.upper()} {path}"
            assert PROBLEM in answer["content"], f"{method.upper()} {path}"


def test_extract_documents_its_content_parameter(document: dict[str, Any]) -> None:
    body = document["paths"]["/api/v2/extract"]["post"]["requestBody"]["content"]
    form = _resolve(document, body["multipart/form-data"]["schema"]["$ref"])
    content = form["properties"]["content"]
    assert (content["enum"], content["default"]) == (["full", "main"], "full")
    assert "navigation" in content["description"]
