"""v1's media processing (§5): ``/api/v1/process/{document,image,video}`` as jobs,
``/api/v1/sync/convert/{document,image,video}`` synchronously.

Every kind is the ``v1_media`` operation, which composes the existing ones in
the job: v1's image pipeline (§5.2) on the ``image`` operation, the document
pipeline (§5.4) on LibreOffice, ``render`` and the image pipeline, and a video
(§5.3) as the ``video`` operation's transcode to WebM (v1's ``clip`` when it is
two parts). Parameters are checked in the job, not at submission, as v1 did.
They are §5.1's, from the query string, then the form. ``vipsEnable=false``
(or, without it, the setting ``VIPS_ENABLED=false``) selects v1's ffmpeg geometry.

v1 deleted a job's output as soon as it was made; here it is kept as the job's
artifact for the job's lifetime, and ``GET /api/v1/job/:id/download`` (an
extension, not a v1 route) answers it. ``output_path`` in the job's result is
where the output is stored.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from docworker.api.deps import Services, ServicesDep
from docworker.api.submitting import JobClient, V1JobClientDep
from docworker.api.v1 import schemas
from docworker.api.v1.encoding import v1_time
from docworker.api.v1.errors import REFUSED, REUSED_KEY, V1Error, refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    CONTENT_TYPES,
    SEVERAL_FILES_CASE,
    MediaParams,
    MediaParamsDep,
    V1Upload,
    accepted,
    form_value,
    multipart_body,
    receive_upload,
    run_and_wait,
    stream_response,
    submit,
    upload_form,
)
from docworker.api.v1.jobs import JOB_KINDS, V1JobKind, find_job, v1_type
from docworker.errors import DocworkerError
from docworker.jobs.store import JobRecord, JobStatus

router = APIRouter(prefix="/api/v1", tags=["v1"])

MEDIA_PROCESSING = "media_processing"
KINDS = ("document", "image", "video")
PROCESSING_FAILED = "Processing failed"
_MESSAGE = "Job submitted for processing"

_PARAMETERS = {
    "width": "Target width in pixels (image, document).",
    "height": "Target height in pixels (image, document).",
    "crop": "Crop 'left:top:width:height' (vips) or 'w:h:x:y' (vipsEnable=false).",
    "quality": "Encoder quality 1-100.",
    "resize": "Uniform scale in percent (50: half size).",
    "clip": "Video: 'start:duration' in seconds ('5:2.5').",
    "page": "Document: the 1-based page rendered (default 1).",
    "format": "Output extension: webp (default), jpg, png, avif, tiff, gif; pdf for "
    "documents. Ignored for video (always webm).",
    "vipsEnable": "'false': v1's ffmpeg geometry (scale, then crop w:h:x:y).",
}
_BODY = multipart_body(
    {name: f"{text} Read from the query string first." for name, text in _PARAMETERS.items()}
) | {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        | {"description": text}
        for name, text in _PARAMETERS.items()
    ]
}


def operation_of(kind: str, params: MediaParams, vips: bool) -> tuple[str, dict[str, Any]]:
    """The v2 operation and its parameters for a v1 media request of ``kind``."""
    if kind == "video":
        return "v1_media", {"kind": "video"} | ({"clip": params.clip} if params.clip else {})
    given = {
        "width": params.width,
        "height": params.height,
        "crop": params.crop,
        "quality": params.quality,
        "resize": params.resize,
        "page": params.page,
        "format": params.format,
    }
    media: dict[str, Any] = {"kind": kind, "vips": vips}
    return "v1_media", media | {k: v for k, v in given.items() if v is not None}


def vips_choice(request: Request, form: FormData | None, services: Services) -> bool:
    """vips unless ``vipsEnable=false``; without ``vipsEnable``, the ``VIPS_ENABLED``
    setting decides (§5.1)."""
    given = form_value(request, form, "vipsEnable")
    return given != "false" if given is not None else services.settings.v1.vips_enabled


def output_extension(record: JobRecord) -> tuple[str, str]:
    """The name of a finished media job's output and its extension."""
    listed = (record.result or {}).get("artifacts") or []
    if not listed:
        raise V1Error(404, "Output not available", f"job {record.id} made no file")
    name = str(listed[0]["name"])
    return name, PurePosixPath(name).suffix.lstrip(".")


