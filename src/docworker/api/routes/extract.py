"""``POST /api/v2/extract``: upload a document, get its text, Markdown, HTML or JSON.

Like every synchronous endpoint it submits a job and waits for it: the result
comes back in the response if the job ends within ``wait`` seconds, otherwise
the answer is ``202`` with the job, to be polled. With an ``Idempotency-Key`` it is
safe to retry, and a job whose client left unanswered is cancelled unless it had a
key (:mod:`docworker.api.submitting`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.deps import Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.results import result_response
from docworker.api.routes.jobs import job_response
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClient, JobClientWithWebhookDep, submit_and_wait
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.formats.base import HtmlContent
from docworker.jobs.queue import JobInput
from docworker.jobs.store import TERMINAL_STATUSES
from docworker.operations.extract import CONTENT_DESCRIPTION
from docworker.render.document import OutputFormat

router = APIRouter(prefix="/api/v2", tags=["extract"], dependencies=[ONE_FILE_PER_FIELD])

EXTRACT_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "output": "markdown",
    "format": "pdf",
    "mime": "application/pdf",
    "content": "# Title\n\nFirst paragraph…",
    "metadata": {"title": "Title", "page_count": 2, "word_count": 420, "char_count": 2710},
    "warnings": [],
    "attachments": [],
    "security": {
        "detected": {"mime": "application/pdf", "format": "pdf"},
        "claimed": {"name": "report.pdf", "mime": "application/pdf"},
        "findings": [
            {
                "kind": "pdf_uri_actions",
                "detail": "2 URI action(s), links the reader may open: https://example.com/a; "
                "https://example.com/b",
                "location": "object 12, object 14",
                "count": 2,
            }
        ],
    },
}


@router.post(
    "/extract",
    operation_id="extract",
    openapi_extra=feeds("extract"),
    summary="Extract a document's text and structure",
    responses={
        200: {
            "description": "The extraction",
            "content": {
                "application/json": {"example": EXTRACT_EXAMPLE},
                "text/markdown": {},
                "text/plain": {},
                "text/html": {},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def extract(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[UploadFile | None, File(description="The document.")] = None,
    output: Annotated[OutputFormat, Form(description="text, markdown, html or json")] = (
        OutputFormat.MARKDOWN
    ),
    pages: Annotated[str | None, Form(description="Pages, e.g. '1-3,5'", examples=["1-3"])] = None,
    per_page: Annotated[FormBool, Form(description="Also give each page's output")] = False,
    password: Annotated[str | None, Form(description="Password of an encrypted file")] = None,
    content: Annotated[HtmlContent, Form(description=CONTENT_DESCRIPTION)] = "full",
    sheet_names: Annotated[
        FormBool,
        Form(
            description="Open each sheet of a spreadsheet with a heading of its name "
            "(true or false); the names stay in the metadata either way"
        ),
    ] = True,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload a document as the multipart ``file`` part. With ``Accept: text/markdown``
    (or ``text/plain``, ``text/html``) the content alone is returned; otherwise JSON with
    the content, metadata and warnings."""
    params: dict[str, Any] = {"output": output, "per_page": per_page}
    if content != "full":
        params["content"] = content
    if not sheet_names:
        params["sheet_names"] = False
    if pages:
        params["pages"] = pages
    if password:
        params["password"] = password
    job_input = await store_document(services, file, source)
    job_input = JobInput(blob=job_input.blob, name=job_input.name, mime=None)
    return await run_and_answer(
        services, client, "extract", params, job_input, wait, priority, accept
    )


async def run_and_answer(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    job_input: JobInput,
    wait: float | None,
    priority: int,
    accept: str | None,
) -> Response:
    """Submit, wait up to ``wait`` seconds, and answer the result (streamed from the blob
    store: its text alone for ``Accept: text/markdown`` and the like, else JSON), the
    error, or 202."""
    record = await submit_and_wait(services, client, operation, params, job_input, wait, priority)
    if record.status not in TERMINAL_STATUSES:
        return job_response(record, 202)
    headers = {"X-Job-Id": record.id, "Location": f"/api/v2/jobs/{record.id}"}
    return await result_response(services, record, accept, headers)
