"""``/api/v2/jobs``: submit any operation as a job, list, read, cancel, fetch results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from docworker.api.deps import QueueDep, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.schemas import JobCreate, JobList, JobPublic
from docworker.api.uploads import store_uploads
from docworker.errors import InvalidParameter, NotFound
from docworker.jobs.queue import JobInput
from docworker.jobs.store import JobStatus
from docworker.storage import CHUNK, BlobStore, StoredBlob

router = APIRouter(prefix="/api/v2", tags=["jobs"])


def job_response(record: Any, status_code: int) -> JSONResponse:
    body = JobPublic.of(record).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers={"Location": body["links"]["self"]})


def _params_field(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter("params", f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InvalidParameter("params", "must be a JSON object")
    return value


@router.post(
    "/jobs",
    operation_id="create_job",
    summary="Submit a job",
    status_code=202,
    response_model=JobPublic,
    responses={
        200: {
            "model": JobPublic,
            "description": "The job of an earlier request with the same idempotency key",
        },
        **problem_responses(404, 409, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["operation", "file"],
                        "properties": {
                            "operation": {"type": "string", "example": "extract"},
                            "params": {"type": "string", "example": '{"output":"markdown"}'},
                            "priority": {"type": "integer", "default": 0},
                            "idempotency_key": {"type": "string"},
                            "file": {"type": "string", "format": "binary"},
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "Further input files, in order (the PDFs "
                                "after the first of a merge, files to attach).",
                            },
                        },
                    }
                },
                "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
            }
        }
    },
)
async def create_job(
    request: Request,
    services: ServicesDep,
    idempotency_header: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Queue any registered operation. Send the document as a multipart ``file`` part with
    ``operation`` and ``params`` (a JSON object) fields, or send JSON naming an input already
    stored (``input_uri``). Answers ``202`` with the job; poll its ``links.self``."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        spec = JobCreate.model_validate(await request.json())
        job_input = _stored_input(services.blobs, spec.input_uri) if spec.input_uri else None
        others = [_stored_input(services.blobs, uri) for uri in spec.other_input_uris]
        operation, params, priority, key = (
            spec.operation,
            spec.params,
            spec.priority,
            spec.idempotency_key,
        )
    else:
        form = await request.form(max_part_size=1024 * 1024)
        uploads = [
            part
            for name in ("file", "files")
            for part in form.getlist(name)
            if isinstance(part, UploadFile)
        ]
        stored = await store_uploads(services, uploads)
        job_input, others = stored[0], stored[1:]
        operation = str(form.get("operation") or "")
        params = _params_field(str(form.get("params") or "") or None)
        priority = _int_field(form.get("priority"), "priority")
        key = str(form.get("idempotency_key") or "") or None
    record, created = await anyio.to_thread.run_sync(
        lambda: services.queue.submit(
            operation,
            params,
            job_input,
            priority=priority,
            idempotency_key=idempotency_header or key,
            others=others,
        )
    )
    return job_response(record, 202 if created else 200)


def _int_field(raw: object, name: str) -> int:
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidParameter(name, "must be an integer") from None
    if not -100 <= value <= 100:
        raise InvalidParameter(name, "must be between -100 and 100")
    return value


def _stored_input(blobs: BlobStore, uri: str) -> JobInput:
    if not uri.startswith("blob://inputs/") or not blobs.exists(uri):
        raise NotFound("input", uri)
    sha256 = uri.rsplit("/", 1)[1]
    with blobs.open(uri) as stream:
        size = stream.seek(0, 2)
    return JobInput(blob=StoredBlob(uri=uri, sha256=sha256, size=size))


@router.get("/jobs", operation_id="list_jobs", summary="List jobs", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    status: Annotated[list[JobStatus] | None, Query(description="Only these states.")] = None,
    operation: Annotated[str | None, Query(description="Only this operation.")] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
    parent_id: Annotated[str | None, Query(description="Only the parts of this split job.")] = None,
) -> JobList:
    """Jobs, newest first, a page at a time. The parts of split jobs are listed only
    with ``parent_id``."""
    records, next_cursor = await anyio.to_thread.run_sync(
        lambda: services.store.list(
            status=status,
            operation=operation,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
            parent_id=parent_id,
        )
    )
    return JobList(jobs=[JobPublic.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/jobs/{job_id}",
    operation_id="get_job",
    summary="Get a job",
    response_model=JobPublic,
    responses=problem_responses(404),
)
async def get_job(job_id: str, services: ServicesDep) -> JobPublic:
    """The job's state, progress, attempts and error."""
    record = await anyio.to_thread.run_sync(services.store.get, job_id)
    return JobPublic.of(record)


@router.get(
    "/jobs/{job_id}/result",
    operation_id="get_job_result",
    summary="Get a job's result",
    responses={
        200: {"description": "The operation's result (JSON)"},
        **problem_responses(404, 409, 415, 422, 503),
    },
)
async def get_job_result(job_id: str, queue: QueueDep) -> Response:
    """The result of a finished job. A failed job answers its error as a problem; a job
    that has not finished answers ``409``."""
    record = await anyio.to_thread.run_sync(queue.store.get, job_id)
    payload = await anyio.to_thread.run_sync(queue.result, record)
    return JSONResponse(payload, headers={"X-Job-Id": record.id})


@router.get(
    "/jobs/{job_id}/artifacts/{name}",
    operation_id="get_job_artifact",
    summary="Download a file a job made",
    responses={
        200: {"description": "The file (e.g. a searchable PDF)", "content": {"*/*": {}}},
        **problem_responses(404, 409, 415, 422, 503),
    },
)
async def get_job_artifact(job_id: str, name: str, queue: QueueDep) -> Response:
    """A file listed in the result's ``artifacts`` (by its ``name``), streamed."""
    record = await anyio.to_thread.run_sync(queue.store.get, job_id)
    entry, stream = await anyio.to_thread.run_sync(queue.artifact, record, name)
    return artifact_response(record.id, entry, stream)


def artifact_response(job_id: str, entry: dict[str, Any], stream: IO[bytes]) -> Response:
    """A stored artifact as a streamed download."""

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=entry["mime"],
        headers={
            "X-Job-Id": job_id,
            "Content-Length": str(entry["size"]),
            "Content-Disposition": f'attachment; filename="{entry["name"]}"',
        },
    )


@router.delete(
    "/jobs/{job_id}",
    operation_id="cancel_job",
    summary="Cancel a job",
    response_model=JobPublic,
    responses=problem_responses(404),
)
async def cancel_job(job_id: str, queue: QueueDep) -> JobPublic:
    """A queued job is cancelled at once; a running one is stopped (its worker is ended) and
    then shows ``cancelled``. A finished job is left as it is."""
    record = await anyio.to_thread.run_sync(queue.cancel, job_id)
    return JobPublic.of(record)
