"""``POST /api/v2/render``: pages of a PDF, office document or image as PNG, JPEG or WebP;
``POST /api/v2/thumbnail``: the first page of any of them, small.

Both submit a ``render`` job and wait for it like every synchronous route. One
image comes back as itself; several as a zip, written to a temporary file off
the event loop and streamed from there (never held in memory). A job not
finished within ``wait`` answers ``202``: its images are then downloaded from
``/api/v2/jobs/{id}/artifacts/{name}`` as its result lists them.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.answers import answer_files
from docworker.api.deps import Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routing import feeds
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClient, JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.engines.image_formats import PageFormat
from docworker.jobs.queue import JobInput

router = APIRouter(prefix="/api/v2", tags=["render"], dependencies=[ONE_FILE_PER_FIELD])

RENDER_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "format": "png",
    "mime": "image/png",
    "source_mime": "application/pdf",
    "page_count": 2,
    "pages": [
        {
            "page": 1,
            "width": 1241,
            "height": 1754,
            "size": 311078,
            "artifact": "page-0001.png",
            "dpi": 150.0,
        },
        {
            "page": 2,
            "width": 1241,
            "height": 1754,
            "size": 199844,
            "artifact": "page-0002.png",
            "dpi": 150.0,
        },
    ],
    "artifacts": [
        {"name": "page-0001.png", "mime": "image/png", "size": 311078},
        {"name": "page-0002.png", "mime": "image/png", "size": 199844},
    ],
}

_IMAGES: dict[str, dict[str, Any]] = {"image/png": {}, "image/jpeg": {}, "image/webp": {}}
_ERRORS = problem_responses(403, 404, 409, 413, 415, 422, 429, 503)

FileField = Annotated[
    UploadFile | None,
    File(
        description="A PDF, an office or text document (DOCX, XLSX, PPTX, ODT, RTF, …) "
        "or an image (PNG, JPEG, TIFF, WebP, GIF, BMP, HEIC, AVIF)."
    ),
]
QualityField = Annotated[int | None, Form(ge=1, le=100, description="JPEG/WebP quality")]
BackgroundField = Annotated[
    str | None,
    Form(description="Paper of PDF pages, and what transparency becomes in JPEG: '#rrggbb'"),
]
PasswordField = Annotated[
    str | None, Form(description="Password of an encrypted PDF, DOCX, XLSX or PPTX")
]
WaitField = Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")]
PriorityField = Annotated[
    int, Form(ge=-100, le=100, description="Job priority, -100..100: higher runs first")
]


@router.post(
    "/render",
    operation_id="render",
    openapi_extra=feeds("render"),
    summary="Render pages as PNG, JPEG or WebP images",
    responses={
        200: {
            "description": "One page: the image itself. Several: a zip of the images "
            "(page-0001.png, …). JSON (the job's result, images listed as artifacts) when the "
            "request accepts only application/json.",
            "content": {
                **_IMAGES,
                "application/zip": {},
                "application/json": {"example": RENDER_EXAMPLE},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **_ERRORS,
    },
)
async def render(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    pages: Annotated[
        str | None, Form(description="Pages or frames, e.g. '1-3,5'; default: all")
    ] = None,
    format: Annotated[PageFormat, Form(description="png, jpeg or webp")] = PageFormat.PNG,
    dpi: Annotated[
        int | None, Form(ge=18, le=1200, description="Resolution of document pages (150)")
    ] = None,
    width: Annotated[int | None, Form(ge=1, description="Fit inside this width (px)")] = None,
    height: Annotated[int | None, Form(ge=1, description="Fit inside this height (px)")] = None,
    quality: QualityField = None,
    background: BackgroundField = None,
    password: PasswordField = None,
    wait: WaitField = None,
    priority: PriorityField = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the document as the multipart ``file`` part. Give ``dpi`` or a box
    (``width`` and/or ``height``, the aspect kept), not both. Long PDFs are rendered on
    every worker at once."""
    given = {
        "pages": pages or None,
        "dpi": dpi,
        "width": width,
        "height": height,
        "quality": quality,
        "background": background or None,
        "password": password or None,
    }
    params: dict[str, Any] = {"format": format}
    params.update({name: value for name, value in given.items() if value is not None})
    job_input = await store_document(services, file, source)
    return await _answer(services, client, params, job_input, wait, priority, accept)


@router.post(
    "/thumbnail",
    operation_id="thumbnail",
    openapi_extra=feeds("render"),
    summary="A thumbnail of a document's first page or of an image",
    responses={
        200: {
            "description": "The thumbnail (JSON, the job's result, when the request accepts "
            "only application/json)",
            "content": {**_IMAGES, "application/json": {}},
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **_ERRORS,
    },
)
async def thumbnail(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    size: Annotated[
        int | None, Form(ge=16, le=4096, description="Side of the box it fits in (256)")
    ] = None,
    format: Annotated[PageFormat, Form(description="webp, png or jpeg")] = PageFormat.WEBP,
    quality: QualityField = None,
    background: BackgroundField = None,
    password: PasswordField = None,
    wait: WaitField = None,
    priority: PriorityField = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The first page of a PDF or office document, or an image's first frame (upright),
    fitted into a ``size``×``size`` box, the aspect kept."""
    given = {
        "size": size,
        "quality": quality,
        "background": background or None,
        "password": password or None,
    }
    params: dict[str, Any] = {"thumbnail": True, "format": format}
    params.update({name: value for name, value in given.items() if value is not None})
    job_input = await store_document(services, file, source)
    return await _answer(services, client, params, job_input, wait, priority, accept)


async def _answer(
    services: Services,
    client: JobClient,
    params: dict[str, Any],
    job_input: JobInput,
    wait: float | None,
    priority: int,
    accept: str | None,
) -> Response:
    """The render job's image, a zip of its images, its JSON result, or 202."""
    stem = PurePosixPath(job_input.name or "document").stem or "document"
    return await answer_files(
        services,
        client,
        "render",
        params,
        job_input,
        wait,
        priority,
        accept,
        zip_name=f"{stem}-pages.zip",
    )
