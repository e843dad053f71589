"""Dead letters: list the jobs that died, retry one, replay many.

A job is ``dead`` when its retries ran out on transient failures, or after one attempt
that passed its time or memory limit (``docs/retries.md``). Its ``error`` says why and
its ``attempt_history`` how each attempt ended. ``POST /api/v2/jobs/{id}/retry`` queues
a dead (or failed) job again with a fresh set of attempts, keeping its history; the
replay does so for the dead jobs a filter matches, a bounded number at a time.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.schemas import (
    DateTime,
    DeadLetterReplay,
    DeadLetterReplayed,
    JobList,
    JobPublic,
)
from docworker.errors import InvalidParameter
from docworker.jobs.queue import DeadLetterFilter

router = APIRouter(prefix="/api/v2", tags=["dead-letters"])


@router.get(
    "/dead-letters",
    operation_id="list_dead_letters",
    summary="List dead jobs",
    response_model=JobList,
    responses=problem_responses(422),
)
async def list_dead_letters(
    services: ServicesDep,
    caller: CallerDep,
    operation: Annotated[str | None, Query(description="Only this operation.")] = None,
    error_code: Annotated[
        str | None, Query(description="Only jobs whose error has this code (engine-failed, …).")
    ] = None,
    finished_after: Annotated[DateTime | None, Query(description="Died at or after.")] = None,
    finished_before: Annotated[DateTime | None, Query(description="Died before.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
) -> JobList:
    """The ``dead`` jobs, newest first, a page at a time (as ``GET /api/v2/jobs``), each
    with its ``error`` and ``attempt_history``. A key sees its tenant's; an admin key
    sees every tenant's."""
    filters = DeadLetterFilter(operation, error_code, finished_after, finished_before)
    records, next_cursor = await anyio.to_thread.run_sync(
        services.queue.dead_letters, caller, filters, limit, cursor
    )
    return JobList(jobs=[JobPublic.of(r) for r in records], next_cursor=next_cursor)


@router.post(
    "/jobs/{job_id}/retry",
    operation_id="retry_job",
    summary="Queue a dead or failed job again",
    status_code=202,
    response_model=JobPublic,
    responses=problem_responses(404, 409, 503),
)
async def retry_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobPublic:
    """Queue a ``dead`` or ``failed`` job again, at once, with ``executor.max_attempts``
    more attempts; its ``attempt_history`` is kept, its error cleared. ``409`` for a job
    in another state, or a part of a split job (retry its job); ``503``
    ``engine-unavailable`` while the circuit breaker of an engine it needs is open. A
    key that may submit the job's operation may retry it."""
    attempts = services.settings.executor.max_attempts
    record = await anyio.to_thread.run_sync(services.queue.retry, job_id, caller, attempts)
    return JobPublic.of(record)


@router.post(
    "/dead-letters/replay",
    operation_id="replay_dead_letters",
    summary="Queue dead jobs again, by filter",
    response_model=DeadLetterReplayed,
    responses=problem_responses(422),
)
async def replay_dead_letters(
    body: DeadLetterReplay, services: ServicesDep, caller: CallerDep
) -> DeadLetterReplayed:
    """Queue again the ``dead`` jobs that the filters match (as ``GET
    /api/v2/dead-letters``), newest first, at most ``limit`` of them (by default and
    at most ``executor.replay_max``), each with ``executor.max_attempts`` more attempts.
    Jobs needing an engine whose circuit breaker is open stay dead. ``more`` says
    whether others matched: send the request again for them. Without an ``operation``
    the key needs the ``submit`` scope; with one, the right to submit it."""
    executor = services.settings.executor
    limit = body.limit or executor.replay_max
    if limit > executor.replay_max:
        raise InvalidParameter(
            "limit",
            f"at most {executor.replay_max} jobs are replayed at once (executor.replay_max)",
        )
    filters = DeadLetterFilter(
        body.operation, body.error_code, body.finished_after, body.finished_before
    )
    replayed, more = await anyio.to_thread.run_sync(
        services.queue.replay, caller, filters, limit, executor.max_attempts
    )
    return DeadLetterReplayed(
        replayed=[JobPublic.of(r) for r in replayed], count=len(replayed), more=more
    )
