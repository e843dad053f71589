"""The blob store on S3: a real S3-compatible server (``moto_server`` on loopback)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import pytest

from docworker.config import Settings
from docworker.errors import DependencyDown, NotFound, PayloadTooLarge
from docworker.storage import BlobStore
from tests.conftest import S3Bucket


def _store(tmp_path: Path, bucket: S3Bucket, url: str | None = None) -> BlobStore:
    settings = Settings(
        data_dir=tmp_path,
        storage={"url": url or f"s3://{bucket.name}/blobs", "s3": bucket.settings},
    )
    return BlobStore.of(settings)


def test_inputs_results_and_links_on_s3(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    store = _store(tmp_path, s3_bucket)
    store.ping()  # an empty prefix of a bucket that exists answers
    data = b"0123456789" * 200_000
    blob = store.put_stream(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert store.put_stream(io.BytesIO(data)).created is False
    assert s3_bucket.keys("blobs/") == [f"blobs/inputs/{blob.sha256}"]
    with store.local_copy(blob.uri, ".bin") as path:
        assert path.read_bytes() == data
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(data), max_bytes=1000)
    assert s3_bucket.keys("blobs/incoming/") == []

    result = store.write_bytes(BlobStore.result_uri("job-1", "page.txt"), b"page one")
    link = store.signed_url(result.uri, expires=60, name="page.txt", mime="text/plain")
    assert link is not None and "X-Amz-Signature=" in link
    answer = httpx.get(link)
    assert answer.status_code == 200
    assert answer.content == b"page one"
    assert answer.headers["content-disposition"] == 'attachment; filename="page.txt"'
    store.delete(BlobStore.results_of("job-1"))
    assert not store.exists(result.uri)
    with pytest.raises(NotFound):
        store.read_bytes(result.uri)


def test_a_bucket_that_is_not_there_is_a_store_down(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    store = _store(tmp_path, s3_bucket, "s3://docworker-no-such-bucket/blobs")
    with pytest.raises(DependencyDown, match="docworker-no-such-bucket"):
        store.ping()
