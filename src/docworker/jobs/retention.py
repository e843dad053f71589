"""Retention: finished jobs, their results and inputs no job names any more are deleted.

v1 kept a job for 24 hours after its last update; the same default applies
here (``executor.job_retention``). Inputs are content-addressed and may be
shared by several jobs, so an input blob goes only when no remaining job names it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from docworker.jobs.store import JobStore
from docworker.storage import BlobStore

log = structlog.get_logger(__name__)


def purge_expired(store: JobStore, blobs: BlobStore, *, retention: float) -> int:
    """Delete jobs finished more than ``retention`` seconds ago, with their blobs."""
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    deleted = store.delete_finished_before(cutoff)
    inputs: set[str] = set()
    for record in deleted:
        blobs.delete(BlobStore.results_of(record.id))
        if record.input and record.input.get("uri"):
            inputs.add(str(record.input["uri"]))
            inputs.update(str(o["uri"]) for o in record.input.get("others") or [] if o.get("uri"))
    for uri in inputs - store.inputs_in_use(inputs):
        blobs.delete(uri)
    if deleted:
        log.info("expired jobs purged", jobs=len(deleted), inputs=len(inputs))
    return len(deleted)
