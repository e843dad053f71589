"""The job table's mapping and the plain values the job store hands out.

:class:`Job` is the SQLAlchemy mapping of the ``jobs`` table and never leaves
:mod:`docworker.jobs.store`; callers get a frozen :class:`JobRecord` copied from
it. The schema itself is owned by the Alembic migrations next to this module:
the mapping here must describe the same table (``Base.metadata`` is the target
that autogenerate compares new migrations against).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from tempfile import SpooledTemporaryFile
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobStatus(StrEnum):
    """Where a job is in its life; the last five are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: Done, but some pages or children failed: the error items are in ``error``.
    PARTIAL = "partial"
    #: The input is at fault; never retried.
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Retries exhausted (the dead-letter list).
    DEAD = "dead"


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.PARTIAL,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.DEAD,
    }
)


def input_bytes(stored: dict[str, Any] | None) -> int:
    """Bytes of a job's input files (``Job.input``), all of them."""
    if not stored:
        return 0
    sizes = [stored.get("size"), *(o.get("size") for o in stored.get("others") or [])]
    return sum(int(size) for size in sizes if size)


@dataclass(frozen=True)
class JobCost:
    """What one attempt of a job used: CPU-seconds, and the pages its result names."""

    cpu_seconds: float = 0.0
    pages: int | None = None


@dataclass(frozen=True)
class NewJob:
    """What a caller asks the store to queue."""

    operation: str
    params: dict[str, Any]
    #: ``{"uri", "sha256", "size", "name", "mime"}`` of the stored input, if any.
    input: dict[str, Any] | None
    #: Higher runs first.
    priority: int = 0
    #: Submitting the same key again returns the first job instead of a new one.
    idempotency_key: str | None = None
    max_attempts: int = 3
    #: Who asked: the tenant and API key, and the client's address (None when open).
    tenant: str | None = None
    key_id: str | None = None
    client: str | None = None
    #: The job's own webhook, its secret sealed (see ``Job.webhook``).
    webhook: dict[str, Any] | None = None
    #: The submitting request's trace context and id (see ``Job.trace``).
    trace: dict[str, str] | None = None


@dataclass(frozen=True)
class ServedResult:
    """A job's result found in the result cache, written under the job's id before the
    job is created (see :meth:`docworker.jobs.store.JobStore.create`)."""

    job_id: str
    #: The result's reference (see :mod:`docworker.jobs.results`).
    result: dict[str, Any]
    pages: int | None = None


@dataclass(frozen=True)
class JobRecord:
    """One job row as plain values; datetimes are timezone-aware UTC."""

    id: str
    operation: str
    params: dict[str, Any]
    status: JobStatus
    priority: int
    input: dict[str, Any] | None
    idempotency_key: str | None
    attempts: int
    max_attempts: int
    #: ``DocworkerError.to_dict()`` of the latest failure, or, for a partial success,
    #: ``{"code": "partial", "items": [...]}``.
    error: dict[str, Any] | None
    result: dict[str, Any] | None
    progress: float
    progress_message: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: A retried job is not claimed before this time.
    run_after: datetime | None
    #: The executor process that holds the job while it runs.
    worker: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    #: The job this one is a part of, and its place among the parts (from 0).
    parent_id: str | None = None
    part: int | None = None
    #: Parts this job was split into, and how many of them have not finished yet. A
    #: running job with parts pending runs nowhere: it waits for them, then is queued
    #: again to merge their results.
    children_total: int = 0
    children_pending: int = 0
    #: Who submitted the job (None when the service runs without API keys).
    tenant: str | None = None
    key_id: str | None = None
    client: str | None = None
    #: CPU-seconds its attempts used, its parts' included.
    cpu_seconds: float = 0.0
    #: Pages it processed, from its result (for a split job whose merge failed: its
    #: parts' pages); None when the result names no pages.
    pages: int | None = None
    #: The attempts that ended, oldest first: each one's ``attempt`` (its number),
    #: ``started_at``, ``ended_at`` (ISO 8601), ``worker``, ``outcome`` (what it led to:
    #: ``succeeded``, ``partial``, ``split``, ``retried``, ``failed``, ``dead``,
    #: ``cancelled``) and ``error`` (``code`` and ``detail``, or None).
    history: list[dict[str, Any]] = field(default_factory=list)
    #: Answered from the result cache: it succeeded when it was submitted, on no worker.
    cached: bool = False
    #: The job's own webhook (``Job.webhook``), its secret sealed.
    webhook: dict[str, Any] | None = None
    #: The batch this job is a child of, and its place among the batch's files (from 0).
    batch_id: str | None = None
    batch_index: int | None = None
    #: The submitting request's trace context and id (see ``Job.trace``).
    trace: dict[str, str] | None = None

    @property
    def input_bytes(self) -> int:
        return input_bytes(self.input)

    @property
    def waiting_for_parts(self) -> bool:
        return self.status == JobStatus.RUNNING and self.children_pending > 0

    @classmethod
    def from_row(cls, job: Job) -> JobRecord:
        return cls(
            id=job.id,
            operation=job.operation,
            params=job.params,
            status=job.status,
            priority=job.priority,
            input=job.input,
            idempotency_key=job.idempotency_key,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            error=job.error,
            result=job.result,
            progress=job.progress,
            progress_message=job.progress_message,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            run_after=job.run_after,
            worker=job.worker,
            heartbeat_at=job.heartbeat_at,
            cancel_requested=job.cancel_requested,
            parent_id=job.parent_id,
            part=job.part,
            children_total=job.children_total,
            children_pending=job.children_pending,
            tenant=job.tenant,
            key_id=job.key_id,
            client=job.client,
            cpu_seconds=job.cpu_seconds,
            pages=job.pages,
            history=list(job.history or []),
            cached=job.cached,
            webhook=job.webhook,
            batch_id=job.batch_id,
            batch_index=job.batch_index,
            trace=job.trace,
        )


