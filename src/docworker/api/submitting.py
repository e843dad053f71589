"""How a route submits jobs for the client in front of it, and waits for them.

Every route that submits a job takes :data:`JobClientDep`: the caller, the
``Idempotency-Key`` header it may have sent, and the request's connection.

* **Retries.** A client that sends a key may send the same request again after a
  network error or a server crash and get the same job, not a second one: the job
  store keeps one job per key and caller's tenant (:meth:`JobQueue.submit
  <docworker.jobs.queue.JobQueue.submit>`), and answers the job made before when the
  operation, parameters and input files are the same, or 409 when they are not. A sync
  route then waits for that job as for a new one, so a job that has ended answers at
  once (its result, file or error) and one still running is waited for, with the same
  ``wait`` rules.
* **Clients that leave.** While a route waits, the connection is watched: once the
  body is read, the ASGI ``receive`` channel has nothing more to say until the client
  goes, when it says ``http.disconnect``. A client gone before it was answered never
  learnt the job's id, so nobody would come for the result: the job is cancelled.
  A job submitted with a key is kept, since its client said it would come back for it.
  The cancel runs shielded, so it happens even while the request's own task is being
  torn down (a server that cancels the request on disconnect, a shutdown). A wait that
  runs out answers 202 with the job: that client has the id, and the job stays.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
import structlog
from fastapi import Depends, Form, Header, Query, Request
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from docworker.api.auth import CallerDep
from docworker.api.deps import Services
from docworker.api.routing import QUEUE_EXTENSION
from docworker.api.schemas import IDEMPOTENCY_KEY_LENGTH, WEBHOOK_SIGNING, WEBHOOK_URL
from docworker.auth import Principal
from docworker.errors import DocworkerError, InvalidParameter
from docworker.jobs.queue import MAX_PRIORITY, MIN_PRIORITY, JobInput, JobQueue
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord
from docworker.jobs.webhooks import MAX_URL_LENGTH, WebhookRequest
from docworker.metrics import SYNC_REQUEST_DURATION
from docworker.operations import OPERATIONS

log = structlog.get_logger(__name__)

T = TypeVar("T")

IDEMPOTENCY_HEADER = "Idempotency-Key"

#: The ``Idempotency-Key`` request header, as every submitting route documents it.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_LENGTH,
        description="Makes the request safe to retry. A request with a key this caller "
        "(its tenant) has used before answers the job that key made instead of running "
        "another: its answer at once when it has ended, else it is waited for as the first "
        "request did; 409 when the operation, parameters or files differ. A synchronous "
        "request's job is cancelled when its client disconnects before the answer, unless "
        "it was sent with a key.",
    ),
]


#: The ``priority`` query parameter, as every submitting route documents it.
PriorityQuery = Annotated[
    int | None,
    Query(
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="The job's priority (higher runs first), as the `priority` field of "
        "the body gives it; given here, it is known before the body is read, so that a "
        "request to a full queue is refused (429) without sending its file for nothing, "
        "and one of high priority is let into the places kept for it. When both are "
        "given they must agree.",
    ),
]


@dataclass(frozen=True)
class JobClient:
    """The client a route submits jobs for: who it is, its idempotency key, the priority
    its query gives, and the request's ``receive`` channel, on which it is heard
    leaving."""

    caller: Principal
    idempotency_key: str | None
    receive: Receive
    #: The ``priority`` query parameter (:data:`PriorityQuery`), if given.
    priority: int | None = None
    #: The queue the route declares its jobs wait in (:func:`~docworker.api.routing.feeds`).
    queue: str | None = None
    #: Whether the result cache may answer the client's jobs and keep their results.
    use_cache: bool = True

    def priority_of(self, given: int) -> int:
        """The job's priority: the query's when it has one, else ``given`` (the body's,
        0 when it gives none); 422 when the two differ."""
        if self.priority is None:
            return given
        if given not in (0, self.priority):
            raise InvalidParameter(
                "priority",
                f"the query says {self.priority} and the body {given}: give one, or the same",
            )
        return self.priority

    #: The webhook its jobs announce their events to (a v2 route's ``webhook_*`` fields).
    webhook: WebhookRequest | None = None

    def key(self, part: str | None = None) -> str | None:
        """The idempotency key of the client's job; ``part`` tells apart the jobs one
        request submits (a v1 batch's files), each keyed by the client's key and it."""
        if self.idempotency_key is None or part is None:
            return self.idempotency_key
        return f"{self.idempotency_key}#{hashlib.sha256(part.encode()).hexdigest()[:32]}"

    async def submit(
        self,
        queue: JobQueue,
        operation: str,
        params: dict[str, Any],
        job_input: JobInput,
        *,
        priority: int = 0,
        others: Sequence[JobInput] = (),
        part: str | None = None,
    ) -> JobRecord:
        """Submit the job, or find the one the client's key made (see the module)."""
        priority = self.priority_of(priority)
        # The intake guard refuses the route's requests when this queue is full.
        assert self.queue in (None, OPERATIONS[operation].queue.value), (operation, self.queue)
        record, _ = await anyio.to_thread.run_sync(
            lambda: queue.submit(
                operation,
                params,
                job_input,
                caller=self.caller,
                priority=priority,
                idempotency_key=self.key(part),
                others=others,
                use_cache=self.use_cache,
                webhook=self.webhook,
            )
        )
        return record

    async def wait(self, queue: JobQueue, record: JobRecord, timeout: float) -> JobRecord:
        """The job once it has ended, or as it stands after ``timeout`` seconds; raises
        :class:`ClientDisconnect` when the client leaves first (see :meth:`attend`)."""
        return await self.attend(
            queue, [record.id], lambda: queue.wait(record.id, timeout, known=record)
        )

    async def attend(
        self, queue: JobQueue, job_ids: Sequence[str], waiting: Callable[[], Awaitable[T]]
    ) -> T:
        """What ``waiting`` returns, awaited while the client is there. When it leaves
        first, or the request's task is cancelled, the jobs ``job_ids`` are abandoned
        (cancelled, unless the client sent a key) and :class:`ClientDisconnect` (or the
        cancellation) is raised."""
        outcome: list[T] = []
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._hear_leave, group.cancel_scope)
                try:
                    outcome.append(await waiting())
                except Exception as exc:  # noqa: BLE001 - raised below as it is, not in a group
                    failure = exc
                group.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            await self._abandon(queue, job_ids)
            raise
        if failure is not None:
            raise failure
        if not outcome:
            await self._abandon(queue, job_ids)
            raise ClientDisconnect
        return outcome[0]

    async def _hear_leave(self, scope: anyio.CancelScope) -> None:
        """Return once the client has gone, cancelling ``scope`` (the wait). The body has
        been read: anything else on the channel is an empty end of it."""
        try:
            while (await self.receive())["type"] != "http.disconnect":
                pass
        except Exception as exc:  # noqa: BLE001 - unreadable: the wait goes on unwatched
            log.warning("the client's connection cannot be watched", error=repr(exc))
            return
        scope.cancel()

    async def _abandon(self, queue: JobQueue, job_ids: Sequence[str]) -> None:
        """The client left without its answer: cancel its jobs, unless it sent a key."""
        if self.idempotency_key is not None:
            log.info("client left: its jobs are kept for its key", job_ids=list(job_ids))
            return
        with anyio.CancelScope(shield=True):
            for job_id in job_ids:
                try:
                    await anyio.to_thread.run_sync(queue.cancel, job_id, self.caller)
                except DocworkerError as exc:  # gone already (purged): nothing to stop
                    log.warning(
                        "job of a client that left not cancelled", job_id=job_id, error=exc.detail
                    )
                else:
                    log.info("client left: its job is cancelled", job_id=job_id)


