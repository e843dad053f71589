"""The job store: every SQL statement the service runs, over SQLite or PostgreSQL.

One :class:`JobStore` wraps one SQLAlchemy engine (a connection pool) and opens a
short session per call, so it can be shared by threads; nothing it returns is
tied to a session. Every state change is one transaction that locks the row
first, so two processes never move the same job at once:

* PostgreSQL: ``SELECT ... FOR UPDATE`` (``SKIP LOCKED`` when claiming or
  sweeping, so busy rows are passed over instead of waited for);
* SQLite: every writing transaction starts with ``BEGIN IMMEDIATE``, taking the
  database's single write lock up front (readers go on thanks to WAL). A
  deferred transaction that read first would fail with "database is locked" the
  moment it tried to write after another writer, without waiting.

Claims additionally use a conditional ``UPDATE ... WHERE status = 'queued'`` and
retry when it loses, which keeps them safe whatever the locking does. That
statement uses ``RETURNING``, which needs SQLite 3.35 or newer.

Usage is booked in the same transactions: a job of an API key is counted against
the key's daily quotas when it is created (:mod:`docworker.jobs.usage`), and every
state change books what the attempt used and, for a final state, the job's audit
event (:mod:`docworker.jobs.ledger`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import structlog
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.pool import NullPool

from docworker.errors import (
    ActiveJobsLimit,
    Conflict,
    DependencyDown,
    EngineFailed,
    InvalidParameter,
    NotFound,
    QueueFull,
)
from docworker.files import make_private
from docworker.jobs import capacity_history, usage
from docworker.jobs.journal import (
    Journal,
    batch_event_data,
    batch_state,
    kind_of,
    run_after_commit,
)
from docworker.jobs.ledger import settle
from docworker.jobs.models import (
    TERMINAL_STATUSES,
    Batch,
    BatchEvent,
    BatchRecord,
    BatchState,
    Job,
    JobCost,
    JobEvent,
    JobEventRecord,
    JobRecord,
    JobStatus,
    NewBatch,
    NewJob,
    ServedResult,
    UTCDateTime,
    WebhookDelivery,
    input_bytes,
)
from docworker.jobs.usage import Quotas
from docworker.sealing import comparable
from docworker.tracing import instrument_engine, job_log_ids

__all__ = [
    "MAX_PAGE_SIZE",
    "RETRYABLE_STATUSES",
    "TERMINAL_STATUSES",
    "ClaimPolicy",
    "JobCost",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "NewJob",
    "ServedResult",
]

_log = structlog.get_logger(__name__)

#: The most jobs one :meth:`JobStore.list` page returns.
MAX_PAGE_SIZE = 500
#: The states from which a job may be queued again by hand (:meth:`JobStore.retry`).
RETRYABLE_STATUSES = frozenset({JobStatus.DEAD, JobStatus.FAILED})

Records: TypeAlias = "list[JobRecord]"
Events: TypeAlias = "list[JobEventRecord]"

_MIGRATIONS = Path(__file__).with_name("migrations")
#: Key of the PostgreSQL advisory lock that serialises migrations ("docwork" in ASCII).
_MIGRATION_LOCK = 0x646F63776F726B
#: How long an SQLite connection waits for another process's write lock.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking the engine whose transactions write.
_WRITES = "docworker_writes"
#: First key of the PostgreSQL advisory locks that serialise a tenant's admissions ("docw").
_ADMISSION_LOCK = 0x646F6377
#: How often a claim that lost its job to another claimer looks for the next one.
_CLAIM_TRIES = 5
#: Seconds a claim waits before looking again when the job it would give is held by
#: another claimer's transaction (PostgreSQL), doubled at each try.
_CLAIM_RETRY_PAUSE = 0.005
#: Seconds a request refused because the job database does not answer is told to wait.
DATABASE_RETRY_AFTER = 5


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None, name: str) -> datetime:
    if value is None:
        return _now()
    if value.tzinfo is None:
        raise InvalidParameter(name, "must carry a timezone")
    return value.astimezone(UTC)


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (a no-op once done: the mode is kept in the file).

    SQLite answers "database is locked" at once, without waiting busy_timeout,
    when another connection holds the database while the mode is being read or
    switched, as happens when two processes open a new database together.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions by itself: _begin_sqlite does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        # In WAL mode NORMAL loses no committed data on a crash of the process.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    writes = connection.get_execution_options().get(_WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _create_engine(url: str, echo: bool, pooled: bool = True) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # psycopg 3 is the driver installed; older SQLAlchemy would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    if parsed.get_backend_name() != "sqlite":
        # A pooled connection may outlive a database restart: test it before use.
        engine = create_engine(parsed, echo=echo, pool_pre_ping=pooled, **options)
    else:
        engine = create_engine(parsed, echo=echo, **options)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    instrument_engine(engine)
    return engine


def _ready(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Queued jobs that may run at ``now``."""
    return and_(Job.status == JobStatus.QUEUED, or_(Job.run_after.is_(None), Job.run_after <= now))


@dataclass(frozen=True)
class ClaimPolicy:
    """How the next job is chosen among the ready ones of several tenants."""

    #: The tenant running the fewest jobs goes first, then the one served least
    #: recently; then priority and age.
    fair: bool = True
    #: A tenant running this many jobs gets no other (None: no cap).
    max_running: int | None = None

    @property
    def by_tenant(self) -> bool:
        return self.fair or self.max_running is not None


FAIR_CLAIMS = ClaimPolicy()


def _claim_at() -> BindParameter[datetime]:
    """The moment of a claim, bound when the statement runs (``{"at": ...}``)."""
    return bindparam("at", type_=UTCDateTime())


