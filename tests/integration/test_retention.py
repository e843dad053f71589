"""Retention deletes finished jobs with their results, and inputs nobody names any more."""

from __future__ import annotations

import io
from pathlib import Path

from docworker.jobs.retention import purge_expired
from docworker.jobs.store import JobStatus, JobStore, NewJob
from docworker.storage import BlobStore


def test_purge_keeps_shared_inputs_until_the_last_job_goes(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    blob = blobs.put_stream(io.BytesIO(b"shared input"))
    spec = {"uri": blob.uri, "sha256": blob.sha256, "size": blob.size}
    first, _ = store.create(NewJob(operation="extract", params={}, input=spec))
    second, _ = store.create(NewJob(operation="extract", params={"output": "text"}, input=spec))
    assert store.claim_next("w").id == first.id
    result = blobs.write_bytes(BlobStore.result_uri(first.id, "result.json"), b"{}")
    store.mark_succeeded(first.id, {"uri": result.uri})

    assert purge_expired(store, blobs, retention=86400) == 0
    assert purge_expired(store, blobs, retention=0) == 1
    assert not blobs.exists(result.uri)
    assert blobs.exists(blob.uri)  # the second job still names it
    assert store.get(second.id).status is JobStatus.QUEUED

    store.request_cancel(second.id)
    assert purge_expired(store, blobs, retention=0) == 1
    assert not blobs.exists(blob.uri)
    store.close()