# -- the job's v1 result --------------------------------------------------------------


def _job_result(
    payload: dict[str, Any], _result: dict[str, Any], record: JobRecord
) -> dict[str, Any]:
    listed = (record.result or {}).get("artifacts") or []
    return {
        "output_path": str(listed[0].get("uri", "")) if listed else "",
        "processed_at": v1_time(record.finished_at),
        "input_path": payload.get("input_path", ""),
        "media_kind": payload.get("media_kind", ""),
        "metadata": payload.get("metadata") or {},
    }


JOB_KINDS[MEDIA_PROCESSING] = V1JobKind(_job_result, lambda _payload: "Failed to process file")


# -- asynchronous: /process/<kind> -----------------------------------------------------


async def _submit(
    request: Request, services: Services, client: JobClient, kind: str, params: MediaParams
) -> Response:
    form, file = await upload_form(request)
    upload: V1Upload = await receive_upload(services, request, file)
    vips = vips_choice(request, form, services)
    operation, op_params = operation_of(kind, params, vips)
    payload = upload.payload(
        media_kind=kind,
        search_params=params.search_params(),
        format=params.format,
        vips_enabled=vips,
    )
    record = await submit(
        services,
        client,
        operation,
        op_params,
        upload,
        kind=MEDIA_PROCESSING,
        payload=payload,
        failure="Failed to submit job",
    )
    return accepted(record, _MESSAGE)


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": schemas.V1Accepted, "description": "The job, to poll on /api/v1/job/:id"},
    **v1_responses(
        (400, "File upload error"),
        SEVERAL_FILES_CASE,
        (500, "Failed to save uploaded file"),
        (500, "Failed to submit job"),
        reused_key("Failed to submit job"),
    ),
}


