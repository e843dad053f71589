"""``POST /api/v2/image``: resize, crop, rotate, filter, watermark or convert an image,
or find its smallest encoding at a quality or size target; the image comes back.

Like every synchronous endpoint it submits a job (the ``image`` operation) and
waits up to ``wait`` seconds: the image itself when the job ends in time (JSON
describing it instead when the request accepts only ``application/json``), else
``202`` with the job, whose artifact is the image.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import store_uploads
from docworker.engines.image_formats import ImageFormat
from docworker.errors import InvalidParameter
from docworker.operations.image import MetadataPolicy, OutputChoice
from docworker.operations.image_steps import Fit, Interest

router = APIRouter(prefix="/api/v2", tags=["image"])

IMAGE_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "format": "webp",
    "mime": "image/webp",
    "width": 800,
    "height": 533,
    "frames": 1,
    "size": 48211,
    "quality": 62,
    "metadata": "strip_gps",
    "input": {"format": "jpeg", "width": 6000, "height": 4000, "frames": 1, "orientation": 1},
    "auto": {"format": "webp", "quality": 62, "size": 48211, "ssim": 0.9811, "tried": []},
    "artifacts": [{"name": "image.webp", "mime": "image/webp", "size": 48211}],
}
_STEPS_DESCRIPTION = (
    "A JSON array of steps applied in order after the resize, each an object with 'op': "
    '[{"op": "rotate", "angle": 90}, {"op": "text", "text": "© 2026"}]. '
    "Steps: resize, crop, rotate, flip, flop, grayscale, blur, sharpen, adjust, gamma, "
    "tint, text, watermark (see the image operation's parameters in GET /api/v2/operations)."
)


@router.post(
    "/image",
    operation_id="image",
    openapi_extra=feeds("image"),
    summary="Process or convert an image",
    responses={
        200: {
            "description": "The image (its format's media type), or JSON describing it when "
            "the request accepts only application/json; a batch: JSON describing each image, "
            "each one an artifact of the job",
            "content": {
                "application/json": {"example": IMAGE_EXAMPLE},
                **{fmt.mime: {} for fmt in ImageFormat},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(404, 409, 413, 415, 422, 429, 503),
    },
)
async def image(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    file: Annotated[
        list[UploadFile],
        File(
            description="The image: JPEG, PNG, WebP, AVIF, HEIC, TIFF, GIF or SVG. Further "
            "parts named 'file' are watermark images (a 'watermark' step; the second file "
            "is input 2) or, with batch=true, more images to process."
        ),
    ],
    width: Annotated[int | None, Form(ge=1, description="Box width (px)")] = None,
    height: Annotated[int | None, Form(ge=1, description="Box height (px)")] = None,
    fit: Annotated[Fit, Form(description="contain, cover, fill, inside or outside")] = Fit.INSIDE,
    no_upscale: Annotated[FormBool, Form(description="Never enlarge")] = False,
    position: Annotated[
        Interest, Form(description="What fit=cover keeps: centre, attention, entropy")
    ] = Interest.CENTRE,
    background: Annotated[str, Form(description="Padding colour '#rrggbb[aa]'")] = "#000000",
    steps: Annotated[str | None, Form(description=_STEPS_DESCRIPTION)] = None,
    format: Annotated[
        OutputChoice | None, Form(description="jpeg, png, webp, avif, tiff, gif or auto")
    ] = None,
    quality: Annotated[int | None, Form(ge=1, le=100, description="1–100")] = None,
    effort: Annotated[int | None, Form(ge=0, le=10, description="Encoder effort")] = None,
    lossless: Annotated[FormBool, Form(description="WebP, AVIF lossless")] = False,
    metadata: Annotated[
        MetadataPolicy, Form(description="keep, strip or strip_gps")
    ] = MetadataPolicy.STRIP_GPS,
    srgb: Annotated[FormBool, Form(description="Convert colours to sRGB")] = True,
    auto_orient: Annotated[FormBool, Form(description="Upright by EXIF orientation")] = True,
    frame: Annotated[int | None, Form(ge=1, description="Frame or page to take")] = None,
    max_bytes: Annotated[int | None, Form(ge=100, description="Automatic: byte budget")] = None,
    min_ssim: Annotated[float | None, Form(gt=0, le=1, description="Automatic: least SSIM")] = None,
    formats: Annotated[
        str | None, Form(description="Automatic: formats to try, e.g. 'webp,avif,jpeg'")
    ] = None,
    batch: Annotated[
        FormBool, Form(description="Process every file the same way, one output each")
    ] = False,
    files: Annotated[
        str | None, Form(description="Batch: which files, 1-based, e.g. '1-3'")
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the image as the multipart ``file`` part, with the parameters as form fields
    and the chain of steps as the JSON field ``steps``. With ``max_bytes`` or ``min_ssim``
    the format and quality are chosen: the smallest encoding that meets them."""
    given: dict[str, Any] = {
        "width": width,
        "height": height,
        "fit": fit,
        "no_upscale": no_upscale,
        "position": position,
        "background": background,
        "steps": _json_list(steps, "steps"),
        "format": format,
        "quality": quality,
        "effort": effort,
        "lossless": lossless,
        "metadata": metadata,
        "srgb": srgb,
        "auto_orient": auto_orient,
        "frame": frame,
        "max_bytes": max_bytes,
        "min_ssim": min_ssim,
        "formats": [name.strip() for name in formats.split(",") if name.strip()]
        if formats
        else None,
        "batch": batch or None,
        "files": files or None,
    }
    params = {name: value for name, value in given.items() if value is not None}
    uploads: list[StarletteUploadFile] = [*file]
    first, *others = await store_uploads(services, uploads)
    return await answer_files(
        services,
        client,
        "image",
        params,
        first,
        wait,
        priority,
        accept,
        others=others,
        as_json=bool(batch),
        headers_of=_described,
    )


def _json_list(raw: str | None, name: str) -> list[Any] | None:
    if not raw or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(name, f"not JSON: {exc.msg}") from None
    if not isinstance(value, list):
        raise InvalidParameter(name, "must be a JSON array of steps")
    return value


def _described(payload: dict[str, Any]) -> dict[str, str]:
    """Headers that describe the image answered (and the automatic choice)."""
    headers = {
        "X-Image-Format": str(payload["format"]),
        "X-Image-Width": str(payload["width"]),
        "X-Image-Height": str(payload["height"]),
    }
    if payload.get("quality") is not None:
        headers["X-Image-Quality"] = str(payload["quality"])
    if payload.get("auto"):
        headers["X-Image-SSIM"] = str(payload["auto"]["ssim"])
    return headers
