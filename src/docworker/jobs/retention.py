"""Retention: finished jobs, their results and inputs no job names any more are deleted;
so are audit events past their retention, and old quota counters.

v1 kept a job for 24 hours after its last update; the same default applies
here (``executor.job_retention``). Deleting a job, when its time is up or when its
client asks (``DELETE /api/v2/jobs/{id}?purge=true``), removes all it holds: its
row and its parts' rows (with their parameters, secrets sealed or not), the result
and artifacts of the job and of each part (``results/<job id>/``), and its input
files, the first and the further ones (``input.others``). Inputs are
content-addressed and may be shared by several jobs, so an input blob goes only
when no remaining job names it.

A tenant may have a retention of its own (``executor.tenant_retention``): its jobs
are deleted on its own cutoff, the other jobs on the common one.

The result cache's entry of a deleted job (the result its worker kept, or the one it
was answered with) is forgotten with it, so a result stays in the cache no longer than
the jobs it belongs to (and never past ``cache.ttl``).

The jobs that ran are rolled up into the capacity history as their rows are deleted
(:mod:`docworker.jobs.capacity_history`), whose hours are kept for
``capacity.history_retention`` and purged here too.

Audit events live longer (``audit.retention``, per tenant if set), beyond their
jobs: the trail and the usage figures outlast the work they describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from docworker.config import AuditSettings
from docworker.jobs.audit import AuditLog
from docworker.jobs.store import JobRecord, JobStore
from docworker.jobs.usage import QuotaCounters, utc_day
from docworker.result_cache import CACHE_KEY, ResultCache
from docworker.storage import BlobStore

log = structlog.get_logger(__name__)


def purge_expired(
    store: JobStore,
    blobs: BlobStore,
    *,
    retention: float,
    tenant_retention: Mapping[str, float] | None = None,
    cache: ResultCache | None = None,
    history_retention: float | None = None,
) -> int:
    """Delete jobs finished more than ``retention`` seconds ago (for the tenants of
    ``tenant_retention``, their own number of seconds), with their blobs; and the hours
    of the capacity history older than ``history_retention`` seconds, when given."""
    now = datetime.now(UTC)
    own = dict(tenant_retention or {})
    deleted = store.delete_finished_before(now - timedelta(seconds=retention), other_than=own)
    for tenant, seconds in own.items():
        deleted += store.delete_finished_before(now - timedelta(seconds=seconds), tenant=tenant)
    inputs = discard_job_data(store, blobs, deleted, cache)
    if deleted:
        log.info("expired jobs purged", jobs=len(deleted), inputs=inputs)
    if history_retention is not None:
        hours = store.purge_capacity_history(now - timedelta(seconds=history_retention))
        if hours:
            log.info("capacity history purged", hours=hours)
    return len(deleted)


def discard_job_data(
    store: JobStore,
    blobs: BlobStore,
    deleted: Sequence[JobRecord],
    cache: ResultCache | None = None,
) -> int:
    """Delete the blobs of jobs whose rows were deleted: each one's results and
    artifacts, and the input files no remaining job names; and forget their results in
    ``cache``. Returns the inputs deleted."""
    if cache is not None:
        cache.forget(str(r.input[CACHE_KEY]) for r in deleted if r.input and r.input.get(CACHE_KEY))
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


def purge_audit(
    audit: AuditLog, counters: QuotaCounters, settings: AuditSettings
) -> tuple[int, int]:
    """Delete audit events past their retention, and the quota counters of days before
    the default retention (at least yesterday's are kept); returns how many of each."""
    events = audit.purge(settings.retention, settings.retention_by_tenant)
    keep_from = datetime.now(UTC) - timedelta(seconds=max(settings.retention, 86400.0))
    return events, counters.purge_before(utc_day(keep_from))
