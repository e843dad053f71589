"""v1's Markdown conversion (§9): ``/api/v1/markdown/convert``, ``/convert/pdf``,
``/convert/office`` and ``/batch``.

All four were broken in v1 (§9.1); these give the behaviour v1 intended, in v1's
shapes. The Markdown is the ``extract`` operation's (headings from font sizes,
bold and italic, lists, tables); v1's page separators (``---`` and ``*Page N*``)
come between the pages of a PDF, and v1's clean-up is applied. The batch route
reads and writes folders of the server itself, so it works only under the folder
``MARKDOWN_BATCH_ROOT`` names, and is refused when none is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from docworker.api.deps import Services, ServicesDep
from docworker.api.openapi import model_ref
from docworker.api.submitting import JobClient, V1JobClientDep
from docworker.api.v1 import schemas
from docworker.api.v1.errors import V1Error, refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    CONTENT_TYPES,
    SEVERAL_FILES_CASE,
    V1Upload,
    file_response,
    form_file,
    multipart_body,
    read_form,
    receive_upload,
    run_and_wait,
    v1_answer,
)
from docworker.api.v1.markdown_batch import BatchRequest, run_batch
from docworker.api.v1.markdown_text import PARAMS, kind_of, markdown_of
from docworker.errors import DocworkerError

router = APIRouter(prefix="/api/v1", tags=["v1"])


@dataclass(frozen=True)
class _Route:
    part: str
    missing: str
    failure: str
    accepts: frozenset[str]


_ROUTES = {
    "any": _Route(
        "document",
        "No document file provided",
        "Markdown conversion failed",
        frozenset({"pdf", "office"}),
    ),
    "pdf": _Route(
        "pdf_file", "No PDF file provided", "PDF to markdown conversion failed", frozenset({"pdf"})
    ),
    "office": _Route(
        "office_file",
        "No office file provided",
        "Office to markdown conversion failed",
        frozenset({"office"}),
    ),
}


async def _convert(
    request: Request, services: Services, client: JobClient, route: _Route
) -> Response:
    form = await read_form(request, V1Error(400, "Failed to parse multipart form"))
    file = form_file(form, route.part, V1Error(400, route.missing))
    upload: V1Upload = await receive_upload(services, request, file)
    kind = kind_of(upload.mime)
    if kind not in route.accepts:
        raise V1Error(500, route.failure, f"unsupported document type: {upload.mime}")
    record = await run_and_wait(
        services, client, "extract", PARAMS, upload.job_input, route.failure
    )

    def shape(payload: dict[str, Any]) -> Response:
        return file_response(markdown_of(payload).encode("utf-8"), "md", attachment=False)

    return await v1_answer(services, record, route.failure, shape)


def _responses(route: _Route) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "The Markdown", "content": {CONTENT_TYPES["md"]: {}}},
        **v1_responses(
            (400, "Failed to parse multipart form"),
            (400, route.missing),
            SEVERAL_FILES_CASE,
            (500, "Failed to save uploaded file"),
            (500, route.failure),
            refused(route.failure),
            reused_key(route.failure),
        ),
    }


@router.post(
    "/markdown/convert",
    operation_id="v1_markdown_convert",
    summary="A PDF or office document as Markdown (v1)",
    openapi_extra=multipart_body({}, file_part="document"),
    responses=_responses(_ROUTES["any"]),
)
async def convert(request: Request, services: ServicesDep, client: V1JobClientDep) -> Response:
    """Upload the document as the ``document`` part."""
    return await _convert(request, services, client, _ROUTES["any"])


@router.post(
    "/markdown/convert/pdf",
    operation_id="v1_markdown_convert_pdf",
    summary="A PDF as Markdown (v1)",
    openapi_extra=multipart_body({}, file_part="pdf_file"),
    responses=_responses(_ROUTES["pdf"]),
)
async def convert_pdf(request: Request, services: ServicesDep, client: V1JobClientDep) -> Response:
    """Upload the PDF as the ``pdf_file`` part."""
    return await _convert(request, services, client, _ROUTES["pdf"])


@router.post(
    "/markdown/convert/office",
    operation_id="v1_markdown_convert_office",
    summary="An office document as Markdown (v1)",
    openapi_extra=multipart_body({}, file_part="office_file"),
    responses=_responses(_ROUTES["office"]),
)
async def convert_office(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """Upload the document (DOCX, DOC, PPTX, PPT, XLSX, XLS, ODT, ODP, ODS) as ``office_file``."""
    return await _convert(request, services, client, _ROUTES["office"])


@router.post(
    "/markdown/batch",
    operation_id="v1_markdown_batch",
    summary="Every document under a server folder as Markdown files (v1)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model_ref(BatchRequest)}},
        }
    },
    responses={
        200: {"model": schemas.V1BatchResult, "description": "One result per file"},
        **v1_responses(
            (400, "Invalid JSON body"),
            (400, "Input directory is required"),
            (403, "Batch conversion is disabled"),
            (500, "Batch conversion failed"),
        ),
    },
)
async def batch(request: Request, services: ServicesDep, client: V1JobClientDep) -> JSONResponse:
    """Converts every PDF and office file under ``input_directory`` (recursively) into
    ``output_directory`` (default ``<input_directory>_markdown``), both inside the
    folder ``MARKDOWN_BATCH_ROOT`` names. Refused (403) when it names none, and, with API
    keys on, to keys without the admin scope: it reads and writes the server's folders."""
    try:
        client.caller.require_admin()
    except DocworkerError as exc:
        raise V1Error.wrapping(403, "Batch conversion is disabled", exc) from None
    try:
        spec = BatchRequest.model_validate_json(await request.body())
    except ValueError:
        raise V1Error(400, "Invalid JSON body") from None
    if not spec.input_directory:
        raise V1Error(400, "Input directory is required")
    root = services.settings.v1.markdown_batch_root
    if root is None:
        raise V1Error(
            403,
            "Batch conversion is disabled",
            "the server has no batch folder: set MARKDOWN_BATCH_ROOT to allow it",
        )
    limit = services.settings.v1.markdown_batch_max_files
    plan = await anyio.to_thread.run_sync(lambda: spec.plan(Path(root), limit))
    return JSONResponse(await run_batch(services, client, plan))