@router.post(
    "/process/document",
    operation_id="v1_process_media_document",
    summary="A document's page as an image, or the document as PDF, as a job (v1)",
    status_code=202,
    openapi_extra=_BODY,
    responses=_ACCEPTED,
)
async def process_document(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """Office documents are made a PDF; ``format=pdf`` keeps the PDF, any other format
    renders page ``page`` at 150 dpi and processes it as an image."""
    return await _submit(request, services, client, "document", params)


@router.post(
    "/process/image",
    operation_id="v1_process_media_image",
    summary="Resize, crop or convert an image, as a job (v1)",
    status_code=202,
    openapi_extra=_BODY,
    responses=_ACCEPTED,
)
async def process_image(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """One of resize, crop, width/height fit (in that priority), encoded as ``format``."""
    return await _submit(request, services, client, "image", params)


@router.post(
    "/process/video",
    operation_id="v1_process_media_video",
    summary="A video as WebM, as a job (v1)",
    status_code=202,
    openapi_extra=_BODY,
    responses=_ACCEPTED,
)
async def process_video(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """Transcoded to WebM (VP9 + Opus), trimmed by ``clip``."""
    return await _submit(request, services, client, "video", params)


# -- synchronous: /sync/convert/<kind> -------------------------------------------------


async def _convert(
    request: Request, services: Services, client: JobClient, kind: str, params: MediaParams
) -> Response:
    try:
        form, file = await upload_form(request)
    except V1Error as exc:
        raise V1Error(exc.status, exc.error) from None  # v1 sent no details here
    try:
        upload = await receive_upload(services, request, file)
    except V1Error:
        raise V1Error(500, "Failed to save file") from None
    operation, op_params = operation_of(kind, params, vips_choice(request, form, services))
    try:
        record = await run_and_wait(
            services, client, operation, op_params, upload.job_input, PROCESSING_FAILED
        )
        name, extension = output_extension(record)
        entry, stream = await anyio.to_thread.run_sync(services.queue.artifact, record, name)
    except V1Error as exc:
        if exc.status in (REFUSED, REUSED_KEY, 401, 403):
            raise  # the content guard's refusal naming what it found, the key's, the caller's
        if exc.headers:  # refused for now (a full engine queue): retry after
            raise V1Error(exc.status, PROCESSING_FAILED, headers=exc.headers) from None
        raise V1Error(500, PROCESSING_FAILED) from None
    except DocworkerError:
        raise V1Error(500, PROCESSING_FAILED) from None
    return stream_response(stream, int(entry["size"]), extension)


def _sync_responses(media: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The converted file, as an attachment "
            "'processed-<digits>.<ext>'; Content-Type by extension",
            "content": media,
        },
        **v1_responses(
            (400, "File upload error"),
            SEVERAL_FILES_CASE,
            (500, "Failed to save file"),
            (500, PROCESSING_FAILED),
            refused(PROCESSING_FAILED),
            reused_key(PROCESSING_FAILED),
        ),
    }


_IMAGE_TYPES: dict[str, Any] = {
    CONTENT_TYPES[ext]: {} for ext in ("webp", "jpg", "png", "avif", "gif", "tiff")
}


@router.post(
    "/sync/convert/document",
    operation_id="v1_sync_convert_document",
    summary="A document's page as an image, or the document as PDF (v1)",
    openapi_extra=_BODY,
    responses=_sync_responses({**_IMAGE_TYPES, "application/pdf": {}}),
)
async def sync_convert_document(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """Page ``page`` (default 1) at 150 dpi through the image pipeline, WebP by default;
    ``format=pdf``: the document as PDF."""
    return await _convert(request, services, client, "document", params)


@router.post(
    "/sync/convert/image",
    operation_id="v1_sync_convert_image",
    summary="Resize, crop or convert an image (v1)",
    openapi_extra=_BODY,
    responses=_sync_responses(_IMAGE_TYPES),
)
async def sync_convert_image(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """One of resize, crop, width/height fit (in that priority), WebP by default."""
    return await _convert(request, services, client, "image", params)


@router.post(
    "/sync/convert/video",
    operation_id="v1_sync_convert_video",
    summary="A video as WebM (v1)",
    openapi_extra=_BODY,
    responses=_sync_responses({"video/webm": {}}),
)
async def sync_convert_video(
    request: Request, services: ServicesDep, client: V1JobClientDep, params: MediaParamsDep
) -> Response:
    """Transcoded to WebM (VP9 + Opus), trimmed by ``clip``."""
    return await _convert(request, services, client, "video", params)


# -- the output of a job (an extension) --------------------------------------------------


@router.get(
    "/job/{id}/download",
    operation_id="v1_job_download",
    summary="The file a media job made (extension of v1)",
    responses={
        200: {"description": "The output, as the sync routes answer it", "content": _IMAGE_TYPES},
        **v1_responses(
            (404, "Job not found"), (404, "Output not available"), (409, "Job not completed")
        ),
    },
)
async def download(id: str, services: ServicesDep) -> Response:
    """Not a v1 route: v1 deleted the output at once. Kept for the job's lifetime."""

    def open_output() -> Response:
        record = find_job(services, id)
        if v1_type(record) != MEDIA_PROCESSING:
            raise V1Error(404, "Output not available", f"job {id} is not a media job")
        if record.status not in {JobStatus.SUCCEEDED, JobStatus.PARTIAL}:
            raise V1Error(409, "Job not completed", f"job {id} is {record.status}")
        name, extension = output_extension(record)
        try:
            entry, stream = services.queue.artifact(record, name)
        except DocworkerError as exc:
            raise V1Error.wrapping(404, "Output not available", exc) from None
        return stream_response(stream, int(entry["size"]), extension)

    return await anyio.to_thread.run_sync(open_output)
