"""What requests stored is swept when they end unless a job names it, and never while
another request of the process still holds the same content."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from docworker.api.uploads import Intake, UnclaimedInputs
from docworker.jobs.store import JobStore, NewJob
from docworker.storage import BlobStore, StoredBlob


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    jobs.migrate()
    yield jobs
    jobs.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(f"file://{tmp_path / 'blobs'}")


def _put(blobs: BlobStore, content: bytes) -> StoredBlob:
    return blobs.put_stream(io.BytesIO(content))


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
    raise AssertionError("not called")


def test_content_is_swept_when_the_last_request_holding_it_ends(
    store: JobStore, blobs: BlobStore
) -> None:
    sweep = UnclaimedInputs(_app)
    first, second = Intake(sweep, blobs), Intake(sweep, blobs)
    made = _put(blobs, b"uploaded twice at once")
    found = _put(blobs, b"uploaded twice at once")
    assert made.created and not found.created
    assert sweep.hold(first, made) and sweep.hold(second, found)
    sweep.release(first, store)
    assert blobs.exists(made.uri)  # the second request still holds it
    sweep.release(second, store)
    assert not blobs.exists(made.uri)


def test_content_a_job_names_is_kept(store: JobStore, blobs: BlobStore) -> None:
    sweep = UnclaimedInputs(_app)
    intake = Intake(sweep, blobs)
    blob = _put(blobs, b"submitted")
    assert sweep.hold(intake, blob)
    spec = {"uri": blob.uri, "sha256": blob.sha256, "size": blob.size}
    store.create(NewJob(operation="extract", params={}, input=spec))
    sweep.release(intake, store)
    assert blobs.exists(blob.uri)


def test_content_that_was_there_before_is_never_swept(store: JobStore, blobs: BlobStore) -> None:
    sweep = UnclaimedInputs(_app)
    earlier = _put(blobs, b"stored by an earlier request")
    intake = Intake(sweep, blobs)
    again = _put(blobs, b"stored by an earlier request")
    assert not again.created
    assert sweep.hold(intake, again)
    sweep.release(intake, store)
    assert blobs.exists(earlier.uri)


def test_content_swept_after_it_was_found_is_stored_again(
    store: JobStore, blobs: BlobStore
) -> None:
    sweep = UnclaimedInputs(_app)
    refused, late = Intake(sweep, blobs), Intake(sweep, blobs)
    made = _put(blobs, b"refused, then sent again")
    assert sweep.hold(refused, made)
    found = _put(blobs, b"refused, then sent again")  # found in the store ...
    sweep.release(refused, store)  # ... and swept before it is held
    assert not sweep.hold(late, found)
    assert late.stored == []
    stored = _put(blobs, b"refused, then sent again")
    assert stored.created and sweep.hold(late, stored)
