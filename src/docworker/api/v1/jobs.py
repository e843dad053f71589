"""v1's job and queue routes (§4): ``/api/v1/job/:id``, ``/api/v1/jobs/:jobId``,
``/api/v1/queue/stats``, ``/api/v1/stats/queue``.

A v1 job is a v2 job seen through v1's eyes: the same id (a UUID v4), v1's four
states mapped from v2's seven, v1's ``payload`` as the submitting route recorded
it with the job's input, and v1's ``result`` shaped from the v2 result on the
way out. Any v2 job resolves here too, with the v1 type its operation maps to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from docworker.api.auth import current_caller
from docworker.api.deps import Services, ServicesDep
from docworker.api.results import loaded_answer
from docworker.api.v1 import extraction, schemas
from docworker.api.v1.encoding import v1_time
from docworker.api.v1.errors import ResultRefused, V1Error, v1_responses
from docworker.api.v1.intake import v1_view
from docworker.errors import DocworkerError, Forbidden, NotFound, Unauthorized
from docworker.jobs.store import JobRecord, JobStatus, JobStore
from docworker.operations import public_params

router = APIRouter(prefix="/api/v1", tags=["v1"])

#: v2 state → v1 state.
V1_STATES = {
    JobStatus.QUEUED: "pending",
    JobStatus.RUNNING: "processing",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.PARTIAL: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.DEAD: "failed",
    JobStatus.CANCELLED: "failed",
}
#: v1 job type of a job submitted through v2, by operation.
_TYPE_OF_OPERATION = {
    "extract": extraction.TEXT_EXTRACTION,
    "ocr": "ocr_processing",
    "v1_media": "media_processing",
}
#: v1 job type → the ProcessingType of v1's domain model (§4.6).
_PROCESSING_TYPE = {
    extraction.TEXT_EXTRACTION: "text_extract",
    "ocr_processing": "ocr",
    "media_processing": "image_convert",
}


def v1_state(status: JobStatus) -> str:
    return V1_STATES[status]


def failed_attempts(record: JobRecord) -> int:
    """v1's ``retry_count``: attempts that failed so far (a running or successful attempt
    is not one of them)."""
    if record.status in {JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.PARTIAL}:
        return max(record.attempts - 1, 0)
    return record.attempts


def v1_retry_count(record: JobRecord, state: str) -> int:
    """``retry_count`` as v1 shows it in ``state``: a ``failed`` job had at least one
    failed attempt, also when it is its result that v1 would have failed (a v2 job that
    succeeded, shaped into what v1 refused, such as pages of a document that is not a PDF)."""
    attempts = failed_attempts(record)
    return max(attempts, 1) if state == "failed" else attempts


def v1_meta(record: JobRecord) -> dict[str, Any]:
    """What the v1 route recorded with the job (``{}`` for a job submitted through v2)."""
    meta = (record.input or {}).get("v1")
    return meta if isinstance(meta, dict) else {}


def v1_type(record: JobRecord) -> str:
    return str(
        v1_meta(record).get("type") or _TYPE_OF_OPERATION.get(record.operation, record.operation)
    )


def v1_payload(record: JobRecord) -> dict[str, Any]:
    meta = v1_meta(record)
    if "payload" in meta:
        payload: dict[str, Any] = meta["payload"]
        return payload
    job_input = record.input or {}
    return {
        "input_path": job_input.get("uri", ""),
        "operation": record.operation,
        "params": public_params(record.operation, record.params),
    }


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error or error.get("code") == "partial":
        return None
    return str(error.get("detail") or error.get("title") or error.get("code"))


@dataclass(frozen=True)
class V1JobKind:
    """How the jobs of one v1 job type look in v1: the ``result`` made from the v2 result
    (it raises :class:`ResultRefused` for what v1 would have failed), and the words put
    before the error of a failed one."""

    result: Callable[[dict[str, Any], dict[str, Any], JobRecord], dict[str, Any]]
    failure_prefix: Callable[[dict[str, Any]], str]
    #: What is read besides the v2 result before ``result`` shapes it (blocking).
    prepare: Callable[[Services, JobRecord, dict[str, Any]], dict[str, Any]] | None = None


#: v1 job type → its shapes. A job of a type not listed shows the v2 result as it is.
JOB_KINDS: dict[str, V1JobKind] = {
    extraction.TEXT_EXTRACTION: V1JobKind(
        extraction.job_result, extraction.failure_prefix, extraction.job_payload
    ),
}


def outcome(
    services: Services, record: JobRecord, max_bytes: int | None = None
) -> tuple[str, Any, str | None]:
    """The job's v1 state, v1 result (None until completed) and error (None if none).
    Reads the v2 result whole, so within ``max_bytes`` (default: the API's bound,
    ``server.max_loaded_result_bytes``): a larger one makes the job ``failed`` in v1's
    eyes, its error saying so and where the v2 result streams it. Blocking: call it in
    :func:`~docworker.api.results.loaded_answer`'s work."""
    state = v1_state(record.status)
    kind = JOB_KINDS.get(v1_type(record)) if "payload" in v1_meta(record) else None
    prefix = kind.failure_prefix(v1_payload(record)) if kind else ""
    error = _error_text(record.error)
    if state == "failed" and error and prefix:
        error = f"{prefix}: {error}"
    if state != "completed":
        return state, None, error
    try:
        bound = services.settings.server.max_loaded_result_bytes
        payload = v1_view(services.queue.result(record, bound if max_bytes is None else max_bytes))
    except DocworkerError as exc:
        return "failed", None, exc.detail
    if kind is None:
        return state, payload, None
    if kind.prepare is not None:
        payload = kind.prepare(services, record, payload)
    try:
        return state, kind.result(v1_payload(record), payload, record), None
    except ResultRefused as exc:
        return "failed", None, f"{prefix}: {exc}" if prefix else str(exc)