@dataclass(frozen=True)
class JobEventRecord:
    """One event of a job as plain values (a ``job_events`` row)."""

    job_id: str
    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: JobEvent) -> JobEventRecord:
        return cls(row.job_id, row.seq, row.kind, row.at, row.data or {})

    @classmethod
    def of_batch(cls, row: BatchEvent) -> JobEventRecord:
        """An event of a batch (``job_id``: the batch's id)."""
        return cls(row.batch_id, row.seq, row.kind, row.at, row.data or {})


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    PostgreSQL keeps the zone (``timestamptz``); SQLite stores text without it and
    returns naive values, which are UTC because only UTC is ever written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the job store needs aware ones")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> JSON:
    # None is SQL NULL (not the JSON literal null), so "error IS NULL" means no error.
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


# Named constraints, so later migrations (SQLite batch mode included) can refer to them.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class Job(Base):
    """A row of ``jobs``: one operation on one input, from queued to a final state."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Listing pages newest first, with the id as the tie-breaker of the cursor.
        Index("ix_jobs_created_at", "created_at", "id"),
        Index("ix_jobs_operation", "operation"),
        Index("ix_jobs_parent_id", "parent_id", "part"),
        Index("ix_jobs_tenant", "tenant", "created_at", "id"),
        Index("ix_jobs_tenant_status", "tenant", "status"),
        # The jobs that ended lately (how fast each family's queue drains), and those
        # past their retention.
        Index("ix_jobs_finished_at", "finished_at"),
        # A batch's children in order, and counted by state.
        Index("ix_jobs_batch", "batch_id", "batch_index"),
        Index("ix_jobs_batch_status", "batch_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(_json())
    status: Mapped[JobStatus] = mapped_column(
        Enum(
            JobStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [s.value for s in statuses],
            validate_strings=True,
            create_constraint=True,
            name="status",
        )
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)
    input: Mapped[dict[str, Any] | None] = mapped_column(_json())
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(_json())
    result: Mapped[dict[str, Any] | None] = mapped_column(_json())
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[str | None] = mapped_column(String(36))
    part: Mapped[int | None] = mapped_column(Integer)
    children_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    children_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tenant: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    client: Mapped[str | None] = mapped_column(String(64))
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    pages: Mapped[int | None] = mapped_column(Integer)
    #: The attempts that ended (see :attr:`JobRecord.history`).
    history: Mapped[list[dict[str, Any]] | None] = mapped_column(_json())
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    #: The job's own webhook: ``{"url", "events", "secret"}`` (the secret sealed, or None
    #: for the configured ``webhooks.secret``); None without one.
    webhook: Mapped[dict[str, Any] | None] = mapped_column(_json())
    #: The batch this job is a child of, and its place among the batch's files.
    batch_id: Mapped[str | None] = mapped_column(String(36))
    batch_index: Mapped[int | None] = mapped_column(Integer)
    #: What the job carries of the request that submitted it, for every process that
    #: runs it, its parts and its retries (:mod:`docworker.tracing`): the W3C trace
    #: context of the request's span (``traceparent``, ``tracestate``) when tracing is
    #: on, and the request's id (``request_id``).
    trace: Mapped[dict[str, str] | None] = mapped_column(_json())


class JobEvent(Base):
    """A row of ``job_events``: one thing that happened to a job, numbered per job."""

    __tablename__ = "job_events"
    __table_args__ = (PrimaryKeyConstraint("job_id", "seq"),)

    job_id: Mapped[str] = mapped_column(String(36))
    #: From 1, increasing with each event of the job (the stream's event id).
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any] | None] = mapped_column(_json())


class BatchEvent(Base):
    """A row of ``batch_events``: one thing that happened to a batch, numbered per batch."""

    __tablename__ = "batch_events"
    __table_args__ = (PrimaryKeyConstraint("batch_id", "seq"),)

    batch_id: Mapped[str] = mapped_column(String(36))
    #: From 1, increasing with each event of the batch (the stream's event id).
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any] | None] = mapped_column(_json())


class WebhookDelivery(Base):
    """A row of ``webhook_deliveries``: one webhook to send (the outbox) and its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The deliveries due, for the delivery loops; a job's deliveries, for its log.
        Index("ix_webhook_deliveries_due", "status", "next_at"),
        Index("ix_webhook_deliveries_job_id", "job_id", "created_at"),
        Index("ix_webhook_deliveries_batch_id", "batch_id", "created_at"),
    )

    #: The ``webhook-id`` header: the same on every attempt of one delivery.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The job whose event it sends; None for a batch's event.
    job_id: Mapped[str | None] = mapped_column(String(36))
    #: The batch whose event it sends; None for a job's event.
    batch_id: Mapped[str | None] = mapped_column(String(36))
    event_seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))
    #: The configured subscription's name; None for the job's own webhook.
    subscription: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    #: The body sent, byte for byte on every attempt.
    payload: Mapped[str] = mapped_column(Text)
    #: pending, delivered or failed.
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the next attempt is due (a claimed delivery: when its lease runs out).
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: One entry per attempt: ``{"at", "status", "error", "ms"}``.
    log: Mapped[list[dict[str, Any]] | None] = mapped_column(_json())


