"""v1's image format conversion (§5.7): ``POST /api/v1/process/image/convert``.

v1 bound the output format only from a multipart field named ``OutputFormat`` in
any case, and could never apply its conversion parameters; here the format is
read from ``output_format``, ``OutputFormat``/``outputformat`` (any case) or
``format``, and ``width``, ``height`` and ``quality`` from their own fields or from
a ``parameters`` field holding a JSON object, applied as v1's vips engine would
(a fit inside the box, quality as the encoder's). The work is the ``v1_media``
operation's image pipeline, as a job waited for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile

from docworker.api.deps import ServicesDep
from docworker.api.submitting import V1JobClientDep
from docworker.api.v1.errors import V1Error, refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    SEVERAL_FILES_CASE,
    form_file,
    multipart_body,
    read_form,
    receive_upload,
    run_and_wait,
)
from docworker.api.v1.media import output_extension
from docworker.errors import DocworkerError
from docworker.storage import CHUNK

router = APIRouter(prefix="/api/v1", tags=["v1"])

INVALID_BODY = "Invalid request body"
NO_FILE = "No file provided"
FAILURE = "Failed to convert image"
#: The answer's Content-Type by the format as given (compared case-sensitively, as v1).
CONVERTED_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}
_NUMBERS = ("width", "height", "quality")


def output_format(form: FormData) -> str | None:
    """The output format: ``output_format``, else a field named ``OutputFormat`` in any
    case, else ``format``; empty values count as absent."""
    for key in ("output_format", *(k for k in form if k.lower() == "outputformat"), "format"):
        value = form.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def conversion_parameters(form: FormData) -> dict[str, int]:
    """``width``, ``height``, ``quality`` from the ``parameters`` JSON object, then from
    their own fields (which win); anything unreadable is ``Invalid request body``."""
    found: dict[str, Any] = {}
    raw = form.get("parameters")
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise V1Error(400, INVALID_BODY, "parameters is not a JSON object") from None
        if not isinstance(parsed, dict):
            raise V1Error(400, INVALID_BODY, "parameters is not a JSON object")
        found.update({k: parsed[k] for k in _NUMBERS if parsed.get(k) is not None})
    for name in _NUMBERS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            found[name] = value.strip()
    numbers: dict[str, int] = {}
    for name, value in found.items():
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise V1Error(400, INVALID_BODY, f"{name} must be a whole number") from None
        if isinstance(value, float) and value != number:
            raise V1Error(400, INVALID_BODY, f"{name} must be a whole number")
        numbers[name] = number
    return numbers


async def _form(request: Request) -> tuple[FormData, UploadFile]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        # v1 decoded the JSON first: a body that is not JSON is refused as such.
        try:
            json.loads(await request.body())
        except ValueError as exc:
            raise V1Error(400, INVALID_BODY, f"the body is not JSON: {exc}") from None
    if content_type.startswith(("application/json", "application/x-www-form-urlencoded")):
        # Decodable, but such a body cannot carry a file.
        raise V1Error(400, NO_FILE, "the file is sent as the multipart part 'file'")
    form = await read_form(request, V1Error(400, INVALID_BODY, "Unprocessable Entity"))
    return form, form_file(form, "file", V1Error(400, NO_FILE, "no multipart part 'file'"))


@router.post(
    "/process/image/convert",
    operation_id="v1_process_image_convert",
    summary="Convert an image to another format (v1)",
    openapi_extra=multipart_body(
        {
            "output_format": "Output format: jpg, jpeg, png, webp, avif, tiff, gif "
            "(also read as OutputFormat in any case, or format).",
            "width": "Fit inside this width (pixels).",
            "height": "Fit inside this height (pixels).",
            "quality": "Encoder quality 1-100.",
            "parameters": 'JSON object {"width", "height", "quality"} (the fields win).',
        }
    ),
    responses={
        200: {
            "description": "The image, as the attachment 'converted.<format>'",
            "content": {
                "image/jpeg": {},
                "image/png": {},
                "image/webp": {},
                "image/avif": {},
                "application/octet-stream": {},
            },
        },
        **v1_responses(
            (400, INVALID_BODY),
            (400, NO_FILE),
            SEVERAL_FILES_CASE,
            (500, "Failed to open file"),
            (500, FAILURE),
            refused(FAILURE),
            reused_key(FAILURE),
        ),
    },
)
async def convert_image(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """The uploaded image (part ``file``) in ``output_format``."""
    form, file = await _form(request)
    fmt = output_format(form)
    if fmt is None:
        raise V1Error(400, INVALID_BODY, "output_format is required")
    numbers = conversion_parameters(form)
    try:
        upload = await receive_upload(services, request, file)
    except V1Error as exc:
        raise V1Error(500, "Failed to open file", exc.details) from None
    params = {"kind": "image", "vips": True, "format": fmt, **numbers}
    record = await run_and_wait(services, client, "v1_media", params, upload.job_input, FAILURE)
    name, _extension = output_extension(record)
    try:
        _, stream = await anyio.to_thread.run_sync(services.queue.artifact, record, name)
    except DocworkerError as exc:
        raise V1Error.wrapping(500, FAILURE, exc) from None

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=CONVERTED_TYPES.get(fmt, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="converted.{fmt}"'},
    )
