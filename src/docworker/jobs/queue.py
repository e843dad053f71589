"""Submitting, waiting for, cancelling and reading jobs: what the API and CLI call.

:class:`JobQueue` ties the job store, the blob store and the executor together.
Every entry point submits work through :meth:`JobQueue.submit`, so validation,
idempotency and metrics happen in one place whichever executor runs the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

import anyio.to_thread
import structlog

from docworker.auth import Principal, Scope
from docworker.config import QuotaSettings, WebhookSettings
from docworker.engines.breaker import Breakers, engines_of
from docworker.errors import (
    ActiveJobsLimit,
    Conflict,
    DependencyDown,
    DocworkerError,
    EngineUnavailable,
    Forbidden,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    error_from_dict,
)
from docworker.jobs.admission import ENGINE_TAG, Admission
from docworker.jobs.audit import RefusalLog
from docworker.jobs.backlog import FAMILY_OF
from docworker.jobs.events import JobEventBus
from docworker.jobs.journal import batch_key
from docworker.jobs.models import BatchRecord, BatchState, NewBatch
from docworker.jobs.results import StoredResult, read_payload
from docworker.jobs.retention import discard_job_data
from docworker.jobs.store import (
    MAX_PAGE_SIZE,
    TERMINAL_STATUSES,
    JobRecord,
    JobStatus,
    JobStore,
    NewJob,
    ServedResult,
)
from docworker.jobs.usage import Quotas
from docworker.jobs.webhooks import WebhookRequest
from docworker.metrics import ADMISSION_REFUSALS, JOBS_SUBMITTED
from docworker.operations import dump_params, get_operation, validate_params
from docworker.result_cache import CACHE_KEY, CachedResult, ResultCache
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore, StoredBlob
from docworker.tracing import job_carrier, note_job, set_attributes, tracer

if TYPE_CHECKING:
    from docworker.flags import Flags

log = structlog.get_logger(__name__)


class Executor(Protocol):
    """Runs queued jobs: ``queued`` hands it a job just queued in the store, ``cancelled``
    a job whose cancellation was asked for; ``queued_many`` and ``cancelled_many`` the
    same for the children of a batch (read from the store only by an executor that needs
    them one by one)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def queued(self, record: JobRecord) -> None:
        """Raises :class:`~docworker.errors.DependencyDown` when the job cannot be handed
        over (a broker down): the job is withdrawn and the submission refused."""

    def cancelled(self, record: JobRecord) -> None: ...

    def queued_many(self, records: Iterable[JobRecord]) -> None:
        """Raises :class:`~docworker.errors.DependencyDown` when they cannot all be
        handed over."""

    def cancelled_many(self, records: Iterable[JobRecord]) -> None: ...


@dataclass(frozen=True)
class JobInput:
    blob: StoredBlob
    name: str | None = None
    mime: str | None = None
    #: What a v1 route recorded about the upload and the request (v1's job ``payload``),
    #: kept with the input so that ``/api/v1/job/:id`` can answer it. Operations ignore it.
    v1: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "uri": self.blob.uri,
            "sha256": self.blob.sha256,
            "size": self.blob.size,
            "name": self.name,
            "mime": self.mime,
        }
        if self.v1 is not None:
            stored["v1"] = self.v1
        return stored


