"""The webhook outbox: the deliveries due, claimed for an attempt, and their log.

Rows are written by :mod:`docworker.jobs.journal` in the transaction of the event they
announce, so a delivery exists exactly when its event does, whatever process wrote it
and whatever happens to that process next. A delivery loop claims the rows that are
due: each claim moves the row's ``next_at`` past the attempt's longest time (a lease),
so that two loops (two replicas) never send one delivery at once, and a loop that dies
mid-attempt leaves the row to be claimed again when its lease runs out. Delivery is
therefore at least once: receivers tell a repeat by its ``webhook-id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from docworker.jobs.models import Batch, Job, WebhookDelivery
from docworker.jobs.store import JobStore

#: Delivery states.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Delivery:
    """One outbox row as plain values, with what its attempt needs."""

    id: str
    #: The job whose event it sends (None: a batch's).
    job_id: str | None
    event_seq: int
    event: str
    subscription: str | None
    url: str
    payload: str
    status: str
    attempts: int
    next_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[dict[str, Any]]
    #: The job's (or batch's) own webhook as stored (its sealed secret), for a delivery
    #: of it; None when the job is gone or the delivery is a configured subscription's.
    job_webhook: dict[str, Any] | None = None
    #: The batch whose event it sends (None: a job's).
    batch_id: str | None = None

    @classmethod
    def from_row(cls, row: WebhookDelivery, job_webhook: dict[str, Any] | None = None) -> Delivery:
        return cls(
            id=row.id,
            job_id=row.job_id,
            event_seq=row.event_seq,
            event=row.event,
            subscription=row.subscription,
            url=row.url,
            payload=row.payload,
            status=row.status,
            attempts=row.attempts,
            next_at=row.next_at,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            log=list(row.log or []),
            job_webhook=job_webhook,
            batch_id=row.batch_id,
        )


class Outbox:
    """The ``webhook_deliveries`` table of a job store."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def claim_due(self, now: datetime, *, limit: int, lease: float) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest due first, each
        leased for ``lease`` seconds (not claimed again before then)."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_at <= now)
            .order_by(WebhookDelivery.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.store.transaction(writes=True) as session:
            rows = list(session.scalars(query))
            own = [row for row in rows if row.subscription is None]
            jobs = [row.job_id for row in own if row.job_id is not None]
            batches = [row.batch_id for row in own if row.batch_id is not None]
            webhooks: dict[str, dict[str, Any] | None] = {}
            if jobs:
                found = session.execute(select(Job.id, Job.webhook).where(Job.id.in_(jobs)))
                webhooks = {job_id: webhook for job_id, webhook in found}
            if batches:
                hooks = session.execute(
                    select(Batch.id, Batch.webhook).where(Batch.id.in_(batches))
                )
                webhooks |= {batch_id: webhook for batch_id, webhook in hooks}
            for row in rows:
                row.next_at = now + timedelta(seconds=lease)
            return [Delivery.from_row(row, webhooks.get(_owner(row))) for row in rows]

    def record_attempt(
        self, delivery_id: str, entry: dict[str, Any], *, status: str, next_at: datetime | None
    ) -> None:
        """Log an attempt (``entry``) of the delivery and set what comes next: ``status``
        (pending with ``next_at`` for a retry, delivered, or failed)."""
        query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        with self.store.transaction(writes=True) as session:
            row = session.scalars(query.with_for_update()).one_or_none()
            if row is None:  # deleted with its job meanwhile
                return
            row.attempts += 1
            row.log = [*(row.log or []), entry]
            row.status = status
            row.next_at = next_at
            if status == DELIVERED:
                row.delivered_at = datetime.fromisoformat(entry["at"])

    def of_job(self, job_id: str) -> list[Delivery]:
        """The deliveries of the job's events, in the order they were queued."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.job_id == job_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.event_seq, WebhookDelivery.id)
        )
        with self.store.transaction() as session:
            return [Delivery.from_row(row) for row in session.scalars(query)]

    def of_batch(self, batch_id: str) -> list[Delivery]:
        """The deliveries of the batch's events, in the order they were queued."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.batch_id == batch_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.event_seq, WebhookDelivery.id)
        )
        with self.store.transaction() as session:
            return [Delivery.from_row(row) for row in session.scalars(query)]


def _owner(row: WebhookDelivery) -> str:
    """The id of the job or batch whose event ``row`` sends."""
    return row.job_id or row.batch_id or ""
