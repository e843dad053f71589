"""Retention: finished jobs, their results and inputs no job names any more are deleted;
so are audit events past their retention, and old quota counters.

v1 kept a job for 24 hours after its last update; the same default applies
here (``executor.job_retention``). Inputs are content-addressed and may be
shared by several jobs, so an input blob goes only when no remaining job names it.
Audit events live longer (``audit.retention``, per tenant if set), beyond their
jobs: the trail and the usage figures outlast the work they describe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from docworker.config import AuditSettings
from docworker.jobs.audit import AuditLog
from docworker.jobs.store import JobStore
from docworker.jobs.usage import QuotaCounters, utc_day
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


def purge_audit(
    audit: AuditLog, counters: QuotaCounters, settings: AuditSettings
) -> tuple[int, int]:
    """Delete audit events past their retention, and the quota counters of days before
    the default retention (at least yesterday's are kept); returns how many of each."""
    events = audit.purge(settings.retention, settings.retention_by_tenant)
    keep_from = datetime.now(UTC) - timedelta(seconds=max(settings.retention, 86400.0))
    return events, counters.purge_before(utc_day(keep_from))
