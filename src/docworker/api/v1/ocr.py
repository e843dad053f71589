"""v1's OCR (§6): ``/api/v1/ocr/image`` and ``/api/v1/ocr/document``.

Both run the ``ocr`` operation with its ``v1`` output, which is v1's
``OCRResult`` already (v1's character whitelist, its heuristic confidence, the
first page of a document, v1's metadata keys); the service's OCR language,
resolution and page segmentation mode settings (``OCR_LANGUAGE``, ``OCR_DPI``,
``OCR_PSM``) apply. Any failure is v1's ``500 OCR processing failed``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from docworker.api.deps import ServicesDep
from docworker.api.submitting import JobClient, V1JobClientDep
from docworker.api.v1 import schemas
from docworker.api.v1.errors import refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    SEVERAL_FILES_CASE,
    multipart_body,
    receive_upload,
    run_and_wait,
    upload_form,
    v1_answer,
)
from docworker.operations.ocr_v1 import document_metadata, image_metadata

router = APIRouter(prefix="/api/v1", tags=["v1"])

FAILURE = "OCR processing failed"
_ERRORS = v1_responses(
    (400, "File upload error"),
    SEVERAL_FILES_CASE,
    (500, "Failed to save uploaded file"),
    (500, FAILURE),
    refused(FAILURE),
    reused_key(FAILURE),
)
OCR_EXAMPLE = {
    "text": "The quick brown fox",
    "confidence": 0.6,
    "language": "tur+eng",
    "page_count": 1,
    "metadata": {"input_file": "scan.png", "psm": 1, "dpi": 300},
}


def _route_metadata(result: dict[str, Any], name: str, document: bool) -> dict[str, Any]:
    """``result`` with the metadata keys of its route: v1 chose them by the route, not by
    what was sent. An image sent to ``/ocr/document`` was wrapped in a PDF by v1's
    LibreOffice, so it has the document's keys; a document that ``/ocr/image`` reads
    (v1 refused it) has the image's."""
    meta = result.get("metadata") or {}
    if document == ("source_type" in meta):
        return result
    psm, dpi = int(meta.get("psm") or 0), int(meta.get("dpi") or 0)
    if document:
        pdf_name = PurePosixPath(name).with_suffix(".pdf").name
        return result | {"metadata": document_metadata(pdf_name, psm, dpi)}
    return result | {"metadata": image_metadata(name, psm, dpi)}


async def _ocr(
    request: Request,
    services: ServicesDep,
    client: JobClient,
    params: dict[str, Any],
    *,
    document: bool,
) -> Response:
    _, file = await upload_form(request)
    upload = await receive_upload(services, request, file)
    # v1 routes keep the preprocessing they always had here: no flag decides.
    params = {"preprocess": True, **params}
    record = await run_and_wait(services, client, "ocr", params, upload.job_input, FAILURE)
    return await v1_answer(
        services,
        record,
        FAILURE,
        lambda result: JSONResponse(_route_metadata(result, upload.name, document)),
    )


@router.post(
    "/ocr/image",
    operation_id="v1_ocr_image",
    summary="OCR of an image (v1)",
    openapi_extra=multipart_body({}),
    responses={
        200: {
            "model": schemas.V1OcrResult,
            "description": "v1 OCRResult; metadata {input_file, psm, dpi}",
            "content": {"application/json": {"example": OCR_EXAMPLE}},
        },
        **_ERRORS,
    },
)
async def ocr_image(request: Request, services: ServicesDep, client: V1JobClientDep) -> Response:
    """The text of an uploaded image (every frame of a multi-frame image)."""
    return await _ocr(request, services, client, {"output": "v1"}, document=False)


@router.post(
    "/ocr/document",
    operation_id="v1_ocr_document",
    summary="OCR of a document's first page (v1)",
    openapi_extra=multipart_body({}),
    responses={
        200: {
            "model": schemas.V1OcrResult,
            "description": "v1 OCRResult; metadata {input_file, psm, dpi, source_type, "
            "page_number, source_file}",
        },
        **_ERRORS,
    },
)
async def ocr_document(request: Request, services: ServicesDep, client: V1JobClientDep) -> Response:
    """The text of the first page of a PDF or an office document (converted to PDF first)."""
    return await _ocr(request, services, client, {"output": "v1", "pages": "1"}, document=True)
