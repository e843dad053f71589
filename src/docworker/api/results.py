"""How the API answers a job's stored result: streamed from the blob store, never
loaded whole, except to reshape it, and then within bounds.

- :func:`json_result` answers the result as JSON: the stored ``result.json`` with the
  text content spliced in, escaped as it is read (:class:`~docworker.jobs.results.
  JsonAnswer`), with members put first (``job_id``).
- :func:`result_response` is the answer of a synchronous route: the text alone when
  the client takes only the content's type (``Accept: text/markdown``), streamed as
  stored, else :func:`json_result`.
- :func:`reshaped` and :func:`loaded_answer` run work that needs the payload itself
  (the v1 routes' shapes; :func:`loaded_payload` for a header taken from it): in a
  worker thread, holding one of the ``server.loaded_results_at_once`` turns, each
  result at most ``server.max_loaded_result_bytes``; the answer, once rendered, is
  moved to a temporary file and streamed from it, so no answer stays in memory while a
  slow client reads it.

Every blob is opened in a worker thread and read by the streamed response's
iteration, which Starlette runs in worker threads too: nothing here blocks the
event loop, and a response holds about one chunk (:data:`~docworker.storage.CHUNK`)
of the result at a time, whatever its size. A result stored in at most
:data:`INLINE_BYTES` is read whole by the thread that opens it and sent as one body:
streamed, each chunk would cost a round trip to a worker thread, which for the small
results of most requests costs more than the reading.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

import anyio.to_thread
from fastapi.responses import Response, StreamingResponse

from docworker.api.deps import Services
from docworker.jobs.results import JsonAnswer, StoredResult
from docworker.jobs.store import JobRecord
from docworker.render.document import OutputFormat
from docworker.storage import CHUNK

#: Outputs (of every operation) that a client may take alone, by their media type.
RAW_TYPES = {
    OutputFormat.TEXT.value: "text/plain",
    OutputFormat.MARKDOWN.value: "text/markdown",
    OutputFormat.HTML.value: "text/html",
}
JSON = "application/json"
#: Answers larger than this are moved to a temporary file before they are sent.
SPOOL_BYTES = 256 * 1024
#: Results stored in at most this many bytes (payload and content) are answered as one
#: body, read in the thread that opens them (escaping may make the JSON a few times longer).
INLINE_BYTES = 64 * 1024


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


async def json_result(
    services: Services,
    record: JobRecord,
    *,
    members: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The job's result as JSON, streamed when large; ``members`` come first (e.g.
    ``job_id``). The job's own error when it failed, 409 when it has not finished."""
    return await anyio.to_thread.run_sync(
        lambda: _json_response(services, services.queue.stored(record), members or {}, headers)
    )


def _json_response(
    services: Services,
    stored: StoredResult,
    members: dict[str, Any],
    headers: dict[str, str] | None,
) -> Response:
    """The stored result as JSON (see :func:`json_result`). Blocking: call it in a
    worker thread."""
    answer = JsonAnswer(services.blobs, stored, members)
    if stored.total_size <= INLINE_BYTES:
        return Response(b"".join(answer), media_type=JSON, headers=headers)
    return StreamingResponse(answer, media_type=JSON, headers=headers)


def raw_type(output: str | None, accept: str | None) -> str | None:
    """The media type of the text alone, when the client asks for that rather than JSON
    (``Accept: text/markdown`` for a result of ``output`` markdown); None for JSON."""
    wanted = RAW_TYPES.get(output or "")
    if wanted and accept and wanted in accept and JSON not in accept:
        return wanted
    return None


def _takes_text(accept: str | None) -> bool:
    """Whether the client may take some result's text alone (any text type, not JSON)."""
    return any(raw_type(output, accept) for output in RAW_TYPES)


async def result_response(
    services: Services, record: JobRecord, accept: str | None, headers: dict[str, str]
) -> Response:
    """A finished job's answer to a synchronous route: its text content alone when the
    client asks for the content's type, else the result as JSON with ``job_id`` first."""

    def answer() -> Response | None:
        stored = services.queue.stored(record)
        if stored.legacy and _takes_text(accept):
            return None
        media = raw_type(stored.output, accept)
        if media is None or stored.content_uri is None:
            return _json_response(services, stored, {"job_id": record.id}, headers)
        stream = services.blobs.open(stored.content_uri)
        text = f"{media}; charset=utf-8"
        if stored.content_size <= INLINE_BYTES:
            with stream:
                return Response(stream.read(), media_type=text, headers=headers)
        sized = headers | {"Content-Length": str(stored.content_size)}
        return StreamingResponse(_chunks(stream), media_type=text, headers=sized)

    response = await anyio.to_thread.run_sync(answer)
    if response is None:
        return await _legacy_result_response(services, record, accept, headers)
    return response


async def _legacy_result_response(
    services: Services, record: JobRecord, accept: str | None, headers: dict[str, str]
) -> Response:
    """The answer of a result stored by an earlier version, its text inside its JSON, to
    a client that may take the text alone: that means loading the result, within the
    bound on results loaded whole (JSON is streamed as stored, as for any result)."""

    def answer(payload: dict[str, Any]) -> Response:
        media = raw_type(str(payload.get("output")), accept)
        content = payload.get("content")
        if media and isinstance(content, str):
            return Response(content, media_type=f"{media}; charset=utf-8")
        body = {"job_id": record.id, **payload}
        return Response(json_bytes(body), media_type=JSON)

    return await reshaped(services, record, answer, headers=headers)


def json_bytes(value: Any) -> bytes:
    """``value`` as the API writes JSON: UTF-8, compact, no NaN."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def reshaped(
    services: Services,
    record: JobRecord,
    shape: Callable[[dict[str, Any]], Response],
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer ``shape`` makes of the job's payload, loaded whole (see
    :func:`loaded_answer`); refused with ``limit-exceeded``, before anything is read,
    when the result is stored larger than ``server.max_loaded_result_bytes``."""
    bound = services.settings.server.max_loaded_result_bytes
    response = await loaded_answer(services, lambda: shape(services.queue.result(record, bound)))
    if headers:
        response.headers.update(headers)
    return response


async def loaded_payload(services: Services, record: JobRecord) -> dict[str, Any]:
    """The job's payload, loaded whole in a worker thread holding one of the API's turns
    for loaded results, within ``server.max_loaded_result_bytes``: for what needs a few
    of its fields (the headers describing an image) of a result known to be small."""
    bound = services.settings.server.max_loaded_result_bytes
    return await anyio.to_thread.run_sync(
        services.queue.result, record, bound, limiter=services.result_slots
    )


async def loaded_answer(services: Services, work: Callable[[], Response]) -> Response:
    """``work``'s answer, made in a worker thread that holds one of the API's turns for
    loaded results (``server.loaded_results_at_once``; ``work`` loads each with
    ``services.queue.result(record, server.max_loaded_result_bytes)``), and streamed
    from a temporary file when it is large."""
    return await anyio.to_thread.run_sync(lambda: spooled(work()), limiter=services.result_slots)


def spooled(response: Response) -> Response:
    """``response`` as it is when its body is small; else its body moved to a temporary
    file and streamed from it, so that no memory is held while a slow client reads.
    Blocking: call it in a worker thread."""
    if len(response.body) <= SPOOL_BYTES:
        return response
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    try:
        spool.write(response.body)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    headers = dict(response.headers)
    return StreamingResponse(_chunks(spool), status_code=response.status_code, headers=headers)
