"""``POST /api/v2/jobs`` refuses every malformed submission with a problem naming the fault,
and what a refused request uploaded does not stay in the blob store.

The app runs in process without an executor: submitted jobs stay queued, which is all
these tests need (admission, not execution).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.config import ServerSettings, load_settings

PROBLEM = "application/problem+json"
MISSING = "blob://inputs/" + "a" * 64
LIMIT = 64 * 1024


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path, server=ServerSettings(max_upload_bytes=LIMIT))
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        yield test_client


def _inputs(client: TestClient) -> set[str]:
    folder = Path(client.app.state.services.settings.data_dir) / "blobs" / "inputs"
    return {path.name for path in folder.glob("*")} if folder.is_dir() else set()


def _stored(client: TestClient, content: bytes) -> str:
    """Submit a job for ``content`` by upload; the URI of its stored input."""
    answer = client.post(
        "/api/v2/jobs", files={"file": ("a.txt", content)}, data={"operation": "extract"}
    )
    assert answer.status_code == 202, answer.text
    return f"blob://inputs/{answer.json()['input']['sha256']}"


def _problem(answer: httpx.Response, status: int, parameter: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["detail"]
    if parameter is not None:
        assert body["parameter"] == parameter, body
    return body


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        pytest.param(b"not json", "body", id="not-json"),
        pytest.param(b"[]", "body", id="array"),
        pytest.param(b'"extract"', "body", id="string"),
        pytest.param(b'{"operation": 5, "input_uri": "%s"}', "operation", id="wrong-type"),
        pytest.param(b'{"operation": "extract"}', "input_uri", id="no-input"),
        pytest.param(b'{"operation": "extract", "input_uri": "%s", "zzz": 1}', "zzz", id="unknown"),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "priority": 1e300}',
            "priority",
            id="huge-priority",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "priority": 101}',
            "priority",
            id="priority-out-of-range",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "blob://inputs/"}', "input_uri", id="a-folder"
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "blob://inputs/../jobs.db"}',
            "input_uri",
            id="traversal",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "other_input_uris": ["x"]}',
            "other_input_uris.0",
            id="bad-further-input",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "params": []}', "params", id="params"
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "params": {"output": "docx"}}',
            "output",
            id="bad-param",
        ),
        pytest.param(
            b'{"operation": "render", "input_uri": "%s", '
            b'"params": {"width": 1000000000000000000000000000000}}',
            "width",
            id="huge-integer",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "params": {"content": "article"}}',
            "content",
            id="bad-content",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "params": {"sheet_names": "maybe"}}',
            "sheet_names",
            id="bad-sheet-names",
        ),
        pytest.param(
            b'{"operation": "extract", "input_uri": "%s", "idempotency_key": ""}',
            "idempotency_key",
            id="empty-key",
        ),
    ],
)
def test_every_invalid_json_body_is_a_422_naming_the_field(
    client: TestClient, body: bytes, parameter: str
) -> None:
    uri = _stored(client, b"an input\n")
    content = body.replace(b"%s", uri.encode())
    answer = client.post(
        "/api/v2/jobs", content=content, headers={"content-type": "application/json"}
    )
    _problem(answer, 422, parameter)


def test_a_stored_input_by_uri_and_an_unknown_one(client: TestClient) -> None:
    uri = _stored(client, b"an input\n")
    job = client.post("/api/v2/jobs", json={"operation": "extract", "input_uri": uri})
    assert job.status_code == 202, job.text
    assert job.json()["input"]["size"] == len(b"an input\n")
    missing = client.post("/api/v2/jobs", json={"operation": "extract", "input_uri": MISSING})
    assert _problem(missing, 404)["kind"] == "input"
    further = client.post(
        "/api/v2/jobs",
        json={"operation": "extract", "input_uri": uri, "other_input_uris": [MISSING]},
    )
    _problem(further, 404)
    unknown = client.post("/api/v2/jobs", json={"operation": "frobnicate", "input_uri": uri})
    assert _problem(unknown, 404)["kind"] == "operation"


def test_a_body_of_another_type_is_415(client: TestClient) -> None:
    answer = client.post(
        "/api/v2/jobs", content=b"operation=extract", headers={"content-type": "text/plain"}
    )
    _problem(answer, 415)
    _problem(client.post("/api/v2/jobs"), 415)


@pytest.mark.parametrize(
    ("fields", "files", "parameter"),
    [
        pytest.param({}, {"file": ("a.txt", b"x")}, "operation", id="no-operation"),
        pytest.param({"operation": "extract"}, {}, "file", id="no-file"),
        pytest.param({"operation": "extract", "file": "not a file"}, {}, "file", id="file-as-text"),
        pytest.param(
            {},
            {"operation": ("op.txt", b"extract"), "file": ("a.txt", b"x")},
            "operation",
            id="operation-as-file",
        ),
        pytest.param(
            {"operation": "extract", "params": "[1]"},
            {"file": ("a.txt", b"x")},
            "params",
            id="params-not-an-object",
        ),
        pytest.param(
            {"operation": "extract", "priority": "1e300"},
            {"file": ("a.txt", b"x")},
            "priority",
            id="priority",
        ),
        pytest.param(
            {"operation": "extract", "idempotency_key": "k" * 201},
            {"file": ("a.txt", b"x")},
            "idempotency_key",
            id="long-key",
        ),
        pytest.param(
            {"operation": "extract", "idempotency_key": ""},
            {"file": ("a.txt", b"x")},
            "idempotency_key",
            id="empty-key",
        ),
        pytest.param(
            {"operation": "extract", "priority": ""},
            {"file": ("a.txt", b"x")},
            "priority",
            id="empty-priority",
        ),
    ],
)
def test_every_invalid_form_is_a_422_naming_the_field(
    client: TestClient, fields: dict[str, str], files: dict[str, tuple[str, bytes]], parameter: str
) -> None:
    # Text fields as parts without a file name, so that the body is multipart even alone.
    parts = [*((name, (None, value)) for name, value in fields.items()), *files.items()]
    answer = client.post("/api/v2/jobs", files=parts)
    _problem(answer, 422, parameter)
    assert _inputs(client) == set()


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1e3"])
def test_job_list_times_are_dates_not_numbers(client: TestClient, value: str) -> None:
    _problem(client.get("/api/v2/jobs", params={"created_before": value}), 422, "created_before")
    listed = client.get("/api/v2/jobs", params={"created_before": "2100-01-01T00:00:00Z"})
    assert listed.status_code == 200


@pytest.mark.parametrize("field", ["per_page", "sheet_names"])
@pytest.mark.parametrize(("value", "status"), [("1", 422), ("on", 422), ("TRUE", 202)])
def test_yes_or_no_fields_are_true_or_false(
    client: TestClient, field: str, value: str, status: int
) -> None:
    answer = client.post(
        "/api/v2/extract",
        params={"wait": 0},
        files={"file": ("a.txt", b"x")},
        data={field: value},
    )
    assert answer.status_code == status, answer.text
    if status == 422:
        _problem(answer, 422, field)


@pytest.mark.parametrize(("value", "status"), [("article", 422), ("MAIN", 422), ("main", 202)])
def test_extract_content_is_full_or_main(client: TestClient, value: str, status: int) -> None:
    answer = client.post(
        "/api/v2/extract",
        params={"wait": 0},
        files={"file": ("a.html", b"<p>x</p>")},
        data={"content": value},
    )
    assert answer.status_code == status, answer.text
    if status == 422:
        _problem(answer, 422, "content")
    else:
        assert answer.json()["params"]["content"] == "main"


def test_a_malformed_multipart_body_is_a_422_problem(client: TestClient) -> None:
    answer = client.post(
        "/api/v2/extract",
        content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    _problem(answer, 422, "body")


def test_an_idempotency_header_past_its_length_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/v2/jobs",
        files={"file": ("a.txt", b"x")},
        data={"operation": "extract"},
        headers={"Idempotency-Key": "k" * 201},
    )
    _problem(answer, 422, "Idempotency-Key")


def test_the_result_of_a_cancelled_job_says_so_beside_the_http_status(
    client: TestClient,
) -> None:
    uri = _stored(client, b"to cancel\n")
    job = client.post("/api/v2/jobs", json={"operation": "extract", "input_uri": uri}).json()
    assert client.delete(f"/api/v2/jobs/{job['id']}").json()["status"] == "cancelled"
    body = _problem(client.get(f"/api/v2/jobs/{job['id']}/result"), 409)
    assert body["job_status"] == "cancelled"
    assert body["code"] == "conflict"


def test_a_body_over_the_limit_names_the_limit_in_full(client: TestClient) -> None:
    answer = client.post("/api/v2/extract", files={"file": ("big.txt", b"a" * (LIMIT + 1))})
    body = _problem(answer, 413)
    assert f"limit of {LIMIT}" in str(body["detail"]) and "e+" not in str(body["detail"])
    assert body["maximum"] == LIMIT


@pytest.mark.parametrize(
    ("route", "form"),
    [
        ("/api/v2/render", {"width": "1" + "0" * 30}),
        ("/api/v2/pdf/split", {"every": "9" * 25}),
        ("/api/v2/image", {"max_bytes": "9" * 25}),
    ],
)
def test_an_integer_past_64_bits_is_refused(
    client: TestClient, route: str, form: dict[str, str]
) -> None:
    # Accepted before, such a job was never handed to a worker: it held a worker until
    # the job timeout, attempt after attempt.
    answer = client.post(route, files={"file": ("a.png", b"x")}, data=form)
    _problem(answer, 422, next(iter(form)))


def test_a_refused_upload_leaves_no_blob(client: TestClient) -> None:
    # A parameter refused after the file was stored (the route reads the form first).
    answer = client.post(
        "/api/v2/extract", files={"file": ("a.txt", b"refused\n")}, data={"pages": "9-1"}
    )
    _problem(answer, 422, "pages")
    # An idempotency key already used for another request: refused at submission.
    first = client.post(
        "/api/v2/jobs",
        files={"file": ("a.txt", b"first\n")},
        data={"operation": "extract", "idempotency_key": "key-1"},
    )
    assert first.status_code == 202
    again = client.post(
        "/api/v2/jobs",
        files={"file": ("a.txt", b"second\n")},
        data={"operation": "extract", "idempotency_key": "key-1"},
    )
    _problem(again, 409)
    # A v1 route that refuses a file it stored (not a PDF).
    v1 = client.post("/api/v1/extract/pdf-pages", files={"file": ("a.txt", b"not a pdf\n")})
    assert v1.status_code == 400
    assert _inputs(client) == {first.json()["input"]["sha256"]}


def test_a_refused_upload_keeps_content_that_a_job_names(client: TestClient) -> None:
    uri = _stored(client, b"shared content\n")
    refused = client.post(
        "/api/v2/extract", files={"file": ("b.txt", b"shared content\n")}, data={"pages": "x"}
    )
    _problem(refused, 422, "pages")
    assert _inputs(client) == {uri.rsplit("/", 1)[1]}
    again = client.post("/api/v2/jobs", json={"operation": "extract", "input_uri": uri})
    assert again.status_code == 202


def test_jobs_keep_their_inputs(client: TestClient) -> None:
    files = [("file", ("a.txt", b"one\n")), ("files", ("b.txt", b"two\n"))]
    answer = client.post("/api/v2/jobs", files=files, data={"operation": "extract"})
    assert answer.status_code == 202
    job_input = answer.json()["input"]
    assert _inputs(client) == {job_input["sha256"], job_input["others"][0]["sha256"]}
    assert client.get(f"/api/v2/jobs/{answer.json()['id']}").json()["input"] == job_input