class BatchState(StrEnum):
    """Where a batch is, derived from its children's states."""

    #: Some children are queued or running.
    RUNNING = "running"
    #: Every child succeeded.
    SUCCEEDED = "succeeded"
    #: Every child ended, some of them not well (failed, dead, cancelled alone or
    #: partial), some well.
    PARTIAL = "partial"
    #: Every child ended and none succeeded.
    FAILED = "failed"
    #: The batch was cancelled and its children have stopped.
    CANCELLED = "cancelled"


class SpooledInputs:
    """The stored inputs of a batch as they are stored, one JSON line each, in a temporary
    file (in memory up to ``max_memory`` bytes): read back, in order, as often as needed,
    a line at a time. The API keeps a large batch's references here rather than in
    objects, so that its memory does not grow with the count."""

    def __init__(self, max_memory: int = 256 * 1024) -> None:
        # Closed by close(): it lives as long as the batch's intake.
        self._file: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
            max_size=max_memory
        )
        self._count = 0
        #: Bytes of all the inputs.
        self.total_bytes = 0

    def append(self, stored: dict[str, Any]) -> None:
        self._file.seek(0, 2)
        self._file.write(json.dumps(stored, separators=(",", ":")).encode() + b"\n")
        self._count += 1
        self.total_bytes += int(stored.get("size") or 0)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._file.seek(0)
        for line in self._file:
            stored: dict[str, Any] = json.loads(line)
            yield stored

    def __contains__(self, item: object) -> bool:
        return any(item == stored for stored in self)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class NewBatch:
    """What a caller asks the store to queue as a batch: one operation on many inputs."""

    operation: str
    #: The params every child runs with (sealed, as a job's).
    params: dict[str, Any]
    priority: int = 0
    idempotency_key: str | None = None
    max_attempts: int = 3
    tenant: str | None = None
    key_id: str | None = None
    client: str | None = None
    #: The batch's own webhook, its secret sealed (see ``Batch.webhook``).
    webhook: dict[str, Any] | None = None
    #: The submitting request's trace context and id, for every child (``Job.trace``).
    trace: dict[str, str] | None = None


