"""v1's text extraction (§7): ``/api/v1/extract/...``, synchronous and as jobs.

The work is the ``extract`` operation's (``output=text``; ``per_page`` for the
per-page routes; ``pages`` for a range); this module turns its result into v1's
``ExtractionResult``: the kind of source v1 would have named (``pdf``,
``office_direct``, ``plain_text``, ``pdf_pages``, ``pdf_page``), the text on one
line for PDF and office sources, ``char_count`` in UTF-8 bytes and ``duration``
in nanoseconds. The same functions shape the results of v1 extraction jobs on
``/api/v1/job/:id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from docworker.api.deps import Services, ServicesDep
from docworker.api.submitting import JobClient, V1JobClientDep
from docworker.api.v1 import schemas
from docworker.api.v1.encoding import nanoseconds, v1_time
from docworker.api.v1.errors import ResultRefused, V1Error, refused, reused_key, v1_responses
from docworker.api.v1.intake import (
    SEVERAL_FILES_CASE,
    accepted,
    form_value,
    go_int,
    multipart_body,
    receive_upload,
    run_and_wait,
    submit,
    upload_form,
    v1_answer,
)
from docworker.errors import DocworkerError
from docworker.jobs.store import JobRecord

router = APIRouter(prefix="/api/v1", tags=["v1"])

TEXT_EXTRACTION = "text_extraction"
_OFFICE_MARKERS = (
    "application/vnd.openxmlformats-officedocument",
    "application/vnd.ms-",
    "application/msword",
    "application/vnd.oasis.opendocument",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
#: v1's ``extractor`` label of each kind of source.
_EXTRACTOR = {"pdf": "mutool", "office": "libreoffice_direct", "text": "direct_read"}


#: Types detected here under another name than v1's detector gave them (``text/xml``,
#: ``text/rtf``): v1 read them as text.
_V1_TEXT_TYPES = frozenset({"application/xml", "application/rtf"})


def source_kind(mime: str) -> str | None:
    """v1's families: ``pdf``, ``office`` or ``text``; None for what v1 could not read."""
    if "pdf" in mime:
        return "pdf"
    if any(marker in mime for marker in _OFFICE_MARKERS):
        return "office"
    if "text/" in mime or mime in _V1_TEXT_TYPES:
        return "text"
    return None


def one_line(text: str) -> str:
    """v1's normalisation of PDF and office text: no control characters, every run of
    white space one space, trimmed."""
    return _SPACES.sub(" ", _CONTROL.sub("", text)).strip()


def _pdf_info(metadata: dict[str, Any], pages: int) -> dict[str, Any]:
    info = {
        "title": metadata.get("title"),
        "author": ", ".join(metadata.get("authors") or []),
        "subject": metadata.get("subject"),
        "creator": metadata.get("creator"),
        "producer": metadata.get("producer"),
        "created_date": metadata.get("created"),
        "modified_date": metadata.get("modified"),
    }
    return {k: v for k, v in info.items() if v} | {"pages": pages}


def _result(
    text: str, source_type: str, page_count: int, metadata: dict[str, Any], record: JobRecord
) -> dict[str, Any]:
    started, finished = record.started_at, record.finished_at
    duration = (finished - started).total_seconds() if started and finished else 0.0
    return {
        "text": text,
        "source_type": source_type,
        "page_count": page_count,
        "word_count": len(text.split()),
        "char_count": len(text.encode("utf-8")),
        "metadata": metadata,
        "extracted_at": v1_time(finished),
        "duration": nanoseconds(duration),
    }


