"""A route that takes one file answers 422 naming the field when it is sent several, on v2
and v1, rather than read one of them and drop the others; and nothing is stored.

The app runs in process without an executor: the refusals come before any job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.api.uploads import refuse_repeated_files, single_file_fields
from docworker.config import load_settings

PROBLEM = "application/problem+json"
TWO_FILES = [("file", ("a.txt", b"first")), ("file", ("b.txt", b"second"))]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path)
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        yield test_client


def _inputs(client: TestClient) -> list[Path]:
    folder = Path(client.app.state.services.settings.data_dir) / "blobs" / "inputs"
    return list(folder.glob("*")) if folder.is_dir() else []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/api/v2/jobs", {"operation": "extract"}),
        ("/api/v2/extract", {}),
        ("/api/v2/unpack", {}),
        ("/api/v2/pdf/rotate", {"angle": "90"}),
    ],
)
def test_v2_routes_refuse_two_files_naming_the_field(
    client: TestClient, path: str, data: dict[str, str]
) -> None:
    answer = client.post(path, files=TWO_FILES, data=data)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert (body["code"], body["parameter"]) == ("invalid-parameter", "file")
    assert "2" in body["detail"]
    assert _inputs(client) == []


def test_a_job_still_takes_further_inputs_as_files(client: TestClient) -> None:
    answer = client.post(
        "/api/v2/jobs",
        files=[("file", ("a.pdf", b"%PDF-1.4 a")), ("files", ("b.pdf", b"%PDF-1.4 b"))],
        data={"operation": "pdf", "params": '{"action": "merge"}'},
    )
    assert answer.status_code == 202, answer.text


def test_a_v1_route_refuses_two_files_in_its_error_body(client: TestClient) -> None:
    answer = client.post("/api/v1/extract/text", files=TWO_FILES)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["error"], body["field"]) == ("File upload error", "file")
    assert "2 were sent" in body["details"]
    assert _inputs(client) == []


def test_every_route_taking_one_file_refuses_several(client: TestClient) -> None:
    """A route with a single-file parameter carries the check (its router declares it)."""
    app = client.app
    checked = []
    for route in app.router.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and single_file_fields(route.endpoint):
            calls = {dependency.dependency for dependency in route.dependencies}
            assert refuse_repeated_files in calls, route.path
            checked.append(route.path)
    assert "/api/v2/extract" in checked and "/api/v2/unpack" in checked
    assert "/api/v2/image" not in checked  # takes several 'file' parts by design
