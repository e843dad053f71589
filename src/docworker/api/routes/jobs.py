"""``/api/v2/jobs``: submit any operation as a job, list, read, cancel, fetch results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from docworker.api.auth import CallerDep
from docworker.api.deps import QueueDep, Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.openapi import model_ref
from docworker.api.results import json_result
from docworker.api.schemas import (
    IDEMPOTENCY_KEY_LENGTH,
    WEBHOOK_SIGNING,
    WEBHOOK_URL,
    ArtifactList,
    ArtifactPublic,
    DateTime,
    JobCreate,
    JobList,
    JobPublic,
)
from docworker.api.sources import (
    MAX_REFERENCE_LENGTH,
    URI_DESCRIPTION,
    URL_DESCRIPTION,
    InputReference,
    store_document,
)
from docworker.api.submitting import CacheQuery, IdempotencyKeyHeader
from docworker.api.uploads import store_upload, store_uploads
from docworker.auth import Principal
from docworker.errors import InvalidParameter, NotFound, UnsupportedFormat
from docworker.jobs.queue import MAX_PRIORITY, MIN_PRIORITY, JobInput
from docworker.jobs.store import JobStatus
from docworker.jobs.webhooks import EVENT_KINDS, WebhookRequest
from docworker.operations import OPERATIONS, get_operation, validate_params
from docworker.storage import CHUNK, StoredBlob

router = APIRouter(prefix="/api/v2", tags=["jobs"])


def job_response(record: Any, status_code: int) -> JSONResponse:
    body = JobPublic.of(record).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers={"Location": body["links"]["self"]})


#: The media types a job may be submitted as.
FORM = "multipart/form-data"
JSON = "application/json"
#: The longest text field of a multipart submission (``params`` is the longest).
MAX_FIELD_BYTES = 1024 * 1024


def submission_fields(params: str) -> dict[str, Any]:
    """The schemas of the form fields every submission has (``operation``, ``params``,
    described as ``params``, ``priority``, ``idempotency_key``), for the OpenAPI
    document of a route that reads its form itself."""
    return {
        "operation": {"type": "string", "enum": sorted(OPERATIONS), "example": "extract"},
        "params": {"type": "string", "description": params, "example": '{"output":"markdown"}'},
        "priority": {
            "type": "integer",
            "default": 0,
            "minimum": MIN_PRIORITY,
            "maximum": MAX_PRIORITY,
        },
        "idempotency_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": IDEMPOTENCY_KEY_LENGTH,
        },
    }


@dataclass(frozen=True)
class Submission:
    """A job as the client asked for it, checked, with its inputs in the blob store."""

    operation: str
    params: dict[str, Any]
    inputs: list[JobInput]
    priority: int
    idempotency_key: str | None
    #: Whether the result cache may answer the job and keep its result.
    use_cache: bool = True
    webhook: WebhookRequest | None = None


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
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["operation"],
                        "properties": {
                            **submission_fields("The operation's parameters, a JSON object."),
                            "cache": {
                                "type": "boolean",
                                "default": True,
                                "description": "false: the result cache neither answers "
                                "this job nor keeps its result.",
                            },
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "The document (or give uri or url).",
                            },
                            "uri": {
                                "type": "string",
                                "maxLength": MAX_REFERENCE_LENGTH,
                                "description": URI_DESCRIPTION,
                            },
                            "url": {
                                "type": "string",
                                "maxLength": MAX_REFERENCE_LENGTH,
                                "description": URL_DESCRIPTION,
                            },
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "Further input files, in order (the PDFs "
                                "after the first of a merge, files to attach).",
                            },
                            "webhook_url": {
                                "type": "string",
                                "maxLength": 2000,
                                "description": WEBHOOK_URL,
                            },
                            "webhook_events": {
                                "type": "string",
                                "description": "The events sent to webhook_url, separated "
                                f"by commas, of: {', '.join(EVENT_KINDS)}. Default: the "
                                "final ones.",
                                "example": "started,succeeded,failed",
                            },
                            "webhook_secret": {"type": "string", "description": WEBHOOK_SIGNING},
                        },
                    }
                },
                JSON: {"schema": model_ref(JobCreate)},
            },
        }
    },
)
async def create_job(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    idempotency_header: IdempotencyKeyHeader = None,
    use_cache: CacheQuery = True,
) -> JSONResponse:
    """Queue any registered operation. Send the document as a multipart ``file`` part with
    ``operation`` and ``params`` (a JSON object) fields, or send JSON naming an input already
    stored (``input_uri``). Instead of the file, either form may name it: ``uri``, a
    storage URL under the service's ``storage.read_roots`` (else ``403 uri-refused``), or
    ``url``, an http(s) URL the service fetches (``fetch.allow``; else ``403
    url-refused``); either is copied in under the route's upload limit (past it, ``422
    limit-exceeded``). Answers ``202`` with the job; poll its ``links.self``. A job
    whose result the result cache holds is answered ``202`` too, already ``succeeded``
    and ``cached``; ``cache`` false (the query, the form field or the JSON member)
    bypasses the cache. Follow a job with ``GET links.self?wait=30`` (a long poll),
    its event stream (``links.events``), or a ``webhook_url`` (422 when the URL is
    refused: a private address not allow-listed)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == JSON:
        submission = await _json_submission(request, services, caller)
    elif media_type == FORM:
        submission = await _form_submission(request, services)
    else:
        raise UnsupportedFormat(
            media_type or "(none)",
            f"a job is sent as {FORM} or {JSON}, not {media_type or 'no body type'}",
        )
    first, *others = submission.inputs
    record, created = await anyio.to_thread.run_sync(
        lambda: services.queue.submit(
            submission.operation,
            submission.params,
            first,
            caller=caller,
            priority=submission.priority,
            idempotency_key=idempotency_header or submission.idempotency_key,
            others=others,
            use_cache=use_cache and submission.use_cache,
            webhook=submission.webhook,
        )
    )
    return job_response(record, 202 if created else 200)


