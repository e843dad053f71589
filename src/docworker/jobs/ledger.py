"""What the end of an attempt or of a job books, in the transaction of its state change.

When an attempt ends, what it used (:class:`~docworker.jobs.models.JobCost`) is added
to the job and to its key's day; when the job reaches its final state, its audit
event is written and its pages are counted. The end of a part of a split job moves
its parent on instead (progress; queued again to merge once no part is left) and
hands it the part's CPU-seconds and pages: parts have no audit events of their own,
and a part that ends after its parent (cancelled while its parts ran) adds its
CPU-seconds to the parent's event. The usage metrics are recorded once the
transaction commits. Only :mod:`docworker.jobs.store` calls this module.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from docworker.jobs import usage
from docworker.jobs.journal import after_commit as _after_commit
from docworker.jobs.journal import journal_of, kind_of
from docworker.jobs.models import TERMINAL_STATUSES, AuditEvent, Job, JobCost, JobStatus
from docworker.metrics import record_job_cpu, record_job_usage


def settle(
    session: Session, job: Job, now: datetime, cost: JobCost | None = None, *, ended: bool = True
) -> None:
    """Book what the job's attempt used (``cost``) and, once the job has ended (when
    ``ended``: its status just changed), its audit event and pages; a part's end is
    counted in its parent instead. All in the transaction of the state change."""
    cpu_seconds = cost.cpu_seconds if cost is not None else 0.0
    if cost is not None:
        job.cpu_seconds = (job.cpu_seconds or 0.0) + cpu_seconds
        if cost.pages is not None:
            job.pages = cost.pages
        if not ended and job.status in TERMINAL_STATUSES and cpu_seconds > 0:
            # An attempt that reported after its job had ended (requeued as stale, then
            # buried): the CPU was spent all the same.
            _late_cpu(session, job, cpu_seconds)
    final = ended and job.status in TERMINAL_STATUSES
    if final and job.parent_id is not None:
        _part_ended(session, job, now)
    if not final or job.parent_id is not None:
        usage.charge(session, job.key_id, job.tenant, now, cpu_seconds=cpu_seconds)
        return
    event = AuditEvent.for_job(job, now)
    session.add(event)
    pages = job.pages or 0
    usage.charge(session, job.key_id, job.tenant, now, pages=pages, cpu_seconds=cpu_seconds)
    _after_commit(
        session,
        partial(
            record_job_usage,
            tenant=job.tenant,
            key_id=job.key_id,
            operation=job.operation,
            outcome=str(job.status),
            input_bytes=event.input_bytes or 0,
            pages=pages,
            cpu_seconds=event.cpu_seconds or 0.0,
        ),
    )


def _late_cpu(session: Session, job: Job, cpu_seconds: float) -> None:
    """CPU-seconds of an ended job (or of a part of an ended job) that arrive after its
    audit event was written: added to the event, and to the parent of a part."""
    owner: Job | None = job
    if job.parent_id is not None:
        owner = _parent(session, job)
        if owner is None:
            return
        owner.cpu_seconds = (owner.cpu_seconds or 0.0) + cpu_seconds
        if owner.status not in TERMINAL_STATUSES:
            return
    assert owner is not None
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.job_id == owner.id, AuditEvent.kind == "job")
        .values(cpu_seconds=func.coalesce(AuditEvent.cpu_seconds, 0.0) + cpu_seconds)
        .execution_options(synchronize_session=False)
    )
    _after_commit(
        session, partial(record_job_cpu, owner.tenant, owner.key_id, owner.operation, cpu_seconds)
    )


def _parent(session: Session, job: Job) -> Job | None:
    query = select(Job).where(Job.id == job.parent_id).with_for_update()
    return session.scalars(query).one_or_none()


def _part_ended(session: Session, job: Job, now: datetime) -> None:
    """Count a part's end in its parent, in the part's transaction: its CPU-seconds and
    pages, the parent's progress, and once no part is left, the parent queued again to
    merge (or cancelled, if that was asked for). A part that ends after its parent
    (cancelled while its parts ran) adds its CPU-seconds to the parent's audit event."""
    parent = _parent(session, job)
    if parent is None:
        return
    if parent.status in TERMINAL_STATUSES:
        if job.cpu_seconds:
            _late_cpu(session, job, job.cpu_seconds)
    else:
        parent.cpu_seconds = (parent.cpu_seconds or 0.0) + (job.cpu_seconds or 0.0)
        if job.pages:
            parent.pages = (parent.pages or 0) + job.pages
    if parent.children_pending <= 0:
        return
    parent.children_pending -= 1
    done = parent.children_total - parent.children_pending
    parent.progress = round(0.95 * done / parent.children_total, 4)
    parent.progress_message = f"{done} of {parent.children_total} parts done"
    parent.updated_at = now
    journal = journal_of(session)
    journal.record(
        session,
        parent,
        "part",
        now,
        {"part": job.part, "part_status": str(job.status), "parts_done": done},
    )
    if parent.children_pending == 0 and parent.status == JobStatus.RUNNING:
        if parent.cancel_requested:
            parent.status = JobStatus.CANCELLED
            parent.finished_at = now
            settle(session, parent, now)
        else:
            parent.status = JobStatus.QUEUED
            parent.run_after = None
            # Merging the parts belongs to the attempt that split the job.
            parent.attempts = max(0, parent.attempts - 1)
        journal.record(session, parent, kind_of(parent.status), now)
