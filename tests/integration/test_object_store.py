"""The blob store on object storage, each against a real server on loopback: S3
(``moto_server``), Google Cloud Storage (``gcp-storage-emulator``) and Azure Blob Storage
(Azurite)."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import fsspec
import httpx
import pytest

from docworker.config import Settings
from docworker.errors import DependencyDown, NotFound, PayloadTooLarge
from docworker.storage import BlobStore
from tests.conftest import S3Bucket


def _s3_store(tmp_path: Path, bucket: S3Bucket, url: str | None = None) -> BlobStore:
    settings = Settings(
        data_dir=tmp_path,
        storage={"url": url or f"s3://{bucket.name}/blobs", "s3": bucket.settings},
    )
    return BlobStore.of(settings)


def _round_trip(store: BlobStore, fs: object, prefix: str) -> str:
    """Inputs and results through ``store`` (on the file system ``fs`` under ``prefix``);
    the URI of a result left in it."""
    store.ping()  # an empty prefix of a bucket that exists answers
    data = b"0123456789" * 200_000
    blob = store.put_stream(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert store.put_stream(io.BytesIO(data)).created is False
    assert fs.find(prefix) == [f"{prefix}/inputs/{blob.sha256}"]  # type: ignore[attr-defined]
    with store.local_copy(blob.uri, ".bin") as path:
        assert path.read_bytes() == data
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(data), max_bytes=1000)
    assert fs.find(f"{prefix}/incoming") == []  # type: ignore[attr-defined]
    result = store.write_bytes(BlobStore.result_uri("job-1", "page.txt"), b"page one")
    assert store.read_bytes(result.uri) == b"page one"
    gone = store.write_bytes(BlobStore.result_uri("job-2", "page.txt"), b"page two")
    store.delete(BlobStore.results_of("job-2"))
    assert not store.exists(gone.uri)
    with pytest.raises(NotFound):
        store.read_bytes(gone.uri)
    return result.uri


def test_the_store_on_s3_with_presigned_links(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    store = _s3_store(tmp_path, s3_bucket)
    fs = fsspec.filesystem("s3", **_options(s3_bucket))
    uri = _round_trip(store, fs, f"{s3_bucket.name}/blobs")
    link = store.signed_url(uri, expires=60, name="page.txt", mime="text/plain")
    assert link is not None and "X-Amz-Signature=" in link
    answer = httpx.get(link)
    assert answer.status_code == 200
    assert answer.content == b"page one"
    assert answer.headers["content-disposition"] == 'attachment; filename="page.txt"'


def test_a_bucket_that_is_not_there_is_a_store_down(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    store = _s3_store(tmp_path, s3_bucket, "s3://docworker-no-such-bucket/blobs")
    with pytest.raises(DependencyDown, match="docworker-no-such-bucket"):
        store.ping()


# gcsfs hands aiohttp each block of an upload as bytes, which aiohttp warns of.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_the_store_on_gcs(gcs_endpoint: str) -> None:
    fs = fsspec.filesystem("gs", endpoint_url=gcs_endpoint, token="anon")
    bucket = f"docworker-{uuid.uuid4().hex[:16]}"
    fs.mkdir(bucket)
    # gcsfs finds the emulator through STORAGE_EMULATOR_HOST, as it would find GCS's
    # credentials through its own environment.
    store = BlobStore(f"gs://{bucket}/blobs")
    uri = _round_trip(store, fs, f"{bucket}/blobs")
    # GCS links are not presigned: its artifacts are downloaded through the API.
    assert store.signed_url(uri, expires=60, name="page.txt", mime="text/plain") is None
    with pytest.raises(DependencyDown):
        BlobStore("gs://docworker-no-such-bucket/blobs").ping()


# adlfs hands aiohttp each block of an upload as bytes too.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_the_store_on_azure_with_sas_links(azure_connection: str) -> None:
    fs = fsspec.filesystem("az", connection_string=azure_connection)
    container = f"docworker-{uuid.uuid4().hex[:16]}"
    fs.mkdir(container)
    # adlfs finds Azurite through AZURE_STORAGE_CONNECTION_STRING, as it would find
    # Azure's credentials through its own environment.
    store = BlobStore(f"az://{container}/blobs")
    uri = _round_trip(store, fs, f"{container}/blobs")
    link = store.signed_url(uri, expires=60, name="page.txt", mime="text/plain")
    assert link is not None and "sig=" in link and "/devstoreaccount1/" in link
    answer = httpx.get(link)
    assert answer.status_code == 200
    assert answer.content == b"page one"
    assert answer.headers["content-disposition"] == 'attachment; filename="page.txt"'
    assert answer.headers["content-type"] == "text/plain"
    with pytest.raises(DependencyDown):
        BlobStore("az://docworker-no-such-container/blobs").ping()


def _options(bucket: S3Bucket) -> dict[str, object]:
    return {
        "endpoint_url": bucket.endpoint,
        "key": bucket.settings["access_key_id"],
        "secret": bucket.settings["secret_access_key"],
        "client_kwargs": {"region_name": "us-east-1"},
        "use_listings_cache": False,
    }


def test_links_are_signed_for_the_public_endpoint(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    """The service reaches the store at one address, clients at another: the links are
    signed for the clients'."""
    public = s3_bucket.endpoint.replace("127.0.0.1", "localhost")
    settings = Settings(
        data_dir=tmp_path,
        storage={
            "url": f"s3://{s3_bucket.name}/blobs",
            "s3": s3_bucket.settings | {"public_endpoint_url": public},
        },
    )
    store = BlobStore.of(settings)
    uri = store.write_bytes(BlobStore.result_uri("job-1", "a.txt"), b"for the client").uri
    link = store.signed_url(uri, expires=60, name="a.txt", mime="text/plain")
    assert link is not None and link.startswith(f"{public}/{s3_bucket.name}/blobs/results/")
    assert httpx.get(link).content == b"for the client"
