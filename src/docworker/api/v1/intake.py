"""What every v1 route shares on the way in and out: forms, uploads, jobs, answers.

* :func:`read_form` and :func:`form_file` read a multipart body with each route's
  own v1 errors; :func:`form_value` is v1's rule F (query string first, then the
  form) and :class:`MediaParams` its media parameters (§5.1, query then form).
* :func:`receive_upload` stores an upload with its type detected from the content,
  and :func:`submit` queues a job carrying v1's job ``payload`` (kept with the job's
  input, see :class:`~docworker.jobs.queue.JobInput`), so ``/api/v1/job/:id`` can
  answer it; :func:`accepted` is v1's ``202`` body.
* :func:`run_and_wait` is the synchronous v1 routes' job: submitted, waited for,
  and its failure turned into the route's v1 error; :func:`v1_answer` shapes its
  result, loaded within the API's bound on results loaded whole.
* Every job goes through :func:`submit_job` for the route's
  :class:`~docworker.api.submitting.JobClient`: its ``Idempotency-Key`` makes a
  retry find the job it made, and a sync client that leaves unanswered has its job
  cancelled unless it sent a key, as on the v2 routes.
* :func:`file_response` and :func:`stream_response` answer a produced file the way
  v1's converters did.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from docworker.api.deps import Services
from docworker.api.results import reshaped
from docworker.api.submitting import JobClient
from docworker.api.uploads import store_input
from docworker.api.v1.encoding import v1_time
from docworker.api.v1.errors import REFUSED, V1Error
from docworker.errors import Conflict, ContentRefused, DocworkerError
from docworker.formats.detect import detect
from docworker.jobs.queue import JobInput
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord
from docworker.operations import INT_RANGE
from docworker.storage import CHUNK, StoredBlob

#: Output extension → Content-Type, as v1 answered files (§2.10).
CONTENT_TYPES = {
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "avif": "image/avif",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webm": "video/webm",
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
}
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
NOT_MULTIPART = "request has no multipart/form-data Content-Type"
NO_FILE = "there is no uploaded file associated with the given key"
#: The status of a v1 route sent several files where it takes one (v1 read the first and
#: dropped the others: 422 as v2 answers it, in v1's error body).
SEVERAL_FILES = 422
#: The OpenAPI case of every v1 route that takes one file (see :func:`form_file`).
SEVERAL_FILES_CASE = (SEVERAL_FILES, "File upload error")


async def read_form(request: Request, refusal: V1Error) -> FormData:
    """The multipart form of ``request``; ``refusal`` when the body is not multipart."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise refusal
    try:
        return await request.form(max_part_size=1024 * 1024)
    except StarletteHTTPException as exc:
        if exc.status_code == 413:
            raise  # the body limit: v1's framework error
        raise V1Error(refusal.status, refusal.error, refusal.details or str(exc.detail)) from None
    except (ValueError, KeyError, AssertionError, MultiPartException) as exc:
        raise V1Error(refusal.status, refusal.error, refusal.details or str(exc)) from None


def form_file(form: FormData, name: str, missing: V1Error) -> UploadFile:
    """The file part called ``name``; ``missing`` when there is none, and a 422 naming
    the field when there are several (one would be read and the others dropped)."""
    files = [value for value in form.getlist(name) if isinstance(value, UploadFile)]
    if len(files) > 1:
        raise V1Error(
            SEVERAL_FILES,
            "File upload error",
            f"one file part named '{name}' is taken, and {len(files)} were sent",
            field=name,
        )
    if not files:
        raise missing
    return files[0]


def upload_error(details: str) -> V1Error:
    return V1Error(400, "File upload error", details)


async def upload_form(request: Request, name: str = "file") -> tuple[FormData, UploadFile]:
    """The form and its file part ``name``, with v1's ``File upload error`` for either fault."""
    form = await read_form(request, upload_error(NOT_MULTIPART))
    return form, form_file(form, name, upload_error(NO_FILE))


_GO_INT = re.compile(r"[+-]?[0-9]+")


def go_int(raw: str) -> int:
    """An integer as v1 read one (Go's ``strconv.Atoi``): an optional sign and ASCII
    digits, nothing else (no spaces, no ``_`` separators, no other digits); a
    ``ValueError`` otherwise."""
    if not _GO_INT.fullmatch(raw):
        raise ValueError(f"not an integer: {raw}")
    number = int(raw)
    if number not in INT_RANGE:
        raise ValueError(f"out of range: {raw}")
    return number


def form_value(request: Request, form: FormData | None, name: str) -> str | None:
    """v1's rule F: the query string first, then the form's text field; empty is absent."""
    value = request.query_params.get(name)
    if not value and form is not None:
        field_value = form.get(name)
        value = field_value if isinstance(field_value, str) else None
    return value or None