@dataclass(frozen=True)
class BatchRecord:
    """One batch row, with its children counted by state."""

    id: str
    operation: str
    params: dict[str, Any]
    priority: int
    idempotency_key: str | None
    #: Children it was made with.
    total: int
    #: sha256 of its inputs' sha256s in order (what an idempotent retry must match).
    inputs_digest: str
    tenant: str | None
    key_id: str | None
    client: str | None
    created_at: datetime
    updated_at: datetime
    cancel_requested: bool
    #: Children in each state (every state present); children deleted since are in none.
    counts: dict[JobStatus, int]
    #: When the last child ended, once none is queued or running.
    finished_at: datetime | None
    #: The batch's own webhook (``Batch.webhook``), its secret sealed.
    webhook: dict[str, Any] | None = None

    @property
    def unfinished(self) -> int:
        return self.counts[JobStatus.QUEUED] + self.counts[JobStatus.RUNNING]

    @property
    def ended(self) -> int:
        return sum(self.counts[status] for status in TERMINAL_STATUSES)

    @property
    def progress(self) -> float:
        """Share of the children that have ended."""
        present = self.ended + self.unfinished
        return round(self.ended / present, 4) if present else 1.0

    @property
    def state(self) -> BatchState:
        counts = self.counts
        if self.unfinished:
            return BatchState.RUNNING
        if self.cancel_requested and counts[JobStatus.CANCELLED]:
            return BatchState.CANCELLED
        good = counts[JobStatus.SUCCEEDED]
        if good == self.ended:
            return BatchState.SUCCEEDED
        if good + counts[JobStatus.PARTIAL] == 0:
            return BatchState.FAILED
        return BatchState.PARTIAL

    @classmethod
    def from_row(
        cls, batch: Batch, counts: dict[JobStatus, int], finished_at: datetime | None
    ) -> BatchRecord:
        return cls(
            id=batch.id,
            operation=batch.operation,
            params=batch.params,
            priority=batch.priority,
            idempotency_key=batch.idempotency_key,
            total=batch.total,
            inputs_digest=batch.inputs_digest,
            tenant=batch.tenant,
            key_id=batch.key_id,
            client=batch.client,
            created_at=batch.created_at,
            updated_at=batch.updated_at,
            cancel_requested=batch.cancel_requested,
            counts=counts,
            finished_at=finished_at,
            webhook=batch.webhook,
        )


class Batch(Base):
    """A row of ``batches``: one operation asked for many inputs at once. Its children are
    ordinary jobs naming it (``jobs.batch_id``); its state is theirs, counted."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant", "tenant", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(_json())
    priority: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    total: Mapped[int] = mapped_column(Integer)
    inputs_digest: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    client: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Its own webhook: ``{"url", "events", "secret"}`` (the secret sealed), or None.
    webhook: Mapped[dict[str, Any] | None] = mapped_column(_json())


class ApiKey(Base):
    """A row of ``api_keys``: a key's tenant, scopes and hash; never the key itself."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant", "tenant"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(_json())
    hash: Mapped[str] = mapped_column(String(128))
    #: Per-key rate limit and quotas, over the configured defaults.
    limits: Mapped[dict[str, Any] | None] = mapped_column(_json())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The key that took this one's place when it was rotated.
    replaced_by: Mapped[str | None] = mapped_column(String(32))


