"""``POST /api/v2/chunk``: upload a document, get it cut into chunks for retrieval.

Like every synchronous endpoint it submits a job and waits up to ``wait``
seconds for it: the chunks come back in the response, or ``202`` with the job.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routes.extract import run_and_answer
from docworker.api.routing import feeds
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.chunking import Strategy, TokenizerName
from docworker.errors import InvalidParameter
from docworker.formats.base import OcrPolicy

router = APIRouter(prefix="/api/v2", tags=["chunk"], dependencies=[ONE_FILE_PER_FIELD])

CHUNK_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "strategy": "structure",
    "tokenizer": "cl100k",
    "max_tokens": 512,
    "format": "pdf",
    "mime": "application/pdf",
    "chunks": [
        {
            "id": "c1",
            "text": "1.2 Scope\n\nThis guide covers…",
            "tokens": 187,
            "chars": 902,
            "heading_path": ["Chapter 1", "1.2 Scope"],
            "pages": [3],
            "bboxes": [{"page": 3, "x0": 72.0, "y0": 96.5, "x1": 523.3, "y1": 110.2}],
            "block_ids": ["b14", "b15"],
            "prev": None,
            "next": "c2",
            "parent": "b14",
            "section": "1.2 Scope",
            "overlap_chars": 0,
        }
    ],
    "metadata": {"title": "Title", "page_count": 12},
    "warnings": [],
}


@router.post(
    "/chunk",
    operation_id="chunk",
    openapi_extra=feeds("chunk"),
    summary="Cut a document into chunks for retrieval",
    responses={
        200: {
            "description": "The chunks",
            "content": {"application/json": {"example": CHUNK_EXAMPLE}},
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def chunk(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[UploadFile | None, File(description="The document.")] = None,
    strategy: Annotated[
        Strategy, Form(description="fixed, recursive, structure, page or semantic")
    ] = Strategy.STRUCTURE,
    tokenizer: Annotated[
        TokenizerName, Form(description="cl100k or o200k tokens, or chars")
    ] = TokenizerName.CL100K,
    max_tokens: Annotated[int | None, Form(description="Largest chunk (default 512)")] = None,
    min_tokens: Annotated[
        int | None,
        Form(description="structure, semantic: smallest chunk (default 50, or max_tokens/4)"),
    ] = None,
    overlap: Annotated[int | None, Form(description="fixed, recursive: tokens shared")] = None,
    separators: Annotated[
        str | None,
        Form(
            description="recursive: a JSON array of separators, most significant first",
            examples=['["\\n\\n", "\\n", ". ", " ", ""]'],
        ),
    ] = None,
    threshold_percentile: Annotated[
        float | None, Form(description="semantic: breakpoint percentile (default 90)")
    ] = None,
    pages: Annotated[str | None, Form(description="Pages, e.g. '1-3,5'", examples=["1-3"])] = None,
    password: Annotated[str | None, Form(description="Password of an encrypted file")] = None,
    ocr: Annotated[OcrPolicy | None, Form(description="OCR: auto (default), force, off")] = None,
    ocr_lang: Annotated[
        str | None, Form(description="OCR languages, e.g. 'eng+kor'", examples=["eng"])
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload a document as the multipart ``file`` part; the answer lists its chunks,
    each with its text, size, heading path, pages, boxes, source blocks and neighbours."""
    given = {
        "max_tokens": max_tokens,
        "min_tokens": min_tokens,
        "overlap": overlap,
        "separators": _separators(separators),
        "threshold_percentile": threshold_percentile,
        "pages": pages or None,
        "password": password or None,
        "ocr": ocr,
        "ocr_lang": ocr_lang or None,
    }
    params: dict[str, Any] = {"strategy": strategy, "tokenizer": tokenizer}
    params.update({name: value for name, value in given.items() if value is not None})
    job_input = await store_document(services, file, source)
    return await run_and_answer(
        services, client, "chunk", params, job_input, wait, priority, accept
    )


def _separators(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter("separators", 'give a JSON array of strings, e.g. ["\\n\\n", " "]')
    return value