@dataclass(frozen=True)
class MediaParams:
    """v1's media parameters (§5.1), read from the query string, else the form."""

    width: int | None = None
    height: int | None = None
    crop: str | None = None
    quality: int | None = None
    resize: int | None = None
    clip: str | None = None
    page: int | None = None
    format: str | None = None
    vips_enabled: bool = True

    @classmethod
    def read(cls, request: Request, form: FormData | None) -> MediaParams:
        def number(name: str) -> int | None:
            raw = form_value(request, form, name)
            try:
                return go_int(raw) if raw is not None else None
            except ValueError:
                return None  # v1 ignored what it could not parse

        page = number("page")
        return cls(
            width=number("width"),
            height=number("height"),
            crop=form_value(request, form, "crop"),
            quality=number("quality"),
            resize=number("resize"),
            clip=form_value(request, form, "clip"),
            page=page if page is not None and page >= 1 else None,
            format=form_value(request, form, "format"),
            vips_enabled=form_value(request, form, "vipsEnable") != "false",
        )

    def search_params(self) -> dict[str, Any]:
        """The job payload's ``search_params``, with v1's Go field names."""
        return {
            "Width": self.width,
            "Height": self.height,
            "Crop": self.crop,
            "Quality": self.quality,
            "ResizeScale": self.resize,
            "CutVideo": self.clip,
            "Page": self.page,
        }


async def media_params(request: Request) -> MediaParams:
    """§5.1's media parameters of ``request``, as a route dependency: the query string
    first, then same-named fields of a multipart or urlencoded body (which stays
    readable by the route: Starlette keeps the parsed form on the request)."""
    form = None
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        try:
            form = await request.form(max_part_size=1024 * 1024)
        except (ValueError, KeyError, AssertionError, MultiPartException):
            form = None  # the route's own form reading reports it
        except StarletteHTTPException as exc:
            if exc.status_code == 413:
                raise
            form = None
    return MediaParams.read(request, form)


MediaParamsDep = Annotated[MediaParams, Depends(media_params)]


@dataclass(frozen=True)
class V1Upload:
    """An uploaded file, stored, with what v1 recorded about it."""

    job_input: JobInput
    name: str
    mime: str
    size: int
    uploaded_at: datetime
    client_ip: str
    #: v1's second UUID of the job payload; v2 also uses it as the document's id (§11).
    document_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def metadata(self) -> dict[str, Any]:
        return {
            "original_filename": self.name,
            "file_size": self.size,
            "upload_time": v1_time(self.uploaded_at),
            "client_ip": self.client_ip,
        }

    def payload(self, **extra: Any) -> dict[str, Any]:
        """v1's job ``payload``: the second id, the stored input, the upload's metadata."""
        return {
            "id": self.document_id,
            "input_path": self.job_input.blob.uri,
            **extra,
            "metadata": self.metadata(),
        }


async def receive_upload(services: Services, request: Request, upload: UploadFile) -> V1Upload:
    """Store ``upload``, its type detected from its content (the name a tie-breaker)."""
    name = PurePosixPath((upload.filename or "").replace("\\", "/")).name[:255] or "upload"
    try:
        blob, mime = await anyio.to_thread.run_sync(_store, services, upload.file, name)
    except DocworkerError as exc:
        raise V1Error.wrapping(500, "Failed to save uploaded file", exc) from None
    except OSError as exc:
        raise V1Error(500, "Failed to save uploaded file", str(exc)) from None
    finally:
        await upload.close()
    client = request.client.host if request.client else ""
    return V1Upload(
        job_input=JobInput(blob=blob, name=name, mime=mime),
        name=name,
        mime=mime,
        size=blob.size,
        uploaded_at=datetime.now(UTC),
        client_ip=client,
    )


def _store(services: Services, stream: IO[bytes], name: str) -> tuple[StoredBlob, str]:
    limit = services.settings.server.largest_upload
    suffix = PurePosixPath(name).suffix[:16]
    with tempfile.NamedTemporaryFile(prefix="docworker-v1-", suffix=suffix) as copy:
        shutil.copyfileobj(stream, copy, CHUNK)
        copy.flush()
        mime = detect(Path(copy.name), name).mime

        def put() -> StoredBlob:
            copy.seek(0)
            return services.blobs.put_stream(copy, max_bytes=limit)

        blob = store_input(put)
    return blob, mime


async def submit(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    upload: V1Upload,
    *,
    kind: str,
    payload: dict[str, Any],
    failure: str,
) -> JobRecord:
    """Queue the v2 job behind a v1 request; ``kind`` is v1's job ``type``
    (``text_extraction``, ...) and ``payload`` v1's job payload. A refused
    submission is the route's v1 ``failure``."""
    meta = {"type": kind, "document_id": upload.document_id, "payload": payload}
    job_input = JobInput(upload.job_input.blob, upload.name, upload.mime, v1=meta)
    return await submit_job(services, client, operation, params, job_input, failure)


