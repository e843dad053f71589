"""What a job's state change writes beside it: its event, and the webhooks to send.

Every change of a job's state is one transaction of the job store; the store calls
:meth:`Journal.record` in it, so the event and the outbox rows are committed with the
change or not at all, and no transaction is added for them (progress included: the
supervisor writes it at most once a second, and its event rides on that write).

* **Events** (``job_events``) are numbered per job from 1 (``seq``): the ``id`` of the
  event stream, by which a client resumes on any replica. A progress event replaces
  the job's previous one, and a part's end the previous part event, so a job keeps a
  bounded number of rows (two per attempt, the latest progress, the latest part, its
  end) whatever it runs for.
* **Webhooks** (``webhook_deliveries``, the outbox): for each event, one row per target
  that chose its kind: the job's own webhook (``Job.webhook``) and the configured
  subscriptions (a subscription with a tenant hears only that tenant's jobs; the parts
  of a split job are heard through their job's ``part`` events). The row holds the
  exact body to send; :mod:`docworker.jobs.webhooks` delivers it.
* **Batch events** (``batch_events``), numbered per batch the same way: ``batch.queued``
  when the batch is made, and in the transaction of each child's end (the child's
  final event), ``batch.progress`` with the batch's counts, or the batch's own end
  (``batch.succeeded``, ``batch.partial``, ``batch.failed``, ``batch.cancelled``) when
  that child was the last; ``batch.retried`` when a retry queues children again. The
  batch's row is locked first, so the children of one batch that end at once are
  counted one after the other and the last one is seen as such on every database. A
  progress event replaces the batch's previous one: a batch keeps a few rows per
  retry, whatever its size. Their webhooks go to the batch's own webhook
  (``Batch.webhook``) and the subscriptions that chose batch events; a batch's child
  does not send its events to the batch's webhook.

Once the transaction has committed, :attr:`Journal.on_event` is told the job's id (a
batch's: :func:`batch_key`) of every event recorded: the event bus, in this process
and between processes, hears every change the same way whoever made it (an API
replica, an executor, a worker's sweep).

Only :mod:`docworker.jobs.store` (and :mod:`docworker.jobs.ledger`, in its transactions)
calls this module.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, get_args

from sqlalchemy import String, Table, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from docworker.config import FINAL_BATCH_EVENT_KINDS, BatchEventKind
from docworker.jobs.models import (
    Batch,
    BatchEvent,
    BatchRecord,
    BatchState,
    Job,
    JobEvent,
    JobStatus,
    WebhookDelivery,
)
from docworker.metrics import JobEventCount

#: Every kind of event, in the order a job meets them.
EVENT_KINDS = (
    "queued",
    "started",
    "progress",
    "part",
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "dead",
)
#: The kinds that end a job (and its event stream).
FINAL_EVENTS = frozenset({"succeeded", "partial", "failed", "cancelled", "dead"})
#: Kinds the job metrics count (:class:`~docworker.metrics.JobEventCount`).
_COUNTED = FINAL_EVENTS | {"started", "progress"}
#: Kinds of which a job keeps only the latest.
COALESCED = frozenset({"progress", "part"})
#: Every kind of batch event.
BATCH_EVENT_KINDS: tuple[str, ...] = get_args(BatchEventKind)
#: The kinds that end a batch (a retry may start it again).
FINAL_BATCH_EVENTS = frozenset(FINAL_BATCH_EVENT_KINDS)
#: The batch event of which a batch keeps only the latest.
BATCH_PROGRESS = "batch.progress"
#: The states of a child that has not ended.
_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
#: The session ``info`` entry holding the store's journal.
_JOURNAL = "docworker_journal"
#: Session ``info`` entry: what to run once the transaction commits.
_AFTER_COMMIT = "docworker_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the transaction of ``session`` has committed (metrics, a
    wake-up): :func:`run_after_commit`, called by the store, runs it."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def run_after_commit(session: Session) -> None:
    """Run what the committed transaction of ``session`` left to run after it."""
    for action in session.info.pop(_AFTER_COMMIT, []):
        action()


def batch_key(batch_id: str) -> str:
    """The name under which a batch's events are announced on the event bus."""
    return f"batch:{batch_id}"


_EVENTS: Table = JobEvent.__table__  # type: ignore[assignment]
_BATCH_EVENTS: Table = BatchEvent.__table__  # type: ignore[assignment]
_DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
_JOB_ID = bindparam("job_id", type_=String())

