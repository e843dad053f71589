"""The service with its blobs in S3: a real ``docworker serve`` whose blob store, output
store and read root are buckets of a real S3-compatible server (``moto_server`` on
loopback), through the API: upload → job → result → artifacts and their presigned
links, and an input read by ``uri`` from the bucket."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import S3Bucket, new_bucket
from tests.e2e.server import Server, finished

CORPUS = Path("/work/shared/corpus")
PDF = CORPUS / "pdf" / "rotated-page-90.pdf"
TEXT = CORPUS / "text" / "plain-utf8.txt"


@pytest.fixture(scope="module")
def buckets(s3_endpoint: str) -> tuple[S3Bucket, S3Bucket]:
    """The inputs' bucket (with its read root) and the outputs' bucket."""
    return new_bucket(s3_endpoint), new_bucket(s3_endpoint)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, buckets: tuple[S3Bucket, S3Bucket]
) -> Iterator[Server]:
    inputs, outputs = buckets
    env = {
        **inputs.env,
        "DOCWORKER_STORAGE__URL": f"s3://{inputs.name}/blobs",
        "DOCWORKER_STORAGE__OUTPUT_URL": f"s3://{outputs.name}/out",
        "DOCWORKER_STORAGE__READ_ROOTS": json.dumps([f"s3://{inputs.name}/incoming/"]),
        "DOCWORKER_STORAGE__LINK_EXPIRY": "120",
    }
    with Server(tmp_path_factory.mktemp("s3-server"), **env) as srv:
        yield srv


def test_upload_job_result_and_artifact_through_the_buckets(
    client: httpx.Client, buckets: tuple[S3Bucket, S3Bucket]
) -> None:
    inputs, outputs = buckets
    data = PDF.read_bytes()
    answer = client.post(
        "/api/v2/jobs",
        data={"operation": "pdf", "params": '{"action": "rotate", "angle": 90}'},
        files={"file": (PDF.name, data, "application/pdf")},
    )
    assert answer.status_code == 202, answer.text
    job = finished(client, answer.json())
    sha256 = hashlib.sha256(data).hexdigest()
    # The input is in the inputs' bucket, content-addressed; the result in the outputs'.
    assert inputs.keys("blobs/inputs/") == [f"blobs/inputs/{sha256}"]
    stored = outputs.keys(f"out/results/{job['id']}/")
    assert f"out/results/{job['id']}/rotated.pdf" in stored
    assert f"out/results/{job['id']}/result.json" in stored

    result = client.get(job["links"]["result"])
    assert result.status_code == 200, result.text
    assert result.json()["page_count"] == 1
    through_api = client.get(f"/api/v2/jobs/{job['id']}/artifacts/rotated.pdf")
    assert through_api.status_code == 200
    assert through_api.content.startswith(b"%PDF")

    # The listing gives a presigned link to the outputs' bucket, which downloads the
    # same file without the API.
    assert job["links"]["artifacts"] == f"/api/v2/jobs/{job['id']}/artifacts"
    listing = client.get(job["links"]["artifacts"])
    assert listing.status_code == 200, listing.text
    (artifact,) = listing.json()["artifacts"]
    assert artifact["name"] == "rotated.pdf"
    assert artifact["presigned"] is True
    assert artifact["expires_at"] is not None
    assert artifact["url"].startswith(f"{outputs.endpoint}/{outputs.name}/out/results/")
    direct = httpx.get(artifact["url"])
    assert direct.status_code == 200
    assert direct.content == through_api.content
    assert direct.headers["content-type"] == "application/pdf"
    assert 'filename="rotated.pdf"' in direct.headers["content-disposition"]


def test_an_input_read_by_uri_from_the_read_root(
    client: httpx.Client, buckets: tuple[S3Bucket, S3Bucket]
) -> None:
    inputs, _ = buckets
    data = TEXT.read_bytes()
    inputs.client().put_object(Bucket=inputs.name, Key="incoming/notes/plain.txt", Body=data)
    answer = client.post(
        "/api/v2/extract?wait=30",
        data={"uri": f"s3://{inputs.name}/incoming/notes/plain.txt", "output": "text"},
    )
    assert answer.status_code == 200, answer.text
    assert "Hamburgers are delicious" in answer.json()["content"]
    sha256 = hashlib.sha256(data).hexdigest()
    assert f"blobs/inputs/{sha256}" in inputs.keys("blobs/inputs/")

    # Beside the read root, in the same bucket: refused.
    inputs.client().put_object(Bucket=inputs.name, Key="private/plain.txt", Body=data)
    refused = client.post(
        "/api/v2/jobs",
        json={"operation": "extract", "uri": f"s3://{inputs.name}/private/plain.txt"},
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "uri-refused"
    missing = client.post(
        "/api/v2/jobs", json={"operation": "extract", "uri": f"s3://{inputs.name}/incoming/none"}
    )
    assert missing.status_code == 404, missing.text
