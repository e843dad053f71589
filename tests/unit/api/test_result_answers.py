"""How the API answers a stored result: JSON streamed from storage with the text spliced
in, the text alone streamed as stored, v1's shapes within the bound on loaded results, and
results stored by an earlier version (the text inside the JSON) answered the same.

The app runs in process without an executor; a test finishes a job itself, as a worker
would: it claims the job, stores a result (in this version's layout or the earlier one)
and marks the job succeeded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.api.deps import Services
from docworker.config import ServerSettings, load_settings
from docworker.jobs.results import store_result
from docworker.operations.base import Result
from docworker.storage import BlobStore

#: Loaded whole at most this much: a result of more is refused where it is reshaped.
BOUND = 64 * 1024
TEXT = '# Zürich\n\nThe € sign, a clef 𝄞 and "quotes".\n'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    server = ServerSettings(max_loaded_result_bytes=BOUND, loaded_results_at_once=1)
    settings = load_settings(data_dir=tmp_path, server=server)
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        yield test_client


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _payload(content: str) -> dict[str, Any]:
    return {"output": "markdown", "format": "md", "mime": "text/markdown", "content": content}


def _finish(client: TestClient, payload: dict[str, Any], *, legacy: bool = False) -> str:
    """Claim the queued job and end it with ``payload``; its id."""
    services = _services(client)
    job = None
    for _ in range(200):
        if job := services.store.claim_next("test-worker"):
            break
        time.sleep(0.05)
    assert job is not None, "no job was queued"
    if legacy:  # as an earlier version stored it: the text inside result.json
        body = json.dumps(payload, ensure_ascii=False).encode()
        blob = services.blobs.write_bytes(BlobStore.result_uri(job.id, "result.json"), body)
        ref = {"uri": blob.uri, "mime": "application/json", "size": blob.size}
    else:
        ref = store_result(services.blobs, job.id, Result(payload=payload))
    services.store.mark_succeeded(job.id, ref)
    return job.id


def _submit(client: TestClient) -> str:
    answer = client.post(
        "/api/v2/jobs", files={"file": ("a.md", b"# A\n")}, data={"operation": "extract"}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


@pytest.mark.parametrize("legacy", [False, True], ids=["apart", "earlier-version"])
def test_the_result_is_streamed_as_json(client: TestClient, legacy: bool) -> None:
    _submit(client)
    payload = _payload(TEXT * 3000)  # over the bound: streamed, never loaded
    job_id = _finish(client, payload, legacy=legacy)
    answer = client.get(f"/api/v2/jobs/{job_id}/result")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-job-id"] == job_id
    assert answer.json() == payload


def _extract_while_finishing(
    client: TestClient, accept: str, payload: dict[str, Any], *, legacy: bool
) -> httpx.Response:
    """``POST /api/v2/extract`` waiting for its job, which this test ends meanwhile."""
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(
            client.post(
                "/api/v2/extract",
                params={"wait": 30},
                files={"file": ("a.md", b"# A\n")},
                headers={"Accept": accept},
            )
        )

    asking = threading.Thread(target=ask)
    asking.start()
    _finish(client, payload, legacy=legacy)
    asking.join(60)
    return answers[0]


@pytest.mark.parametrize("legacy", [False, True], ids=["apart", "earlier-version"])
def test_a_synchronous_route_answers_the_text_alone_or_json(
    client: TestClient, legacy: bool
) -> None:
    payload = _payload(TEXT * 100)
    raw = _extract_while_finishing(client, "text/markdown", payload, legacy=legacy)
    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"] == "text/markdown; charset=utf-8"
    assert raw.text == payload["content"]
    assert raw.headers["location"] == f"/api/v2/jobs/{raw.headers['x-job-id']}"
    whole = _extract_while_finishing(client, "application/json", payload, legacy=legacy)
    assert whole.json() == {"job_id": whole.headers["x-job-id"], **payload}


def test_an_earlier_versions_large_result_is_not_loaded_for_its_text(client: TestClient) -> None:
    """Its text alone means loading it: past the bound, refused, pointing to the stream."""
    payload = _payload(TEXT * 3000)
    raw = _extract_while_finishing(client, "text/markdown", payload, legacy=True)
    assert raw.status_code == 422
    problem = raw.json()
    assert problem["code"] == "limit-exceeded"
    assert problem["maximum"] == BOUND
    assert "server.max_loaded_result_bytes" in problem["detail"]
    assert "/result, which streams it" in problem["detail"]


def test_v1_shapes_a_result_within_the_bound_and_refuses_a_larger_one(
    client: TestClient,
) -> None:
    _submit(client)
    small = _finish(client, _payload(TEXT))
    job = client.get(f"/api/v1/job/{small}").json()
    assert job["status"] == "completed"
    assert job["result"]["content"] == TEXT
    _submit(client)
    large = _finish(client, _payload(TEXT * 3000))
    job = client.get(f"/api/v1/job/{large}").json()
    assert job["status"] == "failed"
    assert "server.max_loaded_result_bytes" in job["error"]
    assert f"/api/v2/jobs/{large}/result" in job["error"]


def test_a_large_v1_answer_is_sent_from_a_temporary_file(tmp_path: Path) -> None:
    """An answer over 256 KiB leaves memory before it is sent: the same body arrives."""
    server = ServerSettings(max_loaded_result_bytes=4 * 1024 * 1024)
    settings = load_settings(data_dir=tmp_path, server=server)
    with TestClient(create_app(settings, start_executor=False)) as client:
        _submit(client)
        job_id = _finish(client, _payload(TEXT * 8000))
        answer = client.get(f"/api/v1/job/{job_id}")
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content) > 256 * 1024
    assert answer.json()["result"]["content"] == TEXT * 8000