#: Numbers the job's next event (one more than its last) and inserts it.
_NEXT_EVENT = (
    insert(_EVENTS)
    .from_select(
        ["job_id", "seq", "kind", "at", "data"],
        select(
            _JOB_ID,
            func.coalesce(func.max(_EVENTS.c.seq), 0) + 1,
            bindparam("kind", type_=String()),
            bindparam("at", type_=_EVENTS.c.at.type),
            bindparam("data", type_=_EVENTS.c.data.type),
        ).where(_EVENTS.c.job_id == _JOB_ID),
    )
    .returning(_EVENTS.c.seq)
)
#: Deletes the job's events of a coalesced kind older than the one just written.
_EARLIER_OF_KIND = delete(_EVENTS).where(
    _EVENTS.c.job_id == _JOB_ID,
    _EVENTS.c.kind == bindparam("kind"),
    _EVENTS.c.seq < bindparam("seq"),
)
_BATCH_ID = bindparam("batch_id", type_=String())
#: Numbers the batch's next event and inserts it.
_NEXT_BATCH_EVENT = (
    insert(_BATCH_EVENTS)
    .from_select(
        ["batch_id", "seq", "kind", "at", "data"],
        select(
            _BATCH_ID,
            func.coalesce(func.max(_BATCH_EVENTS.c.seq), 0) + 1,
            bindparam("kind", type_=String()),
            bindparam("at", type_=_BATCH_EVENTS.c.at.type),
            bindparam("data", type_=_BATCH_EVENTS.c.data.type),
        ).where(_BATCH_EVENTS.c.batch_id == _BATCH_ID),
    )
    .returning(_BATCH_EVENTS.c.seq)
)
#: Deletes the batch's progress events older than the one just written.
_EARLIER_BATCH_PROGRESS = delete(_BATCH_EVENTS).where(
    _BATCH_EVENTS.c.batch_id == _BATCH_ID,
    _BATCH_EVENTS.c.kind == BATCH_PROGRESS,
    _BATCH_EVENTS.c.seq < bindparam("seq"),
)


_BATCHES: Table = Batch.__table__  # type: ignore[assignment]
_JOBS: Table = Job.__table__  # type: ignore[assignment]
#: Locks the batch's row (a child's end changes it) and says whether it exists.
_TOUCH_BATCH = update(_BATCHES).where(_BATCHES.c.id == _BATCH_ID).values(updated_at=bindparam("at"))
#: When the batch's latest event was written, and whether a child is still to end: one
#: index entry each (counting the children reads all of the batch's).
_PACE = select(
    select(_BATCH_EVENTS.c.at)
    .where(_BATCH_EVENTS.c.batch_id == _BATCH_ID)
    .order_by(_BATCH_EVENTS.c.seq.desc())
    .limit(1)
    .scalar_subquery(),
    exists().where(_JOBS.c.batch_id == _BATCH_ID, _JOBS.c.status.in_(_UNFINISHED)),
)


#: The kind of the batch's latest event.
_LATEST_KIND = (
    select(_BATCH_EVENTS.c.kind)
    .where(_BATCH_EVENTS.c.batch_id == _BATCH_ID)
    .order_by(_BATCH_EVENTS.c.seq.desc())
    .limit(1)
)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def kind_of(status: JobStatus) -> str:
    """The event of a job reaching ``status``."""
    if status is JobStatus.RUNNING:
        return "started"
    return status.value


@dataclass(frozen=True)
class Subscription:
    """A configured webhook target (``webhooks.subscriptions``)."""

    name: str
    url: str
    events: frozenset[str]
    #: Only this tenant's jobs (None: every job).
    tenant: str | None = None

    def hears(self, job: Job, kind: str) -> bool:
        if job.parent_id is not None or kind not in self.events:
            return False
        return self.tenant is None or self.tenant == job.tenant

    def hears_batch(self, batch: Batch, kind: str) -> bool:
        if kind not in self.events:
            return False
        return self.tenant is None or self.tenant == batch.tenant


