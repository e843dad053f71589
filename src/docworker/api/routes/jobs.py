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

from docworker.api.auth import CallerDep
from docworker.api.deps import QueueDep, Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.schemas import JobCreate, JobList, JobPublic
from docworker.api.uploads import store_uploads
from docworker.auth import Principal
from docworker.errors import InvalidParameter, NotFound
from docworker.jobs.queue import JobInput
from docworker.jobs.store import JobStatus
from docworker.storage import CHUNK, StoredBlob

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
    caller: CallerDep,
    idempotency_header: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Queue any registered operation. Send the document as a multipart ``file`` part with
    ``operation`` and ``params`` (a JSON object) fields, or send JSON naming an input already
    stored (``input_uri``). Answers ``202`` with the job; poll its ``links.self``."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        spec = JobCreate.model_validate(await request.json())
        job_input, others = await anyio.to_thread.run_sync(
            lambda: _stored_inputs(services, caller, spec.input_uri, spec.other_input_uris)
        )
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
            caller=caller,
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


def _stored_inputs(
    services: Services, caller: Principal, first: str | None, others: list[str]
) -> tuple[JobInput | None, list[JobInput]]:
    """The stored inputs a JSON job names; a tenant names only its own jobs' inputs."""
    found = [_stored_input(services, caller, uri) for uri in [*([first] if first else []), *others]]
    if first:
        return found[0], found[1:]
    return None, found


def _stored_input(services: Services, caller: Principal, uri: str) -> JobInput:
    blobs = services.blobs
    if not uri.startswith("blob://inputs/") or not blobs.exists(uri):
        raise NotFound("input", uri)
    if not caller.is_admin and not services.store.tenant_has_input(caller.tenant, uri):
        raise NotFound("input", uri)
    sha256 = uri.rsplit("/", 1)[1]
    with blobs.open(uri) as stream:
        size = stream.seek(0, 2)
    return JobInput(blob=StoredBlob(uri=uri, sha256=sha256, size=size))


@router.get("/jobs", operation_id="list_jobs", summary="List jobs", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    status: Annotated[list[JobStatus] | None, Query(description="Only these states.")] = None,
    operation: Annotated[str | None, Query(description="Only this operation.")] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
    parent_id: Annotated[str | None, Query(description="Only the parts of this split job.")] = None,
) -> JobList:
    """Jobs, newest first, a page at a time. The parts of split jobs are listed only
    with ``parent_id``. A key sees its tenant's jobs; an admin key sees every job."""
    caller.require_read()
    records, next_cursor = await anyio.to_thread.run_sync(
        lambda: services.store.list(
            status=status,
            operation=operation,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
            parent_id=parent_id,
            tenant=caller.visible_tenant,
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
async def get_job(job_id: str, queue: QueueDep, caller: CallerDep) -> JobPublic:
    """The job's state, progress, attempts and error."""
    record = await anyio.to_thread.run_sync(queue.get, job_id, caller)
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
async def get_job_result(job_id: str, queue: QueueDep, caller: CallerDep) -> Response:
    """The result of a finished job. A failed job answers its error as a problem; a job
    that has not finished answers ``409``. Every result has a ``security`` section: the
    input's type as detected and as claimed, and what the content guard found in it
    (``findings``: ``kind``, ``detail``, ``location``, ``count``; see docs/security.md).
    A job whose input the guard's policy refuses fails with ``422 content-refused``."""
    record = await anyio.to_thread.run_sync(queue.get, job_id, caller)
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
async def get_job_artifact(job_id: str, name: str, queue: QueueDep, caller: CallerDep) -> Response:
    """A file listed in the result's ``artifacts`` (by its ``name``), streamed."""
    record = await anyio.to_thread.run_sync(queue.get, job_id, caller)
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
    summary="Cancel a job, or delete it with all its data",
    response_model=JobPublic,
    responses={
        200: {"model": JobPublic, "description": "The job, cancelled (without purge)"},
        204: {"description": "The job and all its data are deleted (purge=true)"},
        **problem_responses(404, 409),
    },
)
async def cancel_job(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    purge: Annotated[
        bool,
        Query(
            description="Delete the job with all it holds: its parameters, parts, result, "
            "artifacts, and the input files no other job names. A job that has not ended "
            "is cancelled first and waited for (up to the server's default wait)."
        ),
    ] = False,
) -> Response:
    """Without ``purge``: a queued job is cancelled at once; a running one is stopped (its
    worker is ended) and then shows ``cancelled``; a finished job is left as it is.

    With ``purge=true``: ``204`` once the job is gone from the store and its files from
    the blob store. ``409`` for a part of a split job (delete its job), or a job still
    stopping when the wait ran out (ask again)."""
    queue = services.queue
    if purge:
        await queue.purge(job_id, caller, services.settings.server.default_wait)
        return Response(status_code=204)
    record = await anyio.to_thread.run_sync(queue.cancel, job_id, caller)
    return JSONResponse(JobPublic.of(record).model_dump(mode="json"))
