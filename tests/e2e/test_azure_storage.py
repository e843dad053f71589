"""The service with its blobs in Azure Blob Storage: a real ``docworker serve`` whose blob
store, output store and read root are containers of Azurite (the Azure Storage emulator,
on loopback), through the API: upload → job → result → artifact and its SAS link, and an
input read by ``uri`` from the read root."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "rotated-page-90.pdf"
TEXT = CORPUS / "text" / "plain-utf8.txt"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")


@pytest.fixture(scope="module")
def containers(azure_connection: str) -> tuple[Any, str, str]:
    """adlfs over Azurite, the inputs' container (with its read root), the outputs'."""
    fs = fsspec.filesystem("az", connection_string=azure_connection)
    inputs, outputs = (f"docworker-{uuid.uuid4().hex[:16]}" for _ in range(2))
    fs.mkdir(inputs)
    fs.mkdir(outputs)
    return fs, inputs, outputs


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, containers: tuple[Any, str, str]
) -> Iterator[Server]:
    _, inputs, outputs = containers
    # The server finds Azurite through AZURE_STORAGE_CONNECTION_STRING (set by the
    # fixture), as it would find Azure's credentials.
    env = {
        "DOCWORKER_STORAGE__URL": f"az://{inputs}/blobs",
        "DOCWORKER_STORAGE__OUTPUT_URL": f"az://{outputs}/out",
        "DOCWORKER_STORAGE__READ_ROOTS": json.dumps([f"az://{inputs}/incoming/"]),
        "DOCWORKER_STORAGE__LINK_EXPIRY": "120",
    }
    with Server(tmp_path_factory.mktemp("azure-server"), **env) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _finished(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while job["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(job["links"]["self"]).json()
    assert job["status"] == "succeeded", job
    return job


def test_upload_job_result_and_sas_link_through_the_containers(
    client: httpx.Client, containers: tuple[Any, str, str]
) -> None:
    fs, inputs, outputs = containers
    data = PDF.read_bytes()
    answer = client.post(
        "/api/v2/jobs",
        data={"operation": "pdf", "params": '{"action": "rotate", "angle": 90}'},
        files={"file": (PDF.name, data, "application/pdf")},
    )
    assert answer.status_code == 202, answer.text
    job = _finished(client, answer.json())
    sha256 = hashlib.sha256(data).hexdigest()
    assert fs.exists(f"{inputs}/blobs/inputs/{sha256}")
    assert fs.exists(f"{outputs}/out/results/{job['id']}/rotated.pdf")
    result = client.get(job["links"]["result"])
    assert result.status_code == 200, result.text
    assert result.json()["page_count"] == 1
    through_api = client.get(f"/api/v2/jobs/{job['id']}/artifacts/rotated.pdf")
    assert through_api.status_code == 200 and through_api.content.startswith(b"%PDF")
    (artifact,) = client.get(job["links"]["artifacts"]).json()["artifacts"]
    assert artifact["presigned"] is True and artifact["expires_at"] is not None
    assert f"/devstoreaccount1/{outputs}/out/results/{job['id']}/rotated.pdf?" in artifact["url"]
    direct = httpx.get(artifact["url"])
    assert direct.status_code == 200
    assert direct.content == through_api.content
    assert direct.headers["content-type"] == "application/pdf"
    assert 'filename="rotated.pdf"' in direct.headers["content-disposition"]


def test_an_input_read_by_uri_from_the_read_root(
    client: httpx.Client, containers: tuple[Any, str, str]
) -> None:
    fs, inputs, _ = containers
    fs.pipe(f"{inputs}/incoming/notes/plain.txt", TEXT.read_bytes())
    answer = client.post(
        "/api/v2/extract?wait=30",
        data={"uri": f"az://{inputs}/incoming/notes/plain.txt", "output": "text"},
    )
    assert answer.status_code == 200, answer.text
    assert "Hamburgers are delicious" in answer.json()["content"]
    fs.pipe(f"{inputs}/private/plain.txt", TEXT.read_bytes())
    refused = client.post(
        "/api/v2/jobs", json={"operation": "extract", "uri": f"az://{inputs}/private/plain.txt"}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "uri-refused"
