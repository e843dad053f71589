"""v1's documents API (§11): ``POST /api/v1/documents/process``,
``GET /api/v1/documents/:id`` and ``GET /api/v1/documents/:id/jobs``.

v1 declared these routes but never wired them (they always crashed), and had no
route that made documents. Here a document is an upload accepted by a v1 job
route (``/api/v1/extract/async/...``): its id is the second UUID of that job's
v1 payload, recorded with the job's input, and its jobs are found by it in the
job store. ``documents/process`` runs another operation on the same stored file:
``extract``, ``ocr``, the media operations of ``/api/v1/process/*``
(``image_convert``, ``video_convert``, ``thumbnail``) or ``convert``
(``pdf_generate``).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docworker.api.auth import current_caller
from docworker.api.deps import Services, ServicesDep
from docworker.api.openapi import model_ref
from docworker.api.results import loaded_answer
from docworker.api.submitting import V1JobClientDep
from docworker.api.v1 import extraction, schemas
from docworker.api.v1.encoding import GO_ZERO_TIME, v1_time
from docworker.api.v1.errors import V1Error, reused_key, v1_responses
from docworker.api.v1.intake import MediaParams, submit_job
from docworker.api.v1.jobs import outcome, processing_job, v1_meta, v1_payload
from docworker.api.v1.media import MEDIA_PROCESSING, operation_of
from docworker.errors import DocworkerError
from docworker.jobs.queue import JobInput
from docworker.jobs.results import StoredResult
from docworker.jobs.store import JobRecord
from docworker.storage import StoredBlob

router = APIRouter(prefix="/api/v1", tags=["v1"])

#: ``POST /api/v1/documents/process``'s failure text.
FAILURE = "Failed to process document"

_DOCUMENT_ID = ("v1", "document_id")
#: ProcessingType → (operation, its parameters, v1 job type, v1 payload additions).
PROCESSING: dict[str, tuple[str, dict[str, Any], str, dict[str, Any]]] = {
    "text_extract": (
        "extract",
        {"output": "text"},
        extraction.TEXT_EXTRACTION,
        {"job_type": "full"},
    ),
    "ocr": ("ocr", {"output": "v1", "pages": "1", "preprocess": True}, "ocr_processing", {}),
}
#: ProcessingTypes made by the media operations (:func:`media_plan`).
MEDIA_TYPES = frozenset({"image_convert", "video_convert", "pdf_generate", "thumbnail"})
#: v1's thumbnail: a WebP at quality 85 fitting a ``size`` box (default 200).
THUMBNAIL_SIZE = 200
_ARCHIVES = ("zip", "x-tar", "gzip", "x-7z", "x-rar", "x-bzip2", "x-xz")


def document_type(mime: str) -> str:
    """v1's document type of a media type."""
    kind = extraction.source_kind(mime)
    if kind == "pdf":
        return "pdf"
    if kind == "office":
        return "office"
    major = mime.split("/", 1)[0]
    if major in {"image", "video"}:
        return major
    if any(mime.endswith("/" + archive) for archive in _ARCHIVES):
        return "archive"
    return "text"


