"""v1's PDF generation (§8): ``/api/v1/pdf/generate/html``, ``/markdown`` and ``/office``.

All three are the ``convert`` operation (``to=pdf``), as a job waited for: HTML
and Markdown laid out by WeasyPrint with v1's page size and margins (A4, 1 cm),
office documents through the worker's LibreOffice. v1's HTML and Markdown routes
never worked (§8.1, §8.2); these do what v1 meant, with one difference on
purpose: v1 let the HTML read any file of the server, while here a page reaches
nothing but itself (``data:`` URLs) and, only where ``fetch.allow`` permits,
public URLs — never a server file, a private or a loopback address. Markdown gets
the style sheet v1 meant to give it (Arial, line height 1.6, 800 px wide, grey
code blocks, ruled tables).

The answer is the PDF, ``application/pdf``, without ``Content-Disposition``.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from docworker.api.deps import Services, ServicesDep
from docworker.api.submitting import JobClient, V1JobClientDep
from docworker.api.v1.errors import V1Error, refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    SEVERAL_FILES_CASE,
    form_file,
    form_value,
    multipart_body,
    read_form,
    receive_upload,
    run_and_wait,
    stream_response,
)
from docworker.api.v1.media import output_extension
from docworker.errors import DocworkerError

router = APIRouter(prefix="/api/v1", tags=["v1"])

FAILURE = "PDF generation failed"
NOT_MULTIPART = "Failed to parse multipart form"
#: v1's page set-up options and their defaults.
LAYOUT = {
    "page_size": "A4",
    "margin_top": "1cm",
    "margin_right": "1cm",
    "margin_bottom": "1cm",
    "margin_left": "1cm",
}
#: The style sheet v1 meant Markdown to have (it passed it where a URL was expected).
V1_MARKDOWN_CSS = """
body { font-family: Arial, "Liberation Sans", "DejaVu Sans", sans-serif; line-height: 1.6;
  max-width: 800px; margin: 0 auto; color: #333; }
pre, code { background-color: #f4f4f4; font-family: "DejaVu Sans Mono", monospace; }
pre { padding: 10px; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ddd; padding: 8px; text-align: left; }
th { background-color: #f2f2f2; }
"""
_PDF_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The PDF", "content": {"application/pdf": {}}}
}
_LAYOUT_FIELDS = {
    "page_size": "Paper size: A4 (default), A3, A5, Letter, Legal, …",
    "margin_top": "CSS length (default 1cm).",
    "margin_right": "CSS length (default 1cm).",
    "margin_bottom": "CSS length (default 1cm).",
    "margin_left": "CSS length (default 1cm).",
}


def layout(request: Request, form: FormData | None) -> dict[str, str]:
    """v1's page set-up: the query string, then the form (``form=None``: the query only)."""
    return {name: form_value(request, form, name) or default for name, default in LAYOUT.items()}


async def _pdf_of(
    request: Request,
    services: Services,
    client: JobClient,
    file: UploadFile,
    params: dict[str, Any],
) -> Response:
    upload = await receive_upload(services, request, file)
    record = await run_and_wait(
        # v1 routes keep the engine they always had here (WeasyPrint): no flag decides.
        services,
        client,
        "convert",
        {"to": "pdf", "engine": "weasyprint", **params},
        upload.job_input,
        FAILURE,
    )
    name, extension = output_extension(record)
    try:
        entry, stream = await anyio.to_thread.run_sync(services.queue.artifact, record, name)
    except DocworkerError as exc:
        raise V1Error.wrapping(500, FAILURE, exc) from None
    return stream_response(stream, int(entry["size"]), extension, attachment=False)


@router.post(
    "/pdf/generate/html",
    operation_id="v1_pdf_generate_html",
    summary="An HTML page as PDF (v1)",
    openapi_extra=multipart_body(
        {k: f"{v} Query string first, then the form." for k, v in _LAYOUT_FIELDS.items()},
        file_part="html_file",
    ),
    responses={
        **_PDF_ANSWER,
        **v1_responses(
            (400, NOT_MULTIPART),
            (400, "No HTML file provided"),
            SEVERAL_FILES_CASE,
            (500, "Failed to save uploaded file"),
            (500, FAILURE),
            refused(FAILURE),
            reused_key(FAILURE),
        ),
    },
)
async def generate_html(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """The complete HTML document in the part ``html_file``, laid out by WeasyPrint.
    Server files are never read and nothing is fetched unless ``fetch.allow`` permits."""
    form = await read_form(request, V1Error(400, NOT_MULTIPART))
    file = form_file(form, "html_file", V1Error(400, "No HTML file provided"))
    return await _pdf_of(request, services, client, file, layout(request, form))


@router.post(
    "/pdf/generate/markdown",
    operation_id="v1_pdf_generate_markdown",
    summary="Markdown as PDF (v1)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"content": {"type": "string"}},
                        "required": ["content"],
                    }
                },
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"content": {"type": "string"}}}
                },
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"content": {"type": "string"}}}
                },
            },
        },
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            | {"description": text}
            for name, text in _LAYOUT_FIELDS.items()
        ],
    },
    responses={
        **_PDF_ANSWER,
        **v1_responses(
            (400, "Invalid JSON body"),
            (400, "Markdown content is required"),
            (500, "Failed to save uploaded file"),
            (500, FAILURE),
            refused(FAILURE),
            reused_key(FAILURE),
        ),
    },
)
async def generate_markdown(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """``content`` from a JSON, urlencoded or multipart body; the page set-up from the
    query string only, as v1 read it."""
    content = await markdown_content(request)
    if not content:
        raise V1Error(400, "Markdown content is required")
    file = UploadFile(io.BytesIO(content.encode("utf-8")), filename="content.md")
    params = layout(request, None) | {"css": V1_MARKDOWN_CSS}
    return await _pdf_of(request, services, client, file, params)


async def markdown_content(request: Request) -> str | None:
    """v1's rule B for ``content``: the body decoded by its Content-Type, the key
    matched without regard to case; ``Invalid JSON body`` when it cannot be decoded."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    invalid = V1Error(400, "Invalid JSON body")
    fields: dict[str, Any]
    if content_type == "application/json":
        try:
            decoded = json.loads(await request.body())
        except ValueError:
            raise invalid from None
        if not isinstance(decoded, dict):
            raise invalid
        fields = decoded
    elif content_type == "application/x-www-form-urlencoded":
        text = (await request.body()).decode("utf-8", errors="replace")
        fields = dict(parse_qsl(text, keep_blank_values=True))
    elif content_type == "multipart/form-data":
        form = await read_form(request, invalid)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    else:
        raise invalid
    for key, value in fields.items():
        if key.lower() == "content":
            if value is not None and not isinstance(value, str):
                raise invalid  # v1 could not decode a non-string into its string field
            return value or None
    return None


@router.post(
    "/pdf/generate/office",
    operation_id="v1_pdf_generate_office",
    summary="An office document as PDF (v1)",
    openapi_extra=multipart_body({}, file_part="office_file"),
    responses={
        **_PDF_ANSWER,
        **v1_responses(
            (400, NOT_MULTIPART),
            (400, "No office file provided"),
            SEVERAL_FILES_CASE,
            (500, "Failed to save uploaded file"),
            (500, FAILURE),
            refused(FAILURE),
            reused_key(FAILURE),
        ),
    },
)
async def generate_office(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """Any document LibreOffice opens (Word, Excel, PowerPoint, OpenDocument, RTF), in
    the part ``office_file``."""
    form = await read_form(request, V1Error(400, NOT_MULTIPART))
    file = form_file(form, "office_file", V1Error(400, "No office file provided"))
    return await _pdf_of(request, services, client, file, {})
