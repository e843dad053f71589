"""The service with its blobs in Google Cloud Storage: a real ``docworker serve`` whose blob
store, output store and read root are buckets of a GCS emulator (``gcp-storage-emulator``
on loopback), through the API: upload → job → result → artifact (downloaded through the
API: GCS links are not presigned), and an input read by ``uri`` from the read root."""

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
pytestmark = [
    pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present"),
    # gcsfs hands aiohttp each block of an upload as bytes, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]


@pytest.fixture(scope="module")
def buckets(gcs_endpoint: str) -> tuple[Any, str, str]:
    """gcsfs over the emulator, the inputs' bucket (with its read root), the outputs'."""
    fs = fsspec.filesystem("gs", endpoint_url=gcs_endpoint, token="anon")
    inputs, outputs = (f"docworker-{uuid.uuid4().hex[:16]}" for _ in range(2))
    fs.mkdir(inputs)
    fs.mkdir(outputs)
    return fs, inputs, outputs


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, buckets: tuple[Any, str, str]
) -> Iterator[Server]:
    _, inputs, outputs = buckets
    # The server finds the emulator through STORAGE_EMULATOR_HOST (set by the fixture),
    # as gcsfs would find GCS's credentials.
    env = {
        "DOCWORKER_STORAGE__URL": f"gs://{inputs}/blobs",
        "DOCWORKER_STORAGE__OUTPUT_URL": f"gs://{outputs}/out",
        "DOCWORKER_STORAGE__READ_ROOTS": json.dumps([f"gs://{inputs}/incoming/"]),
    }
    with Server(tmp_path_factory.mktemp("gcs-server"), **env) as srv:
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


def test_upload_job_result_and_artifact_through_the_buckets(
    client: httpx.Client, buckets: tuple[Any, str, str]
) -> None:
    fs, inputs, outputs = buckets
    data = PDF.read_bytes()
    answer = client.post(
        "/api/v2/jobs",
        data={"operation": "pdf", "params": '{"action": "rotate", "angle": 90}'},
        files={"file": (PDF.name, data, "application/pdf")},
    )
    assert answer.status_code == 202, answer.text
    job = _finished(client, answer.json())
    sha256 = hashlib.sha256(data).hexdigest()
    fs.invalidate_cache()
    assert fs.exists(f"{inputs}/blobs/inputs/{sha256}")
    assert fs.exists(f"{outputs}/out/results/{job['id']}/rotated.pdf")
    result = client.get(job["links"]["result"])
    assert result.status_code == 200, result.text
    assert result.json()["page_count"] == 1
    (artifact,) = client.get(job["links"]["artifacts"]).json()["artifacts"]
    assert artifact["presigned"] is False and artifact["expires_at"] is None
    assert artifact["url"] == f"/api/v2/jobs/{job['id']}/artifacts/rotated.pdf"
    download = client.get(artifact["url"])
    assert download.status_code == 200 and download.content.startswith(b"%PDF")


def test_an_input_read_by_uri_from_the_read_root(
    client: httpx.Client, buckets: tuple[Any, str, str]
) -> None:
    fs, inputs, _ = buckets
    fs.pipe(f"{inputs}/incoming/notes/plain.txt", TEXT.read_bytes())
    answer = client.post(
        "/api/v2/extract?wait=30",
        data={"uri": f"gs://{inputs}/incoming/notes/plain.txt", "output": "text"},
    )
    assert answer.status_code == 200, answer.text
    assert "Hamburgers are delicious" in answer.json()["content"]
    fs.pipe(f"{inputs}/private/plain.txt", TEXT.read_bytes())
    refused = client.post(
        "/api/v2/jobs", json={"operation": "extract", "uri": f"gs://{inputs}/private/plain.txt"}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "uri-refused"