async def submit_job(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    job_input: JobInput,
    failure: str,
    *,
    part: str | None = None,
) -> JobRecord:
    """Submit a v1 route's job for ``client`` (the job its idempotency key made, when it
    sent one: see :mod:`docworker.api.submitting`). Refused, it is the route's
    ``failure``: 409 for a key used before for another request, else as
    :meth:`V1Error.wrapping` says."""
    try:
        return await client.submit(services.queue, operation, params, job_input, part=part)
    except Conflict as exc:
        raise V1Error(409, failure, exc.detail) from None
    except DocworkerError as exc:
        raise V1Error.wrapping(500, failure, exc) from None


async def run_and_wait(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    job_input: JobInput,
    failure: str,
) -> JobRecord:
    """Run a job for a synchronous v1 route and wait for it (up to the longest wait the
    server allows) while ``client`` is there; its failure, or not finishing in time, is
    the route's ``failure`` (422 when the content guard refused the input, else 500 as
    v1 answered). Nothing of the result is read: the files are streamed, and
    :func:`v1_answer` shapes a payload."""
    started = time.monotonic()
    record = await submit_job(services, client, operation, params, job_input, failure)
    try:
        record = await client.wait(services.queue, record, services.settings.server.max_wait)
        if record.status not in TERMINAL_STATUSES:
            waited = round(time.monotonic() - started)
            raise V1Error(500, failure, f"job {record.id} did not finish within {waited} s")
        await anyio.to_thread.run_sync(services.queue.result_ref, record)  # its error, if any
    except DocworkerError as exc:
        status = REFUSED if isinstance(exc, ContentRefused) else 500
        raise V1Error.wrapping(status, failure, exc) from None
    return record


async def v1_answer(
    services: Services,
    record: JobRecord,
    failure: str,
    shape: Callable[[dict[str, Any]], Response],
) -> Response:
    """The answer ``shape`` makes of the finished job's result as v1 knows it (without the
    v2 ``security`` section, :func:`v1_view`). v1's shapes transform the whole text (one
    line, counts in UTF-8 bytes, page separators), so the result is loaded whole, in a
    worker thread, within the API's bound (``server.max_loaded_result_bytes``; see
    :func:`~docworker.api.results.reshaped`): a larger result is the route's ``failure``
    (500, as v1 answered any failure), its details pointing to the streamed v2 result."""
    try:
        return await reshaped(services, record, lambda payload: shape(v1_view(payload)))
    except DocworkerError as exc:
        raise V1Error.wrapping(500, failure, exc) from None


def v1_view(payload: dict[str, Any]) -> dict[str, Any]:
    """A v2 result as v1 routes may show it: v1's shapes are fixed, so the sections v2
    adds to every result (``security``) are left out."""
    return {k: v for k, v in payload.items() if k != "security"}


def accepted(record: JobRecord, message: str, **extra: Any) -> JSONResponse:
    """v1's ``202``: the job id, ``accepted``, the message and where to poll."""
    body = {
        "job_id": record.id,
        "status": "accepted",
        **extra,
        "message": message,
        "check_status_url": f"/api/v1/job/{record.id}",
    }
    return JSONResponse(body, status_code=202)


def _file_headers(extension: str, attachment: bool) -> tuple[str, dict[str, str]]:
    ext = extension.lower().lstrip(".")
    headers = {}
    if attachment:
        headers["Content-Disposition"] = (
            f'attachment; filename="processed-{time.time_ns() % 10**10}.{ext}"'
        )
    return CONTENT_TYPES.get(ext, "application/octet-stream"), headers


def file_response(content: bytes, extension: str, *, attachment: bool = True) -> Response:
    """A produced file as v1 answered it: its Content-Type from the extension and, for
    the converters, ``attachment; filename="processed-<digits>.<ext>"``."""
    media_type, headers = _file_headers(extension, attachment)
    return Response(content, media_type=media_type, headers=headers)


def stream_response(
    stream: IO[bytes], size: int, extension: str, *, attachment: bool = True
) -> StreamingResponse:
    """As :func:`file_response`, for a file read from a stream (a job's artifact), which
    is closed once sent."""
    media_type, headers = _file_headers(extension, attachment)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


def multipart_body(
    fields: dict[str, str], *, file_part: str | None = "file", required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``openapi_extra`` describing a v1 multipart request: the file part and text fields."""
    properties: dict[str, Any] = {}
    if file_part:
        properties[file_part] = {
            "type": "string",
            "format": "binary",
            "description": "The file (only the first part of this name is read).",
        }
    for name, description in fields.items():
        properties[name] = {"type": "string", "description": description}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    needed = [file_part, *required] if file_part else list(required)
    if needed:
        schema["required"] = needed
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }
