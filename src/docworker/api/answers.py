"""How a route answers a job whose output is a file: the file itself, a zip of the
files when there are several, the job's JSON result, or ``202`` with the job.

Every route that makes files (convert, render, image, video, screenshot, the PDF
tools, OCR's searchable PDF) answers through :func:`answer_files`, so the rules are
one: a client that accepts only JSON gets the result as JSON (listing the
artifacts, each downloadable at ``/api/v2/jobs/{id}/artifacts/{name}``); a job
that made no file answers JSON; one file is streamed as it is; several come as a
zip written to a temporary file in a worker thread (never built in memory, never on
the event loop) and streamed from it. The JSON is streamed from storage as well
(:func:`~docworker.api.results.json_result`); a file's describing headers
(``headers_of``) come from the payload, loaded within the API's bound on loaded results.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import anyio.to_thread
from fastapi.responses import Response, StreamingResponse

from docworker.api.deps import Services
from docworker.api.results import json_result, loaded_payload
from docworker.api.routes.jobs import artifact_response, job_response
from docworker.api.submitting import JobClient, submit_and_wait
from docworker.jobs.queue import JobInput
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord
from docworker.storage import CHUNK

ZIP = "application/zip"
_JSON_TYPES = frozenset({"application/json", "application/problem+json"})


def wants_only_json(accept: str | None) -> bool:
    """Whether every media range the client accepts is JSON (``*/*``, a file type or
    no ``Accept`` at all take the file)."""
    if not accept:
        return False
    ranges = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    ranges.discard("")
    return bool(ranges) and ranges <= _JSON_TYPES


async def answer_files(
    services: Services,
    client: JobClient,
    operation: str,
    params: dict[str, Any],
    job_input: JobInput,
    wait: float | None,
    priority: int,
    accept: str | None,
    *,
    others: Sequence[JobInput] = (),
    zip_name: str = "files.zip",
    as_json: bool = False,
    headers_of: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> Response:
    """Submit the job for ``client``, wait up to ``wait`` seconds, and answer as the module
    says; ``as_json`` answers JSON whatever the client accepts, ``headers_of`` adds
    headers that describe a single file from the job's result."""
    record = await submit_and_wait(
        services, client, operation, params, job_input, wait, priority, others
    )
    if record.status not in TERMINAL_STATUSES:
        return job_response(record, 202)
    queue = services.queue
    ref = await anyio.to_thread.run_sync(queue.result_ref, record)
    artifacts = ref.get("artifacts") or []
    headers = {"X-Job-Id": record.id, "X-Job-Status": str(record.status)}
    if as_json or wants_only_json(accept) or not artifacts:
        headers["Location"] = f"/api/v2/jobs/{record.id}"
        return await json_result(services, record, members={"job_id": record.id}, headers=headers)
    if len(artifacts) == 1:
        described = headers_of(await loaded_payload(services, record)) if headers_of else {}
        entry, stream = await anyio.to_thread.run_sync(queue.artifact, record, artifacts[0]["name"])
        response = artifact_response(record.id, entry, stream)
        response.headers.update(headers | described)
        return response
    names = [str(artifact["name"]) for artifact in artifacts]
    return await zip_response(services, record, names, zip_name, headers)


async def zip_response(
    services: Services,
    record: JobRecord,
    names: list[str],
    zip_name: str,
    headers: dict[str, str] | None = None,
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
            **(headers or {}),
            "X-Job-Id": record.id,
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{zip_name}"',
        },
    )


def _write_zip(services: Services, record: JobRecord, names: list[str]) -> IO[bytes]:
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    try:
        # PDFs and images are compressed already: storing is as small and much faster.
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
