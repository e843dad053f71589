"""What a job's attempt is given and what its end writes to the job store, whichever
executor ran it.

A worker answers a job with a message (:mod:`docworker.jobs.worker`): ``done``,
``split`` or ``error``. The executor that supervised the attempt, the only writer of
the job's state for that attempt, records it here, so that both executors (the local
one and Celery's) decide alike: a result, the parts of a split job, or a failed attempt
retried (after the delay of :mod:`docworker.jobs.retries`: exponential backoff with
jitter), buried or failed as the error's class says
(:class:`~docworker.errors.AfterFailure`). The engines' circuit breakers
(:mod:`docworker.engines.breaker`) of the process that supervised the attempt hear how
it ended, when it has breakers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from docworker.engines.breaker import Breakers, engines_of
from docworker.errors import AfterFailure, DependencyDown
from docworker.jobs.retries import Backoff, after_failure
from docworker.jobs.store import JobCost, JobRecord, JobStatus, JobStore
from docworker.metrics import JOB_ATTEMPTS_FAILED
from docworker.tracing import job_attributes, job_scope

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: The first and the longest wait between two tries of an outcome's write while the job
#: database does not answer.
STORE_RETRY_FIRST = 0.2
STORE_RETRY_MAX = 5.0


def job_message(store: JobStore, job: JobRecord) -> dict[str, Any]:
    """The ``run`` message of a claimed job (:mod:`docworker.jobs.worker`): with its parts'
    outcomes when it was split and comes back to merge them."""
    message: dict[str, Any] = {
        "type": "run",
        "job_id": job.id,
        "operation": job.operation,
        "params": job.params,
        "input": job.input,
        "parent_id": job.parent_id,
        "part": job.part,
        "tenant": job.tenant,
        "key_id": job.key_id,
        "attempt": job.attempts,
        "trace": job.trace,
    }
    if job.children_total:
        message["parts"] = [
            {
                "part": part.part,
                "params": part.params,
                "status": str(part.status),
                "result": part.result,
                "error": part.error,
            }
            for part in store.parts_of(job.id)
        ]
    return message


def job_span(name: str, job: JobRecord, *, start_time: int | None = None) -> Any:
    """A span of an executor's work on ``job`` (its claim, the writing of its outcome), in
    the job's trace, with the job's log context (see :func:`docworker.tracing.job_scope`)."""
    context = {"job_id": job.id, "tenant": job.tenant, "key_id": job.key_id}
    return job_scope(
        name,
        job.trace,
        start_time=start_time,
        log_context={key: value for key, value in context.items() if value},
        attributes=job_attributes(job.id, job.operation, attempt=job.attempts),
    )


def end_attempt(
    store: JobStore,
    job: JobRecord,
    error: dict[str, Any],
    *,
    cost: JobCost,
    backoff: Backoff,
    breakers: Breakers | None = None,
    heard: bool = True,
) -> JobRecord:
    """End the job's attempt as its error's class says: queued again after ``backoff``'s
    delay for this attempt while it has attempts left (then ``dead``), ``dead`` at once,
    or ``failed``. ``breakers`` hear of the failure unless ``heard`` is False (the attempt
    was refused by a breaker: it tried no engine)."""
    code = str(error.get("code"))
    JOB_ATTEMPTS_FAILED.labels(job.operation, code).inc()
    if heard and breakers is not None:
        breakers.ended(engines_of(job.operation, job.input), error)
    outcome = after_failure(error, job.attempts, backoff)
    if outcome.after is AfterFailure.RETRY:
        return store.mark_failed(job.id, error, retry_delay=outcome.retry_delay, cost=cost)
    if outcome.after is AfterFailure.DEAD:
        return store.mark_dead(job.id, error, cost=cost)
    return store.mark_failed(job.id, error, retry_delay=None, cost=cost)


def record_answer(
    store: JobStore,
    job: JobRecord,
    answer: dict[str, Any],
    *,
    cost: JobCost,
    backoff: Backoff,
    breakers: Breakers | None = None,
) -> tuple[JobRecord, list[JobRecord]]:
    """Record a worker's answer to ``job`` (``done``, ``split`` or ``error``); returns the
    job as it now stands and the parts it was split into (none unless it split)."""
    kind = answer.get("type")
    engines = engines_of(job.operation, job.input)
    if kind == "split":
        if breakers is not None:
            breakers.release(engines)
        record, parts = store.split(job.id, answer["parts"], cost=cost)
        log.info("job split into parts", job_id=job.id, parts=len(parts))
        return record, parts
    if kind == "done":
        if breakers is not None:
            breakers.ended(engines)
        errors = answer.get("errors") or []
        record = store.mark_succeeded(
            job.id, answer["result"], partial=bool(errors), errors=errors, cost=cost
        )
        return record, []
    error = answer["error"]
    return end_attempt(store, job, error, cost=cost, backoff=backoff, breakers=breakers), []


def attempt_held(store: JobStore, job: JobRecord) -> bool:
    """Whether the attempt ``job`` was claimed for is still the job's: running, on the
    same worker, its attempts not counted since. An outcome written late (the database
    was away) is written only then: a job taken back meanwhile (its heartbeat went stale)
    is queued, or claimed again by another attempt, whose outcome is the one to keep."""
    current = store.get(job.id)
    return (
        current.status == JobStatus.RUNNING
        and current.worker == job.worker
        and current.attempts == job.attempts
    )


def write_when_back(
    store: JobStore,
    job: JobRecord,
    write: Callable[[Breakers | None], T],
    breakers: Breakers | None,
    timeout: float,
) -> T | None:
    """``write(breakers)`` (an attempt's outcome, told to ``breakers``), tried again with
    a growing wait while the job database does not answer (given no breakers then: they
    heard of the attempt at the first try), for ``timeout`` seconds at most; None when
    the outcome was given up (the database away for longer, or the attempt taken back
    meanwhile: the job runs again, see :func:`attempt_held`)."""
    deadline = time.monotonic() + timeout
    wait = STORE_RETRY_FIRST
    tried = False
    while True:
        try:
            if tried and not attempt_held(store, job):
                log.warning("job outcome dropped: the attempt was taken back", job_id=job.id)
                return None
            result = write(None if tried else breakers)
            if tried:
                log.info("job outcome written: the job store is back", job_id=job.id)
            return result
        except DependencyDown as exc:
            if not tried:
                log.warning(
                    "job outcome not written: the job store is down; trying again",
                    job_id=job.id,
                    error=exc.detail,
                )
            tried = True
            if time.monotonic() + wait > deadline:
                log.error("job outcome given up: the job store stayed down", job_id=job.id)
                return None
            time.sleep(wait)
            wait = min(wait * 2, STORE_RETRY_MAX)
