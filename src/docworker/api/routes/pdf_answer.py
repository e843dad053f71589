"""How the ``/api/v2/pdf/*`` routes answer a finished ``pdf`` job.

The answer is the file the job made (a PDF), a zip of them when it made several (a
split), or the JSON result when it made none (metadata read) or when the client
accepts only JSON; 202 with the job when it has not finished within ``wait``. The
zip is written to a temporary file in a worker thread, never on the event loop.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import anyio.to_thread
from fastapi.responses import JSONResponse, Response, StreamingResponse

from docworker.api.deps import Services
from docworker.api.errors import problem_responses
from docworker.api.routes.extract import submit_and_wait
from docworker.api.routes.jobs import artifact_response, job_response
from docworker.jobs.queue import JobInput
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord
from docworker.storage import CHUNK

ZIP = "application/zip"


def responses(what: str, *, several: bool = False, json_only: bool = False) -> dict[int | str, Any]:
    """The OpenAPI ``responses`` of a PDF tool route whose output is ``what``."""
    content: dict[str, Any] = {"application/json": {}}
    if not json_only:
        content["application/pdf"] = {}
    if several:
        content[ZIP] = {}
    described = (
        f"{what} (JSON: the job's result, listing its artifacts, when the request "
        "accepts only application/json)"
    )
    return {
        200: {"description": described, "content": content},
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(413, 415, 422, 429, 503),
    }


def wants_json(accept: str | None) -> bool:
    """Whether the client asked for JSON and not for a PDF or a zip."""
    text = (accept or "").lower()
    return "application/json" in text and "pdf" not in text and "zip" not in text


async def run_pdf_job(
    services: Services,
    params: dict[str, Any],
    job_input: JobInput,
    wait: float | None,
    priority: int,
    accept: str | None,
    zip_name: str = "pdfs.zip",
    others: Sequence[JobInput] = (),
) -> Response:
    """Submit the ``pdf`` job (``others``: its further input files), wait for it, and
    answer as the module says."""
    record = await submit_and_wait(services, "pdf", params, job_input, wait, priority, others)
    if record.status not in TERMINAL_STATUSES:
        return job_response(record, 202)
    payload = await anyio.to_thread.run_sync(services.queue.result, record)
    artifacts = payload.get("artifacts") or []
    if wants_json(accept) or not artifacts:
        headers = {"X-Job-Id": record.id, "Location": f"/api/v2/jobs/{record.id}"}
        return JSONResponse({"job_id": record.id, **payload}, headers=headers)
    if len(artifacts) == 1:
        queue = services.queue
        entry, stream = await anyio.to_thread.run_sync(queue.artifact, record, artifacts[0]["name"])
        return artifact_response(record.id, entry, stream)
    return await zip_response(services, record, [a["name"] for a in artifacts], zip_name)


async def zip_response(
    services: Services, record: JobRecord, names: list[str], zip_name: str
) -> Response:
    """The job's artifacts ``names`` as one zip, streamed from a temporary file."""
    archive = await anyio.to_thread.run_sync(_write_zip, services, record, names)
    size = archive.seek(0, 2)
    archive.seek(0)

    def chunks() -> Iterator[bytes]:
        with archive:
            while chunk := archive.read(CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=ZIP,
        headers={
            "X-Job-Id": record.id,
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{zip_name}"',
        },
    )


def _write_zip(services: Services, record: JobRecord, names: list[str]) -> IO[bytes]:
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    try:
        # PDF streams are compressed already: storing is as small and much faster.
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
            for name in names:
                _, stream = services.queue.artifact(record, name)
                with stream, bundle.open(name, "w", force_zip64=True) as member:
                    while chunk := stream.read(CHUNK):
                        member.write(chunk)
    except BaseException:
        archive.close()
        raise
    return archive
