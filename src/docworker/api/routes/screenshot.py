"""``POST /api/v2/screenshot``: an image of a web page (HTML, Markdown or a zipped site)
rendered by headless Chromium with its scripts run.

Like every synchronous endpoint it submits a job (operation ``screenshot``) and
waits for it: the image itself when the job ends within ``wait`` seconds (JSON
with its size and the refused requests instead when the client accepts only
``application/json``), otherwise ``202`` with the job, whose artifact is the image.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.engines.chromium import Media, PageFormat, WaitUntil

router = APIRouter(prefix="/api/v2", tags=["convert"], dependencies=[ONE_FILE_PER_FIELD])

SCREENSHOT_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "format": "png",
    "mime": "image/png",
    "width": 1280,
    "height": 2210,
    "truncated": False,
    "title": "Quarterly report",
    "artifact": "screenshot.png",
    "requests": {
        "remote_fetches": 0,
        "refused_count": 1,
        "refused": [
            {
                "url": "http://127.0.0.1:8080/x.png",
                "reason": "the URL http://127.0.0.1:8080/x.png may not be fetched: its host is "
                "not in the allow-list (fetch.allow)",
            }
        ],
    },
    "artifacts": [{"name": "screenshot.png", "mime": "image/png", "size": 48213}],
}


@router.post(
    "/screenshot",
    operation_id="screenshot",
    openapi_extra=feeds("screenshot"),
    summary="Take a screenshot of a web page, scripts run",
    responses={
        200: {
            "description": "The image (JSON describing it instead when the request accepts "
            "only application/json)",
            "content": {
                "image/png": {},
                "image/jpeg": {},
                "image/webp": {},
                "application/json": {"example": SCREENSHOT_EXAMPLE},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def take_screenshot(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[
        UploadFile | None,
        File(
            description="An HTML file, a Markdown file, or a zip of a page and its assets "
            "(index.html at its top or in its one top folder)."
        ),
    ] = None,
    format: Annotated[PageFormat, Form(description="png, jpeg or webp")] = (PageFormat.PNG),
    quality: Annotated[
        int | None, Form(ge=1, le=100, description="JPEG and WebP quality (default 90)")
    ] = None,
    width: Annotated[int, Form(ge=16, le=16384, description="Viewport width, CSS px")] = 1280,
    height: Annotated[int, Form(ge=16, le=16384, description="Viewport height, CSS px")] = 800,
    full_page: Annotated[FormBool, Form(description="The whole page, or only the viewport")] = True,
    scale: Annotated[
        float, Form(ge=0.1, le=4.0, description="Device scale factor (image px per CSS px)")
    ] = 1.0,
    selector: Annotated[
        str | None, Form(max_length=1000, description="Capture only this CSS selector's element")
    ] = None,
    omit_background: Annotated[
        FormBool, Form(description="PNG/WebP: transparent where the page paints no background")
    ] = False,
    wait_until: Annotated[
        WaitUntil, Form(description="domcontentloaded, load or networkidle")
    ] = WaitUntil.LOAD,
    wait_delay: Annotated[
        float, Form(ge=0, le=60, description="Seconds to wait after the load")
    ] = 0.0,
    wait_selector: Annotated[
        str | None, Form(max_length=1000, description="Wait until this CSS selector matches")
    ] = None,
    extra_css: Annotated[
        str | None, Form(max_length=100_000, description="A style sheet added to the page")
    ] = None,
    media: Annotated[
        Media, Form(description="CSS media type the page is laid out for: screen or print")
    ] = Media.SCREEN,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the page as the multipart ``file`` part. Its scripts run (within the
    render time limit); it reads no local file outside its own upload and no remote
    resource unless the service's fetch allow-list names it (private, loopback and
    link-local addresses never)."""
    params: dict[str, Any] = {
        "format": format,
        "width": width,
        "height": height,
        "full_page": full_page,
        "scale": scale,
        "omit_background": omit_background,
        "wait_until": wait_until,
        "wait_delay": wait_delay,
        "media": media,
    }
    given = {
        "quality": quality,
        "selector": selector or None,
        "wait_selector": wait_selector or None,
        "extra_css": extra_css or None,
    }
    params.update({name: value for name, value in given.items() if value is not None})
    job_input = await store_document(services, file, source)
    return await answer_files(
        services, client, "screenshot", params, job_input, wait, priority, accept
    )