async def _json_submission(request: Request, services: Services, caller: Principal) -> Submission:
    """The job of a JSON body (:class:`JobCreate`), its stored inputs looked up; a tenant
    names only its own jobs' inputs."""
    try:
        spec = JobCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        raise InvalidParameter.first_of(exc.errors(), "body") from None
    spec.input_given()
    validate_params(get_operation(spec.operation), spec.params)
    uris = [*([spec.input_uri] if spec.input_uri else []), *spec.other_input_uris]
    stored = await anyio.to_thread.run_sync(
        lambda: [_stored_input(services, caller, uri) for uri in uris]
    )
    if spec.input_uri is not None:
        inputs = stored
    else:
        reference = InputReference(spec.uri, spec.url, _upload_limit(request, services))
        inputs = [await store_document(services, None, reference), *stored]
    webhook = None
    if spec.webhook_url is not None:
        webhook = WebhookRequest(spec.webhook_url, spec.webhook_events, spec.webhook_secret)
    return Submission(
        spec.operation,
        spec.params,
        inputs,
        spec.priority,
        spec.idempotency_key,
        use_cache=spec.cache,
        webhook=webhook,
    )


def _upload_limit(request: Request, services: Services) -> int:
    return services.settings.server.upload_limit(request.url.path)


async def _form_submission(request: Request, services: Services) -> Submission:
    """The job of a multipart body: its fields checked first, then its files stored."""
    # The form is closed however this ends: a refusal leaves no spooled file behind.
    async with request.form(max_part_size=MAX_FIELD_BYTES) as form:
        operation = _text_field(form, "operation")
        if not operation:
            raise InvalidParameter("operation", "the name of an operation is required")
        params = _params_field(_text_field(form, "params"))
        validate_params(get_operation(operation), params)
        priority = _int_field(_text_field(form, "priority"), "priority")
        key = _text_field(form, "idempotency_key")
        if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_LENGTH:
            raise InvalidParameter(
                "idempotency_key", f"must be 1 to {IDEMPOTENCY_KEY_LENGTH} characters"
            )
        use_cache = _bool_field(_text_field(form, "cache"), "cache")
        webhook = _webhook_fields(form)
        reference = InputReference(
            _text_field(form, "uri") or None,
            _text_field(form, "url") or None,
            _upload_limit(request, services),
        )
        named = _file_parts(form, "file")
        if len(named) > 1:
            raise InvalidParameter(
                "file",
                f"a job takes one file part named 'file', and {len(named)} were sent: send "
                "one job per document (further inputs of a merge or an attach go as 'files')",
            )
        uploads = [*named, *_file_parts(form, "files")]
        if uploads and reference.uri is None and reference.url is None:
            inputs = await store_uploads(services, uploads)
        else:
            # The document by reference (or none: store_document says what is missing),
            # the "files" parts after it.
            first = await store_document(services, named[0] if named else None, reference)
            inputs = [first] + [await store_upload(services, p) for p in _file_parts(form, "files")]
    return Submission(
        operation, params, inputs, priority, key, use_cache=use_cache, webhook=webhook
    )


def _webhook_fields(form: FormData) -> WebhookRequest | None:
    """The job's own webhook from the form's ``webhook_*`` fields (checked on submission)."""
    fields = (_text_field(form, f"webhook_{name}") for name in ("url", "events", "secret"))
    return WebhookRequest.of_form(*fields)


def _text_field(form: FormData, name: str) -> str | None:
    """A text field of the form; None when absent."""
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise InvalidParameter(name, "must be a text field, not a file")
    return value


def _file_parts(form: FormData, name: str) -> list[UploadFile]:
    parts = form.getlist(name)
    if any(not isinstance(part, UploadFile) for part in parts):
        raise InvalidParameter(name, "must be a file part (with a filename), not a text field")
    return [part for part in parts if isinstance(part, UploadFile)]


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


def _bool_field(raw: str | None, name: str) -> bool:
    """A true/false form field; true when absent."""
    if raw is None:
        return True
    value = raw.strip().lower()
    if value not in {"true", "false"}:
        raise InvalidParameter(name, "must be true or false")
    return value == "true"