@dataclass
class Journal:
    """Writes events and outbox rows in the store's transactions."""

    subscriptions: tuple[Subscription, ...] = ()
    #: Called once a transaction that queued deliveries has committed (wakes a delivery
    #: loop in this process; others find the rows when they next look).
    on_outbox: Callable[[], None] | None = field(default=None, repr=False)
    #: Called with a job's id (a batch's :func:`batch_key`) once a transaction that
    #: recorded one of its events has committed: the event bus's ``announce``.
    on_event: Callable[[str], None] | None = field(default=None, repr=False)
    #: Seconds after a batch's latest event within which a child's end writes no
    #: ``batch.progress`` (the next one, or the batch's end, counts it); 0: every end.
    batch_progress_interval: float = 0.0

    def attach(self, session: Session) -> None:
        """Make this journal the one :func:`journal_of` finds for ``session``."""
        session.info[_JOURNAL] = self

    def record(
        self,
        session: Session,
        job: Job,
        kind: str,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Write the event ``kind`` of ``job`` (and its webhooks); returns its number.

        One statement numbers and inserts the event (two for a coalesced kind, which
        deletes the job's earlier one), run on the transaction's connection as they are
        built once: this runs in every state change of every job."""
        connection = session.connection()
        data = _event_data(job, kind, extra)
        bound = {"job_id": job.id, "kind": kind, "at": now, "data": data}
        seq: int = connection.execute(_NEXT_EVENT, bound).scalar_one()
        if kind in COALESCED:
            connection.execute(_EARLIER_OF_KIND, bound | {"seq": seq})
        if self.on_event is not None:
            after_commit(session, partial(self.on_event, job.id))
        self.count(session, job, kind, now, extra)
        targets = self._targets(job, kind)
        if targets:
            self._queue(session, targets, f"job.{kind}", seq, data, now, job_id=job.id)
        if job.batch_id is not None and kind in FINAL_EVENTS:
            self.child_ended(session, job.batch_id, job, now)
        elif job.batch_id is not None and kind == "queued":
            self.child_queued(session, job.batch_id, job, now)
        return seq

    def count(
        self,
        session: Session,
        job: Job,
        kind: str,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Count the change ``kind`` of ``job`` in the job metrics once the transaction
        has committed (:meth:`record` does; a change that records no event of its own,
        a batch's queued children cancelled in bulk, calls it alone)."""
        if kind in _COUNTED:
            counted = JobEventCount(
                job.operation, kind, job.parent_id is not None, job.attempts, job.created_at, now
            )
            after_commit(session, partial(counted.record, extra))

    def record_batch(
        self,
        session: Session,
        batch: Batch,
        kind: str,
        now: datetime,
        data: dict[str, Any],
    ) -> int:
        """Write the batch event ``kind`` of ``batch`` with ``data`` (and its webhooks);
        returns its number. The caller holds the batch's row locked."""
        connection = session.connection()
        bound = {"batch_id": batch.id, "kind": kind, "at": now, "data": data}
        seq: int = connection.execute(_NEXT_BATCH_EVENT, bound).scalar_one()
        if kind == BATCH_PROGRESS:
            connection.execute(_EARLIER_BATCH_PROGRESS, {"batch_id": batch.id, "seq": seq})
        if self.on_event is not None:
            after_commit(session, partial(self.on_event, batch_key(batch.id)))
        targets: list[tuple[str | None, str]] = []
        own = batch.webhook
        if own and kind in (own.get("events") or ()):
            targets.append((None, str(own["url"])))
        targets += [(s.name, s.url) for s in self.subscriptions if s.hears_batch(batch, kind)]
        if targets:
            self._queue(session, targets, kind, seq, data, now, batch_id=batch.id)
        return seq

    def child_ended(
        self, session: Session, batch_id: str, child: Job | None, now: datetime
    ) -> None:
        """Record what a child's end (``child``; None: several, a cancellation's) does to
        its batch: ``batch.progress``, or the batch's end when no child is left. Locks
        the batch's row first (by touching its ``updated_at``), then looks at its
        children (their changes in this transaction flushed first)."""
        session.flush()
        connection = session.connection()
        if not connection.execute(_TOUCH_BATCH, {"batch_id": batch_id, "at": now}).rowcount:
            return  # the batch is gone
        if self.batch_progress_interval > 0:
            latest, unfinished = connection.execute(_PACE, {"batch_id": batch_id}).one()
            young = latest is not None and (now - _aware(latest)).total_seconds() < (
                self.batch_progress_interval
            )
            if unfinished and young:
                return  # counted by the batch's next event
        batch = session.get(Batch, batch_id)
        if batch is None:
            return
        record = batch_state(session, batch)
        data = batch_event_data(record)
        if record.state is BatchState.RUNNING:
            if child is not None:
                data |= {
                    "job_id": child.id,
                    "batch_index": child.batch_index,
                    "job_status": str(child.status),
                }
            self.record_batch(session, batch, BATCH_PROGRESS, now, data)
        else:
            self.record_batch(session, batch, f"batch.{record.state.value}", now, data)

    def child_queued(self, session: Session, batch_id: str, child: Job, now: datetime) -> None:
        """A child queued again: when its batch had ended (a child retried on its own, or
        replayed from the dead letters), the batch is running again (``batch.retried``).
        An automatic retry of a running child changes nothing of its batch's."""
        session.flush()
        connection = session.connection()
        if not connection.execute(_TOUCH_BATCH, {"batch_id": batch_id, "at": now}).rowcount:
            return
        if connection.execute(_LATEST_KIND, {"batch_id": batch_id}).scalar() not in (
            FINAL_BATCH_EVENTS
        ):
            return
        batch = session.get(Batch, batch_id)
        if batch is not None:
            data = batch_event_data(batch_state(session, batch))
            data |= {"retried": 1, "job_id": child.id, "batch_index": child.batch_index}
            self.record_batch(session, batch, "batch.retried", now, data)

    def _queue(
        self,
        session: Session,
        targets: list[tuple[str | None, str]],
        kind: str,
        seq: int,
        data: dict[str, Any],
        now: datetime,
        **owner: str,
    ) -> None:
        """The outbox rows of one event (``kind``, numbered ``seq``), one per target;
        ``owner``: its ``job_id`` or its ``batch_id``."""
        payload = json.dumps(
            {
                "type": kind,
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "data": {"event_id": seq, **data},
            },
            separators=(",", ":"),
        )
        rows: list[dict[str, Any]] = [
            owner
            | {
                "id": f"msg_{uuid.uuid4().hex}",
                "event_seq": seq,
                "event": kind.removeprefix("job."),
                "subscription": name,
                "url": url,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_at": now,
                "created_at": now,
                "log": [],
            }
            for name, url in targets
        ]
        session.connection().execute(insert(_DELIVERIES), rows)
        if self.on_outbox is not None:
            after_commit(session, self.on_outbox)

    def _targets(self, job: Job, kind: str) -> list[tuple[str | None, str]]:
        """(subscription name or None for the job's own webhook, URL) of each target."""
        targets: list[tuple[str | None, str]] = []
        own = job.webhook
        if own and kind in (own.get("events") or ()):
            targets.append((None, str(own["url"])))
        targets += [(s.name, s.url) for s in self.subscriptions if s.hears(job, kind)]
        return targets


def journal_of(session: Session) -> Journal:
    """The journal of the store whose transaction ``session`` is (none: events only)."""
    journal = session.info.get(_JOURNAL)
    return journal if isinstance(journal, Journal) else _PLAIN


_PLAIN = Journal()


def _event_data(job: Job, kind: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    """What an event says: the job's id, state and progress, its error once it has one."""
    data: dict[str, Any] = {
        "job_id": job.id,
        "status": str(job.status),
        "attempts": job.attempts,
        "progress": job.progress,
    }
    if job.progress_message:
        data["progress_message"] = job.progress_message
    if job.parent_id is not None:
        data["parent_id"] = job.parent_id
        data["part"] = job.part
    if job.error and kind == "partial":
        data["error"] = {"code": "partial", "items": len(job.error.get("items") or [])}
    elif job.error and kind in FINAL_EVENTS | {"queued"}:
        data["error"] = job.error
    if extra:
        data |= extra
    return data


def batch_state(session: Session, batch: Batch) -> BatchRecord:
    """``batch`` with its children counted by state, and when the last of them ended once
    none is left to run (one range of ``ix_jobs_batch_status``; the session's pending
    changes flushed first)."""
    counts = dict.fromkeys(JobStatus, 0)
    last: datetime | None = None
    query = (
        select(Job.status, func.count(), func.max(Job.finished_at))
        .where(Job.batch_id == batch.id)
        .group_by(Job.status)
    )
    for status, count, ended in session.execute(query):
        counts[JobStatus(status)] = count
        if ended is not None:
            at = _aware(ended)
            last = at if last is None else max(last, at)
    unfinished = counts[JobStatus.QUEUED] + counts[JobStatus.RUNNING]
    return BatchRecord.from_row(batch, counts, None if unfinished else last)


def batch_event_data(record: BatchRecord) -> dict[str, Any]:
    """What a batch event says: the batch's id, state, size, counts and progress."""
    return {
        "batch_id": record.id,
        "status": record.state.value,
        "total": record.total,
        "counts": {status.value: n for status, n in record.counts.items()},
        "progress": record.progress,
    }