def job_record(services: Services, record: JobRecord) -> dict[str, Any]:
    """v1's ``Job`` (§4.1) of ``record``; blocking."""
    state, result, error = outcome(services, record)
    body: dict[str, Any] = {
        "id": record.id,
        "type": v1_type(record),
        "status": state,
        "payload": v1_payload(record),
    }
    if result is not None:
        body["result"] = result
    if error:
        body["error"] = error
    body |= {"created_at": v1_time(record.created_at), "updated_at": v1_time(record.updated_at)}
    if state == "completed":
        body["completed_at"] = v1_time(record.finished_at)
    return body | {"retry_count": v1_retry_count(record, state), "max_retries": record.max_attempts}


def processing_job(
    services: Services, record: JobRecord, max_bytes: int | None = None
) -> dict[str, Any]:
    """v1's domain ``ProcessingJob`` (§4.6) of ``record`` (its result read within
    ``max_bytes``, see :func:`outcome`); blocking."""
    state, result, error = outcome(services, record, max_bytes)
    kind = v1_type(record)
    body: dict[str, Any] = {
        "id": record.id,
        "document_id": str(v1_meta(record).get("document_id") or ""),
        "type": v1_meta(record).get("processing_type") or _PROCESSING_TYPE.get(kind, kind),
        "status": state,
    }
    parameters = v1_payload(record)
    if parameters:
        body["parameters"] = parameters
    if result:
        body["result"] = result
    if error:
        body["error"] = error
    body |= {"retry_count": v1_retry_count(record, state), "created_at": v1_time(record.created_at)}
    if record.started_at is not None:
        body["started_at"] = v1_time(record.started_at)
    if state in {"completed", "failed"} and record.finished_at is not None:
        body["completed_at"] = v1_time(record.finished_at)
    return body


def _find(services: Services, job_id: str) -> JobRecord:
    try:
        return services.queue.get(job_id, current_caller())
    except (Forbidden, Unauthorized) as exc:
        raise V1Error.wrapping(404, "Job not found", exc) from None
    except NotFound as exc:
        raise V1Error(404, "Job not found", f"failed to get job: {exc.detail}") from None
    except DocworkerError as exc:
        # v1 also answered 404 when its store was down.
        raise V1Error(404, "Job not found", exc.detail) from None


