"""Retention: finished jobs, their results and inputs no job names any more are deleted.

v1 kept a job for 24 hours after its last update; the same default applies
here (``executor.job_retention``). Deleting a job, when its time is up or when its
client asks (``DELETE /api/v2/jobs/{id}?purge=true``), removes all it holds: its
row and its parts' rows (with their parameters, secrets sealed or not), the result
and artifacts of the job and of each part (``results/<job id>/``), and its input
files, the first and the further ones (``input.others``). Inputs are
content-addressed and may be shared by several jobs, so an input blob goes only
when no remaining job names it.

A retention per tenant plugs in at :func:`purge_expired`'s caller: delete each
tenant's jobs with its own cutoff (:meth:`JobStore.delete_finished_before` filtered
by tenant), then hand what was deleted to :func:`discard_job_data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from docworker.jobs.store import JobRecord, JobStore
from docworker.storage import BlobStore

log = structlog.get_logger(__name__)


def purge_expired(store: JobStore, blobs: BlobStore, *, retention: float) -> int:
    """Delete jobs finished more than ``retention`` seconds ago, with their blobs."""
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    deleted = store.delete_finished_before(cutoff)
    inputs = discard_job_data(store, blobs, deleted)
    if deleted:
        log.info("expired jobs purged", jobs=len(deleted), inputs=inputs)
    return len(deleted)


def discard_job_data(store: JobStore, blobs: BlobStore, deleted: Sequence[JobRecord]) -> int:
    """Delete the blobs of jobs whose rows were deleted: each one's results and
    artifacts, and the input files no remaining job names. Returns the inputs deleted."""
    inputs: set[str] = set()
    for record in deleted:
        blobs.delete(BlobStore.results_of(record.id))
        if record.input and record.input.get("uri"):
            inputs.add(str(record.input["uri"]))
            inputs.update(str(o["uri"]) for o in record.input.get("others") or [] if o.get("uri"))
    unused = inputs - store.inputs_in_use(inputs)
    for uri in unused:
        blobs.delete(uri)
    return len(unused)
