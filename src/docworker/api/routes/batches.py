"""``/api/v2/batches``: one operation on many files, its children ordinary jobs.

See docs/batches.md. A batch's body is read part by part
(:class:`~docworker.api.streamed_form.StreamedForm`), each file stored before the next
is read; its results are streamed a page of children at a time, each child's result
a chunk at a time, as NDJSON or a zip.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from tempfile import SpooledTemporaryFile
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from docworker.api.auth import CallerDep
from docworker.api.batch_intake import FILE_FIELD, store_files
from docworker.api.batch_sources import (
    ARCHIVE_FIELD,
    PASSWORD_FIELD,
    URIS_FIELD,
    URLS_FIELD,
    BatchForm,
)
from docworker.api.deps import Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routes.batch_events import BATCH_WEBHOOK_FIELDS, BatchWait, batch_webhook
from docworker.api.routes.jobs import FORM, _int_field, _params_field, submission_fields
from docworker.api.schemas import (
    IDEMPOTENCY_KEY_LENGTH,
    BatchJobList,
    BatchList,
    BatchPublic,
    JobPublic,
)
from docworker.api.streamed_form import StreamedForm
from docworker.api.submitting import IdempotencyKeyHeader
from docworker.errors import DocworkerError, InvalidParameter, UnsupportedFormat
from docworker.jobs.models import BatchRecord
from docworker.jobs.results import JsonAnswer, StoredResult
from docworker.jobs.store import JobRecord, JobStatus
from docworker.operations import get_operation, validate_params
from docworker.storage import CHUNK

router = APIRouter(prefix="/api/v2", tags=["batches"])

NDJSON = "application/x-ndjson"
ZIP = "application/zip"
#: Bytes of the zip being written that are sent at once.
_ZIP_FLUSH = 256 * 1024


def batch_response(record: BatchRecord, status_code: int = 200) -> JSONResponse:
    body = BatchPublic.of(record).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers={"Location": body["links"]["self"]})


@router.post(
    "/batches",
    operation_id="create_batch",
    summary="Submit a batch: one operation on many files",
    status_code=202,
    response_model=BatchPublic,
    responses={
        200: {
            "model": BatchPublic,
            "description": "The batch of an earlier request with the same idempotency key",
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
                        "anyOf": [
                            {"required": [FILE_FIELD]},
                            {"required": [ARCHIVE_FIELD]},
                            {"required": [URLS_FIELD]},
                            {"required": [URIS_FIELD]},
                        ],
                        "properties": {
                            **submission_fields(
                                "The operation's parameters, a JSON object, applied to every file."
                            ),
                            **BATCH_WEBHOOK_FIELDS,
                            FILE_FIELD: {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "The files, one part each, repeated (at most "
                                "batches.max_files). Each child keeps its part's filename "
                                "(a relative path is kept).",
                            },
                            ARCHIVE_FIELD: {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "Archives (zip, tar, tar.gz/bz2/xz/zst, 7z, "
                                "a single .gz/.bz2/.xz/.zst), one part each, repeated: each "
                                "file entry is a child named by its path in the archive, "
                                "nested archives unpacked in turn (archives.* limits). An "
                                "entry refused on its own or unreadable is a failed child; "
                                "a limit of the archive as a whole (entries, total bytes, "
                                "depth, compression ratio) or a bomb refuses the batch.",
                            },
                            PASSWORD_FIELD: {
                                "type": "string",
                                "format": "password",
                                "description": "Password of the encrypted archives (ZIP, 7z); "
                                "sent before the archive parts.",
                            },
                            URLS_FIELD: {
                                "type": "string",
                                "description": "http(s) URLs, a JSON array of strings or one "
                                "per line: each is fetched at intake (fetch.allow, "
                                "fetch.input_timeout) and is a child; one that cannot be "
                                "fetched is a failed child.",
                                "example": '["https://example.com/a.pdf"]',
                            },
                            URIS_FIELD: {
                                "type": "string",
                                "description": "Storage URLs under storage.read_roots, a JSON "
                                "array of strings or one per line: each is copied at intake "
                                "and is a child; one that cannot be read is a failed child.",
                                "example": "s3://incoming/a.pdf\ns3://incoming/b.pdf",
                            },
                        },
                    },
                    "encoding": {
                        FILE_FIELD: {"style": "form", "explode": True},
                        ARCHIVE_FIELD: {"style": "form", "explode": True},
                    },
                }
            },
        }
    },
)
async def create_batch(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    idempotency_header: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Queue one child job of ``operation`` with ``params`` per file, in order: each
    ``file`` part, each file entry of each ``archive`` part, then each URL of ``urls``
    and storage URL of ``uris`` (fetched at intake). The files are stored one at a time
    as the body is read; a file that cannot be one (an archive entry refused or
    unreadable, a URL that cannot be fetched) is a child recorded ``failed``. The batch
    is admitted whole or refused whole: ``413`` past ``batches.max_files`` files or an
    archive's entries or bytes, ``422`` for an archive bomb or past another archive
    limit, ``429`` when its family's queue is full or the batches' queue would pass
    ``batches.max_queued_files``. Answers ``202`` with the batch; poll its
    ``links.self``, read its ``links.results``."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM:
        raise UnsupportedFormat(
            media_type or "(none)",
            f"a batch is sent as {FORM} with one '{FILE_FIELD}' part per file",
        )
    settings = services.settings.batches
    form = StreamedForm(request, max_field_bytes=settings.max_field_bytes)

    def early_fields() -> None:
        # Fields sent before the files are checked before any file is stored (or any
        # archive walked).
        if "operation" in form.fields:
            _fields(form.fields)

    source = BatchForm(form, services, early_fields=early_fields)
    form.check_field = source.check_field

    inputs = await store_files(
        services, source.files(), max_files=settings.max_files, on_first=early_fields
    )
    with contextlib.closing(inputs):
        operation, params, priority, key = _fields(form.fields)
        webhook = batch_webhook(form.fields)
        record, created = await anyio.to_thread.run_sync(
            lambda: services.queue.submit_batch(
                operation,
                params,
                inputs,
                caller=caller,
                priority=priority,
                idempotency_key=idempotency_header or key,
                webhook=webhook,
            )
        )
    return batch_response(record, 202 if created else 200)


def _fields(fields: dict[str, str]) -> tuple[str, dict[str, Any], int, str | None]:
    """The batch's text fields, checked: operation, params, priority, idempotency key."""
    operation = fields.get("operation")
    if not operation:
        raise InvalidParameter("operation", "the name of an operation is required")
    params = _params_field(fields.get("params"))
    validate_params(get_operation(operation), params)
    priority = _int_field(fields.get("priority"), "priority")
    key = fields.get("idempotency_key")
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_LENGTH:
        raise InvalidParameter(
            "idempotency_key", f"must be 1 to {IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return operation, params, priority, key


@router.get(
    "/batches",
    operation_id="list_batches",
    summary="List batches",
    response_model=BatchList,
    responses=problem_responses(403, 422),
)
async def list_batches(
    services: ServicesDep,
    caller: CallerDep,
    operation: Annotated[str | None, Query(description="Only this operation.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
) -> BatchList:
    """Batches, newest first, a page at a time, each with its state and its children
    counted. A key sees its tenant's batches; an admin key sees every batch."""
    caller.require_read()
    records, next_cursor = await anyio.to_thread.run_sync(
        lambda: services.store.list_batches(
            tenant=caller.visible_tenant, operation=operation, limit=limit, cursor=cursor
        )
    )
    return BatchList(batches=[BatchPublic.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/batches/{batch_id}",
    operation_id="get_batch",
    summary="Get a batch",
    response_model=BatchPublic,
    responses=problem_responses(403, 404, 422),
)
async def get_batch(
    batch_id: str, services: ServicesDep, caller: CallerDep, wait: BatchWait = 0
) -> BatchPublic:
    """The batch's state (derived from its children's), its children counted by state,
    its progress, when it was made and when its last child ended; with ``wait``, once
    the batch has ended or the wait has run out, whichever comes first."""
    record = await anyio.to_thread.run_sync(services.queue.batch, batch_id, caller)
    if wait > 0:
        timeout = min(wait, services.settings.server.max_wait)
        record = await services.queue.wait_batch(record, timeout)
    return BatchPublic.of(record)


@router.get(
    "/batches/{batch_id}/jobs",
    operation_id="list_batch_jobs",
    summary="List a batch's children",
    response_model=BatchJobList,
    responses=problem_responses(403, 404, 422),
)
async def list_batch_jobs(
    batch_id: str,
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
) -> BatchJobList:
    """The batch's children (ordinary jobs), in the order of its files, a page at a time."""
    after = -1
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidParameter("cursor", "is not a cursor from a previous page")
        after = int(cursor)

    def page() -> list[JobRecord]:
        services.queue.batch(batch_id, caller)
        return services.store.batch_children(batch_id, after=after, limit=limit + 1)

    records = await anyio.to_thread.run_sync(page)
    next_cursor = None
    if len(records) > limit:
        records = records[:limit]
        next_cursor = str(records[-1].batch_index)
    return BatchJobList(jobs=[JobPublic.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/batches/{batch_id}/results",
    operation_id="get_batch_results",
    summary="Stream a batch's results (NDJSON or zip)",
    responses={
        200: {
            "description": "One line per child in the order of the files (NDJSON): "
            "index, name, job_id, status, and its result (succeeded, partial) or error "
            "(failed, partial, dead); or a zip (format=zip, or Accept: application/zip) "
            "of each child's result JSON, its artifacts and its error, with a "
            "manifest.ndjson of those lines without the results.",
            "content": {NDJSON: {}, ZIP: {}},
        },
        **problem_responses(403, 404, 422),
    },
)
async def get_batch_results(
    batch_id: str,
    services: ServicesDep,
    caller: CallerDep,
    format: Annotated[
        str | None, Query(description="ndjson (the default) or zip.", pattern="^(ndjson|zip)$")
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Every child's result or error, streamed as the children are read from the job store
    (a page at a time) and their results from the blob store (a chunk at a time): the
    batch is never held whole. Children not ended yet have a line with their status and
    nothing else (and no entry in the zip)."""
    record = await anyio.to_thread.run_sync(services.queue.batch, batch_id, caller)
    as_zip = format == "zip" or (format is None and accept is not None and ZIP in accept)
    if as_zip:
        return StreamingResponse(
            _zip(services, record),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="batch-{record.id}.zip"'},
        )
    return StreamingResponse(_ndjson(services, record), media_type=NDJSON)


@router.post(
    "/batches/{batch_id}/cancel",
    operation_id="cancel_batch",
    summary="Cancel a batch",
    response_model=BatchPublic,
    responses=problem_responses(403, 404, 503),
)
async def cancel_batch(batch_id: str, services: ServicesDep, caller: CallerDep) -> BatchPublic:
    """Cancel the children that have not ended: queued ones at once, running ones are
    stopped by their executor. Those that ended keep their results."""
    record = await anyio.to_thread.run_sync(services.queue.cancel_batch, batch_id, caller)
    return BatchPublic.of(record)


@router.post(
    "/batches/{batch_id}/retry",
    operation_id="retry_batch",
    summary="Queue a batch's failed children again",
    response_model=BatchPublic,
    responses=problem_responses(403, 404, 429, 503),
)
async def retry_batch(batch_id: str, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """Queue again the children that failed or died, with fresh attempts (header
    ``X-Retried``: how many). Refused with ``429`` when the batches' queue has no room
    for them."""
    record, count = await anyio.to_thread.run_sync(services.queue.retry_batch, batch_id, caller)
    response = batch_response(record)
    response.headers["X-Retried"] = str(count)
    return response


# -- results ---------------------------------------------------------------------------


def _children(services: Services, record: BatchRecord) -> Iterator[JobRecord]:
    """The batch's children in order, a page at a time from the job store."""
    size = services.settings.batches.results_page
    after = -1
    while True:
        page = services.store.batch_children(record.id, after=after, limit=size)
        yield from page
        if len(page) < size:
            return
        after = page[-1].batch_index if page[-1].batch_index is not None else after + size


def _head(child: JobRecord) -> dict[str, Any]:
    return {
        "index": child.batch_index,
        "name": (child.input or {}).get("name"),
        "job_id": child.id,
        "status": child.status.value,
    }


def _answer(services: Services, child: JobRecord) -> tuple[JsonAnswer | None, dict[str, Any]]:
    """The child's stored result to stream (if it has one) and its error (if any): a
    result the blob store no longer has is its error instead."""
    error = child.error if child.status != JobStatus.SUCCEEDED else None
    if child.status not in (JobStatus.SUCCEEDED, JobStatus.PARTIAL) or not child.result:
        return None, {"error": error} if error else {}
    try:
        return JsonAnswer(services.blobs, StoredResult.of(child.result), {}), (
            {"error": error} if error else {}
        )
    except DocworkerError as exc:
        return None, {"error": exc.to_dict()}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ndjson(services: Services, record: BatchRecord) -> Iterator[bytes]:
    """One JSON line per child; each result spliced in a chunk at a time."""
    for child in _children(services, record):
        answer, extra = _answer(services, child)
        head = _dumps(_head(child) | extra)
        if answer is None:
            yield (head + "\n").encode()
            continue
        yield (head[:-1] + ',"result":').encode()
        yield from answer
        yield b"}\n"


class _Sink:
    """Where the zip is written: bytes taken away as they come (no seeking, so the zip
    writes each entry's sizes after its data)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _entry_base(child: JobRecord) -> str:
    name = (child.input or {}).get("name") or "file"
    return f"{child.batch_index or 0:05d}-{str(name).replace('/', '_')}"


def _zip(services: Services, record: BatchRecord) -> Iterator[bytes]:
    """The batch's results as a zip written as it is sent: per child that ended,
    ``<index>-<name>.json`` (its result), ``<index>-<name>/<artifact>`` (the files it
    made), ``<index>-<name>.error.json`` (its error); then ``manifest.ndjson``, one line
    per child with the entries it has (spooled to a temporary file as they are written)."""
    sink = _Sink()
    with (
        SpooledTemporaryFile(max_size=1024 * 1024) as manifest,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for child in _children(services, record):
            answer, extra = _answer(services, child)
            base = _entry_base(child)
            entries: list[str] = []
            if answer is not None:
                entries.append(f"{base}.json")
                large = answer.stored.total_size * 2 > zipfile.ZIP64_LIMIT
                with archive.open(entries[-1], "w", force_zip64=large) as out:
                    for chunk in answer:
                        out.write(chunk)
                        if len(sink.buffer) >= _ZIP_FLUSH:
                            yield sink.take()
                for artifact in (child.result or {}).get("artifacts") or []:
                    entries.append(f"{base}/{artifact['name']}")
                    large = int(artifact.get("size") or 0) > zipfile.ZIP64_LIMIT // 2
                    with (
                        services.blobs.open(artifact["uri"]) as stream,
                        archive.open(entries[-1], "w", force_zip64=large) as out,
                    ):
                        while chunk := stream.read(CHUNK):
                            out.write(chunk)
                            if len(sink.buffer) >= _ZIP_FLUSH:
                                yield sink.take()
            if extra.get("error"):
                entries.append(f"{base}.error.json")
                archive.writestr(entries[-1], _dumps(extra["error"]))
            manifest.write((_dumps(_head(child) | {"entries": entries}) + "\n").encode())
            if len(sink.buffer) >= _ZIP_FLUSH:
                yield sink.take()
        manifest.seek(0)
        with archive.open("manifest.ndjson", "w", force_zip64=True) as out:
            while chunk := manifest.read(CHUNK):
                out.write(chunk)
                if len(sink.buffer) >= _ZIP_FLUSH:
                    yield sink.take()
    yield sink.take()
