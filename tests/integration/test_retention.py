"""Retention deletes finished jobs with their results, and inputs nobody names any more."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from docworker.jobs.retention import purge_expired
from docworker.jobs.store import JobStatus, JobStore, NewJob
from docworker.storage import BlobStore, StoredBlob


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


def test_further_inputs_are_kept_while_a_job_names_them(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    main = blobs.put_stream(io.BytesIO(b"first input"))
    other = blobs.put_stream(io.BytesIO(b"second input"))

    def spec(blob: StoredBlob, *others: StoredBlob) -> dict[str, Any]:
        entry: dict[str, Any] = {"uri": blob.uri, "sha256": blob.sha256, "size": blob.size}
        if others:
            entry["others"] = [spec(o) for o in others]
        return entry

    merged, _ = store.create(NewJob(operation="pdf", params={}, input=spec(main, other)))
    alone, _ = store.create(NewJob(operation="extract", params={}, input=spec(other)))
    assert store.inputs_in_use({main.uri, other.uri}) == {main.uri, other.uri}

    store.request_cancel(alone.id)  # 'other' is still named by the merge job's others
    assert purge_expired(store, blobs, retention=0) == 1
    assert blobs.exists(other.uri)
    assert store.inputs_in_use({other.uri}) == {other.uri}

    store.request_cancel(merged.id)
    assert purge_expired(store, blobs, retention=0) == 1
    assert not blobs.exists(main.uri)
    assert not blobs.exists(other.uri)
    store.close()


def test_a_tenant_s_own_retention_applies_to_its_jobs_only(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    jobs = {
        tenant: store.create(NewJob(operation="extract", params={}, input=None, tenant=tenant))[0]
        for tenant in ("short", "long", None)
    }
    for record in jobs.values():
        store.request_cancel(record.id)  # queued: cancelled at once, so finished now
    # The common retention is a day; "short" keeps its jobs no time at all.
    assert purge_expired(store, blobs, retention=86400, tenant_retention={"short": 0}) == 1
    remaining, _ = store.list(limit=10)
    assert {r.tenant for r in remaining} == {"long", None}
    # A long retention of its own keeps a tenant's jobs past the common one.
    purged = purge_expired(store, blobs, retention=0, tenant_retention={"long": 86400})
    assert purged == 1
    (kept,) = store.list(limit=10)[0]
    assert kept.tenant == "long"
    store.close()