def read_as_is(services: Services, uri: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with a text file's ``content`` as v1 answered it: the file's bytes as
    they are (v1 read ``text/*`` files raw: Markdown keeps its marks, CSV its commas,
    HTML its tags, white space is not trimmed), where the ``extract`` operation gives
    their text. Only for a text file whose bytes are UTF-8 and at most the API's bound on
    results loaded whole; another encoding (UTF-16 and UTF-32 too, which decode as UTF-8
    full of NULs) keeps the operation's decoded text (v1 sent its bytes, replaced where
    they were not UTF-8). Blocking."""
    if source_kind(payload.get("mime", "")) != "text":
        return payload
    bound = services.settings.server.max_loaded_result_bytes
    try:
        with services.blobs.open(uri) as stream:
            data = stream.read(bound + 1)
    except (DocworkerError, OSError):
        return payload
    if len(data) > bound or b"\x00" in data:  # NULs: UTF-16 or UTF-32 without a BOM
        return payload
    try:
        return payload | {"content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return payload


def full_result(payload: dict[str, Any], name: str, record: JobRecord) -> dict[str, Any]:
    """v1's ``ExtractionResult`` of a whole document (``/extract/text``)."""
    kind = source_kind(payload["mime"])
    if kind is None:
        raise ResultRefused(f"unsupported file type: {payload['mime']}")
    meta = payload.get("metadata") or {}
    metadata: dict[str, Any] = {"source_file": name, "extractor": _EXTRACTOR[kind]}
    if kind == "text":
        return _result(payload["content"], "plain_text", 1, metadata, record)
    text = one_line(payload["content"])
    if kind == "office":
        return _result(text, "office_direct", 1, metadata, record)
    pages = int(meta.get("page_count") or 0)
    metadata["pdf_info"] = _pdf_info(meta, pages)
    return _result(text, "pdf", pages, metadata, record)


def _require_pdf(payload: dict[str, Any]) -> int:
    if payload["mime"] != "application/pdf":
        raise ResultRefused(f"file is not a PDF document: {payload['mime']}")
    return int((payload.get("metadata") or {}).get("page_count") or 0)


def _range_metadata(
    name: str, start: int, end: int, total: int, meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source_file": name,
        "page_range": f"{start}-{end}",
        "start_page": start,
        "end_page": end,
        "total_pages": total,
        "extractor": "mutool_pages",
        "pdf_info": _pdf_info(meta, total),
    }


def page_results(payload: dict[str, Any], name: str, record: JobRecord) -> list[dict[str, Any]]:
    """v1's per-page results of a PDF (``/extract/pdf-pages``)."""
    total = _require_pdf(payload)
    meta = payload.get("metadata") or {}
    results = []
    for page in payload.get("pages") or []:
        number = int(page["page"])
        metadata = _range_metadata(name, number, number, total, meta) | {"page_number": number}
        results.append(_result(one_line(page["content"]), "pdf_page", 1, metadata, record))
    return results


def range_result(
    payload: dict[str, Any], name: str, start: int, end: int, record: JobRecord
) -> dict[str, Any]:
    """v1's result of a page range of a PDF (``/extract/pdf-range``)."""
    total = _require_pdf(payload)
    if start > total or end > total:
        raise ResultRefused(f"page range exceeds document pages ({total})")
    meta = payload.get("metadata") or {}
    metadata = _range_metadata(name, start, end, total, meta)
    return _result(one_line(payload["content"]), "pdf_pages", end - start + 1, metadata, record)


#: v1 job_type → the ``extract`` parameters of its job, and the prefix of its failures.
JOB_TYPES: dict[str, tuple[dict[str, Any], str]] = {
    "full": ({"output": "text"}, "Text extraction failed"),
    "pages": ({"output": "text", "per_page": True}, "PDF pages extraction failed"),
    "range": ({"output": "text", "per_page": True}, "PDF range extraction failed"),
}


def failure_prefix(v1_payload: dict[str, Any]) -> str:
    """The words v1 put before the error of a failed extraction job of this payload."""
    return JOB_TYPES.get(str(v1_payload.get("job_type", "full")), JOB_TYPES["full"])[1]


def job_payload(services: Services, record: JobRecord, payload: dict[str, Any]) -> dict[str, Any]:
    """The v2 result of a v1 extraction job, a text file's content read as it is
    (:func:`read_as_is`) for a whole-document job. Blocking."""
    v1 = (record.input or {}).get("v1") or {}
    if (v1.get("payload") or {}).get("job_type", "full") != "full":
        return payload
    return read_as_is(services, str((record.input or {}).get("uri", "")), payload)


def job_result(
    v1_payload: dict[str, Any], payload: dict[str, Any], record: JobRecord
) -> dict[str, Any]:
    """The ``result`` of a finished v1 extraction job (§7.7); raises
    :class:`ResultRefused` for what v1 would have failed."""
    job_type = v1_payload.get("job_type", "full")
    name = v1_payload.get("metadata", {}).get("original_filename") or "upload"
    common = {
        "processed_at": v1_time(record.finished_at),
        "input_path": v1_payload.get("input_path", ""),
        "metadata": v1_payload.get("metadata", {}),
        "job_type": job_type,
    }
    if job_type == "pages":
        pages = page_results(payload, name, record)
        return common | {"extraction_results": pages, "total_pages": len(pages)}
    if job_type == "range":
        start, end = int(v1_payload["start_page"]), int(v1_payload["end_page"])
        result = range_result(payload, name, start, end, record)
        return common | {"extraction_result": result, "start_page": start, "end_page": end}
    return common | {"extraction_result": full_result(payload, name, record)}


# -- routes ------------------------------------------------------------------------------

_FILE = multipart_body({})
_RANGE = multipart_body(
    {
        "start_page": "First page, from 1 (also read from the query string, which wins).",
        "end_page": "Last page, inclusive (also read from the query string, which wins).",
    },
    required=("start_page", "end_page"),
)
_UPLOAD_ERRORS = (
    (400, "File upload error"),
    SEVERAL_FILES_CASE,
    (500, "Failed to save uploaded file"),
)


async def _page_range(request: Request) -> tuple[FormData, UploadFile, int, int]:
    form, upload = await upload_form(request)
    raw_start = form_value(request, form, "start_page")
    raw_end = form_value(request, form, "end_page")
    if raw_start is None or raw_end is None:
        raise V1Error(
            400,
            "start_page and end_page parameters are required",
            example="start_page=1&end_page=3",
        )
    try:
        start = go_int(raw_start)
    except ValueError:
        raise V1Error(400, "Invalid start_page parameter", f"not an integer: {raw_start}") from None
    try:
        end = go_int(raw_end)
    except ValueError:
        raise V1Error(400, "Invalid end_page parameter", f"not an integer: {raw_end}") from None
    if start < 1 or end < 1 or start > end:
        raise V1Error(
            400,
            "Invalid page range",
            "start_page and end_page must be positive and start_page <= end_page",
        )
    return form, upload, start, end


def _shaped(
    failure: str, shape: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[dict[str, Any]], Response]:
    """``shape`` answering JSON; what v1 would have failed (:class:`ResultRefused`) is
    the route's ``failure``."""

    def answer(payload: dict[str, Any]) -> Response:
        try:
            return JSONResponse(shape(payload))
        except ResultRefused as exc:
            raise V1Error(500, failure, str(exc)) from None

    return answer


def _not_pdf(mime: str) -> V1Error:
    return V1Error(400, "File must be a PDF document", f"Detected MIME type: {mime}")


@router.post(
    "/extract/text",
    operation_id="v1_extract_text",
    summary="Text of a document (v1)",
    openapi_extra=_FILE,
    responses={
        200: {"model": schemas.V1ExtractionResult, "description": "v1 ExtractionResult"},
        **v1_responses(
            *_UPLOAD_ERRORS,
            (500, "Text extraction failed"),
            refused("Text extraction failed"),
            reused_key("Text extraction failed"),
        ),
    },
)
async def extract_text(request: Request, services: ServicesDep, client: V1JobClientDep) -> Response:
    """The text of a PDF, an office document or a text file, with its counts."""
    _, file = await upload_form(request)
    upload = await receive_upload(services, request, file)
    if source_kind(upload.mime) is None:
        raise V1Error(500, "Text extraction failed", f"unsupported file type: {upload.mime}")
    params, failure = JOB_TYPES["full"]
    record = await run_and_wait(services, client, "extract", params, upload.job_input, failure)
    uri = upload.job_input.blob.uri
    return await v1_answer(
        services,
        record,
        failure,
        _shaped(failure, lambda p: full_result(read_as_is(services, uri, p), upload.name, record)),
    )


@router.post(
    "/extract/pdf-pages",
    operation_id="v1_extract_pdf_pages",
    summary="Text of each page of a PDF (v1)",
    openapi_extra=_FILE,
    responses={
        200: {"model": schemas.V1PdfPages, "description": "Each page's ExtractionResult"},
        **v1_responses(
            *_UPLOAD_ERRORS,
            (400, "File must be a PDF document"),
            (500, "PDF batch extraction failed"),
            refused("PDF batch extraction failed"),
            reused_key("PDF batch extraction failed"),
        ),
    },
)
async def extract_pdf_pages(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """Each page of a PDF on its own."""
    _, file = await upload_form(request)
    upload = await receive_upload(services, request, file)
    if upload.mime != "application/pdf":
        raise _not_pdf(upload.mime)
    params, _ = JOB_TYPES["pages"]
    failure = "PDF batch extraction failed"
    record = await run_and_wait(services, client, "extract", params, upload.job_input, failure)

    def pages(payload: dict[str, Any]) -> dict[str, Any]:
        found = page_results(payload, upload.name, record)
        return {
            "pages": found,
            "total_pages": len(found),
            "extracted_at": v1_time(record.finished_at),
        }

    return await v1_answer(services, record, failure, _shaped(failure, pages))


@router.post(
    "/extract/pdf-range",
    operation_id="v1_extract_pdf_range",
    summary="Text of a page range of a PDF (v1)",
    openapi_extra=_RANGE,
    responses={
        200: {"model": schemas.V1ExtractionResult, "description": "source_type pdf_pages"},
        **v1_responses(
            *_UPLOAD_ERRORS,
            (400, "start_page and end_page parameters are required"),
            (400, "Invalid start_page parameter"),
            (400, "Invalid end_page parameter"),
            (400, "Invalid page range"),
            (400, "File must be a PDF document"),
            (500, "PDF range extraction failed"),
            refused("PDF range extraction failed"),
            reused_key("PDF range extraction failed"),
        ),
    },
)
async def extract_pdf_range(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> Response:
    """Pages ``start_page`` to ``end_page`` of a PDF, as one text."""
    _, file, start, end = await _page_range(request)
    upload = await receive_upload(services, request, file)
    if upload.mime != "application/pdf":
        raise _not_pdf(upload.mime)
    params, failure = JOB_TYPES["range"]
    params = params | {"pages": f"{start}-{end}"}
    record = await run_and_wait(services, client, "extract", params, upload.job_input, failure)
    return await v1_answer(
        services,
        record,
        failure,
        _shaped(failure, lambda p: range_result(p, upload.name, start, end, record)),
    )


_ASYNC_ERRORS = (
    *_UPLOAD_ERRORS,
    (500, "Failed to submit text extraction job"),
    reused_key("Failed to submit text extraction job"),
)
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": schemas.V1ExtractionAccepted, "description": "The job, to poll"}
}
_MESSAGE = "Text extraction job submitted for processing"


async def _submit_extraction(
    request: Request,
    services: ServicesDep,
    client: JobClient,
    job_type: str,
    file: UploadFile,
    **extra: int,
) -> JSONResponse:
    upload = await receive_upload(services, request, file)
    params, _ = JOB_TYPES[job_type]
    if job_type == "range":
        params = params | {"pages": f"{extra['start_page']}-{extra['end_page']}"}
    record = await submit(
        services,
        client,
        "extract",
        params,
        upload,
        kind=TEXT_EXTRACTION,
        payload=upload.payload(job_type=job_type, **extra),
        failure="Failed to submit text extraction job",
    )
    return accepted(record, _MESSAGE, job_type=job_type, **extra)


@router.post(
    "/extract/async/text",
    operation_id="v1_extract_async_text",
    summary="Text of a document, as a job (v1)",
    status_code=202,
    openapi_extra=_FILE,
    responses={**_ACCEPTED, **v1_responses(*_ASYNC_ERRORS)},
)
async def extract_async_text(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> JSONResponse:
    """202 with the job; its result is on ``/api/v1/job/:id``."""
    _, file = await upload_form(request)
    return await _submit_extraction(request, services, client, "full", file)


@router.post(
    "/extract/async/pdf-pages",
    operation_id="v1_extract_async_pdf_pages",
    summary="Text of each page of a PDF, as a job (v1)",
    status_code=202,
    openapi_extra=_FILE,
    responses={**_ACCEPTED, **v1_responses(*_ASYNC_ERRORS)},
)
async def extract_async_pdf_pages(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> JSONResponse:
    """202 with the job; its result (``extraction_results``) is on ``/api/v1/job/:id``."""
    _, file = await upload_form(request)
    return await _submit_extraction(request, services, client, "pages", file)


@router.post(
    "/extract/async/pdf-range",
    operation_id="v1_extract_async_pdf_range",
    summary="Text of a page range of a PDF, as a job (v1)",
    status_code=202,
    openapi_extra=_RANGE,
    responses={
        **_ACCEPTED,
        **v1_responses(
            *_ASYNC_ERRORS,
            (400, "start_page and end_page parameters are required"),
            (400, "Invalid start_page parameter"),
            (400, "Invalid end_page parameter"),
            (400, "Invalid page range"),
        ),
    },
)
async def extract_async_pdf_range(
    request: Request, services: ServicesDep, client: V1JobClientDep
) -> JSONResponse:
    """202 with the job, echoing the range; its result is on ``/api/v1/job/:id``."""
    _, file, start, end = await _page_range(request)
    return await _submit_extraction(
        request, services, client, "range", file, start_page=start, end_page=end
    )
