"""``POST /api/v2/convert``: a document converted to PDF, an office format, Markdown,
HTML or text, answered as the file itself (or the job, when it takes longer than ``wait``).
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
from docworker.jobs.queue import JobInput
from docworker.operations.convert import (
    TARGETS,
    ConvertTarget,
    HtmlEngine,
    Orientation,
    PdfA,
)

router = APIRouter(prefix="/api/v2", tags=["convert"], dependencies=[ONE_FILE_PER_FIELD])

CONVERT_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "to": "pdf",
    "input": {
        "mime": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "format": "docx",
    },
    "output": {"name": "converted.pdf", "mime": "application/pdf", "size": 62554, "pages": 2},
    "engine": "libreoffice",
    "warnings": [],
    "artifacts": [{"name": "converted.pdf", "mime": "application/pdf", "size": 62554}],
}

_FILE_TYPES: dict[str, dict[str, Any]] = {mime: {} for _, mime in TARGETS.values()}


@router.post(
    "/convert",
    operation_id="convert",
    openapi_extra=feeds("convert"),
    summary="Convert a document to PDF, an office format, Markdown, HTML or text",
    responses={
        200: {
            "description": "The converted file itself, with its media type and a "
            "Content-Disposition naming it; what was made, as JSON, when the request "
            "accepts only application/json (the file is then the job's artifact).",
            "content": {"application/json": {"example": CONVERT_EXAMPLE}, **_FILE_TYPES},
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def convert(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[
        UploadFile | None,
        File(
            description="The document: an office file (DOC/DOCX, XLS/XLSX, PPT/PPTX, ODT/ODS/"
            "ODP, RTF), an HTML page, a zip of a site with its index.html, Markdown, or any "
            "other document the service reads. Its type is read from its content."
        ),
    ] = None,
    to: Annotated[ConvertTarget, Form(description="The output format")] = ConvertTarget.PDF,
    pages: Annotated[str | None, Form(description="Pages to keep, e.g. '1-3,5'")] = None,
    password: Annotated[str | None, Form(description="Password of an encrypted file")] = None,
    landscape: Annotated[FormBool, Form(description="PDF: landscape pages")] = False,
    pdfa: Annotated[PdfA, Form(description="PDF: none, 1b or 2b (PDF/A level)")] = PdfA.NONE,
    export_form_fields: Annotated[
        FormBool, Form(description="Office → PDF: keep form fields fillable")
    ] = True,
    page_size: Annotated[
        str | None,
        Form(description="HTML/Markdown → PDF: A4, Letter, … or '210mm x 297mm'"),
    ] = None,
    orientation: Annotated[
        Orientation | None, Form(description="HTML/Markdown → PDF: portrait or landscape")
    ] = None,
    margin_top: Annotated[str | None, Form(description="HTML/Markdown → PDF, e.g. '2cm'")] = None,
    margin_right: Annotated[str | None, Form(description="HTML/Markdown → PDF")] = None,
    margin_bottom: Annotated[str | None, Form(description="HTML/Markdown → PDF")] = None,
    margin_left: Annotated[str | None, Form(description="HTML/Markdown → PDF")] = None,
    header_html: Annotated[
        str | None,
        Form(
            description="HTML/Markdown → PDF: HTML at the top of each page; elements of class "
            "pageNumber, totalPages, title and date are filled in"
        ),
    ] = None,
    footer_html: Annotated[
        str | None, Form(description="HTML/Markdown → PDF: HTML at the bottom of each page")
    ] = None,
    css: Annotated[str | None, Form(description="HTML/Markdown → PDF: extra CSS")] = None,
    engine: Annotated[
        HtmlEngine | None,
        Form(
            description="HTML/Markdown → PDF: weasyprint or chromium; default: the "
            "`convert.html-engine` feature flag's (weasyprint unless configured, docs/flags.md)"
        ),
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100, description="Job priority, higher first")] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the document as the multipart ``file`` part, and the options as form fields.
    The answer is the converted file (``converted.pdf``, ``converted.docx``, …); with
    ``Accept: application/json`` it is what was made (pages, size, engine, warnings), the
    file staying downloadable as the job's artifact."""
    given: dict[str, Any] = {
        "pages": pages,
        "password": password,
        "page_size": page_size,
        "orientation": orientation,
        "margin_top": margin_top,
        "margin_right": margin_right,
        "margin_bottom": margin_bottom,
        "margin_left": margin_left,
        "header_html": header_html,
        "footer_html": footer_html,
        "css": css,
    }
    params: dict[str, Any] = {
        "to": to,
        "landscape": landscape,
        "pdfa": pdfa,
        "export_form_fields": export_form_fields,
    }
    if engine is not None:
        params["engine"] = engine
    params.update({name: value for name, value in given.items() if value})
    job_input = await store_document(services, file, source)
    job_input = JobInput(blob=job_input.blob, name=job_input.name, mime=None)
    return await answer_files(
        services, client, "convert", params, job_input, wait, priority, accept
    )