def _int_field(raw: str | None, name: str) -> int:
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(name, "must be an integer") from None
    if not -100 <= value <= 100:
        raise InvalidParameter(name, "must be between -100 and 100")
    return value


def _stored_input(services: Services, caller: Principal, uri: str) -> JobInput:
    """A stored input named by its URI (``blob://inputs/<sha256>``, checked by the schema);
    another tenant's input does not exist for the caller."""
    blobs = services.blobs
    if not blobs.exists(uri):
        raise NotFound("input", uri)
    if not caller.is_admin and not services.store.tenant_has_input(caller.tenant, uri):
        raise NotFound("input", uri)
    with blobs.open(uri) as stream:
        size = stream.seek(0, 2)
    return JobInput(blob=StoredBlob(uri=uri, sha256=uri.rsplit("/", 1)[1], size=size))


@router.get("/jobs", operation_id="list_jobs", summary="List jobs", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    status: Annotated[list[JobStatus] | None, Query(description="Only these states.")] = None,
    operation: Annotated[str | None, Query(description="Only this operation.")] = None,
    created_after: Annotated[DateTime | None, Query()] = None,
    created_before: Annotated[DateTime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
    parent_id: Annotated[str | None, Query(description="Only the parts of this split job.")] = None,
    batch_id: Annotated[str | None, Query(description="Only the children of this batch.")] = None,
) -> JobList:
    """Jobs, newest first, a page at a time. The parts of split jobs are listed only
    with ``parent_id``, the children of batches only with ``batch_id``. A key sees its
    tenant's jobs; an admin key sees every job."""
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
            batch_id=batch_id,
        )
    )
    return JobList(jobs=[JobPublic.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/jobs/{job_id}",
    operation_id="get_job",
    summary="Get a job",
    response_model=JobPublic,
    responses=problem_responses(404, 422),
)
async def get_job(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            description="Seconds to wait for the job to end before answering (a long poll; "
            "at most the server's server.max_wait). 0: answer at once.",
        ),
    ] = 0,
) -> JobPublic:
    """The job's state, progress, attempts and error; with ``wait``, once the job has
    ended or the wait has run out, whichever comes first."""
    queue = services.queue
    record = await anyio.to_thread.run_sync(queue.get, job_id, caller)
    if wait > 0:
        timeout = min(wait, services.settings.server.max_wait)
        record = await queue.wait(record.id, timeout, known=record)
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
async def get_job_result(job_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    """The result of a finished job, streamed from storage however large (its text
    ``content``, stored apart, is spliced in as it is read, as the last member). A failed
    job answers its error as a problem; a job that has not finished answers ``409``.
    Every result has a ``security`` section: the input's type as detected and as
    claimed, and what the content guard found in it (``findings``: ``kind``, ``detail``,
    ``location``, ``count``; see docs/security.md). A job whose input the guard's policy
    refuses fails with ``422 content-refused``; one whose output passed a limit
    (``limits.max_output_chars``, ``limits.max_output_bytes``) with ``422
    limit-exceeded``."""
    record = await anyio.to_thread.run_sync(services.queue.get, job_id, caller)
    return await json_result(services, record, headers={"X-Job-Id": record.id})


@router.get(
    "/jobs/{job_id}/artifacts",
    operation_id="list_job_artifacts",
    summary="List the files a job made, with download links",
    response_model=ArtifactList,
    responses=problem_responses(404, 409, 415, 422, 503),
)
async def list_job_artifacts(job_id: str, services: ServicesDep, caller: CallerDep) -> ArtifactList:
    """The files listed in the result's ``artifacts``, each with a download link: a
    presigned link straight to the output store where it signs links (s3, Azure; unless
    ``storage.presign`` is false), valid ``storage.link_expiry`` seconds; else the API's
    own ``/api/v2/jobs/{id}/artifacts/{name}``. A failed job answers its error; one
    that has not finished, ``409``."""
    record = await anyio.to_thread.run_sync(services.queue.get, job_id, caller)
    listed = services.queue.result_ref(record).get("artifacts") or []
    storage = services.settings.storage

    def link(entry: dict[str, Any]) -> ArtifactPublic:
        name, mime = str(entry["name"]), str(entry["mime"])
        # Taken before the link is signed: the link is valid at least until then.
        issued = datetime.now(UTC)
        signed = None
        if storage.presign:
            signed = services.blobs.signed_url(
                entry["uri"], expires=storage.link_expiry, name=name, mime=mime
            )
        return ArtifactPublic(
            name=name,
            mime=mime,
            size=int(entry["size"]),
            url=signed or f"/api/v2/jobs/{record.id}/artifacts/{quote(name)}",
            presigned=signed is not None,
            expires_at=issued + timedelta(seconds=storage.link_expiry) if signed else None,
        )

    artifacts = await anyio.to_thread.run_sync(lambda: [link(entry) for entry in listed])
    return ArtifactList(artifacts=artifacts)


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
