"""The service with its blobs in Azure Blob Storage and in Google Cloud Storage: a real
``docworker serve`` whose blob store, output store and read root are containers of
Azurite (the Azure Storage emulator) or buckets of ``gcp-storage-emulator``, on
loopback, through the API: upload → job → result → artifact (an Azure one with its SAS
link; GCS links are not presigned), and an input read by ``uri`` from the read root.
(S3: ``test_object_storage.py``.)"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server, finished

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "rotated-page-90.pdf"
TEXT = CORPUS / "text" / "plain-utf8.txt"
pytestmark = [
    pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present"),
    # gcsfs and adlfs hand aiohttp each block of an upload as bytes, which it warns of.
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]


@dataclass
class Cloud:
    """One store's emulator: its driver, the inputs' and the outputs' containers."""

    scheme: str
    fs: Any
    inputs: str
    outputs: str
    #: Whether the store signs download links of its own.
    signs: bool


@pytest.fixture(scope="module", params=["az", "gs"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    # Each driver finds its emulator through its own environment, set by the fixture
    # (AZURE_STORAGE_CONNECTION_STRING, STORAGE_EMULATOR_HOST), as it would find the
    # cloud's credentials; the server inherits it.
    if request.param == "az":
        connection = request.getfixturevalue("azure_connection")
        fs = fsspec.filesystem("az", connection_string=connection)
    else:
        endpoint = request.getfixturevalue("gcs_endpoint")
        fs = fsspec.filesystem("gs", endpoint_url=endpoint, token="anon")
    inputs, outputs = (f"docworker-{uuid.uuid4().hex[:16]}" for _ in range(2))
    found = Cloud(request.param, fs, inputs, outputs, signs=request.param == "az")
    fs.mkdir(found.inputs)
    fs.mkdir(found.outputs)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Iterator[Server]:
    scheme = cloud.scheme
    env = {
        "DOCWORKER_STORAGE__URL": f"{scheme}://{cloud.inputs}/blobs",
        "DOCWORKER_STORAGE__OUTPUT_URL": f"{scheme}://{cloud.outputs}/out",
        "DOCWORKER_STORAGE__READ_ROOTS": json.dumps([f"{scheme}://{cloud.inputs}/incoming/"]),
        "DOCWORKER_STORAGE__LINK_EXPIRY": "120",
    }
    with Server(tmp_path_factory.mktemp(f"{scheme}-server"), **env) as srv:
        yield srv


def test_upload_job_result_and_artifact_through_the_store(
    client: httpx.Client, cloud: Cloud
) -> None:
    data = PDF.read_bytes()
    answer = client.post(
        "/api/v2/jobs",
        data={"operation": "pdf", "params": '{"action": "rotate", "angle": 90}'},
        files={"file": (PDF.name, data, "application/pdf")},
    )
    assert answer.status_code == 202, answer.text
    job = finished(client, answer.json())
    sha256 = hashlib.sha256(data).hexdigest()
    cloud.fs.invalidate_cache()
    assert cloud.fs.exists(f"{cloud.inputs}/blobs/inputs/{sha256}")
    assert cloud.fs.exists(f"{cloud.outputs}/out/results/{job['id']}/rotated.pdf")
    result = client.get(job["links"]["result"])
    assert result.status_code == 200, result.text
    assert result.json()["page_count"] == 1
    through_api = client.get(f"/api/v2/jobs/{job['id']}/artifacts/rotated.pdf")
    assert through_api.status_code == 200 and through_api.content.startswith(b"%PDF")
    (artifact,) = client.get(job["links"]["artifacts"]).json()["artifacts"]
    if not cloud.signs:
        assert artifact["presigned"] is False and artifact["expires_at"] is None
        assert artifact["url"] == f"/api/v2/jobs/{job['id']}/artifacts/rotated.pdf"
        return
    assert artifact["presigned"] is True and artifact["expires_at"] is not None
    path = f"/devstoreaccount1/{cloud.outputs}/out/results/{job['id']}/rotated.pdf?"
    assert path in artifact["url"]
    direct = httpx.get(artifact["url"])
    assert direct.status_code == 200
    assert direct.content == through_api.content
    assert direct.headers["content-type"] == "application/pdf"
    assert 'filename="rotated.pdf"' in direct.headers["content-disposition"]


def test_an_input_read_by_uri_from_the_read_root(client: httpx.Client, cloud: Cloud) -> None:
    cloud.fs.pipe(f"{cloud.inputs}/incoming/notes/plain.txt", TEXT.read_bytes())
    answer = client.post(
        "/api/v2/extract?wait=30",
        data={"uri": f"{cloud.scheme}://{cloud.inputs}/incoming/notes/plain.txt", "output": "text"},
    )
    assert answer.status_code == 200, answer.text
    assert "Hamburgers are delicious" in answer.json()["content"]
    cloud.fs.pipe(f"{cloud.inputs}/private/plain.txt", TEXT.read_bytes())
    beside = f"{cloud.scheme}://{cloud.inputs}/private/plain.txt"
    refused = client.post("/api/v2/jobs", json={"operation": "extract", "uri": beside})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "uri-refused"