@functools.lru_cache(maxsize=64)
def _claim_candidate(operations: frozenset[str] | None, policy: ClaimPolicy) -> Select[str]:
    """The id of the job to claim next; PostgreSQL skips rows other claimers hold.

    Built once per (operations, policy) and run with the moment bound (``at``): building
    the statement costs far more than running it (its aliases are adapted column by
    column), and a supervisor claims for every free worker."""
    if policy.by_tenant:
        return _claim_candidate_by_tenant(operations, policy)
    query = select(Job.id).where(_ready(_claim_at()))
    if operations is not None:
        query = query.where(Job.operation.in_(sorted(operations)))
    return (
        query.order_by(Job.priority.desc(), Job.created_at, Job.part, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


@functools.lru_cache(maxsize=64)
def _claim_candidate_by_tenant(
    operations: frozenset[str] | None, policy: ClaimPolicy, *, locked: bool = True
) -> Select[str]:
    """The claim across tenants, in one statement of index seeks:

    1. the tenants with queued jobs, by a recursive skip scan of ``ix_jobs_claim_tenant``
       (``min(tenant) > previous``), plus the jobs of no tenant (a service without keys);
    2. for each, :func:`_tenant_candidate`: its next ready job, how many of its jobs run,
       and when one of them last started;
    3. of those candidates (when fair): the tenant that runs the fewest, then the one
       served least recently (so that one worker alternates between tenants too); then
       the highest priority, then the oldest job.

    The cost grows with the number of tenants waiting, never with the queue's length.
    """
    step = aliased(Job, name="step")
    first = select(func.min(Job.tenant).label("name")).where(Job.status == JobStatus.QUEUED)
    tenants = first.cte("waiting_tenants", recursive=True)
    following = (
        select(func.min(step.tenant))
        .where(step.status == JobStatus.QUEUED, step.tenant > tenants.c.name)
        .scalar_subquery()
    )
    tenants = tenants.union_all(select(following).where(tenants.c.name.is_not(None)))
    named = _tenant_candidate(lambda column: column == tenants.c.name, operations)
    nameless = _tenant_candidate(lambda column: column.is_(None), operations)
    candidates = union_all(named.where(tenants.c.name.is_not(None)), nameless).cte("candidates")
    query = select(Job.id).join(candidates, candidates.c.id == Job.id)
    if policy.max_running is not None:
        query = query.where(candidates.c.running < policy.max_running)
    order: list[Any] = []
    if policy.fair:
        order += [candidates.c.running, candidates.c.served.nulls_first()]
    order += [Job.priority.desc(), Job.created_at, Job.part, Job.id]
    query = query.order_by(*order).limit(1)
    return query.with_for_update(skip_locked=True, of=Job) if locked else query


def _tenant_candidate(
    of_tenant: Callable[[Any], ColumnElement[bool]], operations: frozenset[str] | None
) -> Select[Any]:
    """One tenant's candidate: its next ready job in claim order (``id``), its count of
    running jobs (``running``: a job waiting for its parts runs nowhere and is not
    counted, its parts are) and when one of its jobs last started (``served``)."""
    ready, busy, served = (aliased(Job, name=name) for name in ("ready", "busy", "served"))
    next_job = select(ready.id).where(
        ready.status == JobStatus.QUEUED,
        of_tenant(ready.tenant),
        or_(ready.run_after.is_(None), ready.run_after <= _claim_at()),
    )
    if operations is not None:
        next_job = next_job.where(ready.operation.in_(sorted(operations)))
    next_job = next_job.order_by(ready.priority.desc(), ready.created_at, ready.part, ready.id)
    running = (
        select(func.count())
        .select_from(busy)
        .where(busy.status == JobStatus.RUNNING, of_tenant(busy.tenant), busy.children_pending == 0)
    )
    last_started = select(func.max(served.started_at)).where(of_tenant(served.tenant))
    return select(
        next_job.limit(1).scalar_subquery().label("id"),
        running.scalar_subquery().label("running"),
        last_started.scalar_subquery().label("served"),
    )


#: The submitted jobs waiting, by operation (see :meth:`JobStore.queued_by_operation`):
#: built once, as every submission runs it.
_QUEUED_COUNTS = (
    select(Job.operation, func.count())
    .where(Job.status == JobStatus.QUEUED, Job.parent_id.is_(None), Job.batch_id.is_(None))
    .group_by(Job.operation)
)

#: Starts the claimed job (``job_id``) for ``worker`` at ``at``, unless another claimer
#: took it first; built once, as the candidate is.
_CLAIM_START = (
    update(Job)
    .where(Job.id == bindparam("job_id"), Job.status == JobStatus.QUEUED)
    .values(
        status=JobStatus.RUNNING,
        attempts=Job.attempts + 1,
        started_at=_claim_at(),
        worker=bindparam("worker"),
        heartbeat_at=_claim_at(),
        # A job merging its parts keeps the progress they made.
        progress=case((Job.children_total > 0, Job.progress), else_=0.0),
        progress_message=case((Job.children_total > 0, Job.progress_message), else_=None),
        cancel_requested=False,
        updated_at=_claim_at(),
    )
    .returning(Job)
)


#: Starts one named job (``job_id``) for ``worker`` at ``at`` if it is queued and due: the
#: claim of an executor whose messages name the job (the celery executor). A message
#: delivered twice finds the job no longer queued and starts nothing.
_CLAIM_BY_ID = _CLAIM_START.where(or_(Job.run_after.is_(None), Job.run_after <= _claim_at()))

#: Records a running job's progress, and returns what its progress event says of it.
_SET_PROGRESS = (
    update(Job)
    .where(Job.id == bindparam("job_id"), Job.status == JobStatus.RUNNING)
    .values(
        progress=bindparam("progress"),
        progress_message=bindparam("message"),
        updated_at=bindparam("at", type_=UTCDateTime()),
    )
    .returning(
        Job.attempts,
        Job.progress,
        Job.progress_message,
        Job.parent_id,
        Job.part,
        Job.tenant,
        Job.webhook,
    )
)


def _as_stored(value: dict[str, Any]) -> Any:
    """``value`` as it reads back from a JSON column (tuples become lists, ...)."""
    return json.loads(json.dumps(value))


def _same_request(existing: JobRecord, new: NewJob) -> JobRecord:
    def sha(given: dict[str, Any] | None) -> Any:
        if given is None:
            return None
        return [given.get("sha256"), *(o.get("sha256") for o in given.get("others") or [])]

    # Sealed secrets compare by their MACs: each sealing of a value is a new token.
    if (
        existing.operation != new.operation
        or comparable(existing.params) != comparable(_as_stored(new.params))
        or sha(existing.input) != sha(new.input)
    ):
        raise Conflict(
            f"idempotency key '{_client_key(new.idempotency_key)}' was already used for "
            "another request",
            job_id=existing.id,
        )
    return existing


def _client_key(key: str | None) -> str:
    """An idempotency key as its client sent it (without the tenant it is stored under)."""
    return (key or "").rsplit("\x1f", 1)[-1]


def _encode_cursor(record: JobRecord | BatchRecord) -> str:
    raw = f"{record.created_at.isoformat()}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        at = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter("cursor", "is not a cursor from a previous page") from exc
    if at.tzinfo is None:
        raise InvalidParameter("cursor", "is not a cursor from a previous page")
    return at, job_id


def _retry_or_bury(
    job: Job, now: datetime, run_after: datetime | None, *, retry: bool = True
) -> None:
    """End a running job's attempt: back to the queue if ``retry`` and it has attempts
    left, else DEAD.

    A job whose cancellation was asked for is cancelled instead.
    """
    if job.cancel_requested:
        job.status = JobStatus.CANCELLED
        job.finished_at = now
    elif retry and job.attempts < job.max_attempts:
        job.status = JobStatus.QUEUED
        job.run_after = run_after
        job.worker = None
        job.heartbeat_at = None
    else:
        job.status = JobStatus.DEAD
        job.finished_at = now


#: The most ended attempts a job's history keeps (the newest): a job retried by hand
#: again and again must not grow its row without bound.
MAX_HISTORY = 100
#: The characters of an error's detail kept in an attempt's history.
_HISTORY_DETAIL = 500


def _record_attempt(job: Job, now: datetime, worker: str | None) -> None:
    """Append the attempt that just ended to ``job``'s history; called once its status
    changed (``worker`` is the one it ran on, as the change may have cleared it)."""
    outcome = {JobStatus.QUEUED: "retried", JobStatus.RUNNING: "split"}.get(
        job.status, str(job.status)
    )
    failed = job.status not in {JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.RUNNING}
    error = None
    if failed and job.error and job.status != JobStatus.CANCELLED:
        detail = str(job.error.get("detail") or "")[:_HISTORY_DETAIL]
        error = {"code": job.error.get("code"), "detail": detail}
    entry = {
        "attempt": job.attempts,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "ended_at": now.isoformat(),
        "worker": worker,
        "outcome": outcome,
        "error": error,
    }
    if job.status == JobStatus.QUEUED and job.run_after is not None:
        entry["retry_at"] = job.run_after.isoformat()
    job.history = [*(job.history or []), entry][-MAX_HISTORY:]


def _log_transition(record: JobRecord) -> None:
    _log.info(
        "job transition",
        # The request that submitted the job and its trace, wherever the line is written.
        **job_log_ids(record.trace),
        job_id=record.id,
        operation=record.operation,
        status=record.status.value,
        attempts=record.attempts,
        worker=record.worker,
        cancel_requested=record.cancel_requested,
    )


class JobStore:
    """Jobs in an SQL database named by a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str, *, echo: bool = False, pooled: bool = True) -> None:
        """``pooled`` False: every transaction opens its own connection and closes it, so
        that between transactions the process holds none (a process that forks others
        which open the same SQLite file: a child must not inherit SQLite's state of a
        connection of its parent)."""
        #: Writes each state change's event and webhooks (see :mod:`docworker.jobs.journal`).
        self.journal = Journal()
        self._engine = _create_engine(url, echo, pooled)
        self._postgres = self._engine.dialect.name == "postgresql"
        self._readers = sessionmaker(self._engine, expire_on_commit=False)
        self._writers = sessionmaker(
            self._engine.execution_options(**{_WRITES: True}), expire_on_commit=False
        )

    @contextmanager
    def _session(self, *, writes: bool = False) -> Iterator[Session]:
        """One transaction, committed when the block ends without an exception."""
        try:
            with (self._writers if writes else self._readers).begin() as session:
                self.journal.attach(session)
                yield session
        except (OperationalError, InterfaceError) as exc:
            raise DependencyDown(
                "the job database does not answer: retry later",
                dependency="database",
                retry_after=DATABASE_RETRY_AFTER,
            ) from exc
        run_after_commit(session)

    def transaction(self, *, writes: bool = False) -> AbstractContextManager[Session]:
        """One transaction for the other tables of the store (keys, audit events)."""
        return self._session(writes=writes)

    # -- lifecycle -------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration; a no-op when it is there already.

        Safe when several processes start together: PostgreSQL serialises them on
        an advisory lock, SQLite on its write lock. The folder of an SQLite file
        is created when missing; the folder made and the database's files are private
        to the service's user (0700, 0600).
        """
        for path in self.files()[:1]:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Imported here: alembic is slow to import and only start-up needs it.
        from alembic import command
        from alembic.config import Config

        config = Config()
        # ConfigParser would read a "%" in the path as interpolation.
        config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
        with self._engine.execution_options(**{_WRITES: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        # SQLite gives its -wal and -shm files the database file's mode when it makes them.
        make_private(*self.files())

    def files(self) -> list[Path]:
        """The database's files on local disk: an SQLite file with its ``-wal`` and
        ``-shm`` companions; none for a database server or an in-memory database."""
        url = self._engine.url
        database = url.database or ""
        # A "file:" URI names its file in its own way: it is left to whoever wrote it.
        if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
            return []
        if database.startswith("file:"):
            return []
        main = Path(database)
        return [main, main.with_name(f"{main.name}-wal"), main.with_name(f"{main.name}-shm")]

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def after_fork(self) -> None:
        """In a process forked from the one that opened this store: forget the pooled
        connections it inherited without closing them (they are the parent's), so this
        process opens its own."""
        self._engine.dispose(close=False)

    def ping(self) -> None:
        """Check that the database answers; raises :class:`DependencyDown` if not."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise DependencyDown(
                "the job database does not answer",
                dependency="database",
                retry_after=DATABASE_RETRY_AFTER,
            ) from exc

    # -- reading ----------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        """The job ``job_id``; raises :class:`NotFound` when there is none."""
        with self._session() as session:
            return JobRecord.from_row(_row(session, job_id))

    def by_idempotency_key(self, key: str) -> JobRecord | None:
        """The job created under the idempotency ``key`` (as stored), if any."""
        with self._session() as session:
            job = session.scalars(select(Job).where(Job.idempotency_key == key)).one_or_none()
            return None if job is None else JobRecord.from_row(job)

    def list(
        self,
        *,
        status: Sequence[JobStatus] | None = None,
        operation: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        parent_id: str | None = None,
        include_parts: bool = False,
        tenant: str | None = None,
        error_code: str | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
        batch_id: str | None = None,
    ) -> tuple[Records, str | None]:
        """One page of jobs, newest first, and the cursor of the next page (or None).

        ``created_after`` and ``finished_after`` are inclusive, ``created_before`` and
        ``finished_before`` exclusive; ``limit`` is brought into 1..:data:`MAX_PAGE_SIZE`.
        The parts of split jobs are left out unless ``include_parts``, or ``parent_id``
        asks for one job's parts; so are the children of batches, unless
        ``include_parts`` or ``batch_id`` asks for one batch's. ``tenant`` keeps that
        tenant's jobs only; ``error_code`` those whose error has that ``code``.
        """
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query = _family_filter(select(Job), parent_id, batch_id, include_parts=include_parts)
        if tenant is not None:
            query = query.where(Job.tenant == tenant)
        if status is not None:
            query = query.where(Job.status.in_(status))
        if operation is not None:
            query = query.where(Job.operation == operation)
        if error_code is not None:
            query = query.where(Job.error["code"].as_string() == error_code)
        for column, after, before, name in (
            (Job.created_at, created_after, created_before, "created"),
            (Job.finished_at, finished_after, finished_before, "finished"),
        ):
            if after is not None:
                query = query.where(column >= _aware(after, f"{name}_after"))
            if before is not None:
                query = query.where(column < _aware(before, f"{name}_before"))
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(Job.created_at < at, and_(Job.created_at == at, Job.id < last_id))
            )
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
        with self._session() as session:
            page = [JobRecord.from_row(job) for job in session.scalars(query)]
        if len(page) <= limit:
            return page, None
        return page[:limit], _encode_cursor(page[limit - 1])

    def parts_of(self, job_id: str) -> Records:
        """The parts a job was split into, in order."""
        query = select(Job).where(Job.parent_id == job_id).order_by(Job.part)
        with self._session() as session:
            return [JobRecord.from_row(job) for job in session.scalars(query)]

    def events_after(
        self, job_id: str, after: int, *, limit: int = 100
    ) -> tuple[JobStatus, Events]:
        """The job's status, and its events numbered above ``after`` (``limit`` at most),
        in order; :class:`NotFound` when there is no such job."""
        query = (
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.seq > after)
            .order_by(JobEvent.seq)
            .limit(limit)
        )
        with self._session() as session:
            status = session.scalar(select(Job.status).where(Job.id == job_id))
            if status is None:
                raise NotFound("job", job_id)
            return status, [JobEventRecord.from_row(row) for row in session.scalars(query)]

    def cancel_requested_among(self, job_ids: Collection[str]) -> set[str]:
        """Those of the running ``job_ids`` whose cancellation was asked for."""
        if not job_ids:
            return set()
        query = select(Job.id).where(
            Job.id.in_(job_ids), Job.status == JobStatus.RUNNING, Job.cancel_requested
        )
        with self._session() as session:
            return set(session.scalars(query))

    def counts(self) -> dict[JobStatus, int]:
        """How many jobs are in each status (every status present, zeros included)."""
        counts = dict.fromkeys(JobStatus, 0)
        with self._session() as session:
            for status, count in session.execute(
                select(Job.status, func.count()).group_by(Job.status)
            ):
                counts[status] = count
        return counts

    def with_input_tag(self, path: tuple[str, ...], value: str) -> Records:
        """Jobs whose input carries ``value`` at the JSON ``path`` (e.g. the document id a
        v1 route recorded, ``("v1", "document_id")``), oldest first."""
        column = Job.input[path].as_string()
        # Parts of a split job carry their job's input: they are not jobs of their own.
        query = (
            select(Job)
            .where(column == value, Job.parent_id.is_(None))
            .order_by(Job.created_at, Job.id)
        )
        with self._session() as session:
            return [JobRecord.from_row(job) for job in session.scalars(query)]

    def count_unfinished_with_tag(self, path: tuple[str, ...], value: str) -> int:
        """Queued and running jobs whose input carries ``value`` at the JSON ``path``
        (e.g. the engine they run on, ``("engine",)``), parts included."""
        column = Job.input[path].as_string()
        unfinished = Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
        query = select(func.count()).where(unfinished, column == value)
        with self._session() as session:
            count: int = session.execute(query).scalar_one()
        return count

    def queued_by_operation(self) -> dict[str, int]:
        """Submitted jobs waiting to run, by operation: queued ones, those waiting for a
        retry included, the parts of split jobs left out (the supervisor made them; their
        job was the submission). A range of ``ix_jobs_claim`` (queued rows only)."""
        with self._session() as session:
            return {operation: count for operation, count in session.execute(_QUEUED_COUNTS)}

    def ended_by_operation(self, since: datetime) -> dict[str, int]:
        """Submitted jobs (parts and batch children left out) that reached a final state at
        ``since`` or after, by operation: a range of ``ix_jobs_finished_at``, the rows counted here.
        Neither a filter on parts nor a grouping is left to the database: without
        statistics SQLite would walk all the jobs that are not parts, or the whole of
        ``ix_jobs_operation`` for its order, instead of the few that ended lately."""
        query = select(Job.operation, Job.parent_id, Job.batch_id).where(
            Job.finished_at >= _aware(since, "since")
        )
        counts: dict[str, int] = {}
        with self._session() as session:
            for operation, parent_id, batch_id in session.execute(query):
                if parent_id is None and batch_id is None:
                    counts[operation] = counts.get(operation, 0) + 1
        return counts

    def queue_depth(self) -> tuple[int, float | None]:
        """Jobs ready to run, and how long in seconds the longest-waiting one has waited."""
        now = _now()
        since = func.min(func.coalesce(Job.run_after, Job.created_at))
        with self._session() as session:
            count, oldest = session.execute(select(func.count(), since).where(_ready(now))).one()
        if oldest is None:
            return count, None
        return count, max(0.0, (now - oldest).total_seconds())

    def dead_count(self) -> int:
        """Jobs on the dead-letter list (status ``dead``), of every tenant."""
        with self._session() as session:
            count: int = session.execute(
                select(func.count()).where(Job.status == JobStatus.DEAD.value)
            ).scalar_one()
        return count

    # -- writing ----------------------------------------------------------------

    def create(
        self,
        new: NewJob,
        *,
        quotas: Quotas | None = None,
        max_active: int | None = None,
        served: ServedResult | None = None,
    ) -> tuple[JobRecord, bool]:
        """Queue ``new``; the flag says whether a job was created.

        A known ``idempotency_key`` returns the job it created before, provided the
        operation, the params and the input's sha256 are the same; otherwise
        :class:`Conflict`. Two racing submissions of one key make one job.

        A job with an API key is counted in its key's day, in the same transaction,
        and refused with :class:`~docworker.errors.QuotaExceeded` when that would go
        past ``quotas`` (see :mod:`docworker.jobs.usage`).

        With ``max_active``, a tenant that has that many jobs queued or running (parts
        not counted: their job is) gets :class:`ActiveJobsLimit` instead. The count and
        the insert are one transaction that no other admission of the tenant overlaps
        (SQLite's write lock; a transaction advisory lock per tenant on PostgreSQL), so
        the cap holds exactly under concurrent submissions.

        With ``served`` (a result found in the result cache, already written under the
        job id it names) the job is created ``succeeded`` and ``cached``, with that
        result: it runs nowhere, so the cap on active jobs does not apply; its quotas
        and its audit event are booked as for any job that ends.
        """
        if new.max_attempts < 1:
            raise InvalidParameter("max_attempts", "must be at least 1")
        key = new.idempotency_key
        if key is not None and (existing := self.by_idempotency_key(key)) is not None:
            return _same_request(existing, new), False
        now = _now()
        job = Job(
            id=served.job_id if served is not None else str(uuid.uuid4()),
            operation=new.operation,
            params=new.params,
            status=JobStatus.QUEUED if served is None else JobStatus.SUCCEEDED,
            priority=new.priority,
            input=new.input,
            idempotency_key=key,
            max_attempts=new.max_attempts,
            created_at=now,
            updated_at=now,
            tenant=new.tenant,
            key_id=new.key_id,
            client=new.client,
            webhook=new.webhook,
            trace=new.trace,
        )
        if served is not None:
            job.result = served.result
            job.attempts = 0
            job.cpu_seconds = 0.0
            job.progress = 1.0
            job.started_at = job.finished_at = now
            job.cached = True
        try:
            with self._session(writes=True) as session:
                if max_active is not None and served is None:
                    _admit(session, new.tenant, max_active)
                if new.key_id is not None:
                    size = input_bytes(new.input)
                    usage.admit(session, new.key_id, new.tenant, quotas or Quotas(), size, now)
                session.add(job)
                if served is not None:
                    settle(session, job, now, JobCost(pages=served.pages))
                session.flush()
                # Read back, so the record holds what the database stored.
                session.refresh(job)
                self.journal.record(session, job, "queued", now)
                if served is not None:  # answered from the cache: it has ended already
                    self.journal.record(session, job, kind_of(job.status), now)
                record = JobRecord.from_row(job)
        except IntegrityError:
            # Another request inserted the same key between our look-up and insert.
            if key is None or (existing := self.by_idempotency_key(key)) is None:
                raise
            return _same_request(existing, new), False
        _log_transition(record)
        return record, True

    def claim_next(
        self,
        worker: str,
        *,
        now: datetime | None = None,
        operations: Collection[str] | None = None,
        policy: ClaimPolicy = FAIR_CLAIMS,
    ) -> JobRecord | None:
        """Start the next ready job for ``worker``: by default, of the tenant that runs
        the fewest jobs and was served least recently, then the highest priority, then
        the oldest (see :class:`ClaimPolicy`).

        Only ``operations`` are considered when given. Returns None when no job is
        ready. Two claimers, in any processes, never get the same job.
        """
        at = _aware(now, "now")
        if operations is not None and not operations:
            return None
        chosen = frozenset(operations) if operations is not None else None
        candidate = _claim_candidate(chosen, policy)
        bound = {"at": at, "worker": worker, "job_id": None}
        for attempt in range(_CLAIM_TRIES):
            won = None
            with self._session(writes=True) as session:
                bound["job_id"] = session.scalar(candidate, bound)
                if bound["job_id"] is not None:
                    won = session.scalars(_CLAIM_START, bound).one_or_none()
                    if won is not None:
                        self.journal.record(session, won, "started", at)
                        record = JobRecord.from_row(won)
                elif not self._held_by_another_claimer(session, chosen, policy, bound):
                    return None
            if won is not None:
                _log_transition(record)
                return record
            if bound["job_id"] is None and attempt + 1 < _CLAIM_TRIES:
                # Held: its claimer is about to commit.
                time.sleep(_CLAIM_RETRY_PAUSE * 2**attempt)
            # else another claimer was faster: try the next job
        return None

    def _held_by_another_claimer(
        self,
        session: Session,
        operations: frozenset[str] | None,
        policy: ClaimPolicy,
        bound: dict[str, Any],
    ) -> bool:
        """Whether the claim found nothing only because another claimer holds the job it
        would give (PostgreSQL skips locked rows). The claim across tenants weighs one
        job per tenant: with that one locked, a tenant's other ready jobs are not looked
        at, and a claimer that gave up would leave them waiting for a turn that was
        spent (a Celery message). The holder's transaction is short: the claim looks
        again after a pause."""
        if not self._postgres or not policy.by_tenant:
            return False
        peek = _claim_candidate_by_tenant(operations, policy, locked=False)
        return session.scalar(peek, bound) is not None

    def claim(self, job_id: str, worker: str, *, now: datetime | None = None) -> JobRecord | None:
        """Start the job ``job_id`` for ``worker`` if it is queued and due (its retry delay
        over); None otherwise (running elsewhere, ended, waiting for its delay, or no
        such job). One conditional update: of two claimers of one job, one wins."""
        at = _aware(now, "now")
        bound = {"at": at, "worker": worker, "job_id": job_id}
        with self._session(writes=True) as session:
            won = session.scalars(_CLAIM_BY_ID, bound).one_or_none()
            if won is None:
                return None
            self.journal.record(session, won, "started", at)
            record = JobRecord.from_row(won)
        _log_transition(record)
        return record

    def heartbeat(self, job_ids: Collection[str], *, now: datetime | None = None) -> None:
        """Record that the executor holding ``job_ids`` is alive."""
        if not job_ids:
            return
        beat = (
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING)
            .values(heartbeat_at=_aware(now, "now"))
        )
        with self._session(writes=True) as session:
            session.execute(beat)

    def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        """Record how far a running job is (``fraction`` is clamped to 0..1), and its
        ``progress`` event, in one transaction."""
        now = _now()
        with self._session(writes=True) as session:
            # On the connection: the ORM's bulk-update path costs more than the statement.
            row = (
                session.connection()
                .execute(
                    _SET_PROGRESS,
                    {
                        "job_id": job_id,
                        "progress": min(1.0, max(0.0, fraction)),
                        "message": message,
                        "at": now,
                    },
                )
                .one_or_none()
            )
            if row is not None:
                # What the event says of the job, without loading it.
                job = Job(id=job_id, status=JobStatus.RUNNING, error=None, **row._asdict())
                self.journal.record(session, job, "progress", now)

    def split(
        self, job_id: str, parts: Sequence[dict[str, Any]], *, cost: JobCost | None = None
    ) -> tuple[JobRecord, Records]:
        """Turn a running job into ``parts``: child jobs with the job's input. A part is
        ``{"params": ..., "operation": ...}``: without an operation it runs the job's,
        with the job's params updated by its own; with one, it runs that on its own
        params. A part's ``trace`` (the span of the attempt that split the job, see
        :mod:`docworker.tracing`) is its trace context, else it takes the job's. The job
        then runs nowhere and waits; when the last part ends it is queued again, to merge
        what the parts made.

        Parts take their parent's priority and place in the queue (its creation time),
        so a job begun is finished before younger jobs start. A job whose cancellation
        was asked for is cancelled instead. ``cost`` is what the attempt that split it used.
        """
        if not parts:
            raise ValueError("a job is split into one part or more")
        now = _now()
        children: list[Job] = []
        with self._session(writes=True) as session:
            job = _row(session, job_id, lock=True)
            if job.status != JobStatus.RUNNING or job.children_total:
                raise Conflict(f"job {job_id} is {job.status} and cannot be split")
            if job.cancel_requested:
                job.status = JobStatus.CANCELLED
                job.finished_at = now
                self.journal.record(session, job, "cancelled", now)
            else:
                for index, part in enumerate(parts):
                    operation = part.get("operation")
                    children.append(
                        Job(
                            id=str(uuid.uuid4()),
                            operation=operation or job.operation,
                            params=part["params"] if operation else job.params | part["params"],
                            status=JobStatus.QUEUED,
                            priority=job.priority,
                            input=job.input,
                            max_attempts=job.max_attempts,
                            created_at=job.created_at,
                            updated_at=now,
                            parent_id=job.id,
                            part=index,
                            tenant=job.tenant,
                            key_id=job.key_id,
                            client=job.client,
                            trace=part.get("trace") or job.trace,
                        )
                    )
                session.add_all(children)
                job.children_total = job.children_pending = len(children)
                _record_attempt(job, now, job.worker)
                job.worker = None
                job.heartbeat_at = None
                job.progress_message = f"split into {len(children)} parts"
                session.flush()
                for child in children:
                    self.journal.record(session, child, "queued", now)
                self.journal.record(session, job, "progress", now, {"parts": len(children)})
            job.updated_at = now
            settle(session, job, now, cost)
            session.flush()
            record = JobRecord.from_row(job)
            records = [JobRecord.from_row(child) for child in children]
        _log_transition(record)
        return record, records

    def mark_succeeded(
        self,
        job_id: str,
        result: dict[str, Any],
        *,
        partial: bool = False,
        errors: Sequence[dict[str, Any]] | None = None,
        cost: JobCost | None = None,
    ) -> JobRecord:
        """Finish a running job with ``result``; ``cost`` is what its attempt used.

        It ends ``partial`` when asked or when ``errors`` lists anything, keeping
        the items as ``{"code": "partial", "items": [...]}``; otherwise the error
        of an earlier attempt is cleared. A job whose cancellation was asked for while
        this attempt ran keeps its result (the work is done), unless it is a part of a
        split job: then it is cancelled, as its job is.
        """
        partial = partial or bool(errors)

        def succeed(job: Job, now: datetime) -> None:
            if job.cancel_requested and job.parent_id is not None:
                # A part of a cancelled job, done before its worker saw the cancel: no
                # merge reads its result, and its job ended cancelled.
                job.status = JobStatus.CANCELLED
                job.finished_at = now
                return
            job.status = JobStatus.PARTIAL if partial else JobStatus.SUCCEEDED
            job.result = result
            job.error = {"code": "partial", "items": list(errors or [])} if partial else None
            job.progress = 1.0
            job.finished_at = now

        return self._transition(job_id, {JobStatus.RUNNING}, succeed, cost)

    def mark_failed(
        self,
        job_id: str,
        error: dict[str, Any],
        *,
        retry_delay: float | None,
        cost: JobCost | None = None,
    ) -> JobRecord:
        """End a running job's attempt with ``error``; ``cost`` is what the attempt used.

        ``retry_delay`` None means the failure is final (bad input): FAILED.
        Otherwise the job is queued again ``retry_delay`` seconds from now while it
        has attempts left, and DEAD after its last one.
        """

        def fail(job: Job, now: datetime) -> None:
            job.error = error
            if retry_delay is None:
                job.status = JobStatus.FAILED
                job.finished_at = now
            else:
                _retry_or_bury(job, now, now + timedelta(seconds=retry_delay))

        return self._transition(job_id, {JobStatus.RUNNING}, fail, cost)

    def mark_dead(
        self, job_id: str, error: dict[str, Any], *, cost: JobCost | None = None
    ) -> JobRecord:
        """End a running job DEAD with ``error`` after this attempt, whatever attempts it
        has left: the attempt ran past a limit that the same input would pass again (a
        poison document, see :class:`~docworker.errors.AfterFailure`). A job whose
        cancellation was asked for is cancelled instead."""

        def bury(job: Job, now: datetime) -> None:
            job.error = error
            _retry_or_bury(job, now, None, retry=False)

        return self._transition(job_id, {JobStatus.RUNNING}, bury, cost)

    def defer(self, job_id: str, *, delay: float) -> JobRecord:
        """Put a job just claimed back in the queue for ``delay`` seconds without running
        it, as if it had not been claimed: the attempt is not counted, nor recorded."""

        def back(job: Job, now: datetime) -> None:
            job.status = JobStatus.QUEUED
            job.attempts = max(0, job.attempts - 1)
            job.run_after = now + timedelta(seconds=delay)
            job.worker = job.heartbeat_at = None

        return self._transition(job_id, {JobStatus.RUNNING}, back, attempt_ended=False)

    def retry(self, job_id: str, *, attempts: int) -> JobRecord:
        """Queue a ``dead`` or ``failed`` job again, at once, with ``attempts`` more
        attempts than it has made; its history is kept, its error and result cleared.

        :class:`Conflict` for a job in another state and for a part of a split job (its
        job is retried instead); :class:`NotFound` when there is no such job.
        """
        if attempts < 1:
            raise InvalidParameter("attempts", "must be at least 1")
        now = _now()
        with self._session(writes=True) as session:
            job = _row(session, job_id, lock=True)
            if job.parent_id is not None:
                raise Conflict(
                    f"job {job_id} is a part of job {job.parent_id}: retry that job",
                    job_id=job_id,
                    parent_id=job.parent_id,
                )
            if job.status not in RETRYABLE_STATUSES:
                raise Conflict(
                    f"job {job_id} is {job.status}: only a dead or failed job can be retried",
                    job_id=job_id,
                    job_status=str(job.status),
                )
            job.status = JobStatus.QUEUED
            job.max_attempts = job.attempts + attempts
            job.error = job.result = None
            job.finished_at = job.run_after = job.worker = job.heartbeat_at = None
            job.cancel_requested = False
            if not job.children_total:
                job.progress, job.progress_message = 0.0, None
            job.updated_at = now
            self.journal.record(session, job, "queued", now)
            record = JobRecord.from_row(job)
        _log_transition(record)
        return record

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or flag a running one for its executor.

        A job in a final state is returned unchanged.
        """

        def cancel(job: Job, now: datetime) -> None:
            if job.status == JobStatus.QUEUED or job.children_pending:
                # Queued, or waiting for its parts (which are cancelled next): no
                # process runs it, so it ends now.
                job.status = JobStatus.CANCELLED
                job.finished_at = now
            job.cancel_requested = True

        record = self._transition(job_id, {JobStatus.QUEUED, JobStatus.RUNNING}, cancel)
        # Each part in a transaction of its own: a part's end locks the part, then its
        # parent, and this must take locks in the same order.
        if record.children_total and record.status == JobStatus.CANCELLED:
            for part in self.parts_of(job_id):
                if part.status not in TERMINAL_STATUSES:
                    self.request_cancel(part.id)
        return record

    def mark_cancelled(self, job_id: str, *, cost: JobCost | None = None) -> JobRecord:
        """Record that the executor stopped a job whose cancellation was asked for;
        ``cost`` is what its attempt used until then."""

        def cancelled(job: Job, now: datetime) -> None:
            job.status = JobStatus.CANCELLED
            job.finished_at = now

        return self._transition(job_id, {JobStatus.QUEUED, JobStatus.RUNNING}, cancelled, cost)

    def unpublished(
        self,
        *,
        older_than: float,
        operations: Collection[str] | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> Records:
        """Queued jobs, due for ``older_than`` seconds and unchanged for as long, that no
        worker took: their message was lost (a publish that failed after the change was
        committed, a broker that lost what it held). Each is touched (its ``updated_at``),
        so that the next look passes it over for ``older_than`` again, and returned, the
        highest priority and oldest first, ``limit`` at most, for its message to be
        published again (the celery executor's sweep). ``operations``: of those only."""
        if operations is not None and not operations:
            return []
        at = _aware(now, "now")
        cutoff = at - timedelta(seconds=older_than)
        query = (
            select(Job)
            .where(
                Job.status == JobStatus.QUEUED,
                Job.updated_at <= cutoff,
                or_(Job.run_after.is_(None), Job.run_after <= cutoff),
            )
            .order_by(Job.priority.desc(), Job.created_at, Job.part, Job.id)
            .limit(max(1, limit))
            .with_for_update(skip_locked=True)
        )
        if operations is not None:
            query = query.where(Job.operation.in_(sorted(operations)))
        with self._session(writes=True) as session:
            jobs = session.scalars(query).all()
            for job in jobs:
                job.updated_at = at
            return [JobRecord.from_row(job) for job in jobs]

    def requeue_stale(self, *, older_than: float, now: datetime | None = None) -> Records:
        """Take back running jobs whose executor sent no heartbeat for ``older_than`` s.

        Each goes back to the queue if it has attempts left, else to DEAD; the
        changed records are returned.
        """
        at = _aware(now, "now")
        cutoff = at - timedelta(seconds=older_than)
        error = EngineFailed("the executor running the job stopped sending heartbeats")
        return self._requeue(Job.heartbeat_at < cutoff, error, at)

    def requeue_worker(self, worker: str, *, reason: str | None = None) -> Records:
        """Take back the running jobs of ``worker`` (an executor restarting under its name,
        or a worker process found dead: ``reason`` says so in the jobs' error)."""
        error = EngineFailed(reason or "the executor running the job restarted", worker=worker)
        return self._requeue(Job.worker == worker, error, _now())

    def delete_finished_before(
        self,
        before: datetime,
        *,
        tenant: str | None = None,
        other_than: Collection[str] = (),
    ) -> Records:
        """Delete the jobs that reached a final state before ``before``; returns them.
        The ones that ran are added to the capacity history in the same transaction.

        ``tenant`` keeps to that tenant's jobs; ``other_than`` leaves those tenants'
        jobs alone (they have retentions of their own). The parts of a split job are
        deleted with it, never before it.
        """
        query = select(Job).where(
            Job.status.in_(TERMINAL_STATUSES),
            Job.finished_at < _aware(before, "before"),
            Job.parent_id.is_(None),
        )
        if tenant is not None:
            query = query.where(Job.tenant == tenant)
        if other_than:
            query = query.where(or_(Job.tenant.is_(None), Job.tenant.not_in(list(other_than))))
        query = query.with_for_update(skip_locked=True)
        with self._session(writes=True) as session:
            jobs = list(session.scalars(query).all())
            split = [job.id for job in jobs if job.children_total]
            if split:
                jobs += session.scalars(select(Job).where(Job.parent_id.in_(split))).all()
            records = [JobRecord.from_row(job) for job in jobs]
            capacity_history.roll_up(session, jobs)
            for job in jobs:
                session.delete(job)
            _delete_journal(session, [job.id for job in jobs])
            session.flush()
            # A batch goes with the last of its children, and its events with it.
            emptied = select(Batch.id).where(
                Batch.created_at < _aware(before, "before"),
                ~exists().where(Job.batch_id == Batch.id),
            )
            if tenant is not None:
                emptied = emptied.where(Batch.tenant == tenant)
            if other_than:
                emptied = emptied.where(
                    or_(Batch.tenant.is_(None), Batch.tenant.not_in(list(other_than)))
                )
            _delete_batches(session, list(session.scalars(emptied)))
        if records:
            _log.info("jobs deleted", count=len(records), finished_before=before.isoformat())
        return records

    def purge_capacity_history(self, before: datetime) -> int:
        """Delete the hours of the capacity history that ended before ``before``."""
        with self._session(writes=True) as session:
            return capacity_history.purge_before(session, _aware(before, "before"))

    def tenant_has_input(self, tenant: str | None, uri: str) -> bool:
        """Whether a job of ``tenant`` names the input blob ``uri`` as its first input."""
        column = Job.input["uri"].as_string()
        query = select(Job.id).where(column == uri, Job.tenant == tenant).limit(1)
        if tenant is None:
            query = select(Job.id).where(column == uri, Job.tenant.is_(None)).limit(1)
        with self._session() as session:
            return session.scalars(query).first() is not None

    def delete_job(self, job_id: str) -> Records | None:
        """Delete a job that has ended, with its parts; returns the rows deleted, or None
        (deleting nothing) while the job or one of its parts has not ended.

        Raises :class:`NotFound` when there is no such job, and :class:`Conflict` for a
        part of another job: parts go only with their job.
        """
        with self._session(writes=True) as session:
            job = _row(session, job_id, lock=True)
            if job.parent_id is not None:
                raise Conflict(
                    f"job {job_id} is a part of job {job.parent_id}: delete that job",
                    job_id=job_id,
                    parent_id=job.parent_id,
                )
            parts = session.scalars(
                select(Job).where(Job.parent_id == job_id).with_for_update()
            ).all()
            jobs = [job, *parts]
            if any(each.status not in TERMINAL_STATUSES for each in jobs):
                return None
            records = [JobRecord.from_row(each) for each in jobs]
            capacity_history.roll_up(session, jobs)
            for each in jobs:
                session.delete(each)
            _delete_journal(session, [each.id for each in jobs])
        _log.info("job deleted", job_id=job_id, parts=len(parts))
        return records

    def rewrite_params(
        self, change: Callable[[str, dict[str, Any]], dict[str, Any] | None], *, batch: int = 500
    ) -> int:
        """Pass the params of every job (parts included) through ``change(operation,
        params)`` and store what it returns instead (None: leave them). Rows are walked
        in id order, ``batch`` at a time, one transaction each; returns the jobs changed."""

        def apply(job: Job) -> bool:
            new = change(job.operation, job.params)
            if new is not None:
                job.params = new
            return new is not None

        return self._rewrite(apply, Job.id.is_not(None), batch)

    def rewrite_webhooks(
        self, change: Callable[[dict[str, Any]], dict[str, Any] | None], *, batch: int = 500
    ) -> int:
        """Pass the webhook of every job that has one through ``change`` and store what it
        returns instead (None: leave it), as :meth:`rewrite_params` does."""

        def apply(job: Job) -> bool:
            new = change(job.webhook) if job.webhook is not None else None
            if new is not None:
                job.webhook = new
            return new is not None

        return self._rewrite(apply, Job.webhook.is_not(None), batch)

    def rewrite_batch_webhooks(
        self, change: Callable[[dict[str, Any]], dict[str, Any] | None], *, batch: int = 500
    ) -> int:
        """Pass the webhook of every batch that has one through ``change`` and store what
        it returns instead (None: leave it), ``batch`` batches per transaction."""
        changed = 0
        last = ""
        while True:
            query = (
                select(Batch)
                .where(Batch.webhook.is_not(None), Batch.id > last)
                .order_by(Batch.id)
                .limit(batch)
            )
            with self._session(writes=True) as session:
                rows = session.scalars(query.with_for_update()).all()
                for row in rows:
                    new = change(row.webhook) if row.webhook is not None else None
                    if new is not None:
                        row.webhook = new
                        changed += 1
            if len(rows) < batch:
                return changed
            last = rows[-1].id

    def _rewrite(self, apply: Callable[[Job], bool], which: ColumnElement[bool], batch: int) -> int:
        """Walk the jobs matching ``which`` in id order, ``batch`` at a time, one
        transaction each, passing each to ``apply``; returns how many it changed."""
        changed = 0
        last = ""
        while True:
            query = select(Job).where(which, Job.id > last).order_by(Job.id).limit(batch)
            with self._session(writes=True) as session:
                jobs = session.scalars(query.with_for_update()).all()
                changed += sum(apply(job) for job in jobs)
            if len(jobs) < batch:
                return changed
            last = jobs[-1].id

    def inputs_in_use(
        self, uris: Collection[str], *, created_since: datetime | None = None
    ) -> set[str]:
        """Which of the input blob ``uris`` some job still names (inputs are shared by content);
        with ``created_since``, only jobs created since then are looked at (an index walk)."""
        if not uris:
            return set()
        column = Job.input["uri"].as_string()
        # Further inputs (``input.others``) are few: their jobs are read and looked through.
        with_others = select(Job.input).where(cast(Job.input, String).contains('"others"'))
        recent = None
        if created_since is not None:
            recent = Job.created_at >= _aware(created_since, "created_since")
            with_others = with_others.where(recent)
        listed = list(uris)
        used: set[str] = set()
        with self._session() as session:
            # A batch's request names thousands: a statement per slice keeps each under
            # the database's limit on bound parameters.
            for start in range(0, len(listed), _URIS_AT_ONCE):
                query = select(column).where(column.in_(listed[start : start + _URIS_AT_ONCE]))
                if recent is not None:
                    query = query.where(recent)
                used.update(uri for uri in session.scalars(query.distinct()) if uri is not None)
            for job_input in session.scalars(with_others):
                used.update(str(o.get("uri")) for o in (job_input or {}).get("others") or [])
        return used & set(uris)

    # -- batches ------------------------------------------------------------------

    def create_batch(
        self,
        new: NewBatch,
        inputs: Collection[dict[str, Any]],
        *,
        family: Collection[str] = (),
        max_queued: int | None = None,
        quotas: Quotas | None = None,
        max_active: int | None = None,
    ) -> tuple[BatchRecord, bool]:
        """Queue a batch: one child job of ``new.operation`` per stored input of
        ``inputs`` (each ``{"uri", "sha256", "size", "name", "mime"}``), in order; the flag
        says whether it was created. ``inputs`` is read through a few times (a list, or a
        collection spooled to disk: :class:`~docworker.jobs.models.SpooledInputs`), the
        children inserted :data:`_BATCH_INSERT` at a time.

        The batch is admitted whole, in one transaction, or not at all:

        * ``max_queued``: the children of batches queued in the operations of ``family``
          (the operation's family) and these together may not pass it
          (:class:`~docworker.errors.QueueFull`);
        * ``max_active``: the tenant's cap on jobs queued or running, where the batch
          takes one place (:class:`ActiveJobsLimit`);
        * an API key's quotas count the batch as one request of all its inputs' bytes.

        A known ``idempotency_key`` returns the batch it made before, provided the
        operation, the params and the inputs (their sha256s in order) are the same;
        otherwise :class:`Conflict`. The children are claimed in the inputs' order.

        An input with an ``error`` (a file that could not be taken: an archive's entry
        refused, a URL not fetched) is a child made ``failed`` with that error, its
        input the rest of the mapping (no ``uri``): it is not queued, not counted in the
        batches' queue, and not queued again by :meth:`retry_batch`.
        """
        if not inputs:
            raise InvalidParameter("file", "a batch has one input or more")
        digest = hashlib.sha256(
            "\n".join(
                str(stored.get("sha256") or f"failed:{stored.get('name')}") for stored in inputs
            ).encode()
        ).hexdigest()
        key = new.idempotency_key
        if key is not None and (existing := self.batch_by_key(key)) is not None:
            return _same_batch(existing, new, digest), False
        now = _now()
        batch = Batch(
            id=str(uuid.uuid4()),
            operation=new.operation,
            params=new.params,
            priority=new.priority,
            idempotency_key=key,
            total=len(inputs),
            inputs_digest=digest,
            tenant=new.tenant,
            key_id=new.key_id,
            client=new.client,
            created_at=now,
            updated_at=now,
            cancel_requested=False,
            webhook=new.webhook,
        )
        try:
            with self._session(writes=True) as session:
                if max_active is not None:
                    _admit(session, new.tenant, max_active)
                if max_queued is not None:
                    queued = sum(1 for stored in inputs if "error" not in stored)
                    _admit_batch(session, family, queued, max_queued)
                if new.key_id is not None:
                    size = sum(int(stored.get("size") or 0) for stored in inputs)
                    usage.admit(session, new.key_id, new.tenant, quotas or Quotas(), size, now)
                session.add(batch)
                session.flush()
                chunks = iter(inputs)
                for start in range(0, len(inputs), _BATCH_INSERT):
                    chunk = itertools.islice(chunks, _BATCH_INSERT)
                    rows = [
                        _child_row(new, batch.id, index, stored, now)
                        for index, stored in enumerate(chunk, start)
                    ]
                    session.execute(insert(Job), rows)
                record = batch_state(session, batch)
                data = batch_event_data(record)
                self.journal.record_batch(session, batch, "batch.queued", now, data)
                if record.state is not BatchState.RUNNING:
                    # Every child failed at intake (no URL could be read): it has ended.
                    kind = f"batch.{record.state.value}"
                    self.journal.record_batch(session, batch, kind, now, data)
        except IntegrityError:
            if key is None or (existing := self.batch_by_key(key)) is None:
                raise
            return _same_batch(existing, new, digest), False
        _log.info("batch created", batch_id=record.id, operation=new.operation, jobs=record.total)
        return record, True

    def get_batch(self, batch_id: str) -> BatchRecord:
        """The batch ``batch_id`` with its children counted; :class:`NotFound` if none."""
        with self._session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None:
                raise NotFound("batch", batch_id)
            return batch_state(session, batch)

    def batch_children(self, batch_id: str, *, after: int = -1, limit: int = 100) -> Records:
        """Up to ``limit`` children of the batch, in its inputs' order, from the one after
        place ``after``."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query = (
            select(Job)
            .where(Job.batch_id == batch_id, Job.batch_index > after)
            .order_by(Job.batch_index)
            .limit(limit)
        )
        with self._session() as session:
            return [JobRecord.from_row(job) for job in session.scalars(query)]

    def cancel_batch(self, batch_id: str) -> BatchRecord:
        """Cancel the batch's children that have not ended: the queued ones at once, a
        chunk of them per transaction; the running ones are flagged for their executor
        (:meth:`request_cancel`'s way). Children that ended are left as they are."""
        with self._session(writes=True) as session:
            if session.scalar(select(Batch.id).where(Batch.id == batch_id)) is None:
                raise NotFound("batch", batch_id)
            # The children's rows before the batch's, in the order of a child's end (which
            # locks its batch's row once its own is locked): no deadlock between them.
            session.execute(
                update(Job)
                .where(Job.batch_id == batch_id, Job.status == JobStatus.RUNNING)
                .values(cancel_requested=True)
                .execution_options(synchronize_session=False)
            )
            batch = session.get(Batch, batch_id, with_for_update=True)
            if batch is None:
                raise NotFound("batch", batch_id)
            batch.cancel_requested = True
            batch.updated_at = _now()
        queued = (
            select(Job)
            .where(Job.batch_id == batch_id, Job.status == JobStatus.QUEUED)
            .limit(_BATCH_INSERT)
            .with_for_update(skip_locked=True)
        )
        cancelled = 0
        while True:
            with self._session(writes=True) as session:
                now = _now()
                jobs = session.scalars(queued).all()
                for job in jobs:
                    job.status = JobStatus.CANCELLED
                    job.cancel_requested = True
                    job.finished_at = now
                    job.updated_at = now
                    settle(session, job, now)
                    self.journal.count(session, job, "cancelled", now)
                if jobs:  # one batch event for the chunk
                    self.journal.child_ended(session, batch_id, None, now)
            cancelled += len(jobs)
            if len(jobs) < _BATCH_INSERT:
                break
        _log.info("batch cancelled", batch_id=batch_id, queued_cancelled=cancelled)
        return self.get_batch(batch_id)

    def retry_batch(
        self, batch_id: str, *, family: Collection[str] = (), max_queued: int | None = None
    ) -> tuple[BatchRecord, int]:
        """Queue again the children that failed (``failed`` and ``dead``), with their
        attempts afresh, in one transaction; how many. Children that failed at intake
        (no stored input) are left as they are. ``max_queued`` bounds the queued
        children of batches of ``family`` as :meth:`create_batch` does."""
        # A child that failed at intake has no stored input (no uri) to run again.
        failed = and_(
            Job.status.in_((JobStatus.FAILED, JobStatus.DEAD)),
            Job.input["uri"].as_string().is_not(None),
        )
        with self._session(writes=True) as session:
            batch = session.get(Batch, batch_id, with_for_update=True)
            if batch is None:
                raise NotFound("batch", batch_id)
            count = session.scalar(select(func.count()).where(Job.batch_id == batch_id, failed))
            if count and max_queued is not None:
                _admit_batch(session, family, count, max_queued)
            now = _now()
            if count:
                session.execute(
                    update(Job)
                    .where(Job.batch_id == batch_id, failed)
                    .values(
                        status=JobStatus.QUEUED,
                        attempts=0,
                        error=None,
                        result=None,
                        progress=0.0,
                        progress_message=None,
                        started_at=None,
                        finished_at=None,
                        run_after=None,
                        worker=None,
                        heartbeat_at=None,
                        cancel_requested=False,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                batch.cancel_requested = False
                batch.updated_at = now
            record = batch_state(session, batch)
            if count:
                data = batch_event_data(record) | {"retried": count}
                self.journal.record_batch(session, batch, "batch.retried", now, data)
        if count:
            _log.info("batch retried", batch_id=batch_id, jobs=count)
        return record, count or 0

    def list_batches(
        self,
        *,
        tenant: str | None = None,
        operation: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[Sequence[BatchRecord], str | None]:
        """One page of batches, newest first, each with its children counted, and the
        cursor of the next page (or None). ``tenant`` keeps that tenant's batches only
        (``ix_batches_tenant``); ``operation`` those of that operation."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query = select(Batch)
        if tenant is not None:
            query = query.where(Batch.tenant == tenant)
        if operation is not None:
            query = query.where(Batch.operation == operation)
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(Batch.created_at < at, and_(Batch.created_at == at, Batch.id < last_id))
            )
        query = query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit + 1)
        with self._session() as session:
            page = [batch_state(session, batch) for batch in session.scalars(query)]
        if len(page) <= limit:
            return page, None
        return page[:limit], _encode_cursor(page[limit - 1])

    def batch_events_after(
        self, batch_id: str, after: int, *, limit: int = 100
    ) -> tuple[str | None, Events]:
        """The kind of the batch's latest event (read first), and its events numbered
        above ``after`` (``limit`` at most), in order; :class:`NotFound` when there is no
        such batch."""
        query = (
            select(BatchEvent)
            .where(BatchEvent.batch_id == batch_id, BatchEvent.seq > after)
            .order_by(BatchEvent.seq)
            .limit(limit)
        )
        latest = (
            select(BatchEvent.kind)
            .where(BatchEvent.batch_id == batch_id)
            .order_by(BatchEvent.seq.desc())
            .limit(1)
        )
        with self._session() as session:
            if session.scalar(select(Batch.id).where(Batch.id == batch_id)) is None:
                raise NotFound("batch", batch_id)
            # The latest first: the events read next include it.
            kind = session.scalar(latest)
            return kind, [JobEventRecord.of_batch(row) for row in session.scalars(query)]

    def batch_by_key(self, key: str) -> BatchRecord | None:
        """The batch created under the idempotency ``key`` (as stored), if any."""
        with self._session() as session:
            query = select(Batch).where(Batch.idempotency_key == key)
            batch = session.scalars(query).one_or_none()
            return None if batch is None else batch_state(session, batch)

    # -- helpers ------------------------------------------------------------------

    def _transition(
        self,
        job_id: str,
        allowed: Collection[JobStatus],
        change: Callable[[Job, datetime], None],
        cost: JobCost | None = None,
        *,
        attempt_ended: bool = True,
    ) -> JobRecord:
        """Apply ``change`` to the job if its status is in ``allowed``; log it if so. A
        running job that the change moves on has its attempt recorded in its history,
        unless not ``attempt_ended``.

        The row is locked for the transaction, so the check and the change are
        one step. A job in another status is returned unchanged (and ``cost``, what
        the attempt used, is booked all the same: the CPU was spent).
        """
        now = _now()
        with self._session(writes=True) as session:
            job = _row(session, job_id, lock=True)
            changed = job.status in allowed
            if changed:
                # A job waiting for its parts runs nowhere: its attempt ended at the split.
                running = job.status == JobStatus.RUNNING and not job.children_pending
                running = running and attempt_ended
                worker = job.worker
                before = job.status
                change(job, now)
                job.updated_at = now
                if running and job.status != JobStatus.RUNNING:
                    _record_attempt(job, now, worker)
                if job.status != before:
                    self.journal.record(session, job, kind_of(job.status), now)
            settle(session, job, now, cost, ended=changed)
            record = JobRecord.from_row(job)
        if changed:
            _log_transition(record)
        return record

    def _requeue(
        self, condition: ColumnElement[bool], error: EngineFailed, now: datetime
    ) -> Records:
        """Retry or bury the running jobs matching ``condition`` after their executor died."""
        query = (
            select(Job)
            .where(Job.status == JobStatus.RUNNING, condition)
            .with_for_update(skip_locked=True)
        )
        with self._session(writes=True) as session:
            jobs = session.scalars(query).all()
            for job in jobs:
                job.error = error.to_dict()
                job.updated_at = now
                worker = job.worker
                _retry_or_bury(job, now, run_after=None)
                _record_attempt(job, now, worker)
                self.journal.record(session, job, kind_of(job.status), now)
                settle(session, job, now)
            records = [JobRecord.from_row(job) for job in jobs]
        for record in records:
            _log_transition(record)
        return records


def _admit(session: Session, tenant: str | None, max_active: int) -> None:
    """Raise :class:`ActiveJobsLimit` when ``tenant`` has ``max_active`` jobs queued or
    running (a batch with children unfinished counting as one); on PostgreSQL, first
    wait for the tenant's other admissions to commit."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(tenant or "")
        session.execute(select(func.pg_advisory_xact_lock(_ADMISSION_LOCK, key)))
    same_tenant = Job.tenant.is_(None) if tenant is None else Job.tenant == tenant
    unfinished = Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
    jobs = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(same_tenant, unfinished, Job.parent_id.is_(None), Job.batch_id.is_(None))
    )
    # A batch with children queued or running takes one place, whatever its size.
    batches = session.scalar(
        select(func.count(func.distinct(Job.batch_id))).where(
            same_tenant, unfinished, Job.batch_id.is_not(None)
        )
    )
    active = (jobs or 0) + (batches or 0)
    if active >= max_active:
        raise ActiveJobsLimit(active, max_active)


def _family_filter(
    query: Select[Any], parent_id: str | None, batch_id: str | None, *, include_parts: bool
) -> Select[Any]:
    """``query`` kept to one job's parts (``parent_id``) or one batch's children
    (``batch_id``); else to jobs that are neither, unless ``include_parts``."""
    if parent_id is not None:
        query = query.where(Job.parent_id == parent_id)
    elif not include_parts:
        query = query.where(Job.parent_id.is_(None))
    if batch_id is not None:
        return query.where(Job.batch_id == batch_id)
    if not include_parts and parent_id is None:
        query = query.where(Job.batch_id.is_(None))
    return query


def _delete_journal(session: Session, job_ids: Sequence[str]) -> None:
    """Delete the events and webhook deliveries of deleted jobs (in slices: a statement
    has a bounded number of parameters)."""
    for start in range(0, len(job_ids), 500):
        ids = list(job_ids[start : start + 500])
        for table in (JobEvent, WebhookDelivery):
            session.execute(
                delete(table)
                .where(table.job_id.in_(ids))
                .execution_options(synchronize_session=False)
            )


def _delete_batches(session: Session, batch_ids: Sequence[str]) -> None:
    """Delete the batches ``batch_ids``, their events and webhook deliveries (in slices)."""
    for start in range(0, len(batch_ids), 500):
        ids = list(batch_ids[start : start + 500])
        for statement in (
            delete(Batch).where(Batch.id.in_(ids)),
            delete(BatchEvent).where(BatchEvent.batch_id.in_(ids)),
            delete(WebhookDelivery).where(WebhookDelivery.batch_id.in_(ids)),
        ):
            session.execute(statement.execution_options(synchronize_session=False))


#: Input URIs looked up per statement (:meth:`JobStore.inputs_in_use`).
_URIS_AT_ONCE = 1000
#: Children of a batch inserted (or cancelled) per statement.
_BATCH_INSERT = 500


def _child_row(
    new: NewBatch, batch_id: str, index: int, stored: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The row of a batch's child ``index``: queued, or failed with the error its input
    carries (see :meth:`JobStore.create_batch`)."""
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "operation": new.operation,
        "params": new.params,
        "status": JobStatus.QUEUED,
        "priority": new.priority,
        "input": stored,
        "max_attempts": new.max_attempts,
        # A microsecond apart: claimed in the inputs' order.
        "created_at": now + timedelta(microseconds=index),
        "updated_at": now,
        "tenant": new.tenant,
        "key_id": new.key_id,
        "client": new.client,
        "trace": new.trace,
        "batch_id": batch_id,
        "batch_index": index,
    }
    if "error" in stored:
        taken = {key: value for key, value in stored.items() if key != "error"}
        row |= {
            "status": JobStatus.FAILED,
            "input": taken,
            "error": stored["error"],
            "finished_at": now,
        }
    return row


def _same_batch(existing: BatchRecord, new: NewBatch, digest: str) -> BatchRecord:
    if (
        existing.operation != new.operation
        or comparable(existing.params) != comparable(_as_stored(new.params))
        or existing.inputs_digest != digest
    ):
        raise Conflict(
            f"idempotency key '{_client_key(new.idempotency_key)}' was already used for "
            "another batch",
            batch_id=existing.id,
        )
    return existing


def _admit_batch(session: Session, family: Collection[str], count: int, max_queued: int) -> None:
    """Raise :class:`QueueFull` when ``count`` more children would pass ``max_queued``
    queued children of batches in the operations of ``family``."""
    queued = session.scalar(
        select(func.count()).where(
            Job.status == JobStatus.QUEUED,
            Job.batch_id.is_not(None),
            Job.operation.in_(sorted(family)),
        )
    )
    queued = queued or 0
    if queued + count > max_queued:
        raise QueueFull(
            f"{queued} files of batches wait in this family's queue and this batch has "
            f"{count}: more than the {max_queued} it takes (batches.max_queued_files); "
            "retry later, or send fewer files",
            retry_after=_BATCH_RETRY_AFTER,
            queued=queued,
            files=count,
            room=max(0, max_queued - queued),
        )


#: Seconds a batch refused for a full batch queue is told to wait.
_BATCH_RETRY_AFTER = 30


def _row(session: Session, job_id: str, *, lock: bool = False) -> Job:
    query = select(Job).where(Job.id == job_id)
    if lock:
        query = query.with_for_update()
    job = session.scalars(query).one_or_none()
    if job is None:
        raise NotFound("job", job_id)
    return job
