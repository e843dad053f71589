"""``POST /api/v2/ocr``: the text of an image or scanned PDF, with boxes, or as a
searchable PDF; ``GET /api/v2/ocr/languages``: the languages it can read, and its default.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep, SettingsDep
from docworker.api.errors import problem_responses
from docworker.api.routes.extract import run_and_answer
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.engines.ocr import available_languages
from docworker.operations.ocr import OcrOutput

router = APIRouter(prefix="/api/v2", tags=["ocr"], dependencies=[ONE_FILE_PER_FIELD])


class OcrLanguages(BaseModel):
    languages: list[str] = Field(
        description="Tesseract language codes with data installed, e.g. 'eng', 'chi_sim'; "
        "join several with '+' in the 'languages' and 'ocr_lang' parameters."
    )
    default: str = Field(description="The languages used when a request names none.")


@router.get(
    "/ocr/languages",
    operation_id="ocr_languages",
    summary="List OCR languages",
    response_model=OcrLanguages,
)
def ocr_languages(settings: SettingsDep) -> OcrLanguages:
    """The languages OCR can read here; 503 when no Tesseract language data is installed."""
    return OcrLanguages(languages=available_languages(), default=settings.ocr.language)


OCR_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "output": "text",
    "mime": "image/png",
    "languages": "eng",
    "page_count": 1,
    "confidence": 0.93,
    "content": "The quick brown fox…",
    "pages": [{"page": 1, "confidence": 0.93, "word_count": 4, "text": "The quick brown fox…"}],
    "warnings": [],
}


@router.post(
    "/ocr",
    operation_id="ocr",
    openapi_extra=feeds("ocr"),
    summary="Read the text of an image or a scanned PDF",
    responses={
        200: {
            "description": "The text read; with output=searchable_pdf, the searchable PDF "
            "itself (JSON instead when the request accepts only application/json)",
            "content": {
                "application/json": {"example": OCR_EXAMPLE},
                "text/plain": {},
                "application/pdf": {},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def ocr(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[
        UploadFile | None, File(description="An image (PNG, JPEG, TIFF, …) or a PDF.")
    ] = None,
    output: Annotated[
        OcrOutput, Form(description="text, json (with word boxes), searchable_pdf or v1")
    ] = OcrOutput.TEXT,
    languages: Annotated[
        str | None, Form(description="Tesseract languages, e.g. 'eng+kor'", examples=["eng"])
    ] = None,
    pages: Annotated[str | None, Form(description="Pages or frames, e.g. '1-3'")] = None,
    dpi: Annotated[int | None, Form(ge=50, le=1200, description="PDF render resolution")] = None,
    psm: Annotated[int | None, Form(ge=0, le=13, description="Page segmentation mode")] = None,
    preprocess: Annotated[
        FormBool | None,
        Form(
            description="Scale, turn upright, deskew first; default: the `ocr.preprocessing` "
            "feature flag's (on unless configured, docs/flags.md)"
        ),
    ] = None,
    password: Annotated[str | None, Form(description="Password of an encrypted PDF")] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the image or PDF as the multipart ``file`` part. Long documents are read on
    every worker at once. With ``Accept: text/plain`` the text alone is returned."""
    given = {
        "languages": languages or None,
        "pages": pages or None,
        "dpi": dpi,
        "psm": psm,
        "password": password or None,
    }
    params: dict[str, Any] = {"output": output}
    if preprocess is not None:
        params["preprocess"] = preprocess
    params.update({name: value for name, value in given.items() if value is not None})
    job_input = await store_document(services, file, source)
    if output is not OcrOutput.SEARCHABLE_PDF:
        return await run_and_answer(
            services, client, "ocr", params, job_input, wait, priority, accept
        )
    return await answer_files(services, client, "ocr", params, job_input, wait, priority, accept)