#: The ``cache`` query parameter, as every submitting route documents it.
CacheQuery = Annotated[
    bool,
    Query(
        alias="cache",
        description="false: the result cache neither answers this request nor keeps its "
        "result; the job runs on a worker whatever was kept before.",
    ),
]


async def job_client(
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
    priority: PriorityQuery = None,
    use_cache: CacheQuery = True,
) -> JobClient:
    """The route's :class:`JobClient` (a FastAPI dependency: it documents the header and
    the ``priority`` and ``cache`` query parameters)."""
    route = request.scope.get("route")
    queue = (getattr(route, "openapi_extra", None) or {}).get(QUEUE_EXTENSION)
    return JobClient(
        caller,
        idempotency_key,
        request.receive,
        priority=priority,
        queue=queue,
        use_cache=use_cache,
    )


JobClientDep = Annotated[JobClient, Depends(job_client)]


async def v1_job_client(
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyHeader = None,
    use_cache: CacheQuery = True,
) -> JobClient:
    """The :class:`JobClient` of a v1 route, whose jobs all have the default priority."""
    return JobClient(caller, idempotency_key, request.receive, use_cache=use_cache)


V1JobClientDep = Annotated[JobClient, Depends(v1_job_client)]


async def job_client_with_webhook(
    client: JobClientDep,
    webhook_url: Annotated[
        str | None, Form(max_length=MAX_URL_LENGTH, description=WEBHOOK_URL)
    ] = None,
    webhook_events: Annotated[
        str | None,
        Form(
            description="The events sent to webhook_url, separated by commas (default: the "
            "final ones: succeeded, partial, failed, cancelled, dead).",
            examples=["started,succeeded,failed"],
        ),
    ] = None,
    webhook_secret: Annotated[str | None, Form(max_length=200, description=WEBHOOK_SIGNING)] = None,
) -> JobClient:
    """A v2 route's :class:`JobClient` with the webhook its form names, if any (a FastAPI
    dependency: it documents the fields; docs/events.md)."""
    webhook = WebhookRequest.of_form(webhook_url, webhook_events, webhook_secret)
    return replace(client, webhook=webhook) if webhook is not None else client


#: The client of a v2 route that takes a form: it may name a webhook for its job.
JobClientWithWebhookDep = Annotated[JobClient, Depends(job_client_with_webhook)]


async def submit_and_wait(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    job_input: JobInput,
    wait: float | None,
    priority: int,
    others: Sequence[JobInput] = (),
) -> JobRecord:
    """Submit the job for ``client`` (``others``: its further input files) and wait up
    to ``wait`` seconds (the server's default when None, capped by its longest) for it
    to end, while the client is there."""
    queue = services.queue
    started = time.perf_counter()
    record = await client.submit(
        queue, operation, params, job_input, priority=priority, others=others
    )
    server = services.settings.server
    timeout = server.default_wait if wait is None else wait
    ended = await client.wait(queue, record, min(timeout, server.max_wait))
    outcome = str(ended.status) if ended.status in TERMINAL_STATUSES else "pending"
    SYNC_REQUEST_DURATION.labels(operation, outcome).observe(time.perf_counter() - started)
    return ended