#: The priorities a job may be given (higher runs first; see :class:`~docworker.jobs.backlog.Band`).
MIN_PRIORITY, MAX_PRIORITY = -100, 100


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead jobs a listing or a replay takes: by operation, by the ``code`` of
    their error, and by when they died (``finished_after`` inclusive,
    ``finished_before`` exclusive)."""

    operation: str | None = None
    error_code: str | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None


#: How often a waiter re-reads the store even without an in-process event, so jobs
#: finished elsewhere (another replica, a remote worker) are seen.
STORE_POLL = 1.0


def _scoped_key(key: str | None, caller: Principal) -> str | None:
    """An idempotency key in the caller's tenant, so tenants never meet each other's keys."""
    if key is None or caller.tenant is None:
        return key
    scoped = f"{caller.tenant}\x1f{key}"
    if len(scoped) > 255:  # the column's width: a long key is kept by its digest
        scoped = f"{caller.tenant}\x1f{hashlib.sha256(key.encode()).hexdigest()}"
    return scoped


class JobQueue:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobStore,
        executor: Executor | None,
        events: JobEventBus,
        *,
        max_attempts: int,
        keys: SecretKeys,
        admission: Admission | None = None,
        quotas: QuotaSettings | None = None,
        refusals: RefusalLog | None = None,
        max_active_jobs: int | None = None,
        breakers: Breakers | None = None,
        cache: ResultCache | None = None,
        webhooks: WebhookSettings | None = None,
        max_queued_batch_files: int | None = None,
        flags: Flags | None = None,
    ) -> None:
        """``flags``: the feature flags that decide, per caller, what a request leaves to
        them and whether an operation is open to it (None: the operations' defaults).
        ``admission``: the checks a job passes before it is queued (free disk, engine
        queues); None queues every valid job. ``max_active_jobs``: jobs a tenant may
        have queued or running at once unless its key says (None: no cap).
        ``breakers``: the engines' circuit breakers, shared with the executor of this
        process; a job needing an engine whose breaker is open is refused (None: no
        breaker is asked)."""
        self.store = store
        self.blobs = blobs
        self.executor = executor
        self.events = events
        self.max_attempts = max_attempts
        #: Seals the secret parameters of every job submitted.
        self.keys = keys
        self.admission = admission
        #: Default daily quotas of API keys (a key's own limits take precedence).
        self.quotas = quotas or QuotaSettings()
        self.refusals = refusals
        #: Jobs a tenant may have queued or running at once, unless its key says.
        self.max_active_jobs = max_active_jobs
        self.breakers = breakers
        #: The result cache looked up before a job is queued (None: no cache).
        self.cache = cache
        #: How a job's own webhook is checked (its URL guard, the default secret).
        self.webhooks = webhooks or WebhookSettings()
        #: Children of batches that may wait in one family's queue (None: no bound).
        self.max_queued_batch_files = max_queued_batch_files
        self.flags = flags

    def submit(
        self,
        operation: str,
        params: dict[str, Any],
        job_input: JobInput,
        *,
        caller: Principal,
        priority: int = 0,
        idempotency_key: str | None = None,
        others: Sequence[JobInput] = (),
        use_cache: bool = True,
        webhook: WebhookRequest | None = None,
    ) -> tuple[JobRecord, bool]:
        """Validate, admit and queue a job for ``caller``; returns the job and whether it
        is new. Every operation reads an input file (``Operation.run`` takes one), so
        ``job_input`` is required; ``others`` are the job's further input files, after it.
        Refused with :class:`~docworker.errors.ServiceDraining`,
        :class:`~docworker.errors.InsufficientStorage` or
        :class:`~docworker.errors.QueueFull` by the admission checks (``priority`` decides
        how much of its family's queue it may fill), and with
        :class:`~docworker.errors.ActiveJobsLimit` when the caller's tenant has as many
        jobs queued or running as its cap allows (the key's ``max_active_jobs``, else the
        configured one).

        A job of an API key counts against the key's daily quotas; when one is spent
        it is refused with :class:`QuotaExceeded` (429) and not queued. A job sent again
        under an idempotency key already used passes no admission check: it is the job
        made the first time (or a :class:`Conflict` when the request differs).

        A job that needs an engine whose circuit breaker is open (known from the operation
        and, after admission, the input) is refused with
        :class:`~docworker.errors.EngineUnavailable` (503) and not queued.

        A job whose result the result cache holds (unless ``use_cache`` is false) passes
        no admission check either: it is created ``succeeded``, marked ``cached``, with a
        copy of that result, and runs nowhere. Otherwise its key is recorded with its
        input (``cache_key``), for the worker to keep its result.

        ``webhook``: the job's own webhook, refused with
        :class:`~docworker.errors.InvalidParameter` when its URL, events or secret are
        not acceptable (:meth:`WebhookRequest.checked`)."""
        attributes: dict[str, str | int] = {
            "docworker.operation": operation,
            "docworker.input.bytes": job_input.blob.size,
        }
        with tracer.start_as_current_span("job submit", attributes=attributes) as span:
            op = get_operation(operation)
            caller.require_submit(operation)
            if self.flags is not None:
                params = self.flags.decide(operation, params, caller)
            checked = validate_params(op, params)
            hook = webhook.checked(self.webhooks, self.keys) if webhook is not None else None
            stored = job_input.as_dict()
            if others:
                stored["others"] = [other.as_dict() for other in others]
            dumped = dump_params(checked, self.keys)
            key = _scoped_key(idempotency_key, caller)
            # A job sent again under its idempotency key is not new work: it is answered
            # (by the store) however full the queue is, and not from the cache.
            known = key is not None and self.store.by_idempotency_key(key) is not None
            hit = None
            if use_cache:
                files = [job_input, *others]
                hit = self._cached(operation, dumped, files, stored, caller, look=not known)
            new_work = not known and hit is None
            if self.admission is not None and new_work:
                hints = {"name": job_input.name, "mime": job_input.mime}
                with tracer.start_as_current_span("job admission"):
                    engine = self.admission.admit(op, checked, job_input.blob, priority, **hints)
                if engine is not None:
                    stored[ENGINE_TAG[0]] = engine.value
            if self.breakers is not None and new_work:
                self.breakers.check(engines_of(operation, stored))
            new = NewJob(
                operation=operation,
                params=dumped,
                input=stored,
                priority=priority,
                idempotency_key=key,
                max_attempts=self.max_attempts,
                tenant=caller.tenant,
                key_id=caller.key_id,
                client=caller.client,
                webhook=hook,
                trace=job_carrier(),
            )
            served = self._restore(hit) if hit is not None else None
            try:
                record, created = self._create(new, caller, served)
            except BaseException:
                if served is not None:
                    self._discard_result(served.job_id)
                raise
            if served is not None and not created:  # another request of the key came first
                self._discard_result(served.job_id)
            note_job(record.id)
            if created:
                self._created(record, cached=served is not None)
            set_attributes(
                span, **{"job.id": record.id, "job.created": created, "job.cached": record.cached}
            )
            return record, created

    def _created(self, record: JobRecord, *, cached: bool) -> None:
        """A new job: one made from the cache (succeeded) is heard of by its waiters and
        runs nowhere; another is handed to the executor, and withdrawn when it cannot be
        (:class:`DependencyDown`, raised again: a broker down)."""
        if cached:
            self.events.publish(record.id, record)
        elif self.executor is not None:
            try:
                self.executor.queued(record)
            except DependencyDown:
                self._withdraw(record)
                raise
        JOBS_SUBMITTED.labels(record.operation).inc()

    def _cached(
        self,
        operation: str,
        dumped: dict[str, Any],
        files: Sequence[JobInput],
        stored: dict[str, Any],
        caller: Principal,
        *,
        look: bool,
    ) -> CachedResult | None:
        """The result the cache holds for the job of ``files``, when ``look``; its cache
        key is recorded in its ``stored`` input either way, for the worker to keep its
        result (none without a cache)."""
        if self.cache is None:
            return None
        described = [file.as_dict() for file in files]
        cache_key = self.cache.key(operation, dumped, described, caller.tenant)
        if cache_key is None:
            return None
        stored[CACHE_KEY] = cache_key
        return self.cache.get(cache_key) if look else None

    def _create(
        self, new: NewJob, caller: Principal, served: ServedResult | None
    ) -> tuple[JobRecord, bool]:
        """Insert the job (see :meth:`JobStore.create`), the refusals counted."""
        try:
            return self.store.create(
                new,
                quotas=Quotas.of(caller.limits, self.quotas),
                max_active=caller.limits.get("max_active_jobs") or self.max_active_jobs,
                served=served,
            )
        except ActiveJobsLimit:
            ADMISSION_REFUSALS.labels("active_jobs", get_operation(new.operation).queue.value).inc()
            raise
        except (QuotaExceeded, PayloadTooLarge) as exc:
            if self.refusals is not None:
                status = 429 if isinstance(exc, QuotaExceeded) else 413
                self.refusals.quota_exceeded(caller, exc, status, operation=new.operation)
            raise

    def _restore(self, hit: CachedResult) -> ServedResult | None:
        """The cached result written for a new job; None when the blob store refuses it
        (the job then runs as if nothing was cached)."""
        job_id = str(uuid.uuid4())
        try:
            ref = hit.restore(self.blobs, job_id)
        except DocworkerError as exc:
            log.warning("cached result not restored", job_id=job_id, error=exc.detail)
            return None
        return ServedResult(job_id=job_id, result=ref, pages=hit.pages)

    def _discard_result(self, job_id: str) -> None:
        with contextlib.suppress(DocworkerError, OSError):
            self.blobs.delete(BlobStore.results_of(job_id))

    def submit_batch(
        self,
        operation: str,
        params: dict[str, Any],
        inputs: Collection[dict[str, Any]],
        *,
        caller: Principal,
        priority: int = 0,
        idempotency_key: str | None = None,
        webhook: WebhookRequest | None = None,
    ) -> tuple[BatchRecord, bool]:
        """Validate, admit and queue a batch: one child job of ``operation`` with
        ``params`` per stored input (:meth:`JobInput.as_dict`), in order; returns the
        batch and whether it is new.

        The batch is admitted as a whole, never child by child (see docs/batches.md):
        the drain and the disk floor as for a job; its family's queue as one submission
        of ``priority`` (a full family refuses the batch, its children then not counted
        in that queue: they wait in a queue of their own); that queue's bound
        (``batches.max_queued_files``, the children of every batch of the family); the
        tenant's cap on active jobs (the batch takes one place) and the key's quotas
        (one request of all the bytes). Engine queues are not checked per child: a
        batch's children wait in the job store, not at the engine.

        ``webhook``: the batch's own webhook (:meth:`WebhookRequest.for_batch`), checked
        as a job's (:class:`InvalidParameter` naming the field at fault)."""
        op = get_operation(operation)
        caller.require_submit(operation)
        if self.flags is not None:
            params = self.flags.decide(operation, params, caller)
        checked = validate_params(op, params)
        hook = webhook.checked(self.webhooks, self.keys) if webhook is not None else None
        key = _scoped_key(idempotency_key, caller)
        if self.admission is not None and (key is None or not self.store.batch_by_key(key)):
            self.admission.admit(op, checked, None, priority)
        family = [name for name, queue in FAMILY_OF.items() if queue == op.queue]
        new = NewBatch(
            operation=operation,
            params=dump_params(checked, self.keys),
            priority=priority,
            idempotency_key=key,
            max_attempts=self.max_attempts,
            tenant=caller.tenant,
            key_id=caller.key_id,
            client=caller.client,
            webhook=hook,
            trace=job_carrier(),
        )
        try:
            record, created = self.store.create_batch(
                new,
                inputs,
                family=family,
                max_queued=self.max_queued_batch_files,
                quotas=Quotas.of(caller.limits, self.quotas),
                max_active=caller.limits.get("max_active_jobs") or self.max_active_jobs,
            )
        except ActiveJobsLimit:
            ADMISSION_REFUSALS.labels("active_jobs", op.queue.value).inc()
            raise
        except (QuotaExceeded, PayloadTooLarge) as exc:
            if self.refusals is not None:
                status = 429 if isinstance(exc, QuotaExceeded) else 413
                self.refusals.quota_exceeded(caller, exc, status, operation=operation)
            raise
        if created:
            if self.executor is not None:
                try:
                    self.executor.queued_many(self._children(record.id, JobStatus.QUEUED))
                except DependencyDown:
                    # Its children not all handed over: none is left to run.
                    self.store.cancel_batch(record.id)
                    raise
            JOBS_SUBMITTED.labels(operation).inc(record.total)
        return record, created

    def _children(self, batch_id: str, status: JobStatus) -> Iterator[JobRecord]:
        """The batch's children in ``status``, read from the store a page at a time."""
        after = -1
        while page := self.store.batch_children(batch_id, after=after, limit=MAX_PAGE_SIZE):
            yield from (child for child in page if child.status == status)
            after = page[-1].batch_index if page[-1].batch_index is not None else after + 1

    def batch(self, batch_id: str, caller: Principal) -> BatchRecord:
        """The batch, if ``caller`` may read it; another tenant's does not exist for it."""
        caller.require_read()
        return self.visible_batch(batch_id, caller)

    def visible_batch(self, batch_id: str, caller: Principal) -> BatchRecord:
        record = self.store.get_batch(batch_id)
        if not caller.sees(record.tenant):
            raise NotFound("batch", batch_id)
        return record

    async def wait_batch(self, record: BatchRecord, timeout: float) -> BatchRecord:
        """The batch once it has ended (no child queued or running), or as it stands when
        ``timeout`` seconds have passed. Wakes on the batch's events on the bus, and
        reads the store at least every :data:`STORE_POLL` seconds."""
        deadline = time.monotonic() + timeout
        with self.events.subscribe(batch_key(record.id)) as events:
            while True:
                remaining = deadline - time.monotonic()
                if record.state is not BatchState.RUNNING or remaining <= 0:
                    return record
                await events.wait(min(remaining, STORE_POLL))
                record = await anyio.to_thread.run_sync(self.store.get_batch, record.id)

    def cancel_batch(self, batch_id: str, caller: Principal) -> BatchRecord:
        """Cancel the batch's children that have not ended (see
        :meth:`JobStore.cancel_batch`); a key that may submit its operation may."""
        current = self.visible_batch(batch_id, caller)
        caller.require_submit(current.operation)
        record = self.store.cancel_batch(batch_id)
        if self.executor is not None:
            self.executor.cancelled_many(self._children(batch_id, JobStatus.RUNNING))
        return record

    def retry_batch(self, batch_id: str, caller: Principal) -> tuple[BatchRecord, int]:
        """Queue the batch's failed children again; how many. The drain and the disk
        floor are checked first, and the batch queue's bound in the store."""
        current = self.visible_batch(batch_id, caller)
        caller.require_submit(current.operation)
        if self.admission is not None:
            self.admission.drain.check()
            self.admission.disk.check()
        op = get_operation(current.operation)
        family = [name for name, queue in FAMILY_OF.items() if queue == op.queue]
        record, count = self.store.retry_batch(
            batch_id, family=family, max_queued=self.max_queued_batch_files
        )
        if count and self.executor is not None:
            try:
                self.executor.queued_many(self._children(batch_id, JobStatus.QUEUED))
            except DependencyDown as exc:
                log.error(
                    "batch queued again but not handed over", batch_id=batch_id, error=exc.detail
                )
        return record, count

    def _withdraw(self, record: JobRecord) -> None:
        """Delete a job its executor could not be handed (it never ran), with its input
        files no other job names, so that the refused request leaves nothing behind and
        its idempotency key is free for the retry."""
        self.store.request_cancel(record.id)
        deleted = self.store.delete_job(record.id)
        if deleted:
            discard_job_data(self.store, self.blobs, deleted)

    def get(self, job_id: str, caller: Principal) -> JobRecord:
        """The job, if ``caller`` may read it; another tenant's job does not exist for it."""
        caller.require_read()
        return self.visible(job_id, caller)

    def visible(self, job_id: str, caller: Principal) -> JobRecord:
        """The job, if it belongs to ``caller``'s tenant (any job for an admin)."""
        record = self.store.get(job_id)
        if not caller.sees(record.tenant):
            raise NotFound("job", job_id)
        return record

    def cancel(self, job_id: str, caller: Principal) -> JobRecord:
        """Cancel the job; a key that may submit the job's operation may cancel it."""
        current = self.visible(job_id, caller)
        caller.require_submit(current.operation)
        record = self.store.request_cancel(job_id)
        if self.executor is not None:
            self.executor.cancelled(record)
        if record.status in TERMINAL_STATUSES:
            self.events.publish(job_id)
        return record

    def retry(self, job_id: str, caller: Principal, attempts: int) -> JobRecord:
        """Queue a ``dead`` or ``failed`` job again with ``attempts`` more attempts (see
        :meth:`JobStore.retry`); a key that may submit the job's operation may retry it.
        Refused with :class:`~docworker.errors.EngineUnavailable` while the breaker of an
        engine the job needs is open, and with :class:`Conflict` for a job in another
        state or a part of a split job."""
        current = self.visible(job_id, caller)
        caller.require_submit(current.operation)
        if self.breakers is not None:
            self.breakers.check(engines_of(current.operation, current.input))
        record = self.store.retry(job_id, attempts=attempts)
        self._hand_over([record])
        return record

    def replay(
        self, caller: Principal, filters: DeadLetterFilter, limit: int, attempts: int
    ) -> tuple[list[JobRecord], bool]:
        """Queue again up to ``limit`` dead jobs of the caller's tenant matching
        ``filters``, newest first, each with ``attempts`` more attempts; returns them and
        whether more dead jobs match. Without ``filters.operation`` the caller needs the
        ``submit`` scope (or ``admin``); with it, may submit that operation. Jobs that
        need an engine whose breaker is open are left dead (not counted)."""
        if filters.operation is not None:
            caller.require_submit(filters.operation)
        elif not (caller.is_admin or Scope.SUBMIT in caller.scopes):
            raise Forbidden(
                "this API key may not replay every operation's dead jobs: it lacks the "
                "'submit' scope (name an 'operation' it may submit)"
            )
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        records, more = self._dead(caller, filters, limit, None)
        replayed = []
        for record in records:
            if self.breakers is not None:
                try:
                    self.breakers.check(engines_of(record.operation, record.input))
                except EngineUnavailable:
                    continue
            try:
                replayed.append(self.store.retry(record.id, attempts=attempts))
            except (Conflict, NotFound):
                continue  # retried, purged or cancelled meanwhile
        self._hand_over(replayed)
        return replayed, more is not None

    def _hand_over(self, records: Sequence[JobRecord]) -> None:
        """Hand jobs queued again (a retry, a replay) to the executor. They stay queued
        in the store when it cannot take them (a broker down): logged, not refused, as
        the store's change is made."""
        if self.executor is None:
            return
        for record in records:
            try:
                self.executor.queued(record)
            except DependencyDown as exc:
                log.error(
                    "job queued again but not handed over", job_id=record.id, error=exc.detail
                )

    def dead_letters(
        self, caller: Principal, filters: DeadLetterFilter, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        """One page of the caller's tenant's ``dead`` jobs (every tenant's for an admin)
        matching ``filters``, newest first, and the cursor of the next page."""
        caller.require_read()
        return self._dead(caller, filters, limit, cursor)

    def _dead(
        self, caller: Principal, filters: DeadLetterFilter, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        return self.store.list(
            status=[JobStatus.DEAD],
            operation=filters.operation,
            error_code=filters.error_code,
            finished_after=filters.finished_after,
            finished_before=filters.finished_before,
            limit=limit,
            cursor=cursor,
            tenant=caller.visible_tenant,
        )

    async def purge(self, job_id: str, caller: Principal, timeout: float) -> None:
        """Delete a job and everything it holds: its row, its parts, its results and
        artifacts, and its input files no other job names. A job that has not ended is
        cancelled first, and waited for (``timeout`` seconds at most) until it and its
        parts have stopped; :class:`Conflict` if they are still stopping then, or when
        ``job_id`` is a part of another job (delete that one). A key that may submit the
        job's operation may delete it."""
        deadline = time.monotonic() + timeout
        current = await anyio.to_thread.run_sync(self.visible, job_id, caller)
        caller.require_submit(current.operation)
        deleted = await anyio.to_thread.run_sync(self.store.delete_job, job_id)
        if deleted is None:
            await anyio.to_thread.run_sync(self.cancel, job_id, caller)
            while (
                deleted := await anyio.to_thread.run_sync(self.store.delete_job, job_id)
            ) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Conflict(
                        f"job {job_id} was cancelled and has not stopped yet: delete it "
                        "again in a moment",
                        job_id=job_id,
                    )
                await self.events.wait(job_id, min(remaining, STORE_POLL))
        await anyio.to_thread.run_sync(
            discard_job_data, self.store, self.blobs, deleted, self.cache
        )

    async def wait(
        self, job_id: str, timeout: float, *, known: JobRecord | None = None
    ) -> JobRecord:
        """The job once it has ended, or as it stands when ``timeout`` seconds have passed,
        or at once while the service drains and the job is still queued (this service
        will not start it: the caller is told where to find it instead of held).
        ``known``: the job as the caller just had it from the store (it is not read
        again first)."""
        deadline = time.monotonic() + timeout
        with self.events.subscribe(job_id) as events:
            record = known if known is not None else await self._read(job_id)
            while True:
                remaining = deadline - time.monotonic()
                if record.status in TERMINAL_STATUSES or remaining <= 0 or self._left(record):
                    return record
                published = await events.wait(min(remaining, STORE_POLL))
                if published and events.record is not None:
                    record = events.record
                else:
                    record = await self._read(job_id)

    async def _read(self, job_id: str) -> JobRecord:
        return await anyio.to_thread.run_sync(self.store.get, job_id)

    def _left(self, record: JobRecord) -> bool:
        """Whether the service drains and leaves ``record`` queued for later."""
        draining = self.admission is not None and self.admission.drain.active
        return draining and record.status == JobStatus.QUEUED

    def artifact(self, record: JobRecord, name: str) -> tuple[dict[str, Any], IO[bytes]]:
        """A file the job made beside its result (its ``artifacts`` entry, and a stream)."""
        listed = self.result_ref(record).get("artifacts") or []
        entry = next((a for a in listed if a.get("name") == name), None)
        if entry is None:
            raise NotFound("artifact", name)
        return entry, self.blobs.open(entry["uri"])

    def result_ref(self, record: JobRecord) -> dict[str, Any]:
        """Where the result of a finished job lies (see :mod:`docworker.jobs.results`); the
        job's own error when it failed, :class:`Conflict` when it has not finished."""
        if record.status in {JobStatus.SUCCEEDED, JobStatus.PARTIAL} and record.result:
            return record.result
        if record.error and record.status in {JobStatus.FAILED, JobStatus.DEAD}:
            raise error_from_dict(record.error)
        raise Conflict(
            f"job {record.id} has no result: it is {record.status}", job_status=record.status
        )

    def stored(self, record: JobRecord) -> StoredResult:
        """The finished job's stored result, to stream
        (:class:`~docworker.jobs.results.JsonAnswer`)."""
        return StoredResult.of(self.result_ref(record))

    def result(self, record: JobRecord, max_bytes: int | None = None) -> dict[str, Any]:
        """The result payload of a finished job, loaded whole; the job's own error when it
        failed. With ``max_bytes``, a result stored larger (its JSON and text content
        together) is refused with :class:`LimitExceeded` before anything is read: the
        API loads results only to reshape them, within ``server.max_loaded_result_bytes``,
        and streams them otherwise."""
        ref = self.result_ref(record)
        size = StoredResult.of(ref).total_size
        if max_bytes is not None and size > max_bytes:
            raise LimitExceeded(
                "stored result bytes",
                size,
                max_bytes,
                f"the result of job {record.id} is {size:,} bytes, more than is loaded whole "
                f"to reshape it ({max_bytes:,}, server.max_loaded_result_bytes): fetch it "
                f"from /api/v2/jobs/{record.id}/result, which streams it",
            )
        return read_payload(self.blobs, ref)