def _number(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None  # v1 ignored what it could not parse


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def media_params(parameters: dict[str, Any]) -> MediaParams:
    """§5.1's parameters from a ProcessRequest's ``parameters`` object."""
    page = _number(parameters.get("page"))
    return MediaParams(
        width=_number(parameters.get("width")),
        height=_number(parameters.get("height")),
        crop=_text(parameters.get("crop")),
        quality=_number(parameters.get("quality")),
        resize=_number(parameters.get("resize")),
        clip=_text(parameters.get("clip")),
        page=page if page is not None and page >= 1 else None,
        format=_text(parameters.get("format")),
        vips_enabled=parameters.get("vipsEnable") not in ("false", False),
    )


def media_plan(
    processing: str, parameters: dict[str, Any], mime: str
) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """(operation, its parameters, v1 job type, v1 payload additions) of a media
    ProcessingType on a document of type ``mime``."""
    if processing == "pdf_generate":
        # v1 routes keep the engine they always had here (WeasyPrint): no flag decides.
        return "convert", {"to": "pdf", "engine": "weasyprint"}, "pdf_generation", {}
    video = document_type(mime) == "video"
    if processing == "thumbnail":
        size = _number(parameters.get("size")) or THUMBNAIL_SIZE
        if video:
            frame = {"action": "frame", "format": "webp", "quality": 85}
            return (
                "video",
                frame | {"width": size, "height": size},
                MEDIA_PROCESSING,
                {"media_kind": "video"},
            )
        fit = {"kind": "document", "width": size, "height": size, "quality": 85}
        return "v1_media", fit | {"format": "webp"}, MEDIA_PROCESSING, {"media_kind": "image"}
    params = media_params(parameters)
    kind = "video" if processing == "video_convert" else "image"
    if kind == "image" and document_type(mime) in {"pdf", "office"}:
        kind = "document"
    operation, op_params = operation_of(kind, params, params.vips_enabled)
    extra = {
        "media_kind": kind,
        "search_params": params.search_params(),
        "format": params.format,
        "vips_enabled": params.vips_enabled,
    }
    return operation, op_params, MEDIA_PROCESSING, extra


def _jobs(services: Services, document_id: str) -> list[JobRecord]:
    """The jobs of the caller's tenant run on the document, oldest first."""
    caller = current_caller()
    try:
        caller.require_read()
        records = services.store.with_input_tag(_DOCUMENT_ID, document_id)
    except DocworkerError as exc:
        raise V1Error.wrapping(500, "Failed to get jobs", exc) from None
    return [record for record in records if caller.sees(record.tenant)]


def document(services: Services, records: list[JobRecord]) -> dict[str, Any]:
    """v1's ``Document`` of the upload that ``records`` (oldest first) share; blocking."""
    first, last = records[0], records[-1]
    job_input = first.input or {}
    mime = str(job_input.get("mime") or "application/octet-stream")
    state, _, _ = outcome(services, last)
    body: dict[str, Any] = {
        "id": v1_meta(first)["document_id"],
        "name": job_input.get("name") or "",
        "type": document_type(mime),
        "path": job_input.get("uri", ""),
        "size": int(job_input.get("size") or 0),
        "mime_type": mime,
        "status": state,
        "metadata": v1_payload(first).get("metadata") or {},
        "created_at": v1_time(first.created_at),
        "updated_at": v1_time(max(r.updated_at for r in records)),
    }
    if not body["metadata"]:
        del body["metadata"]
    finished = [r.finished_at for r in records if r.finished_at is not None]
    if finished:
        body["processed_at"] = v1_time(max(finished))
    return body


@router.get(
    "/documents/{id}",
    operation_id="v1_get_document",
    summary="An uploaded document (v1)",
    responses={
        200: {"model": schemas.V1Document, "description": "v1 Document"},
        **v1_responses((404, "Document not found")),
    },
)
async def get_document(id: str, services: ServicesDep) -> Response:
    """A file uploaded to a v1 job route, found by the ``payload.id`` of its job."""

    def read() -> Response:
        records = _jobs(services, id)
        if not records:
            raise V1Error(404, "Document not found", f"failed to get document: {id}: not found")
        return JSONResponse(document(services, records))

    return await loaded_answer(services, read)


@router.get(
    "/documents/{id}/jobs",
    operation_id="v1_get_document_jobs",
    summary="The jobs of a document (v1)",
    responses={
        200: {
            "model": list[schemas.V1ProcessingJob],
            "description": "v1 ProcessingJobs ([] for none)",
        },
        **v1_responses((500, "Failed to get jobs")),
    },
)
async def get_document_jobs(id: str, services: ServicesDep) -> Response:
    """Every job run on the document, oldest first. Their results together are read
    within the server's bound on results loaded whole (``server.max_loaded_result_bytes``):
    a job whose result would pass it shows ``failed``, saying so."""

    def read() -> Response:
        left = services.settings.server.max_loaded_result_bytes
        jobs = []
        for record in _jobs(services, id):
            jobs.append(processing_job(services, record, max_bytes=max(left, 0)))
            if record.result:
                left -= StoredResult.of(record.result).total_size
        return JSONResponse(jobs)

    return await loaded_answer(services, read)


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    document_id: str = Field(description="The document's id (payload.id of its first job).")
    type: str = Field(
        description="ProcessingType: text_extract, ocr, image_convert (a document's page "
        "or an image, §5.1 parameters), video_convert (WebM), pdf_generate (office, HTML, "
        "Markdown → PDF) or thumbnail (WebP fitting 'size', default 200).",
        examples=["text_extract"],
    )
    parameters: dict[str, Any] | None = Field(
        None,
        description="image_convert, video_convert: the media parameters of §5.1 (width, "
        "height, crop, quality, resize, clip, page, format, vipsEnable); thumbnail: size.",
    )
    priority: int | None = Field(None, description="Accepted, not used (as in v1).")


def _resubmission(services: Services, spec: ProcessRequest) -> tuple[str, dict[str, Any], JobInput]:
    """The operation, parameters and input of the job ``spec`` asks for on the
    document's stored file; blocking."""
    if spec.type not in PROCESSING and spec.type not in MEDIA_TYPES:
        raise V1Error(500, FAILURE, f"processing type '{spec.type}' is unknown")
    records = _jobs(services, spec.document_id)
    if not records:
        raise V1Error(500, FAILURE, "failed to get document: not found")
    stored = records[0].input or {}
    if not services.blobs.exists(stored["uri"]):
        raise V1Error(500, FAILURE, "the document's file has expired")
    if spec.type in PROCESSING:
        operation, params, kind, extra = PROCESSING[spec.type]
    else:
        mime = str(stored.get("mime") or "application/octet-stream")
        operation, params, kind, extra = media_plan(spec.type, spec.parameters or {}, mime)
    # The upload's part of the first job's payload, and what this job adds to it.
    first = v1_payload(records[0])
    payload = {k: v for k, v in first.items() if k in ("id", "input_path", "metadata")} | extra
    blob = StoredBlob(uri=stored["uri"], sha256=stored["sha256"], size=stored["size"])
    meta = {
        "type": kind,
        "document_id": spec.document_id,
        "payload": payload,
        "processing_type": spec.type,
    }
    return operation, params, JobInput(blob, stored.get("name"), stored.get("mime"), v1=meta)


@router.post(
    "/documents/process",
    operation_id="v1_process_document",
    summary="Run a processing on an uploaded document (v1)",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model_ref(ProcessRequest)}},
        }
    },
    responses={
        202: {"model": schemas.V1ProcessingResult, "description": "v1 ProcessingResult"},
        **v1_responses((400, "Invalid request body"), (500, FAILURE), reused_key(FAILURE)),
    },
)
async def process(request: Request, services: ServicesDep, client: V1JobClientDep) -> JSONResponse:
    """Queue a job of the ProcessingType on the document's stored file; the job is on
    ``/api/v1/jobs/:jobId`` and in ``/api/v1/documents/:id/jobs``."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise V1Error(400, "Invalid request body", "Unprocessable Entity")
    try:
        spec = ProcessRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise V1Error(400, "Invalid request body", str(exc.errors()[0]["msg"])) from None
    operation, params, job_input = await anyio.to_thread.run_sync(_resubmission, services, spec)
    record = await submit_job(services, client, operation, params, job_input, FAILURE)
    body = {
        "job_id": record.id,
        "document_id": spec.document_id,
        "type": spec.type,
        "status": "pending",
        "duration": 0,
        "completed_at": GO_ZERO_TIME,
    }
    return JSONResponse(body, status_code=202)
