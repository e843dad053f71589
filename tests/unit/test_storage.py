"""The blob store on a local folder: streaming, content addressing, limits, safety; an
output store of its own; the drivers and options of other stores."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import pytest

from docworker.api.app import create_app
from docworker.config import Settings, SettingsRefused, StorageSettings
from docworker.errors import DependencyDown, NotFound, PayloadTooLarge
from docworker.storage import BlobStore, storage_options, storage_refusals


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


def test_results_go_to_the_output_store(tmp_path: Path) -> None:
    store = BlobStore(f"file://{tmp_path / 'in'}", f"file://{tmp_path / 'out'}")
    blob = store.put_stream(io.BytesIO(b"an input"))
    result = store.write_bytes(BlobStore.result_uri("job-1", "a.txt"), b"a result")
    assert (tmp_path / "in" / "inputs" / blob.sha256).read_bytes() == b"an input"
    assert (tmp_path / "out" / "results" / "job-1" / "a.txt").read_bytes() == b"a result"
    assert not (tmp_path / "in" / "results").exists()
    assert store.read_bytes(result.uri) == b"a result"
    store.delete(BlobStore.results_of("job-1"))
    assert not store.exists(result.uri)
    # A local store signs no links: its artifacts are downloaded through the API.
    assert store.signed_url(blob.uri, expires=60, name="a", mime="text/plain") is None


def test_a_driver_not_installed_is_named_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # adlfs (az://, the azure extra) as if it were not installed: not importable, and not
    # among the drivers fsspec has imported already.
    monkeypatch.setitem(sys.modules, "adlfs", None)
    for protocol in ("az", "abfs", "abfss"):
        monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, protocol, raising=False)
    settings = Settings(data_dir=tmp_path, storage={"url": "az://container/blobs"})
    with pytest.raises(SettingsRefused) as refused:
        create_app(settings, start_executor=False)
    assert refused.value.reasons == [
        "storage.url: 'az://container/blobs' needs the Python package adlfs (pip install "
        "adlfs), which is not installed"
    ]
    with pytest.raises(DependencyDown, match="adlfs"):
        BlobStore(f"file://{tmp_path}", "abfs://container/out")
    problems = storage_refusals(
        StorageSettings(url="nosuch://x", read_roots=[f"file://{tmp_path}/", "az://c/in/"])
    )
    assert problems == [
        "storage.url: 'nosuch://x': fsspec knows no storage protocol 'nosuch'",
        "storage.read_roots: 'az://c/in/' needs the Python package adlfs (pip install adlfs), "
        "which is not installed",
    ]


def test_s3_settings_become_driver_options() -> None:
    storage = StorageSettings(
        s3={
            "endpoint_url": "http://minio:9000",
            "public_endpoint_url": "https://files.example.com",
            "region": "eu-west-1",
            "access_key_id": "key",
            "secret_access_key": "secret",
            "path_style": True,
        }
    )
    options = storage_options(storage, "s3://bucket/blobs")
    assert options == {
        "use_listings_cache": False,
        "endpoint_url": "http://minio:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "key": "key",
        "secret": "secret",
        "config_kwargs": {"signature_version": "s3v4", "s3": {"addressing_style": "path"}},
    }
    public = storage_options(storage, "s3://bucket/blobs", public=True)
    assert public["endpoint_url"] == "https://files.example.com"
    assert storage_options(storage, "file:///srv/blobs") == {}
