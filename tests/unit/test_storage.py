"""The blob store on a local folder: streaming, content addressing, limits, safety."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from docworker.errors import NotFound, PayloadTooLarge
from docworker.storage import BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(f"file://{tmp_path / 'blobs'}")


def test_inputs_are_content_addressed(store: BlobStore) -> None:
    data = b"x" * (3 * 1024 * 1024 + 17)
    first = store.put_stream(io.BytesIO(data))
    second = store.put_stream(io.BytesIO(data))
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert first.uri == f"blob://inputs/{first.sha256}"
    assert store.read_bytes(first.uri) == data
    with store.local_copy(first.uri) as path:
        assert path.read_bytes() == data


def test_an_upload_over_the_limit_is_refused_and_not_kept(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(b"y" * 5000), max_bytes=4096)
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert leftovers == []


def test_results_round_trip_and_delete(store: BlobStore) -> None:
    uri = BlobStore.result_uri("job-1", "result.json")
    store.write_bytes(uri, b"{}")
    assert store.exists(uri)
    store.delete(uri)
    assert not store.exists(uri)
    with pytest.raises(NotFound):
        store.read_bytes(uri)


@pytest.mark.parametrize("uri", ["/etc/passwd", "blob://../../etc/passwd", "blob://", "s3://x/y"])
def test_uris_cannot_leave_the_store(store: BlobStore, uri: str) -> None:
    with pytest.raises(NotFound):
        store.read_bytes(uri)