class AuditEvent(Base):
    """A row of ``audit_events``: who did what, with what outcome and cost."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at", "id"),
        Index("ix_audit_events_tenant", "tenant", "at"),
        Index("ix_audit_events_key_id", "key_id", "at"),
        Index("ix_audit_events_kind", "kind", "at"),
        Index("ix_audit_events_job_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))
    operation: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(36))
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    input_bytes: Mapped[int | None] = mapped_column(BigInteger)
    pages: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(32))
    duration: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any] | None] = mapped_column(_json())

    @classmethod
    def for_job(cls, job: Job, at: datetime) -> AuditEvent:
        """The event of a job that reached its final state: who, what, outcome, cost."""
        stored = job.input or {}
        detail: dict[str, Any] = {"attempts": job.attempts}
        if job.children_total:
            detail["parts"] = job.children_total
        if job.error and job.error.get("code"):
            detail["error"] = job.error["code"]
        if job.cached:
            detail["cached"] = True
        return cls(
            at=at,
            kind="job",
            key_id=job.key_id,
            tenant=job.tenant,
            client=job.client,
            operation=job.operation,
            job_id=job.id,
            input_sha256=stored.get("sha256"),
            input_bytes=input_bytes(stored),
            pages=job.pages,
            outcome=str(job.status),
            duration=max(0.0, (at - job.created_at).total_seconds()),
            cpu_seconds=round(job.cpu_seconds or 0.0, 6),
            detail=detail,
        )


class UsageCounter(Base):
    """A row of ``usage_counters``: what one API key spent on one UTC day (its quotas)."""

    __tablename__ = "usage_counters"
    __table_args__ = (PrimaryKeyConstraint("key_id", "day"),)

    key_id: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    tenant: Mapped[str | None] = mapped_column(String(64))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    pages: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class EngineBreaker(Base):
    """A row of ``engine_breakers``: an engine whose circuit breaker a process of the
    service opened, until it half-opens (see :mod:`docworker.jobs.breaker_board`)."""

    __tablename__ = "engine_breakers"

    engine: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When it half-opens: work needing the engine is accepted again from then.
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The process that opened it (``host:pid``).
    opened_by: Mapped[str] = mapped_column(String(200))


# Claiming reads queued jobs by priority (high first), then age: one index walk, no sort.
Index("ix_jobs_claim", Job.status, Job.priority.desc(), Job.created_at)
# Claiming fairly: a tenant's queued jobs in the same order, its running ones, and when
# its last job started.
Index("ix_jobs_claim_tenant", Job.status, Job.tenant, Job.priority.desc(), Job.created_at)
Index("ix_jobs_tenant_started", Job.tenant, Job.started_at)


class CapacityHour(Base):
    """A row of ``capacity_hours``: the sums of the jobs of one operation (of one family)
    that ended in one UTC hour and whose rows the retention sweep deleted (see
    :mod:`docworker.jobs.capacity_history`)."""

    __tablename__ = "capacity_hours"
    __table_args__ = (PrimaryKeyConstraint("operation", "family", "hour"),)

    operation: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    #: ``YYYY-MM-DDTHH`` (UTC): ordered as text, compared as text.
    hour: Mapped[str] = mapped_column(String(13))
    jobs: Mapped[int] = mapped_column(BigInteger, default=0)
    submitted: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Σ S and Σ S² of the service times, seconds.
    busy: Mapped[float] = mapped_column(Float, default=0.0)
    busy_sq: Mapped[float] = mapped_column(Float, default=0.0)
    #: Submitted jobs whose queue wait is known, Σ wait and Σ wait².
    waited: Mapped[int] = mapped_column(BigInteger, default=0)
    wait: Mapped[float] = mapped_column(Float, default=0.0)
    wait_sq: Mapped[float] = mapped_column(Float, default=0.0)
    retried: Mapped[int] = mapped_column(BigInteger, default=0)
    split: Mapped[int] = mapped_column(BigInteger, default=0)


class CapacityBucket(Base):
    """A row of ``capacity_buckets``: of the jobs of a ``capacity_hours`` row, how many had
    a service time (``measure`` ``s``) or a queue wait (``w``) in one log-spaced bucket;
    only the buckets holding jobs have rows."""

    __tablename__ = "capacity_buckets"
    __table_args__ = (PrimaryKeyConstraint("operation", "family", "hour", "measure", "bucket"),)

    operation: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    hour: Mapped[str] = mapped_column(String(13))
    measure: Mapped[str] = mapped_column(String(1))
    bucket: Mapped[int] = mapped_column(Integer)
    jobs: Mapped[int] = mapped_column(BigInteger, default=0)