def find_job(services: Services, job_id: str) -> JobRecord:
    """The job ``job_id``; v1's ``404 Job not found`` when there is none. Blocking."""
    return _find(services, job_id)


JOB_EXAMPLE = {
    "id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "type": "text_extraction",
    "status": "completed",
    "payload": {"id": "5d1e7a8c-4f1b-4a9a-8f7b-0e2b9c6d1f33", "job_type": "full"},
    "result": {"job_type": "full", "extraction_result": {"text": "…"}},
    "created_at": "2025-08-22T16:45:44.1Z",
    "updated_at": "2025-08-22T16:45:45.3Z",
    "completed_at": "2025-08-22T16:45:45.3Z",
    "retry_count": 0,
    "max_retries": 3,
}


@router.get(
    "/job/{id}",
    operation_id="v1_get_job",
    summary="A job, as v1 shows it",
    responses={
        200: {
            "model": schemas.V1Job,
            "description": "v1 Job",
            "content": {"application/json": {"example": JOB_EXAMPLE}},
        },
        **v1_responses((404, "Job not found")),
    },
)
async def get_job(id: str, services: ServicesDep) -> Response:
    """States ``pending``, ``processing``, ``completed``, ``failed``; the result once completed
    (a result stored larger than the server loads whole to reshape makes it ``failed``)."""

    def read() -> Response:
        return JSONResponse(job_record(services, _find(services, id)))

    return await loaded_answer(services, read)


@router.get(
    "/jobs/{jobId}",
    operation_id="v1_get_processing_job",
    summary="A job, as v1's domain ProcessingJob",
    responses={
        200: {"model": schemas.V1ProcessingJob, "description": "v1 ProcessingJob"},
        **v1_responses((404, "Job not found")),
    },
)
async def get_processing_job(jobId: str, services: ServicesDep) -> Response:
    """The same jobs as ``/api/v1/job/:id``, in the shape of v1's documents API."""

    def read() -> Response:
        return JSONResponse(processing_job(services, _find(services, jobId)))

    return await loaded_answer(services, read)


def v1_counts(store: JobStore) -> dict[str, int]:
    """Jobs by v1 state: waiting to run, running, completed, failed, and all kept."""
    pending, _ = store.queue_depth()
    counts = store.counts()
    completed = counts[JobStatus.SUCCEEDED] + counts[JobStatus.PARTIAL]
    failed = counts[JobStatus.FAILED] + counts[JobStatus.DEAD] + counts[JobStatus.CANCELLED]
    return {
        "pending_jobs": pending,
        "processing_jobs": counts[JobStatus.RUNNING],
        "completed_jobs": completed,
        "failed_jobs": failed,
        "total_jobs": sum(counts.values()),
    }


def _counts(services: Services) -> dict[str, int]:
    try:
        return v1_counts(services.store)
    except DocworkerError as exc:
        raise V1Error.wrapping(500, "Failed to get queue stats", exc) from None


@router.get(
    "/queue/stats",
    operation_id="v1_queue_stats",
    summary="Jobs waiting (v1)",
    responses={
        200: {"model": schemas.V1QueueStats, "description": "Jobs waiting"},
        **v1_responses((500, "Failed to get queue stats")),
    },
)
async def queue_stats(services: ServicesDep) -> JSONResponse:
    """Jobs ready to run and waiting for a worker."""
    counts = await anyio.to_thread.run_sync(_counts, services)
    return JSONResponse(
        {"queue_stats": {"pending": counts["pending_jobs"]}, "timestamp": v1_time()}
    )


@router.get(
    "/stats/queue",
    operation_id="v1_stats_queue",
    summary="Jobs by state (v1)",
    responses={
        200: {"model": schemas.V1StatsQueue, "description": "Jobs by state"},
        **v1_responses((500, "Failed to get queue stats")),
    },
)
async def stats_queue(services: ServicesDep) -> JSONResponse:
    """Jobs kept (finished jobs are kept for the retention period), by v1 state."""
    counts = await anyio.to_thread.run_sync(_counts, services)
    return JSONResponse(counts | {"timestamp": v1_time()})
